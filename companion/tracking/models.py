"""Logging a fitted churn model to MLflow: signature, input example and pinned requirements.

:func:`log_sklearn_model` is fast because nothing is inferred in a subprocess: the pip
requirements are read from the installed distributions (:func:`pinned_requirements`).
:func:`model_input` turns a frame into what a logged or served model expects.
"""

from __future__ import annotations

import importlib.metadata
import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import pandas as pd

from companion.core.checks import check_frame
from companion.core.env import MLFLOW_INTEGER_HINT, quiet
from companion.errors import InvalidParameterError, TrackingError
from companion.tracking.checks import check_name
from companion.training import FEATURES

if TYPE_CHECKING:  # pragma: no cover - imports for type hints only
    import mlflow.models.model
    from sklearn.pipeline import Pipeline

logger = logging.getLogger(__name__)

MODEL_REQUIREMENTS = ("mlflow", "scikit-learn", "pandas", "numpy", "scipy", "cloudpickle")
"""Distributions a logged churn model needs to load and predict, pinned at their installed
versions by :func:`pinned_requirements`."""


def pinned_requirements(packages: Iterable[str] = MODEL_REQUIREMENTS) -> list[str]:
    """Return ``name==version`` for each installed distribution in ``packages``.

    Reading the versions with :mod:`importlib.metadata` takes microseconds, where MLflow's own
    inference of requirements starts a subprocess that takes seconds per model.

    Example:
        >>> pinned_requirements(["pandas"])[0].startswith("pandas==")
        True
    """
    if isinstance(packages, (str, bytes)) or not isinstance(packages, Iterable):
        raise InvalidParameterError(
            f"packages must be a list of distribution names such as ['pandas'], got {packages!r}"
        )
    packages = list(packages)
    for package in packages:
        if not isinstance(package, str) or not package.strip():
            raise InvalidParameterError(
                f"package names must be non-empty strings, got {package!r}"
            )
    if len({p.lower() for p in packages}) != len(packages):
        raise InvalidParameterError(f"packages lists a name twice: {packages}")
    pins = []
    for package in packages:
        try:
            version = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError as exc:
            raise InvalidParameterError(
                f"package {package!r} is not installed, so it cannot be pinned; accepted: "
                "names of installed distributions such as 'scikit-learn'"
            ) from exc
        pins.append(f"{package}=={version}")
    return pins


def log_sklearn_model(
    model: Pipeline,
    frame: pd.DataFrame,
    name: str = "model",
    registered_model_name: str | None = None,
) -> mlflow.models.model.ModelInfo:
    """Log a fitted churn pipeline to the active MLflow run and return its ``ModelInfo``.

    The model is saved with cloudpickle (the default skops format refuses the gradient-boosting
    model's types), a signature inferred from ``frame[FEATURES]`` and the churn
    probabilities the model gives them (categorical columns as strings, see
    :func:`model_input`), the first three rows as input example, and pip
    requirements pinned from the installed versions (see :func:`pinned_requirements`). The
    pyfunc flavour predicts with ``predict_proba``, so a served or loaded model returns
    ``[p(stay), p(churn)]`` per row, as the signature says.

    Args:
        model: a pipeline fitted by :func:`companion.training.train`.
        frame: rows with the model's features (e.g. the training frame).
        name: the logged model's name inside the run.
        registered_model_name: also register a new version of this registered model.
    """
    import mlflow
    import mlflow.sklearn
    from mlflow.models import infer_signature

    run = mlflow.active_run()
    if run is None:
        raise TrackingError(
            "log_sklearn_model() needs an active MLflow run; call it inside "
            "`with mlflow.start_run():`"
        )
    if not isinstance(name, str) or not name or "/" in name:
        raise InvalidParameterError(
            f"model name must be a non-empty string without '/', got {name!r}"
        )
    check_name("registered_model_name", registered_model_name, optional=True)
    if not hasattr(model, "predict_proba"):
        raise InvalidParameterError(
            f"expected a fitted classifier with predict_proba, got {type(model).__name__}"
        )
    example = model_input(frame).head(3)
    try:
        probabilities = model.predict_proba(example)
    except Exception as exc:  # sklearn raises NotFittedError, ValueError, ...
        raise InvalidParameterError(
            f"the model cannot score the frame's features ({type(exc).__name__}: {exc}); "
            "pass a pipeline fitted by companion.training.train"
        ) from exc
    logger.debug("logging model %r to run %s", name, run.info.run_id)
    with quiet("mlflow", level=logging.WARNING, ignore=(MLFLOW_INTEGER_HINT,)):
        return mlflow.sklearn.log_model(
            model,
            name=name,
            signature=infer_signature(example, probabilities),
            input_example=example,
            pip_requirements=pinned_requirements(),
            serialization_format="cloudpickle",
            pyfunc_predict_fn="predict_proba",
            registered_model_name=registered_model_name,
        )


def model_input(frame: pd.DataFrame) -> pd.DataFrame:
    """Return the model's feature columns of ``frame`` as a logged model expects them.

    Categorical columns become plain strings: that is what a client sends to a served model,
    and MLflow's schema check refuses pandas ``category`` columns for a ``string`` input.
    Use it before ``mlflow.pyfunc.load_model(...).predict(...)``.
    """
    _check_feature_frame(frame)
    features = frame[FEATURES].copy()
    for column in features.columns:
        if isinstance(features[column].dtype, pd.CategoricalDtype):
            features[column] = features[column].astype(str).astype(object)
    return features


def _check_feature_frame(frame: Any) -> None:
    if not isinstance(frame, pd.DataFrame):
        raise InvalidParameterError(f"expected a pandas DataFrame, got {type(frame).__name__}")
    check_frame("frame", frame, FEATURES, hint="build it with snapshot_features()")
    if frame.empty:
        raise InvalidParameterError("frame has no rows; the model needs rows to infer a signature")

