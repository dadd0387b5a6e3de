"""Shared fixtures: every test leaves the process as it found it."""

from __future__ import annotations

import os

import pytest


def _mlflow_state() -> tuple[object, object, bool]:
    import mlflow
    from mlflow.tracking._model_registry import utils as registry_utils
    from mlflow.tracking._tracking_service import utils as tracking_utils

    return tracking_utils._tracking_uri, registry_utils._registry_uri, mlflow.active_run() is None


@pytest.fixture(autouse=True)
def process_left_as_found():
    """Undo environment changes a test makes, and fail a test that moves MLflow's global store.

    The notebooks that nbval executes later in the same session start kernels that inherit this
    process's environment: a leaked MLFLOW_EXPERIMENT_ID would point them at another store. No
    companion call may change MLflow's process-wide tracking or registry URI, or leave a run
    open: this fixture checks it after every test.
    """
    saved = dict(os.environ)
    before = _mlflow_state()
    yield
    after = _mlflow_state()
    os.environ.clear()
    os.environ.update(saved)
    assert after == before, f"MLflow's global state changed: {before} -> {after}"
