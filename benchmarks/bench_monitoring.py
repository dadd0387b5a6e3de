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

``--grading`` instead grades the monitoring of chapter 10 on several seeds (not a timing: the
numbers are the same on any machine): for each seed, the year of ``monitor_year`` with a
model trained on January, the drift policy's delays and false alarms against the simulator's
onsets (``grade_drift``), the month the performance alarm first fires and the day its labels
arrived, and the months the quality checks blocked. The chapter prints this table for the
seeds it does not run itself.

Usage: python benchmarks/bench_monitoring.py --grading [--customers 20000] [--seeds 42 1 2 3 4 5]
Writes benchmarks/results/monitoring-grading.json.
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


def grading(customers: int, seeds: list[int]) -> None:
    """Grade chapter 10's monitoring on each seed; write monitoring-grading.json."""
    from companion import monitoring as mon
    from companion.data import SimulationConfig, generate
    from companion.training import snapshot_features, train

    rows = []
    for seed in seeds:
        dataset = generate(SimulationConfig(n_customers=customers, seed=seed))
        frame = snapshot_features(dataset)
        model = train(frame[frame["snapshot_timestamp"] == dataset.snapshots[0]], seed=0)
        run = mon.monitor_year(dataset, model)
        onsets = mon.onset_months(dataset)
        grades = mon.grade_drift(run.drift, onsets)
        perf = run.performance[run.performance["alarm"]]
        first = perf.iloc[0] if len(perf) else None
        rows.append({
            "seed": seed,
            **grades,
            "noise_floor": round(mon.noise_floor(
                run.drift, [m for m in run.drift.months if m < min(onsets.values())]), 3),
            "performance_alarm_month": None if first is None else first["month"],
            "performance_alarm_known": None if first is None else first["labels_known_from"],
            "blocked_months": ", ".join(q.month for q in run.quality if not q.passed) or "-",
        })
        print(rows[-1], flush=True)
    path = write_results("monitoring-grading", {
        "what": "chapter 10's monitoring graded against the simulator's onsets, per seed",
        "customers": customers,
        "model": "gbm trained on January, seed 0",
        "policy": mon.DEFAULT_POLICY.version,
        "onsets": {k: str(v.date()) for k, v in onsets.items()},
        "max_delay": mon.MAX_DELAY,
        "max_false_alarms": mon.MAX_FALSE_ALARMS,
        "seeds": rows,
    })
    print(path.read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=None)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--grading", action="store_true")
    parser.add_argument("--seeds", type=int, nargs="+", default=[42, 1, 2, 3, 4, 5])
    args = parser.parse_args()
    apply_offline_env()
    if args.grading:
        grading(args.customers or 20_000, args.seeds)
        return
    args.customers = args.customers or 5_000

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
