"""MLflow experiments: found by name or created, in an explicit store.

Both functions name their store (a tracking URI, or a workspace's) and talk to it through an
``MlflowClient``: MLflow's process-wide tracking URI is neither read nor changed.
"""

from __future__ import annotations

import logging

from companion.core.checks import check_identifier
from companion.core.types import WorkspaceLike, check_workspace
from companion.errors import InvalidParameterError
from companion.tracking.checks import check_name

logger = logging.getLogger(__name__)

EXPERIMENT_NAME = r"(?!.*\.\.)[A-Za-z0-9][A-Za-z0-9 _.-]*"
"""Experiment names :func:`ensure_experiment` accepts: they become a folder of the workspace."""


def ensure_experiment_at(
    tracking_uri: str, name: str, artifact_location: str | None = None
) -> str:
    """Return the id of experiment ``name`` at ``tracking_uri``, creating it if needed.

    With a tracking server, leave ``artifact_location`` None: the server then stores the
    experiment's artifacts under its ``--artifacts-destination`` and proxies every upload.
    With a local SQLite store, pass a ``file://`` location (see :func:`ensure_experiment`).
    """
    from mlflow.tracking import MlflowClient

    if not isinstance(tracking_uri, str) or "://" not in tracking_uri:
        raise InvalidParameterError(
            f"tracking_uri must be an MLflow tracking URI such as 'sqlite:///path/mlflow.db' "
            f"or 'http://127.0.0.1:5000', got {tracking_uri!r}"
        )
    check_name("experiment name", name)
    if artifact_location is not None and (
        not isinstance(artifact_location, str) or "://" not in artifact_location
    ):
        raise InvalidParameterError(
            f"artifact_location must be None or a URI such as 'file:///path/artifacts', got "
            f"{artifact_location!r}"
        )
    client = MlflowClient(tracking_uri)
    experiment = client.get_experiment_by_name(name)
    if experiment is not None:
        return str(experiment.experiment_id)
    logger.info("creating MLflow experiment %r", name)
    return str(client.create_experiment(name, artifact_location=artifact_location))


def ensure_experiment(workspace: WorkspaceLike, name: str) -> str:
    """Return the id of experiment ``name`` in ``workspace``'s store, creating it if needed.

    The store is ``workspace.require("mlflow")``; the experiment's artifacts go to
    ``workspace.artifact_root / name`` (spaces as ``-``), a ``file://`` location. The name is
    checked before anything is built: it becomes a folder, so it may hold letters, digits,
    spaces, ``-``, ``_`` and ``.`` (never ``..``).
    """
    check_identifier(
        "experiment name", name, EXPERIMENT_NAME,
        "letters, digits, spaces, '-', '_' or '.' (no '..'), starting with a letter or digit",
    )
    check_workspace(workspace)
    tracking_uri = workspace.require("mlflow")
    location = (workspace.artifact_root / name.replace(" ", "-")).as_uri()
    return ensure_experiment_at(tracking_uri, name, artifact_location=location)
