"""Rows per second of batch scoring at 1 M and 10 M rows: raw estimator, pandas path, Spark.

The production model of a fresh workspace (``models:/lumen-churn@production``) scores a
month's customer base resampled with a fixed seed to each size, written as Parquet files of
at most 1 M rows in a temporary folder. Three ways, timed in the same run:

- ``raw``: the fitted estimator's ``predict_proba`` on each chunk's model columns (the floor),
  with ``--threads`` OpenMP threads (default 1: on a busy 2-core machine two threads were
  slower, 57 k against 85 k rows/s);
- ``pandas``: the batch path, :func:`companion.deployment.batch.score_base` on each chunk
  (checks, stamping), chunk by chunk so memory stays bounded; raw and pandas alternate on
  the same chunk, read once (reading is not timed for either);
- ``spark``: :func:`companion.deployment.spark.spark_score_frame` (``spark_udf``) on
  ``local[2]`` reading the Parquet files, forced with a sum of the scores; the session is
  started and warmed on 20 k rows first (start-up and warm-up are reported on their own).

Ratios are rows/s against the raw estimator measured in the same run; the sums of the scores
are compared (pandas vs Spark). Peak memory is the largest resident memory of this process
(pandas) or of this process and its children (Spark: the JVM, Python workers) seen while
each way ran.

Usage: python benchmarks/bench_batch.py [--quick] [--sizes 1000000 10000000]
Writes benchmarks/results/batch.json (``--quick``: 200 k rows, batch-quick.json).
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import psutil
from _measure import machine, write_results

from companion.core.env import apply_offline_env

CHUNK = 1_000_000


class PeakMemory:
    """Sample resident memory every 50 ms while the block runs: this process, or its tree."""

    def __init__(self, children: bool = True) -> None:
        self.children = children

    def __enter__(self) -> PeakMemory:
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        me = psutil.Process()
        while not self._stop.is_set():
            total = 0
            for proc in [me, *(me.children(recursive=True) if self.children else [])]:
                try:
                    total += proc.memory_info().rss
                except psutil.Error:
                    pass
            self.peak = max(self.peak, total)
            time.sleep(0.05)

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def mib(self) -> float:
        return round(self.peak / 2**20, 1)


def write_inputs(base, rows: int, folder: Path, seed: int) -> list[Path]:
    """Resample ``base`` to ``rows`` rows (unique customer ids) into Parquet files of 1 M."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True)
    paths: list[Path] = []
    for start in range(0, rows, CHUNK):
        size = min(CHUNK, rows - start)
        chunk = base.iloc[rng.integers(0, len(base), size)].reset_index(drop=True)
        chunk["customer_id"] = np.arange(start, start + size, dtype="int64")
        path = folder / f"part-{len(paths):03d}.parquet"
        pq.write_table(pa.Table.from_pandas(chunk, preserve_index=False), path,
                       coerce_timestamps="us", allow_truncated_timestamps=True)
        paths.append(path)
    return paths


def score_pandas(served, paths: list[Path]) -> dict:
    import pandas as pd

    from companion.deployment import batch

    raw_s = pandas_s = 0.0
    total = 0.0
    rows = 0
    with PeakMemory(children=False) as memory:  # the idle JVM is not the pandas path's
        for path in paths:
            chunk = pd.read_parquet(path)
            matrix = chunk[served.features]
            started = time.perf_counter()
            served.model.predict_proba(matrix)
            raw_s += time.perf_counter() - started
            started = time.perf_counter()
            scores = batch.score_base(served, chunk, "2025-01")
            pandas_s += time.perf_counter() - started
            total += float(scores["score"].sum())
            rows += len(chunk)
            del chunk, matrix, scores
    return {"rows": rows, "raw_s": raw_s, "pandas_s": pandas_s, "sum": total,
            "peak_mib": memory.mib}


