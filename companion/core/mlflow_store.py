"""Point MLflow at a store for one block, and put everything back afterwards.

MLflow's fluent API (``mlflow.start_run``, ``mlflow.sklearn.log_model``, ``mlflow.log_metric``)
works on a process-wide tracking URI and registry URI. A library call that needs the fluent
API against a given store uses :func:`using_store`: inside the block MLflow talks to that
store; when the block ends the caller's URIs are exactly as they were, the
``MLFLOW_TRACKING_URI`` and ``MLFLOW_REGISTRY_URI`` environment variables included. Code that
can name its store explicitly uses ``MlflowClient(tracking_uri, registry_uri)`` instead.

MLflow is imported when the block is entered, never when this module is.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator

from companion.errors import InvalidParameterError

__all__ = ["using_store"]

_LOCK = threading.RLock()
_ENV = ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")


@contextlib.contextmanager
def using_store(tracking_uri: str, registry_uri: str | None = None) -> Iterator[str]:
    """Run the block with MLflow's tracking (and registry) URI set to ``tracking_uri``.

    Args:
        tracking_uri: e.g. ``sqlite:///.../mlflow.db`` or ``http://127.0.0.1:5000``.
        registry_uri: the model registry's URI (default: the tracking URI).

    Yields:
        ``tracking_uri``.

    Example:
        >>> import mlflow
        >>> before = mlflow.get_tracking_uri()
        >>> with using_store("sqlite:///example.db") as uri:
        ...     mlflow.get_tracking_uri() == uri
        True
        >>> mlflow.get_tracking_uri() == before
        True
    """
    for name, value in (("tracking_uri", tracking_uri), ("registry_uri", registry_uri)):
        if value is None and name == "registry_uri":
            continue
        if not isinstance(value, str) or not value.strip():
            raise InvalidParameterError(
                f"{name} must be a non-empty URI string like 'sqlite:///mlflow.db', got {value!r}"
            )
    from mlflow.tracking._model_registry import utils as registry_utils
    from mlflow.tracking._tracking_service import utils as tracking_utils

    with _LOCK:
        saved_tracking = tracking_utils._tracking_uri
        saved_registry = registry_utils._registry_uri
        saved_env = {name: os.environ.get(name) for name in _ENV}
        try:
            tracking_utils.set_tracking_uri(tracking_uri)
            registry_utils.set_registry_uri(registry_uri or tracking_uri)
            yield tracking_uri
        finally:
            tracking_utils.set_tracking_uri(saved_tracking)  # type: ignore[arg-type]
            registry_utils._registry_uri = saved_registry
            for name, value in saved_env.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value
