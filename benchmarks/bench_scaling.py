"""Where one machine stops: the generator, batch scoring, the point-in-time join, tracking.

Each measure sits beside its floor, measured in the same run on the same machine:

- ``generator``: :func:`companion.data.generate` at 10 k, 100 k and 1 M customers, each in a
  fresh process (its peak resident memory is its own), beside two floors: time, drawing one
  float32 normal per customer-week (the ``bench_data.py`` floor, same code); memory, the
  bytes of the tables it returns (what any generator holding them must hold);
- ``scoring``: the production model of a fresh workspace scoring a month's base resampled to
  100 k, 1 M and 10 M rows (Parquet files of at most 1 M rows): the raw estimator's
  ``predict_proba`` (the floor), the MLflow pyfunc model in pandas chunk by chunk
  (:func:`companion.deployment.scaled.pyfunc_scores`), and ``mlflow.pyfunc.spark_udf`` on
  ``local[2]`` (:func:`companion.deployment.spark.spark_score_frame`, scores written as
  Parquet); the largest absolute difference between pandas and Spark scores, row by row;
- ``join``: the point-in-time join of the simulation's weekly activity (about 1 M and 5 M
  rows) with labelled snapshots (50 k and 200 k entity rows): Feast's DuckDB offline store,
  DuckDB's ``ASOF JOIN``, pandas ``merge_asof`` and the companion's join, every result
  compared cell by cell with pandas';
- ``tracking``: runs logged (10 params, 5 metrics each) into an MLflow SQLite store, one writer.

Peak memory: largest resident memory of this process (of its tree for Spark) while each ran.

Usage: python benchmarks/bench_scaling.py [--parts generator scoring join tracking] [--quick]
Writes benchmarks/results/scaling.json (``--quick``: small sizes, scaling-quick.json); a run of
some parts keeps the other parts of the existing file.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import sys
import tempfile
import time
from functools import partial
from pathlib import Path

from _measure import RESULTS, machine, run_measured, write_results
from bench_batch import PeakMemory

# the same child as bench_data.py: generate() timed beside its float32 floor, and its bytes
from bench_data import CHILD as GENERATOR_CHILD

from companion.core.env import apply_offline_env

PARTS = ("generator", "scoring", "join", "tracking")
LIBRARIES = ("mlflow", "pyspark", "feast", "duckdb", "pandas", "scikit-learn", "numpy", "kfp",
             "azure-ai-ml", "kubernetes")
CHUNK = 1_000_000
JOIN_COLUMNS = ["sessions", "minutes_watched", "support_tickets", "payment_failures"]


def versions() -> dict[str, str]:
    return {name: importlib.metadata.version(name) for name in LIBRARIES}


def bench_generator(sizes: list[int]) -> dict:
    rows = []
    for n in sizes:
        measured = run_measured([sys.executable, "-c", GENERATOR_CHILD.format(n=n)])
        inner = json.loads(measured["output"].strip().splitlines()[-1])
        table_mib = inner["table_bytes"] / 2**20
        row = {
            "n_customers": n,
            "seconds": round(inner["seconds"], 2),
            "floor_seconds": round(inner["floor_seconds"], 3),
            "ratio_to_floor": round(inner["seconds"] / inner["floor_seconds"], 1),
            "activity_rows": inner["activity_rows"],
            "label_rows": inner["label_rows"],
            "peak_mib": measured["peak_process_mib"],
            "tables_mib": round(table_mib, 1),
            "memory_ratio_to_tables": round(measured["peak_process_mib"] / table_mib, 2),
        }
        rows.append(row)
        print(f"generator {n:>9,}: {row['seconds']:6.2f} s ({row['ratio_to_floor']}x floor), "
              f"peak {row['peak_mib']:,.0f} MiB ({row['memory_ratio_to_tables']}x tables)",
              flush=True)
    return {"floor": "time: one float32 normal per customer-week; memory: the tables' bytes",
            "sizes": rows}


def _write_chunks(base, rows: int, folder: Path, seed: int) -> list[Path]:
    from companion.deployment.scaled import resample_rows

    folder.mkdir(parents=True)
    paths = []
    for start in range(0, rows, CHUNK):
        chunk = resample_rows(base, min(CHUNK, rows - start), seed=seed, start=start)
        path = folder / f"part-{len(paths):03d}.parquet"
        chunk.to_parquet(path, index=False)
        paths.append(path)
    return paths


def bench_scoring(sizes: list[int], customers: int, seed: int, root: Path) -> dict:
    import numpy as np
    import pandas as pd
    from threadpoolctl import threadpool_limits

    from companion import deployment
    from companion.data import SimulationConfig
    from companion.deployment import batch
    from companion.deployment.scaled import pyfunc_scores, score_differences
    from companion.deployment.spark import local_spark, spark_score_frame
    from companion.training import snapshot_features
    from companion.workspace import Workspace

    ws = Workspace.create("bench-scaling", root=root / "ws",
                          config=SimulationConfig(n_customers=customers, seed=seed))
    dataset = ws.require("data")
    ws.require("baseline")
    uri, tracking = batch.PRODUCTION_URI, ws.tracking_uri
    served = deployment.load_served_model(uri, tracking)
    base = snapshot_features(dataset, [dataset.snapshots[-1]])
    base = base[["customer_id", *served.features]]
    inputs = {rows: _write_chunks(base, rows, root / f"in-{rows}", seed) for rows in sizes}
    warm = _write_chunks(base, 20_000, root / "warm", seed + 1)
    results: dict[str, dict] = {}
    started = time.perf_counter()
    with local_spark(root / "spark", cores=2, memory="2g") as spark:
        start_s = time.perf_counter() - started

        def run_spark(paths: list[Path], out: Path) -> tuple[float, float]:
            with PeakMemory() as memory:
                began = time.perf_counter()
                frame = spark.read.parquet(*[str(p) for p in paths])
                spark_score_frame(spark, frame, uri, tracking).write.parquet(str(out))
                seconds = time.perf_counter() - began
            return seconds, memory.mib

        warm_s, _ = run_spark(warm, root / "out-warm")
        print(f"spark: start {start_s:.1f} s, warm-up {warm_s:.1f} s", flush=True)
        for rows in sizes:
            raw_s = pyfunc_s = 0.0
            scores = []
            with threadpool_limits(1), PeakMemory(children=False) as memory:
                for path in inputs[rows]:
                    chunk = pd.read_parquet(path)
                    began = time.perf_counter()
                    raw = served.model.predict_proba(chunk[served.features])[:, 1]
                    raw_s += time.perf_counter() - began
                    began = time.perf_counter()
                    scored = pyfunc_scores(uri, tracking, chunk)
                    pyfunc_s += time.perf_counter() - began
                    assert np.array_equal(raw, scored["score"].to_numpy())
                    scores.append(scored)
                    del chunk, raw
            pandas_scores = pd.concat(scores, ignore_index=True)
            del scores
            spark_s, spark_mib = run_spark(inputs[rows], root / f"out-{rows}")
            spark_scores = pd.read_parquet(root / f"out-{rows}")
            difference = score_differences(pandas_scores, spark_scores)
            assert len(spark_scores) == len(pandas_scores) == rows
            del pandas_scores, spark_scores
            results[str(rows)] = {
                "raw": {"seconds": round(raw_s, 2), "rows_per_s": round(rows / raw_s)},
                "pandas": {"seconds": round(pyfunc_s, 2), "rows_per_s": round(rows / pyfunc_s),
                           "ratio_to_raw": round(raw_s / pyfunc_s, 3), "peak_mib": memory.mib},
                "spark": {"seconds": round(spark_s, 2), "rows_per_s": round(rows / spark_s),
                          "ratio_to_raw": round(raw_s / spark_s, 3), "peak_mib": spark_mib},
                "max_abs_difference": difference,
            }
            print(f"scoring {rows:>10,}: raw {raw_s:.1f} s, pandas {pyfunc_s:.1f} s, spark "
                  f"{spark_s:.1f} s, max |diff| {difference}", flush=True)
    return {"customers": customers, "base_rows": len(base),
            "model": f"{served.name} version {served.version}",
            "spark": {"master": "local[2]", "driver_memory": "2g",
                      "session_start_s": round(start_s, 2), "warm_up_s": round(warm_s, 2)},
            "threads": {"raw_and_pandas": 1, "spark_workers": "2 x 1"},
            "floor": "raw: predict_proba on the same chunks, same run",
            "spark_includes": "reading the Parquet inputs and writing the scores as Parquet",
            "chunk_rows": CHUNK, "sizes": results}


def bench_join(sizes: list[tuple[int, int]], seed: int, root: Path) -> dict:
    from companion.data import SimulationConfig, generate
    from companion.features import point_in_time_join
    from companion.features.asof import (
        duckdb_asof_join,
        feast_duckdb_join,
        join_differences,
        pandas_asof_join,
    )

    rows = []
    warm = generate(SimulationConfig(n_customers=500, seed=seed))  # imports and first queries
    warm_entities = warm.labels.rename(columns={"snapshot_timestamp": "event_timestamp"})
    for engine in (duckdb_asof_join, pandas_asof_join, point_in_time_join):
        engine(warm_entities[["customer_id", "event_timestamp"]], warm.activity, JOIN_COLUMNS)
    feast_duckdb_join(root / "feast-warm", warm_entities[["customer_id", "event_timestamp"]],
                      warm.activity, JOIN_COLUMNS)
    for customers, entity_rows in sizes:
        dataset = generate(SimulationConfig(n_customers=customers, seed=seed))
        features = dataset.activity[["customer_id", "event_timestamp", *JOIN_COLUMNS]]
        labels = dataset.labels.rename(columns={"snapshot_timestamp": "event_timestamp"})
        entities = labels.sample(entity_rows, random_state=seed)[["customer_id",
                                                                  "event_timestamp"]]
        del dataset
        engines = {
            "feast_duckdb": partial(feast_duckdb_join, root / f"feast-{customers}"),
            "duckdb_asof": duckdb_asof_join,
            "pandas_merge_asof": pandas_asof_join,
            "companion": point_in_time_join,
        }
        results = {}
        joined = {}
        for name, run in engines.items():
            with PeakMemory(children=False) as memory:
                began = time.perf_counter()
                joined[name] = run(entities, features, JOIN_COLUMNS)
                seconds = time.perf_counter() - began
            results[name] = {"seconds": round(seconds, 2),
                             "feature_rows_per_s": round(len(features) / seconds),
                             "peak_mib": memory.mib}
        reference = joined["pandas_merge_asof"]
        for name in engines:
            results[name]["differing_cells"] = join_differences(reference, joined[name],
                                                                JOIN_COLUMNS)
            results[name]["rows"] = len(joined[name])
        rows.append({"feature_rows": len(features), "entity_rows": entity_rows,
                     "customers": customers, "empty_rows":
                     int(reference[JOIN_COLUMNS[0]].isna().sum()), "engines": results})
        print(f"join {len(features):>10,} x {entity_rows:,}: " + ", ".join(
            f"{k} {v['seconds']} s ({v['differing_cells']} differ)" for k, v in results.items()),
            flush=True)
        del joined, features, entities
    return {"columns": JOIN_COLUMNS, "reference": "pandas_merge_asof", "sizes": rows}


def bench_tracking(runs: int, root: Path) -> dict:
    from mlflow.entities import Metric, Param
    from mlflow.tracking import MlflowClient

    store = root / "tracking"
    store.mkdir()
    client = MlflowClient(f"sqlite:///{store / 'mlflow.db'}")
    experiment = client.create_experiment("bench", artifact_location=(store / "art").as_uri())
    began = time.perf_counter()
    for index in range(runs):
        run = client.create_run(experiment)
        client.log_batch(run.info.run_id,
                         params=[Param(f"p{i}", str(index)) for i in range(10)],
                         metrics=[Metric(f"m{i}", index * 0.1, 0, 0) for i in range(5)])
        client.set_terminated(run.info.run_id)
    seconds = time.perf_counter() - began
    began = time.perf_counter()
    found = client.search_runs([experiment], "metrics.m0 > 1", max_results=runs)
    search_s = time.perf_counter() - began
    print(f"tracking: {runs} runs in {seconds:.1f} s; search {search_s:.2f} s", flush=True)
    return {"store": "sqlite, one writer", "runs": runs, "params_per_run": 10,
            "metrics_per_run": 5, "seconds": round(seconds, 2),
            "runs_per_s": round(runs / seconds, 1), "search_s": round(search_s, 3),
            "search_hits": len(found)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parts", nargs="+", choices=PARTS, default=list(PARTS))
    parser.add_argument("--quick", action="store_true", help="small sizes (development)")
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()
    apply_offline_env()
    quick = args.quick
    name = "scaling-quick" if quick else "scaling"
    path = RESULTS / f"{name}.json"
    payload = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
    payload.update({"benchmark": "scaling out: what one machine does, beside its floor",
                    "machine": machine(), "libraries": versions()})
    load_at_start = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="bench-scaling-") as tmp:
        root = Path(tmp)
        if "generator" in args.parts:
            payload["generator"] = bench_generator([10_000, 50_000] if quick
                                                   else [10_000, 100_000, 1_000_000])
        if "scoring" in args.parts:
            payload["scoring"] = bench_scoring([100_000, 300_000] if quick
                                               else [100_000, 1_000_000, 10_000_000],
                                               5_000, args.seed, root)
        if "join" in args.parts:
            payload["join"] = bench_join([(5_000, 10_000)] if quick
                                         else [(24_000, 50_000), (120_000, 200_000)],
                                         args.seed, root)
        if "tracking" in args.parts:
            payload["tracking"] = bench_tracking(50 if quick else 300, root)
    # a shared machine runs slower: say how busy it was (1-minute load average, 2 cores = 2.0)
    payload["machine"]["load_average"] = {"start": round(load_at_start, 2),
                                          "end": round(os.getloadavg()[0], 2)}
    order = ["benchmark", "machine", "libraries", *PARTS]
    print(f"wrote {write_results(name, {k: payload[k] for k in order if k in payload})}")


if __name__ == "__main__":
    main()
