"""Checks shared by the tracking functions: MLflow names, estimator parameters, tags, frames,
experiments, and the clean-up of runs a failed call leaves.

Every public tracking function checks all of its input with these before its first side
effect (a run opened, a file written), so a bad call leaves nothing behind.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import pandas as pd

from companion.core.checks import check_choice, check_frame, check_identifier, is_real
from companion.errors import InvalidParameterError, UnknownNameError
from companion.training import FEATURES, MODEL_KINDS, TARGET, make_model

_NAME_ACCEPTED = "printable characters (at most 250) without quotes or backslashes"


def check_name(label: str, value: Any, *, optional: bool = False) -> str | None:
    """Return a name (run, experiment, model) that MLflow stores and queries can quote.

    MLflow's search filters quote names with ``'``, ``"`` or backquotes, so none of them (nor
    a backslash) may appear; a name is printable, not blank, and at most 250 characters.
    """
    if value is None and optional:
        return None
    check_identifier(label, value, r"[^'\"`\\]{1,250}", _NAME_ACCEPTED)
    if not value.strip() or not value.isprintable():
        raise InvalidParameterError(
            f"{label} must be a non-empty string of {_NAME_ACCEPTED}, got {value!r}"
        )
    return str(value)


def check_params(kind: str, params: Any, label: str = "params") -> dict[str, Any]:
    """Return ``params`` as a dict if the estimator of ``kind`` accepts every name and value."""
    check_choice("model kind", kind, MODEL_KINDS)
    if params is None:
        return {}
    if not isinstance(params, Mapping):
        raise InvalidParameterError(
            f"{label} must be a mapping of estimator parameter names to values, got "
            f"{type(params).__name__}"
        )
    params = dict(params)
    for key, value in params.items():
        if not isinstance(key, str) or not key.isidentifier():
            raise InvalidParameterError(
                f"{label} keys must be estimator parameter names, got {key!r}"
            )
        if key == "random_state":
            raise InvalidParameterError(
                f"{label} must not set random_state; accepted: the seed= argument, which is "
                "logged as the run's seed"
            )
        if is_real(value) and not math.isfinite(float(value)):
            raise InvalidParameterError(f"{label}[{key!r}] must be a finite number, got {value!r}")
    estimator = make_model(kind)[-1]
    try:
        estimator.set_params(**params)
        estimator._validate_params()  # scikit-learn's own check of every value, without a fit
    except (ValueError, TypeError) as exc:
        raise InvalidParameterError(
            f"{kind} model does not accept {label} {params}: {exc}"
        ) from exc
    return params


def check_tags(tags: Any, reserved: Sequence[str] = ()) -> dict[str, str]:
    """Return ``tags`` as a dict of non-empty string keys to string values."""
    if tags is None:
        return {}
    if not isinstance(tags, Mapping):
        raise InvalidParameterError(
            f"tags must be a mapping of names to strings, got {type(tags).__name__}"
        )
    for key, value in tags.items():
        if not isinstance(key, str) or not key.strip() or len(key) > 250:
            raise InvalidParameterError(f"tag names must be non-empty strings, got {key!r}")
        if key.startswith("mlflow.") or key in reserved:
            raise InvalidParameterError(
                f"tag {key!r} is set by MLflow or by the companion itself; accepted: other names"
            )
        if not isinstance(value, str):
            raise InvalidParameterError(
                f"tag {key!r} must be a string, got {value!r}; accepted: strings (str(x) a "
                "number first)"
            )
    return dict(tags)


def with_code_tags(tags: dict[str, str], code: Mapping[str, str]) -> dict[str, str]:
    """Add the code version to ``tags``; refuse a caller's tag that says otherwise."""
    for key in ("code.sha256", "code.files"):
        if key in tags and tags[key] != code[key]:
            raise InvalidParameterError(
                f"tag {key}={tags[key]!r} contradicts the code that trains the run "
                f"({code[key]!r}); accepted: leave it out, the run records it itself"
            )
    return {**tags, "code.sha256": code["code.sha256"], "code.files": code["code.files"]}


