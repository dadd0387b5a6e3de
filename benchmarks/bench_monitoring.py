"""Time Evidently's cost per monthly drift report and the whole twelve-month monitoring pass.

On one simulated dataset (seed 42) with a model trained on January:

- ``report_warm_s``: one month against January (``companion.monitoring.drift_report`` with the
  book's policy and the scores column, then ``snapshot.dict()``), after one warm-up report;
  the median of ``--repeats`` runs, with the minimum and maximum;
- ``preset_default_warm_s``: the same month with ``DataDriftPreset()`` at its defaults on
  every feature (the contrast the chapter prints);
- ``drift_pass_s``: the policy over eleven months (one report each);
- ``monitor_year_s``: ``monitor_year``: quality checks, scoring, the drift pass, performance
  and alerts for the year;
- ``build_dashboard_s`` and ``serve_dashboard_s``: the Evidently workspace with eleven
  snapshots and their HTML reports, then ``evidently ui`` started, checked and stopped.

Usage: python benchmarks/bench_monitoring.py [--customers 5000] [--repeats 5]
Writes benchmarks/results/monitoring.json.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from _measure import machine, write_results

from companion.core.env import apply_offline_env


def _timed(call):
    started = time.perf_counter()
    value = call()
    return time.perf_counter() - started, value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=5_000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    apply_offline_env()

    from companion import monitoring as mon
    from companion.data import SimulationConfig, generate
    from companion.monitoring.drift import _TIME, preset_default_pass
    from companion.training import snapshot_features, train

    dataset = generate(SimulationConfig(n_customers=args.customers, seed=42))
    frame = snapshot_features(dataset)
    january, july = dataset.snapshots[0], dataset.snapshots[6]
    model = train(frame[frame[_TIME] == january], seed=0)
    scored = mon.score_frame(model, frame)
    reference, current = scored[scored[_TIME] == january], scored[scored[_TIME] == july]

    def one_report() -> dict:
        return mon.drift_report(reference, current).dict()

    one_report()  # warm-up: imports, registries
    report_times = [_timed(one_report)[0] for _ in range(args.repeats)]
    preset_times = [
        _timed(lambda: preset_default_pass(frame, months=[july]))[0] for _ in range(args.repeats)
    ]
    drift_s, drift = _timed(lambda: mon.drift_pass(scored))
    year_s, run = _timed(lambda: mon.monitor_year(dataset, model))
    with tempfile.TemporaryDirectory(prefix="bench-monitoring-") as tmp:
        build_s, board = _timed(lambda: mon.build_dashboard(Path(tmp) / "evidently", drift))
        started = time.perf_counter()
        with mon.serve_dashboard(board):
            serve_s = time.perf_counter() - started
    path = write_results("monitoring", {
        "machine": machine(),
        "customers": args.customers,
        "rows_per_month": len(current),
        "columns": len(mon.DEFAULT_POLICY.columns) + 1,
        "repeats": args.repeats,
        "report_warm_s": round(statistics.median(report_times), 3),
        "report_warm_min_s": round(min(report_times), 3),
        "report_warm_max_s": round(max(report_times), 3),
        "preset_default_warm_s": round(statistics.median(preset_times), 3),
        "drift_pass_months": len(drift.months),
        "drift_pass_s": round(drift_s, 2),
        "monitor_year_s": round(year_s, 2),
        "monitor_year_alerts": len(run.alerts),
        "build_dashboard_s": round(build_s, 2),
        "serve_dashboard_s": round(serve_s, 2),
    })
    print(path.read_text())


if __name__ == "__main__":
    main()
