"""Tests of the scaled-out specifications: the shared MLflow server's command, the Kubernetes
manifests (router and arms, tracking server), Feast on Spark and Redis, the training pipeline for
a cluster; each valid one reads back with the real parser, each bad one is refused and leaves
nothing written. Also the batch-scoring helpers of companion.deployment.scaled."""

from __future__ import annotations

import pandas as pd
import pytest
import yaml

from companion.deployment import (
    resample_rows,
    score_differences,
    serving_manifests,
    shared_server,
    tracking_server_manifests,
    validate_manifests,
)
from companion.deployment.scaled import pyfunc_scores
from companion.errors import InvalidParameterError
from companion.features import scaled_store_config
from companion.pipelines import LUMEN, azure_compute_cluster, compile_for_cluster

SERVING = dict(model="lumen-churn", champion_version=1, challenger_version=2,
               weights={"champion": 0.8, "challenger": 0.2}, salt="exp-1",
               tracking_uri="http://mlflow", image="ghcr.io/lumen/companion:1.0")


def test_shared_server_parsed_by_mlflow():
    server = shared_server("postgresql://mlflow@postgres:5432/mlflow", "s3://lumen/artifacts",
                           workers=8)
    assert server.command[:2] == ["mlflow", "server"] and "--serve-artifacts" in server.command
    assert (server.database, server.artifact_scheme, server.port) == ("postgresql", "s3", 5000)
    assert server.parsed["backend_store_uri"] == "postgresql://mlflow@postgres:5432/mlflow"
    assert server.parsed["workers"] == "8"
    assert shared_server("mysql://m@db/mlflow", "wasbs://c@acct.blob.core.windows.net/m",
                         port=8080).database == "mysql"


@pytest.mark.parametrize("backend, artifacts, match", [
    ("postgres://mlflow@db/mlflow", "s3://b/a", "not a database MLflow accepts"),
    ("sqlite:///mlflow.db", "s3://b/a", "SQLite"),
    ("postgresql://mlflow:secret@db/mlflow", "s3://b/a", "password"),
    ("postgresql://mlflow@db/mlflow", "file:///tmp/artifacts", "object store"),
    ("postgresql://mlflow@db/mlflow", "./artifacts", "object store"),
])
def test_shared_server_refuses(backend, artifacts, match):
    with pytest.raises(InvalidParameterError, match=match):
        shared_server(backend, artifacts)


def test_shared_server_refuses_bad_options():
    with pytest.raises(InvalidParameterError, match="workers"):
        shared_server("postgresql://m@db/mlflow", "s3://b/a", workers=0)
    with pytest.raises(InvalidParameterError, match="port"):
        shared_server("postgresql://m@db/mlflow", "s3://b/a", port=70000)


