"""The DVC runner: dvc.yaml from the steps, a second repro runs nothing, a parameter change
reruns exactly the steps downstream of it, and the model equals the in-process run's."""

from __future__ import annotations

import json

import pytest
import yaml

from companion.data import SimulationConfig, generate
from companion.errors import DvcError
from companion.pipelines import (
    LUMEN,
    read_dvc_params,
    reproduce_dvc,
    run_dvc,
    run_local,
    set_dvc_params,
    write_export,
)

MONTH = "2025-10-01"
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("dvc")
    dataset = generate(SimulationConfig(n_customers=3000, seed=42))
    export = write_export(dataset, MONTH, root / "landing" / "2025-10")
    params = {"month": MONTH, "tracking_uri": f"sqlite:///{root / 'mlflow.db'}",
              "min_roc_auc": 0.6}
    first = run_dvc(LUMEN, root / "repo", params, {"export": export})
    return root, params, export, first


def test_stages_follow_the_steps_and_repro_skips_what_is_done(setup):
    root, params, export, first = setup
    repo = root / "repo"
    assert first.ran == [s.name for s in LUMEN.steps]
    assert set(first.seconds) == set(first.ran)
    stages = yaml.safe_load((repo / "dvc.yaml").read_text())["stages"]
    assert stages["train"]["params"] == ["kind", "seed"]
    assert stages["ingest"]["deps"][0] == export.as_posix()
    assert any(d.endswith("companion/pipelines/steps.py") for d in stages["train"]["deps"])
    assert stages["evaluate"]["outs"] == ["out/metrics.json", "out/predictions.parquet"]
    assert "--param \"kind=${kind}\"" in stages["train"]["cmd"]
    assert reproduce_dvc(repo).ran == []
    set_dvc_params(LUMEN, repo, {"min_roc_auc": 0.55})
    assert read_dvc_params(repo)["min_roc_auc"] == 0.55
    again = reproduce_dvc(repo)
    assert again.ran == LUMEN.downstream_of_param("min_roc_auc") == ["register"]


def test_dvc_model_equals_the_local_model(setup, tmp_path):
    root, params, export, _ = setup
    local = run_local(LUMEN, tmp_path / "local", params, {"export": export})
    dvc_metrics = json.loads((root / "repo" / "out" / "metrics.json").read_text())
    assert json.loads(local.outputs["metrics"].read_text()) == dvc_metrics
    set_dvc_params(LUMEN, root / "repo", {"kind": "logistic"})
    changed = reproduce_dvc(root / "repo")
    assert changed.ran == LUMEN.downstream_of_param("kind") == ["train", "evaluate", "register"]
    logistic = json.loads((root / "repo" / "out" / "metrics.json").read_text())
    assert logistic["predictions_sha256"] != dvc_metrics["predictions_sha256"]


def test_failing_stage_names_its_error(setup):
    root, params, export, _ = setup
    set_dvc_params(LUMEN, root / "repo", {"min_roc_auc": 0.99})
    with pytest.raises(DvcError, match="step register: PipelineError: gate refused"):
        reproduce_dvc(root / "repo")
