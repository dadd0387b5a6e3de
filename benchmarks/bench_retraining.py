"""Time the retraining loop: one retrain through the lifecycle, and a simulated year per policy.

On one simulated dataset (seed 42) in a temporary workspace with chapter 6's baseline:

- ``setup_s``: the workspace's data and baseline (what the chapter pays before the loop);
- ``alerts_s``: chapter 10's ``monitor_year`` for a model trained on January (the drift
  policy's alerts);
- ``prepare_year_s``: ``prepare_year`` (feature rows of every month, truth, export checks);
- ``retrain_pipeline_s``: one retrain through ``RegistryDeployer``: export, chapter 7's
  pipeline up to ``evaluate``, the model logged and registered, then the registry's gate
  (``Registry.stage``);
- ``year_in_memory_s``: one policy's twelve months with ``InMemoryDeployer``, per policy, with
  its retrains and deployments;
- ``year_lifecycle_s``: the drift policy's twelve months through the pipeline, registry and
  router, with a misjoined deployment injected in July (rolled back).

Usage: python benchmarks/bench_retraining.py [--customers 5000]
Writes benchmarks/results/retraining.json.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from _measure import machine, write_results

from companion.core.env import apply_offline_env


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=5000)
    args = parser.parse_args()
    apply_offline_env()

    from companion import retraining as rt
    from companion.data import SimulationConfig
    from companion.monitoring import monitor_year
    from companion.training import snapshot_features, train
    from companion.workspace import Workspace

    out: dict = {"customers": args.customers, "seed": 42}
    with tempfile.TemporaryDirectory(prefix="bench-retraining-") as tmp:
        start = time.perf_counter()
        ws = Workspace.create("bench-retraining", root=Path(tmp),
                              config=SimulationConfig(n_customers=args.customers, seed=42))
        dataset = ws.require("data")
        ws.require("baseline")
        out["setup_s"] = round(time.perf_counter() - start, 3)

        start = time.perf_counter()
        january = train(snapshot_features(dataset, dataset.snapshots[:1]), kind="gbm", seed=0)
        alerts = monitor_year(dataset, january).alerts
        out["alerts_s"] = round(time.perf_counter() - start, 3)

        start = time.perf_counter()
        year = rt.prepare_year(dataset, alerts)
        out["prepare_year_s"] = round(time.perf_counter() - start, 3)

        deployer = rt.RegistryDeployer(ws, year, policy_name="bench")
        production = deployer.baseline()
        start = time.perf_counter()
        labelled = year.labelled("2025-07-01")
        candidate = deployer.retrain(labelled[-1], labelled[:-1][-3:], labelled[-1])
        out["retrain_pipeline_only_s"] = round(time.perf_counter() - start, 3)
        deployer.gate(candidate, production, rt.DEFAULT_GATE)
        out["retrain_pipeline_s"] = round(time.perf_counter() - start, 3)

        years = {}
        for policy in rt.standard_policies():
            start = time.perf_counter()
            result = rt.run_year(year, policy)
            years[policy.name] = {
                "seconds": round(time.perf_counter() - start, 3),
                "retrains": result.count("retrain", "done"),
                "deployed": result.count("promote", "done"),
                "yearly_cost": round(float(result.months["cost"].sum()), 1),
            }
        out["year_in_memory_s"] = years

        start = time.perf_counter()
        full = rt.run_year(year, rt.RetrainPolicy("drift"),
                           deployer=rt.RegistryDeployer(ws, year, policy_name="drift"),
                           faults=[rt.Fault("2025-07", "misjoin")])
        out["year_lifecycle_s"] = round(time.perf_counter() - start, 3)
        out["year_lifecycle"] = {"retrains": full.count("retrain", "done"),
                                 "deployed": full.count("promote", "done"),
                                 "rolled_back": full.count("rollback", "done")}
    path = write_results("retraining", {"machine": machine(), **out})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
