"""Tests of companion.registry.Registry as an object: explicit URIs, nothing global changed.

A Registry holds one MLflow client built with explicit tracking and registry URIs; no call
may move MLflow's process-wide URIs, the MLFLOW_TRACKING_URI variable or the MLflow logger's
level, and none may write into the current directory.
"""

from __future__ import annotations

import logging
import os
from datetime import UTC, datetime

import mlflow
import pytest
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE, RESOURCE_DOES_NOT_EXIST

from companion.core.mlflow_store import using_store
from companion.data import SimulationConfig
from companion.errors import InvalidParameterError, LockTimeoutError, UnknownNameError
from companion.registry import GatePolicy, Registry
from companion.registry.names import is_missing
from companion.workspace import Workspace

LENIENT = GatePolicy(min_roc_auc=0.5, margin=0.2, rule="non-inferiority")


def clock() -> datetime:
    return datetime(2025, 6, 1, 9, 30, tzinfo=UTC)


@pytest.fixture(scope="module")
def ws(tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    workspace = Workspace.create(
        "test-registry-store",
        root=tmp_path_factory.mktemp("registry-store"),
        config=SimulationConfig(n_customers=2500, months=5, seed=5, scenarios=()),
    )
    workspace.require("data", "mlflow")
    return workspace


def _global_state() -> dict[str, object]:
    return {
        "tracking_uri": mlflow.get_tracking_uri(),
        "registry_uri": mlflow.get_registry_uri(),
        "MLFLOW_TRACKING_URI": os.environ.get("MLFLOW_TRACKING_URI"),
        "MLFLOW_REGISTRY_URI": os.environ.get("MLFLOW_REGISTRY_URI"),
        "mlflow log level": logging.getLogger("mlflow").level,
        "active run": mlflow.active_run(),
    }


def test_registry_calls_leave_mlflow_global_state_unchanged(ws, tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)  # nothing may be written to the current directory
    dataset = ws.require("data")
    months = dataset.snapshots
    reg = Registry(ws)
    elsewhere = f"sqlite:///{tmp_path / 'elsewhere' / 'mlflow.db'}"
    with using_store(elsewhere):  # the caller's own store, which the registry must not touch
        before = _global_state()
        assert before["tracking_uri"] == elsewhere
        first = reg.register_candidate(dataset, "logistic", months[:2], months[3], name="g")
        assert _global_state() == before
        reg.stage(dataset, first.version, actor="a", reason="r", name="g", policy=LENIENT,
                  clock=clock)
        reg.promote(first.version, actor="a", reason="r", name="g", clock=clock)
        assert _global_state() == before
        reg.load_model("g", alias="production")
        reg.register_prompt("p", "Hello {{name}}", commit_message="first")
        reg.set_prompt_alias("p", "live", 1)
        assert reg.load_prompt("p", alias="live").version == 1
        assert _global_state() == before
        assert reg.aliases("g") == reg.aliases_from_audit("g") == {"production": 1}
    assert list(tmp_path.iterdir()) == []  # not even the other store was created
    assert sorted(p.name for p in reg.audit_path.parent.iterdir()) == ["audit.jsonl",
                                                                      "audit.lock"]


def test_registry_at_explicit_uris_sees_the_workspace_registry(ws) -> None:
    reg = Registry.at(ws.tracking_uri, audit_dir=ws.path / "registry",
                      artifact_root=ws.artifact_root)
    assert (reg.tracking_uri, reg.registry_uri) == (ws.tracking_uri, ws.tracking_uri)
    assert reg.client._registry_uri == ws.tracking_uri
    assert reg.registered_models() == Registry(ws).registered_models()
    assert reg.audit_path == Registry(ws).audit_path
    with pytest.raises(InvalidParameterError, match="tracking_uri must be an MLflow URI"):
        Registry.at("mlflow.db", audit_dir="x")
    with pytest.raises(InvalidParameterError, match="workspace must be"):
        Registry("build")
    with pytest.raises(UnknownNameError, match="registered model 'nope' does not exist"):
        reg.aliases("nope")


def test_missing_is_read_from_mlflow_error_codes_not_messages() -> None:
    assert is_missing(MlflowException("gone", error_code=RESOURCE_DOES_NOT_EXIST))
    # MLflow's message says "not found", but the code says a bad parameter: not "missing"
    assert not is_missing(MlflowException("alias x not found", error_code=INVALID_PARAMETER_VALUE))


def test_lock_excludes_a_second_holder_and_times_out_with_lock_timeout_error(ws) -> None:
    reg = Registry(ws)
    with reg.lock(), pytest.raises(LockTimeoutError, match="within 0.1 s"):
        with Registry(ws).lock(timeout=0.1):
            pass
    with reg.lock(timeout=0.1):  # released: free again
        pass
