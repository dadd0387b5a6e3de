"""Tests of the scale-out path: a registry model scored with ``spark_udf`` on local Spark gives
the pandas batch path's scores bit for bit, in a child process whose stderr stays empty, that
writes nothing outside the work folder, and leaves no JVM or Python worker running even when
the block ends with an error. Bad arguments are refused before Spark starts."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from companion import deployment
from companion.data.config import AGE_BANDS, CHANNELS, PLANS, REGIONS
from companion.deployment import batch
from companion.deployment import spark as dspark
from companion.errors import InvalidParameterError
from companion.training import CATEGORICAL_FEATURES, FEATURES, NUMERIC_FEATURES

SERVICE = "churn_model_v1"
LEVELS = {"plan": PLANS, "region": REGIONS, "acquisition_channel": CHANNELS,
          "age_band": AGE_BANDS}

ROOT = Path(__file__).resolve().parents[1]

CHILD = textwrap.dedent("""
    import json, sys
    from companion.workspace import setup_notebook
    setup_notebook()
    import psutil
    from companion.deployment import spark as dspark

    features, uri, work, out = sys.argv[1:5]
    import time
    result = {}
    start = time.perf_counter()
    try:
        with dspark.local_spark(work, cores=2) as spark:
            result["start_s"] = time.perf_counter() - start
            jvm = psutil.Process(spark.sparkContext._gateway.proc.pid)
            scores = dspark.spark_scores(spark, features, "models:/lumen-churn@production", uri)
            result["score_s"] = time.perf_counter() - start - result["start_s"]
            result["scores"] = scores["score"].tolist()
            result["ids"] = scores["customer_id"].tolist()
            result["workers"] = spark.sparkContext.parallelize(range(2), 2).map(
                lambda _: (__import__("os").environ.get("OMP_NUM_THREADS"),
                           __import__("sys").executable)).collect()
            result["pids"] = [jvm.pid] + [p.pid for p in jvm.children(recursive=True)]
            raise RuntimeError("a cell fails inside the block")
    except RuntimeError as exc:
        result["error"] = str(exc)
    result["total_s"] = time.perf_counter() - start
    result["alive"] = [p for p in result["pids"] if psutil.pid_exists(p)
                       and psutil.Process(p).status() != psutil.STATUS_ZOMBIE]
    with open(out, "w") as handle:
        json.dump(result, handle)
""")


def _features(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({c: rng.gamma(2.0, 10.0, n) for c in NUMERIC_FEATURES})
    for column in CATEGORICAL_FEATURES:
        frame[column] = rng.choice(LEVELS[column], n)
    frame.insert(0, "customer_id", np.arange(1, n + 1, dtype="int64") * 7)
    return frame[["customer_id", *FEATURES]]


@pytest.fixture(scope="module")
def registered(tmp_path_factory):
    """A small churn model registered as lumen-churn@production in a store of its own."""
    import mlflow
    from mlflow.tracking import MlflowClient

    from companion.core.mlflow_store import using_store
    from companion.tracking.models import log_sklearn_model
    from companion.training import make_model

    folder = tmp_path_factory.mktemp("spark-registry")
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    train = _features(800, seed=1)
    target = (train["support_tickets_4w"] + 15 * (train["plan"] == "basic")
              + np.random.default_rng(2).normal(0, 10, 800) > 30).astype(int)
    model = make_model("gbm", seed=0).set_params(model__max_iter=20, model__min_samples_leaf=20)
    model.fit(train[FEATURES], target)
    with using_store(uri):
        client = MlflowClient(uri)
        experiment = client.create_experiment("spark", artifact_location=(folder / "a").as_uri())
        with mlflow.start_run(experiment_id=experiment):
            log_sklearn_model(model, train, registered_model_name="lumen-churn")
        client.set_registered_model_alias("lumen-churn", "production", "1")
        client.set_model_version_tag("lumen-churn", "1", "features.service", SERVICE)
    return uri


@pytest.mark.slow
def test_spark_scores_equal_pandas_quietly_inside_the_work_folder(registered, tmp_path) -> None:
    served = deployment.load_served_model(batch.PRODUCTION_URI, registered)
    features = _features(3000, seed=9).assign(event_timestamp=pd.Timestamp("2025-03-01"))
    expected = batch.score_base(served, features, "2025-03")
    source = batch.write_features(features, tmp_path / "in" / "features.parquet")
    canary = tmp_path / "elsewhere"  # the child's home, current folder and temporary folder
    for name in ("home", "cwd", "tmp"):
        (canary / name).mkdir(parents=True)
    # a reader's folder may hold a space and a quote: the JVM's options must not break on it
    work, out = tmp_path / "someone's spark work", tmp_path / "result.json"
    env = {**os.environ, "HOME": str(canary / "home"), "TMPDIR": str(canary / "tmp"),
           "PYTHONPATH": str(ROOT)}
    child = subprocess.run(
        [sys.executable, "-c", CHILD, str(source), registered, str(work), str(out)],
        cwd=canary / "cwd", env=env, capture_output=True, text=True, timeout=120)
    assert child.returncode == 0, child.stderr[-3000:]
    assert child.stderr == "" and child.stdout == ""
    result = json.loads(out.read_text())
    assert result["ids"] == sorted(expected["customer_id"])
    spark_scores = np.array(result["scores"])
    pandas_scores = expected.sort_values("customer_id")["score"].to_numpy()
    assert np.abs(spark_scores - pandas_scores).max() == 0.0  # identical, bit for bit
    assert result["workers"] == [["1", sys.executable]] * 2
    assert result["error"] == "a cell fails inside the block"
    assert len(result["pids"]) >= 2 and result["alive"] == []  # the JVM and its Python daemon
    assert [p for p in canary.rglob("*") if p.is_file()] == []
    assert sorted(p.name for p in work.iterdir()) == ["derby", "log4j2.properties", "spark.log",
                                                      "warehouse"]


def test_bad_arguments_are_refused_before_spark_starts(tmp_path) -> None:
    file = tmp_path / "file"
    file.write_text("x")
    with pytest.raises(InvalidParameterError, match="work_dir .* is a file"):
        with dspark.local_spark(file):
            pass
    with pytest.raises(InvalidParameterError, match="cores"):
        with dspark.local_spark(tmp_path / "w", cores=0):
            pass
    with pytest.raises(InvalidParameterError, match=r"memory must be like '512m' or '2g', got '1x'"):
        with dspark.local_spark(tmp_path / "w", memory="1x"):
            pass
    assert not (tmp_path / "w").exists()
    with pytest.raises(InvalidParameterError, match="model_uri must be 'models:/"):
        dspark.spark_score_frame(None, None, "runs:/x/model", "sqlite:///m.db")  # type: ignore[arg-type]
    with pytest.raises(InvalidParameterError, match="tracking_uri must be an MLflow URI"):
        dspark.spark_score_frame(None, None, "models:/m@a", "m.db")  # type: ignore[arg-type]
    with pytest.raises(InvalidParameterError, match="does not exist"):
        dspark.spark_scores(None, tmp_path / "none.parquet", "models:/m@a", "sqlite:///m.db")  # type: ignore[arg-type]
