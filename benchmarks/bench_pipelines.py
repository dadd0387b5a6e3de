"""Time Lumen's training pipeline under each runner, against calling its steps in one process.

The same six steps (companion.pipelines.LUMEN) on the same monthly export run four ways:

- ``direct``: the step functions called one after the other in this process (the floor);
- ``local``: companion.pipelines.run_local (the in-process runner: staging, retries, records);
- ``dvc``: a generated dvc.yaml reproduced by DVC, each step a ``python -m`` process;
- ``kfp``: Kubeflow Pipelines' local subprocess runner, each step a process.

The MLflow store is created before any timed run, so every runner starts alike. Each runner
is timed once per repeat (``--repeats``, default 1) and the median is reported with the ratio
to the floor measured in the same run; per-step seconds come from the runners' own records.

Usage: python benchmarks/bench_pipelines.py [--customers 20000] [--repeats 1]
Writes benchmarks/results/pipelines.json.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from _measure import machine, write_results

from companion.core.env import apply_offline_env


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args()
    apply_offline_env()

    from companion import pipelines
    from companion.data import SimulationConfig, generate
    from companion.pipelines.steps import LUMEN

    month = "2025-10-01"
    dataset = generate(SimulationConfig(n_customers=args.customers, seed=42))
    with tempfile.TemporaryDirectory(prefix="bench-pipelines-") as tmp:
        root = Path(tmp)
        export = pipelines.write_export(dataset, month, root / "exports" / "2025-10")
        tracking_uri = f"sqlite:///{root / 'mlflow.db'}"
        params = {"month": month, "tracking_uri": tracking_uri}
        inputs = {"export": export}
        pipelines.run_local(LUMEN, root / "warm-up", params, inputs)  # creates the store

        def direct(folder: Path) -> dict[str, float]:
            resolved = LUMEN.resolve_params(params)
            paths: dict[str, Path] = {"export": export}
            for item in LUMEN.steps:
                for port in item.outputs:
                    paths[port.name] = folder / port.filename
            folder.mkdir(parents=True)
            seconds = {}
            for item in LUMEN.steps:
                started = time.perf_counter()
                item.call(paths, {p.name: resolved[p.name] for p in item.params})
                seconds[item.name] = time.perf_counter() - started
            return seconds

        runners = {
            "direct": lambda folder: direct(folder),
            "local": lambda folder: {
                s.name: s.seconds for s in pipelines.run_local(LUMEN, folder, params, inputs).steps
            },
            "dvc": lambda folder: dict(pipelines.run_dvc(LUMEN, folder, params, inputs).seconds),
            "kfp": lambda folder: {
                t.step: t.seconds
                for t in pipelines.run_kfp_local(LUMEN, folder, params=params, inputs=inputs).tasks
            },
        }
        totals: dict[str, list[float]] = {name: [] for name in runners}
        steps: dict[str, dict[str, float]] = {}
        for repeat in range(args.repeats):
            for name, run in runners.items():
                folder = root / f"{name}-{repeat}"
                started = time.perf_counter()
                steps[name] = {k: round(v, 3) for k, v in run(folder).items()}
                totals[name].append(time.perf_counter() - started)
                shutil.rmtree(folder, ignore_errors=True)
                print(f"{name:>6}: {totals[name][-1]:6.2f} s", flush=True)
    floor = statistics.median(totals["direct"])
    results = {
        name: {
            "seconds": round(statistics.median(values), 3),
            "ratio_to_direct": round(statistics.median(values) / floor, 2),
            "steps": steps[name],
        }
        for name, values in totals.items()
    }
    path = write_results("pipelines", {
        "machine": machine(),
        "customers": args.customers,
        "month": month,
        "repeats": args.repeats,
        "floor": "direct: the six step functions called in one process",
        "runners": results,
    })
    for name, result in results.items():
        print(f"{name:>6}: {result['seconds']:6.2f} s  {result['ratio_to_direct']:5.2f}x direct")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