def score_spark(spark, paths: list[Path], model_uri: str, tracking_uri: str) -> dict:
    from pyspark.sql import functions as F

    from companion.deployment.spark import spark_score_frame

    with PeakMemory() as memory:
        started = time.perf_counter()
        frame = spark.read.parquet(*[str(p) for p in paths])
        scored = spark_score_frame(spark, frame, model_uri, tracking_uri)
        row = scored.agg(F.count("score").alias("n"), F.sum("score").alias("sum")).collect()[0]
        seconds = time.perf_counter() - started
    return {"rows": int(row["n"]), "seconds": seconds, "sum": float(row["sum"]),
            "peak_mib": memory.mib}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument("--quick", action="store_true", help="200 k rows only (development)")
    parser.add_argument("--customers", type=int, default=5_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--threads", type=int, default=1,
                        help="OpenMP threads of raw and pandas (Spark's workers run 1 each)")
    args = parser.parse_args()
    sizes = [200_000] if args.quick else args.sizes
    apply_offline_env()

    from threadpoolctl import threadpool_limits

    from companion import deployment
    from companion.data import SimulationConfig
    from companion.deployment import batch
    from companion.deployment.spark import local_spark
    from companion.workspace import Workspace

    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="bench-batch-") as tmp:
        root = Path(tmp)
        ws = Workspace.create("bench-batch", root=root / "ws",
                              config=SimulationConfig(n_customers=args.customers, seed=args.seed))
        ws.require("baseline", "features")
        dataset = ws.require("data")
        month = dataset.snapshots[-1].strftime("%Y-%m")
        served = deployment.load_served_model(batch.PRODUCTION_URI, ws.tracking_uri)
        base = batch.month_features(ws.require("features"),
                                    batch.active_customers(dataset, month), served.feature_service)
        print(f"base: {len(base)} customers of {month}", flush=True)
        inputs = {rows: write_inputs(base, rows, root / f"in-{rows}", args.seed) for rows in sizes}
        warm_up = write_inputs(base, 20_000, root / "warm-up", args.seed + 1)
        started = time.perf_counter()
        with local_spark(root / "spark", cores=2, memory="2g") as spark:
            start_s = time.perf_counter() - started
            warm = score_spark(spark, warm_up, batch.PRODUCTION_URI, ws.tracking_uri)
            print(f"spark: start {start_s:.1f} s, warm-up {warm['seconds']:.1f} s", flush=True)
            for rows in sizes:
                with threadpool_limits(args.threads):
                    pandas = score_pandas(served, inputs[rows])
                sparked = score_spark(spark, inputs[rows], batch.PRODUCTION_URI, ws.tracking_uri)
                assert pandas["rows"] == sparked["rows"] == rows
                raw_rate = rows / pandas["raw_s"]
                results[str(rows)] = {
                    "raw": {"rows_per_s": round(raw_rate), "seconds": round(pandas["raw_s"], 2)},
                    "pandas": {"rows_per_s": round(rows / pandas["pandas_s"]),
                               "seconds": round(pandas["pandas_s"], 2),
                               "ratio_to_raw": round(rows / pandas["pandas_s"] / raw_rate, 3),
                               "peak_mib": pandas["peak_mib"]},
                    "spark": {"rows_per_s": round(rows / sparked["seconds"]),
                              "seconds": round(sparked["seconds"], 2),
                              "ratio_to_raw": round(rows / sparked["seconds"] / raw_rate, 3),
                              "peak_mib": sparked["peak_mib"]},
                    "score_sum_difference": abs(pandas["sum"] - sparked["sum"]),
                }
                print(f"{rows:>10,} rows: " + "  ".join(
                    f"{k} {v['rows_per_s']:>9,}/s" for k, v in results[str(rows)].items()
                    if isinstance(v, dict)), flush=True)
        spark_start = {"session_start_s": round(start_s, 2),
                       "warm_up_s": round(warm["seconds"], 2), "warm_up_rows": warm["rows"]}
    path = write_results("batch-quick" if args.quick else "batch", {
        "machine": machine(),
        "customers": args.customers,
        "base_rows": len(base),
        "month": month,
        "model": f"{served.name} version {served.version}",
        "spark": {"master": "local[2]", "driver_memory": "2g", **spark_start},
        "threads": {"raw_and_pandas": args.threads, "spark_workers": "2 x 1"},
        "floor": "raw: predict_proba on the chunk's model columns, same chunks, same run",
        "chunk_rows": CHUNK,
        "sizes": results,
    })
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
