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


# ------------------------------------------------------------------ the chapters, started early
CHAPTERS_TEST = "test_every_chapter_prints_the_same_on_another_machine"


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config, items):
    """Run the chapters' test last: it waits for the chapters started when collection ends."""
    chosen = [item for item in items if item.name == CHAPTERS_TEST]
    for item in chosen:
        items.remove(item)
        items.append(item)


def pytest_collection_finish(session):
    """Start executing the chapters now, in subprocesses, while the other tests run."""
    chosen = [item for item in session.items if item.name == CHAPTERS_TEST]
    if chosen and not session.config.option.collectonly:
        factory = session.config._tmp_path_factory
        session.config._chapter_run = chosen[0].module.ChapterRun.start(
            factory.mktemp("other-machine"))


def pytest_sessionfinish(session):
    """Never leave the chapters running after the session (an early stop, an interrupt)."""
    run = getattr(session.config, "_chapter_run", None)
    if run is not None:
        run.stop()
