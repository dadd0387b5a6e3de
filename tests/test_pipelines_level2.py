"""Tests of the Level 2 pipeline: its steps, their argument checks, and two months end to end."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from companion.data import SimulationConfig, generate
from companion.errors import DataQualityError, InvalidParameterError, UnknownNameError
from companion.pipelines import ArrivalTrigger, export_folder, run_on_arrival, write_export
from companion.pipelines.level2 import (
    ACTOR,
    LEVEL2,
    audit_clock,
    data_test_results,
    feast_features,
    model_test_results,
    register,
)
from companion.pipelines.level2_gate import artifact_root_of, register_and_stage

GOOD, BAD = "2025-08-01", "2025-11-01"


@pytest.fixture(scope="module")
def dataset():
    return generate(SimulationConfig(n_customers=2500, seed=42))


@pytest.fixture(scope="module")
def landing(dataset, tmp_path_factory):
    folder = tmp_path_factory.mktemp("landing")
    for month in (GOOD, BAD):
        write_export(dataset, month, export_folder(folder, month))
    return folder


# --------------------------------------------------------------------------- fast


def test_level2_is_chapter_7_with_tests_and_feast_in_it():
    assert [s.name for s in LEVEL2.steps] == [
        "ingest", "data_tests", "feast_features", "train", "model_tests", "evaluate", "register"]
    assert {s.name for s in LEVEL2.steps if s.module == "companion.pipelines.steps"} == {
        "ingest", "train", "evaluate"}
    assert ("data_tests", "feast_features", "report") in LEVEL2.edges()
    assert ("model_tests", "register", "tests") in LEVEL2.edges()
    required = {n for n, p in LEVEL2.params().items() if p.required}
    assert required == {"feature_repo", "tracking_uri", "audit_dir"}
    assert LEVEL2.downstream_of_param("min_auc") == ["model_tests", "register"]
    assert LEVEL2.downstream_of_param("margin") == ["register"]


def test_audit_clock_is_fixed_and_checked():
    clock = audit_clock("2025-11-01", hour=7)
    assert clock().isoformat() == "2025-11-01T07:00:00+00:00" == clock().isoformat()
    with pytest.raises(InvalidParameterError, match="hour"):
        audit_clock("2025-11-01", hour=24)
    with pytest.raises(InvalidParameterError, match="as_of"):
        audit_clock("not a date")


def test_artifact_root_beside_a_sqlite_store(tmp_path):
    assert artifact_root_of(f"sqlite:///{tmp_path}/mlflow.db") == tmp_path / "mlartifacts"
    assert artifact_root_of("http://127.0.0.1:5000") is None
    with pytest.raises(InvalidParameterError):
        artifact_root_of("")


def test_data_tests_pass_a_good_export_and_name_the_incident(landing):
    good = data_test_results(export_folder(landing, GOOD))
    assert len(good) == 9 and all(r["passed"] for r in good)
    assert {r["suite"] for r in good} == {"pipeline", "level 1"}
    bad = data_test_results(export_folder(landing, BAD))
    failed = sorted(r["check"] for r in bad if not r["passed"])
    assert failed == ["missing_values", "ranges", "units"]
    stale = data_test_results(export_folder(landing, GOOD), max_age_days=10)
    assert [r["check"] for r in stale if not r["passed"]] == ["freshness"]
    with pytest.raises(InvalidParameterError, match="max_missing"):
        data_test_results(export_folder(landing, GOOD), max_missing=2.0)


def test_steps_refuse_bad_arguments_before_writing(dataset, landing, tmp_path):
    raw = export_folder(landing, GOOD)
    report = tmp_path / "report.json"
    report.write_text(json.dumps({"month": GOOD, "passed": True}))
    with pytest.raises(InvalidParameterError, match="train_months"):
        feast_features(raw, report, tmp_path / "f.parquet", tmp_path / "feast.json",
                       feature_repo=str(tmp_path / "repo"), train_months=0)
    with pytest.raises(InvalidParameterError, match="needs 24 labelled months"):
        feast_features(raw, report, tmp_path / "f.parquet", tmp_path / "feast.json",
                       feature_repo=str(tmp_path / "repo"), train_months=24)
    report.write_text(json.dumps({"month": BAD, "passed": True}))
    with pytest.raises(DataQualityError, match="has not passed its data tests"):
        feast_features(raw, report, tmp_path / "f.parquet", tmp_path / "feast.json",
                       feature_repo=str(tmp_path / "repo"))
    for bad in ({"rule": "better"}, {"margin": 0.7}, {"min_roc_auc": 1.5}):
        with pytest.raises((InvalidParameterError, UnknownNameError)):
            register(raw, tmp_path / "f.parquet", tmp_path / "m.pkl", tmp_path / "x.json",
                     report, tmp_path / "r.json", tracking_uri="sqlite:///x.db",
                     audit_dir=str(tmp_path), **bad)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.json"]
    with pytest.raises(InvalidParameterError, match="min_auc"):
        model_test_results(object(), pd.DataFrame(), min_auc=-1)
    with pytest.raises(InvalidParameterError, match="policy"):
        register_and_stage(dataset, pd.DataFrame({"snapshot_timestamp": [1]}), tmp_path, {}, tracking_uri="sqlite:///x.db",
                           audit_dir=tmp_path, policy=None, clock=audit_clock(GOOD),
                           run_name="x")


# --------------------------------------------------------------------------- end to end


@pytest.mark.slow
def test_a_month_staged_and_the_incident_stopped(dataset, landing, tmp_path):
    from companion.registry import Registry

    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    params = {"tracking_uri": store, "audit_dir": str(tmp_path / "registry"),
              "feature_repo": str(tmp_path / "feature_repo")}
    trigger = ArrivalTrigger(landing, tmp_path / "ledger.json")
    runs = run_on_arrival(LEVEL2, trigger, tmp_path / "runs", params)
    assert [(r.month, r.status) for r in runs] == [(GOOD, "succeeded"), (BAD, "failed")]
    incident = runs[1]
    assert "step 'data_tests' failed" in incident.error and "units" in incident.error
    assert [s.status for s in incident.result.steps] == ["succeeded", "failed"] + ["not run"] * 5
    registry = Registry.at(store, audit_dir=tmp_path / "registry")
    reg = json.loads(runs[0].result.outputs["registration"].read_text())
    assert reg["version"] == 1 and reg["staged"] and reg["gate_passed"]
    assert reg["gate_production_roc_auc"] is None  # nothing in production yet
    value, low, high = reg["gate_roc_auc"]
    assert 0.6 < low < value < high < 1
    assert registry.aliases() == {"staging": 1}  # only staging moved
    audit = registry.read_audit()
    assert list(audit["actor"]) == [ACTOR] and list(audit["alias"]) == ["staging"]
    assert list(audit["time"]) == ["2025-09-01T06:00:00+00:00"]
    tags = registry.get_version("lumen-churn", version=1).tags
    assert tags["features.source"] == "feast get_historical_features"
    assert tags["data.training_snapshots"] == "2025-05-01,2025-06-01,2025-07-01"
    assert tags["gate.result"] == "passed" and tags["pipeline.run"] == "lumen-level2/2025-08"
    feast = json.loads((tmp_path / "runs" / "2025-08" / "feast.json").read_text())
    assert feast["materialized_until"] == "2025-09-01" and feast["materialized_views"] == 3
    features = pd.read_parquet(tmp_path / "runs" / "2025-08" / "features.parquet")
    labels = dataset.labels[dataset.labels["snapshot_timestamp"].isin(
        pd.to_datetime(["2025-05-01", "2025-06-01", "2025-07-01", "2025-08-01"]))]
    assert len(features) == feast["rows"] == len(labels)
    tests = json.loads((tmp_path / "runs" / "2025-08" / "model_tests.json").read_text())
    assert [t["test"] for t in tests["tests"]] == [
        "minimum AUC", "invariance to customer_id", "invariance to snapshot_timestamp",
        "direction of payment_failures_4w"]
    source = tmp_path / "feature_repo" / "data" / "customer_activity_weekly.parquet"
    stamps = pd.read_parquet(source)
    assert (stamps["event_timestamp"] >= stamps["created_timestamp"]).all()  # arrival-stamped
    assert stamps["event_timestamp"].max() <= pd.Timestamp("2025-09-01")
    assert run_on_arrival(LEVEL2, trigger, tmp_path / "runs", params) == []
    assert len(registry.versions()) == 1
    assert sorted(p.name for p in (tmp_path / "runs" / "2025-11").iterdir()) == [
        "raw", "run.json"]
    assert not Path("mlruns").exists()