def test_serving_manifests_validate(tmp_path):
    manifest = serving_manifests(tmp_path, **SERVING)
    assert manifest.objects == [
        ("Deployment", "lumen-champion"), ("Service", "lumen-champion"),
        ("Deployment", "lumen-challenger"), ("Service", "lumen-challenger"),
        ("Deployment", "lumen-router"), ("Service", "lumen-router"),
        ("HorizontalPodAutoscaler", "lumen-router")]
    documents = list(yaml.safe_load_all(manifest.path.read_text()))
    champion = documents[0]["spec"]["template"]["spec"]["containers"][0]
    assert "models:/lumen-churn/1" in champion["args"]
    assert {"name": "OMP_NUM_THREADS", "value": "1"} in champion["env"]
    router_env = {e["name"]: e["value"]
                  for e in documents[4]["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert router_env["ROUTER_WEIGHTS"] == '{"challenger": 0.2, "champion": 0.8}'
    assert documents[6]["spec"]["maxReplicas"] == 10


@pytest.mark.parametrize("change, match", [
    ({"weights": {"champion": 1.0, "canary": 0.1}}, "arms"),
    ({"tracking_uri": "sqlite:///mlflow.db"}, "shared server"),
    ({"cpu": "half"}, "quantity"),
    ({"replicas": 3, "max_replicas": 2}, "max_replicas"),
    ({"champion_version": 0}, "champion_version"),
])
def test_serving_manifests_refuse(tmp_path, change, match):
    with pytest.raises(InvalidParameterError, match=match):
        serving_manifests(tmp_path / "out", **{**SERVING, **change})
    assert not (tmp_path / "out").exists()


def test_validate_manifests_refuses_unknown_and_missing_fields(tmp_path):
    manifest = serving_manifests(tmp_path, **SERVING)
    documents = list(yaml.safe_load_all(manifest.path.read_text()))
    documents[0]["spec"]["template"]["spec"]["containers"][0]["resourcez"] = {}
    bad = tmp_path / "misspelt.yaml"
    bad.write_text(yaml.safe_dump_all(documents))
    with pytest.raises(InvalidParameterError, match="resourcez is not a field"):
        validate_manifests(bad)
    del documents[0]["spec"]["template"]["spec"]["containers"][0]["resourcez"]
    del documents[0]["spec"]["template"]["spec"]["containers"][0]["name"]
    bad.write_text(yaml.safe_dump_all(documents))
    with pytest.raises(InvalidParameterError, match="name"):
        validate_manifests(bad)
    bad.write_text(yaml.safe_dump({"apiVersion": "v1", "kind": "Pod", "metadata": {}}))
    with pytest.raises(InvalidParameterError, match="kind 'Pod'"):
        validate_manifests(bad)
    with pytest.raises(InvalidParameterError, match="no manifest"):
        validate_manifests(tmp_path / "none.yaml")


def test_tracking_server_manifests(tmp_path):
    server = shared_server("postgresql://mlflow@postgres:5432/mlflow", "s3://lumen/artifacts")
    manifest = tracking_server_manifests(tmp_path, server.command, port=server.port)
    assert manifest.objects == [("Deployment", "mlflow"), ("Service", "mlflow")]
    text = manifest.path.read_text()
    assert "secretKeyRef" in text and "PGPASSWORD" in text
    with pytest.raises(InvalidParameterError, match="argv of 'mlflow server'"):
        tracking_server_manifests(tmp_path / "x", ["python", "app.py"], port=5000)
    with pytest.raises(InvalidParameterError, match="not the port"):
        tracking_server_manifests(tmp_path / "x", server.command, port=5001)
    assert not (tmp_path / "x").exists()


def test_scaled_store_config_validated_by_feast(tmp_path):
    store = scaled_store_config(tmp_path, project="lumen", registry="s3://lumen/registry.db",
                                spark_conf={"spark.master": "k8s://https://k8s:443"},
                                redis_connection="redis-master:6379,ssl=true",
                                key_ttl_seconds=3600)
    assert store.offline_store == "SparkOfflineStoreConfig"
    assert store.online_validated_by == "feast"  # the lock has the redis client Feast imports
    written = yaml.safe_load(store.path.read_text())
    assert written["online_store"] == {"type": "redis",
                                       "connection_string": "redis-master:6379,ssl=true",
                                       "key_ttl_seconds": 3600}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["feature_store.yaml"]


@pytest.mark.parametrize("change, match", [
    ({"registry": "/data/registry.db"}, "shared storage"),
    ({"spark_conf": {"master": "local"}}, "spark"),
    ({"redis_connection": "redis"}, "host:port"),
    ({"redis_connection": "redis:6379,password=x"}, "password"),
    ({"project": "lumen churn"}, "project"),
])
def test_scaled_store_config_refuses(tmp_path, change, match):
    arguments = dict(project="lumen", registry="s3://lumen/registry.db",
                     spark_conf={"spark.master": "local[2]"}, redis_connection="redis:6379")
    with pytest.raises(InvalidParameterError, match=match):
        scaled_store_config(tmp_path / "repo", **{**arguments, **change})
    assert not (tmp_path / "repo").exists()


@pytest.mark.slow
def test_compile_for_cluster_reads_back(tmp_path):
    compiled = compile_for_cluster(LUMEN, tmp_path, pipeline_root="s3://lumen-kfp/root",
                                   inputs={"export": "s3://lumen-data/exports/2025-10-01"},
                                   image="ghcr.io/lumen/companion:1.0", retries=3)
    assert compiled.pipeline_root == "s3://lumen-kfp/root"
    assert compiled.inputs == {"export_uri": "s3://lumen-data/exports/2025-10-01"}
    assert compiled.tasks == [s.name for s in LUMEN.steps]
    assert set(compiled.retries.values()) == {3}
    assert all(r["resourceMemoryLimit"] == "8Gi" for r in compiled.resources.values())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lumen-training.yaml"]


@pytest.mark.parametrize("change, match", [
    ({"pipeline_root": "/tmp/root"}, "object-store"),
    ({"inputs": {}}, "exactly"),
    ({"cpu": "one"}, "quantity"),
    ({"retries": -1}, "retries"),
    ({"backoff": "1m"}, "backoff"),
])
def test_compile_for_cluster_refuses(tmp_path, change, match):
    arguments = dict(pipeline_root="s3://r", inputs={"export": "s3://e"}, image="python:3.11")
    with pytest.raises(InvalidParameterError, match=match):
        compile_for_cluster(LUMEN, tmp_path / "out", **{**arguments, **change})
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_azure_compute_cluster_loads_back(tmp_path, capsys):
    compute = azure_compute_cluster(tmp_path, name="cpu-cluster", max_instances=8)
    assert (compute.name, compute.min_instances, compute.max_instances) == ("cpu-cluster", 0, 8)
    assert yaml.safe_load(compute.path.read_text())["type"] == "amlcompute"
    assert capsys.readouterr() == ("", "")
    with pytest.raises(InvalidParameterError, match="max_instances"):
        azure_compute_cluster(tmp_path / "x", min_instances=3, max_instances=2)
    with pytest.raises(InvalidParameterError, match="VM size"):
        azure_compute_cluster(tmp_path / "x", size="big")
    assert not (tmp_path / "x").exists()


def test_resample_rows_and_score_differences():
    base = pd.DataFrame({"customer_id": [7, 9, 11], "x": [1.0, 2.0, 3.0]})
    first = resample_rows(base, 5, seed=1, start=10)
    assert first["customer_id"].tolist() == [10, 11, 12, 13, 14]
    assert first.equals(resample_rows(base, 5, seed=1, start=10))
    assert set(first["x"]) <= {1.0, 2.0, 3.0}
    a = pd.DataFrame({"customer_id": [1, 2, 3], "score": [0.1, 0.2, 0.3]})
    b = pd.DataFrame({"customer_id": [3, 1, 2], "score": [0.3, 0.1, 0.25]})
    assert score_differences(a, b) == pytest.approx(0.05)
    assert score_differences(a, a.iloc[::-1]) == 0.0
    with pytest.raises(InvalidParameterError, match="different keys"):
        score_differences(a, b.iloc[:2])
    with pytest.raises(InvalidParameterError, match="repeats"):
        score_differences(pd.concat([a, a]), b)
    with pytest.raises(InvalidParameterError, match="rows"):
        resample_rows(base, 0, seed=1)
    with pytest.raises(InvalidParameterError, match="no rows"):
        resample_rows(base.iloc[:0], 3, seed=1)


def test_pyfunc_scores_refuses_bad_uris():
    frame = pd.DataFrame({"customer_id": [1]})
    with pytest.raises(InvalidParameterError, match="model_uri"):
        pyfunc_scores("runs:/abc/model", "sqlite:///x.db", frame)
    with pytest.raises(InvalidParameterError, match="tracking_uri"):
        pyfunc_scores("models:/lumen-churn@production", "mlflow.db", frame)
    with pytest.raises(InvalidParameterError, match="chunk_rows"):
        pyfunc_scores("models:/lumen-churn@production", "sqlite:///x.db", frame, chunk_rows=0)