def check_training_frames(train_frame: Any, val_frame: Any) -> tuple[list[str], list[str]]:
    """Check the training and validation frames; return their snapshot dates."""
    needed = ["snapshot_timestamp", *FEATURES, TARGET]
    dates = []
    for label, frame in (("train_frame", train_frame), ("val_frame", val_frame)):
        if not isinstance(frame, pd.DataFrame):
            raise InvalidParameterError(
                f"{label} must be a pandas DataFrame from snapshot_features(), got "
                f"{type(frame).__name__}"
            )
        check_frame(label, frame, needed, hint="build it with snapshot_features()")
        if frame.empty:
            raise InvalidParameterError(f"{label} has no rows; accepted: a non-empty frame")
        if not pd.api.types.is_datetime64_any_dtype(frame["snapshot_timestamp"]):
            raise InvalidParameterError(
                f"{label}'s snapshot_timestamp must be datetimes, got "
                f"{frame['snapshot_timestamp'].dtype}"
            )
        labels = frame[TARGET]
        values = set(pd.unique(labels.dropna()).tolist())
        if labels.isna().any() or not values <= {0, 1}:
            raise InvalidParameterError(
                f"{label}'s {TARGET} must be 0 or 1 with no missing value, got "
                f"{sorted(map(str, values))[:5]}"
                + (" and missing values" if labels.isna().any() else "")
            )
        if len(values) < 2:
            raise InvalidParameterError(
                f"{label} has a single class ({TARGET}={values.pop()}) in {len(frame)} rows; "
                "accepted: frames with both churners and stayers"
            )
        dates.append(sorted(str(t.date()) for t in frame["snapshot_timestamp"].unique()))
    if dates[1][0] <= dates[0][-1]:
        raise InvalidParameterError(
            f"val_frame's snapshots {dates[1]} must all come after the training snapshots "
            f"(latest {dates[0][-1]}); accepted: a later month, e.g. from time_split()"
        )
    return dates[0], dates[1]


def check_experiment(experiment_id: Any) -> str | None:
    """Return ``experiment_id`` if it names an active experiment of the current store."""
    if experiment_id is None:
        return None
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    if not isinstance(experiment_id, str) or not experiment_id.strip():
        raise InvalidParameterError(
            f"experiment_id must be an MLflow experiment id string, got {experiment_id!r}"
        )
    try:
        experiment = MlflowClient().get_experiment(experiment_id)
    except MlflowException as exc:
        raise UnknownNameError(
            f"experiment {experiment_id!r} does not exist in the current tracking store; "
            "accepted: ids from ensure_experiment_at()"
        ) from exc
    if experiment is None or experiment.lifecycle_stage != "active":
        raise UnknownNameError(
            f"experiment {experiment_id!r} is not an active experiment of the current tracking "
            "store; accepted: ids from ensure_experiment_at()"
        )
    return experiment_id


def check_experiment_ids(experiment_ids: Any) -> list[str]:
    """Return ``experiment_ids`` as a list if it names distinct active experiments."""
    if isinstance(experiment_ids, (str, bytes)) or not isinstance(experiment_ids, Iterable):
        raise InvalidParameterError(
            f"experiment_ids must be a list of experiment id strings, got {experiment_ids!r}"
        )
    ids = list(experiment_ids)
    if not ids or len(set(map(repr, ids))) != len(ids):
        raise InvalidParameterError(
            f"experiment_ids must list one or more distinct experiment ids, got {ids!r}"
        )
    for experiment_id in ids:
        if experiment_id is None:
            raise InvalidParameterError("experiment_ids must not hold None")
        check_experiment(experiment_id)
    return ids


def check_kinds(kinds: Any) -> list[str]:
    """Return ``kinds`` as a list if it names distinct model kinds."""
    if isinstance(kinds, (str, bytes)) or not isinstance(kinds, Iterable):
        raise InvalidParameterError(
            f"kinds must be a list of model kinds such as {list(MODEL_KINDS)}, got {kinds!r}"
        )
    kinds = list(kinds)
    if not kinds or len(set(kinds)) != len(kinds):
        raise InvalidParameterError(
            f"kinds must list one or more distinct model kinds, got {kinds}"
        )
    for kind in kinds:
        check_choice("model kind", kind, MODEL_KINDS)
    return kinds


def check_metric(metric: Any) -> str:
    """Return ``metric`` if it is a metric name a search filter can hold unquoted."""
    return check_identifier(
        "metric", metric, r"[A-Za-z0-9_]+", "letters, digits and '_' (a logged metric name "
        "such as 'val_roc_auc')",
    )


def delete_runs(run_ids: Iterable[str]) -> None:
    """Delete runs left by a failed call (MLflow's delete: they leave every query)."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient()
    for run_id in run_ids:
        with contextlib.suppress(Exception):
            client.delete_run(run_id)
