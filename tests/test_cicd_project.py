"""companion.cicd's project repository: code, data and runs versioned, and CI run on it."""

from __future__ import annotations

import subprocess
import sys

import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from companion import cicd
from companion.data import SimulationConfig, generate
from companion.errors import InvalidParameterError, UnknownNameError
from companion.training import snapshot_features


@pytest.fixture(scope="module")
def exports():
    dataset = generate(SimulationConfig(n_customers=1500, seed=5))
    april = snapshot_features(dataset, [s for s in dataset.snapshots if s <= pd.Timestamp("2025-04-01")])
    december = snapshot_features(dataset, [pd.Timestamp("2025-11-01"), pd.Timestamp("2025-12-01")])
    return april, december


def _make(tmp_path, april):
    repo = cicd.create_project(tmp_path / "project", tmp_path / "remote",
                               params={"train": {"kind": "logistic"}, "tests": {"min_auc": 0.5}})
    cicd.commit_export(repo, april, "2025-04-01")
    cicd.write_workflow(repo.path, cicd.workflow_yaml())
    repo.commit("CI", "2025-04-01T11:00:00+00:00")
    return repo


def test_create_project_commits_the_code_and_commit_export_the_data(tmp_path, exports):
    april, _ = exports
    repo = _make(tmp_path, april)
    files = repo.git("ls-files").split()
    assert {"train.py", "tests/test_data.py", "tests/test_model.py", "params.yaml",
            "requirements.lock", "data/churn_export.parquet.dvc",
            ".github/workflows/train.yml"} <= set(files)
    assert "data/churn_export.parquet" not in files
    params = cicd.read_project_params(repo.path)
    assert params["data"]["as_of"] == "2025-04-01" and params["train"] == {"kind": "logistic", "seed": 0}
    assert repo.tags() == ["data-2025-04"]
    assert repo.git("log", "--format=%an|%ad|%s", "--date=iso-strict").splitlines() == [
        "Lumen Data Team|2025-04-01T11:00:00+00:00|CI",
        "Lumen Data Team|2025-04-01T10:00:00+00:00|Export as of 2025-04-01",
        "Lumen Data Team|2025-04-01T09:00:00+00:00|The churn project: train.py, data and model tests, params",
        "Lumen Data Team|2025-04-01T00:00:00+00:00|Initialise DVC with a local remote",
    ]
    assert any(p.is_file() for p in (tmp_path / "remote").rglob("*"))  # dvc push
    assert len(cicd.data_version(repo.path, "data/churn_export.parquet")) == 32
    lock = (repo.path / "requirements.lock").read_text()
    assert "mlflow==" in lock and "scikit-learn==" in lock
    for text in cicd.PROJECT_FILES.values():
        assert max(len(line) for line in text.splitlines()) <= 88
    with pytest.raises(InvalidParameterError, match="tag 'data-2025-04' already exists"):
        cicd.commit_export(repo, april, "2025-04-01")


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"train": {"kind": "forest"}}, "params.train.kind 'forest' is not known"),
        ({"train": {"seed": -1}}, "params.train.seed must be >= 0"),
        ({"nope": {}}, "params section 'nope' is not known"),
        ({"tests": {"min_auc": 0.6, "maximum": 1}}, "unknown key(s) ['maximum']"),
    ],
)
def test_bad_project_parameters_are_refused_before_anything_is_written(tmp_path, params, message):
    with pytest.raises(InvalidParameterError) as error:
        cicd.create_project(tmp_path / "project", tmp_path / "remote", params=params)
    assert message in str(error.value)
    assert not (tmp_path / "project").exists() and not (tmp_path / "remote").exists()


def test_bad_arguments_of_the_project_functions(tmp_path, exports):
    april, _ = exports
    with pytest.raises(InvalidParameterError, match="not tracked by DVC"):
        cicd.data_version(tmp_path, "data/x.parquet")
    with pytest.raises(InvalidParameterError, match="predict_proba"):
        cicd.save_model(object(), {}, tmp_path / "model")
    with pytest.raises(InvalidParameterError, match="no params.yaml"):
        cicd.read_project_params(tmp_path)
    with pytest.raises(InvalidParameterError, match="tracking_uri must be an MLflow URI"):
        cicd.log_training(None, april, {}, {"data": {}, "train": {}, "tracking": {}}, "mlflow.db")
    assert not (tmp_path / "model").exists()


@pytest.mark.slow
def test_ci_trains_and_tracks_then_stops_at_a_broken_export(tmp_path, exports):
    april, december = exports
    repo = _make(tmp_path, april)
    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    with pytest.raises(InvalidParameterError, match="MLFLOW_TRACKING_URI"):
        cicd.run_workflow(repo.path)  # the secret has no value here
    first = cicd.run_workflow(repo.path, env={"MLFLOW_TRACKING_URI": store})
    assert first.passed, [s.output for s in first.steps]
    assert first.executed() == ["Pull the data (DVC)", "Data tests", "Train", "Model tests"]
    client = MlflowClient(store)
    experiment = client.get_experiment_by_name("lumen-churn")
    runs = client.search_runs([experiment.experiment_id])
    assert len(runs) == 1
    tags = runs[0].data.tags
    assert tags["git.commit"] == repo.head() and tags["git.dirty"] == "false"
    assert tags["data.md5"] == cicd.data_version(repo.path, "data/churn_export.parquet")
    assert runs[0].data.params == {"kind": "logistic", "seed": "0", "data.as_of": "2025-04-01"}
    metrics = runs[0].data.metrics
    assert metrics["roc_auc_low"] < metrics["roc_auc"] < metrics["roc_auc_high"]
    assert experiment.artifact_location == (tmp_path / "mlartifacts" / "lumen-churn").as_uri()
    assert (repo.path / "model" / "model.pkl").is_file()
    assert repo.git("status", "--porcelain") == ""  # CI's outputs are ignored by git

    cicd.commit_export(repo, december, "2025-12-01")
    second = cicd.run_workflow(repo.path, env={"MLFLOW_TRACKING_URI": store})
    assert second.stopped_at == "Data tests"
    data_step = second.steps[4]
    assert data_step.exit_code == 1 and len(data_step.failures()) == 1
    assert data_step.failures()[0].startswith("FAILED tests/test_data.py::test_ranges - AssertionError: minutes_4w:")
    assert [s.status for s in second.steps[5:]] == [cicd.NOT_RUN] * 3
    assert len(client.search_runs([experiment.experiment_id])) == 1


@pytest.mark.slow
def test_the_command_line_validator_agrees_with_validate_workflow(tmp_path):
    good = cicd.write_workflow(tmp_path, cicd.workflow_yaml())
    bad = tmp_path / "bad.yml"
    bad.write_text(cicd.workflow_yaml().replace("runs-on:", "runs_on:"))
    codes = [subprocess.run([sys.executable, "-m", "check_jsonschema", "--builtin-schema",
                             cicd.WORKFLOW_SCHEMA, str(p)], capture_output=True, check=False).returncode
             for p in (good, bad)]
    assert codes == [0, 1]
    assert [cicd.validate_workflow(p).valid for p in (good, bad)] == [True, False]
    with pytest.raises(UnknownNameError):
        cicd.run_workflow(tmp_path, good, job="deploy")
