"""Shared fixtures: every test leaves the process as it found it."""

from __future__ import annotations

import os

import pytest


@pytest.fixture(autouse=True)
def restore_environment():
    """Undo environment changes a test makes (MLflow's set_experiment exports one, for example).

    The notebooks that nbval executes later in the same session start kernels that inherit this
    process's environment: a leaked MLFLOW_EXPERIMENT_ID would point them at another store.
    """
    saved = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(saved)
    try:
        import mlflow
    except ImportError:  # pragma: no cover - mlflow is in the lock file
        return
    if mlflow.active_run() is not None:
        mlflow.end_run()
    mlflow.set_tracking_uri(None)
