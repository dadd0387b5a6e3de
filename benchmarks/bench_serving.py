"""Serve the production model four ways and load each at 1, 8 and 32 clients, in one run.

- ``in_process``: one-row ``predict_proba`` in this process, one OpenMP thread (the floor);
- ``mlflow``: ``mlflow models serve`` of ``models:/lumen-churn@production`` (zero code);
- ``minimal``: the minimal FastAPI app around the same pyfunc (``/invocations``, one row);
- ``service``: Lumen's service (``POST /predict`` by customer id, Feast features, validation).

Every server runs on loopback with one OpenMP thread; each load level sends the same number
of requests from keep-alive clients after a warm-up (companion.deployment.load). Reported per
level: p50/p99 ms, req/s, errors, latency percentiles (for a distribution figure), the
server's CPU ms per request (its process tree's CPU
time over the level: less sensitive to a busy machine than wall time), and the ratios of the
service's p50 to the floor's and of its throughput to the minimal app's, all measured in this
run. A workspace with a production model and Feast features is built first (not timed).

Usage: python benchmarks/bench_serving.py [--customers 2500] [--requests 600] [--quick]
Writes benchmarks/results/serving.json (``--quick``: 150 requests a level, not written unless
``--write``).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import psutil
from _measure import machine, write_results

from companion.core.env import apply_offline_env

MODEL_URI = "models:/lumen-churn@production"
LEVELS = (1, 8, 32)


def _cpu_seconds(pid: int) -> float:
    process = psutil.Process(pid)
    total = 0.0
    for p in [process, *process.children(recursive=True)]:
        try:
            times = p.cpu_times()
        except psutil.Error:
            continue
        total += times.user + times.system
    return total


def _percentiles(latencies: np.ndarray) -> dict[str, float]:
    """The latency distribution (for a figure): percentiles 10 to 99.9, in ms."""
    points = (10, 25, 50, 75, 90, 95, 99, 99.9)
    return {str(p): round(float(v), 2) for p, v in zip(points, np.percentile(latencies, points),
                                                      strict=True)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=2_500)
    parser.add_argument("--requests", type=int, default=600)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--write", action="store_true", help="write results even with --quick")
    args = parser.parse_args()
    apply_offline_env()
    requests = 150 if args.quick else args.requests

    from companion import deployment
    from companion.data import SimulationConfig
    from companion.deployment import baselines, load
    from companion.features import model_frame, online_features
    from companion.workspace import Workspace

    with tempfile.TemporaryDirectory(prefix="bench-serving-") as tmp:
        ws = Workspace.create("bench-serving", root=Path(tmp), config=SimulationConfig(
            n_customers=args.customers, months=3, seed=3, scenarios=()))
        store = ws.require("baseline", "features")[1]
        served = deployment.load_served_model(MODEL_URI, ws.tracking_uri)
        ids = list(range(1, min(args.customers, 2_000) + 1))
        rows = model_frame(online_features(store, ids, served.feature_service))[served.features]
        split = [{"dataframe_split": {"columns": served.features, "data": [row]}}
                 for row in rows.astype(object).to_numpy().tolist()]
        logs = ws.path / "logs"
        servers = {
            "mlflow": (baselines.mlflow_serve(MODEL_URI, ws.tracking_uri,
                                              log_path=logs / "mlflow.log"), "/invocations", split),
            "minimal": (baselines.minimal_serve(MODEL_URI, ws.tracking_uri,
                                                log_path=logs / "minimal.log"),
                        "/invocations", split),
            "service": (deployment.serve(MODEL_URI, ws.tracking_uri, ws.feast_dir,
                                         log_path=logs / "service.log"),
                        "/predict", [{"customer_id": i} for i in ids]),
        }
        floor = load.in_process_floor(served, rows, requests)
        results: dict[str, dict] = {"in_process": {"1": {
            **floor.summary(2), "percentiles_ms": _percentiles(floor.latencies_ms)}}}
        print(f"in_process  p50 {floor.p50_ms:.2f} ms  p99 {floor.p99_ms:.2f} ms")
        for name, (server, path, bodies) in servers.items():
            started = time.perf_counter()
            with server:
                startup = time.perf_counter() - started
                assert server.pid is not None
                results[name] = {"startup_s": round(startup, 1)}
                for clients in LEVELS:
                    before = _cpu_seconds(server.pid)
                    result = load.load_test(server.url + path, bodies, clients=clients,
                                            requests=requests)
                    cpu_ms = (_cpu_seconds(server.pid) - before) / requests * 1000
                    row = {**result.summary(2), "server_cpu_ms_per_request": round(cpu_ms, 2),
                           "percentiles_ms": _percentiles(result.latencies_ms)}
                    results[name][str(clients)] = row
                    print(f"{name:10s} {clients:3d} clients  p50 {row['p50_ms']:8.2f} ms  "
                          f"p99 {row['p99_ms']:8.2f} ms  {row['req_per_s']:7.1f} req/s  "
                          f"errors {row['errors']}  cpu {cpu_ms:.2f} ms/req")
            assert server.leftover_processes() == []
        service, minimal = results["service"], results["minimal"]
        ratios = {
            "service_p50_over_floor_1_client": round(service["1"]["p50_ms"] / floor.p50_ms, 2),
            **{f"service_throughput_over_minimal_{c}_clients":
               round(service[str(c)]["req_per_s"] / minimal[str(c)]["req_per_s"], 2)
               for c in LEVELS},
            "service_cpu_over_minimal_8_clients": round(
                service["8"]["server_cpu_ms_per_request"]
                / minimal["8"]["server_cpu_ms_per_request"], 2),
        }
        print(ratios)
    if not args.quick or args.write:
        path = write_results("serving", {
            "machine": machine(), "customers": args.customers, "requests_per_level": requests,
            "levels": list(LEVELS), "results": results, "ratios": ratios,
        })
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
