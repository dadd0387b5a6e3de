"""Registering a candidate: train a churn model, log it in a run, register it with its lineage.

A new version says where it came from, as one thread: the Feast feature service whose features
it reads, the MLflow run that trained it (parameters, held-out metrics, training rows as its
input), the code (:func:`~companion.registry.names.code_hash`), the data (content hashes and
training snapshots) and the metrics, as tags (:func:`version_tags`) and a description.
Registering moves no alias: a new version is only a candidate.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pandas as pd

from companion.core.checks import (
    check_choice,
    check_frame,
    check_identifier,
    check_int,
    check_number,
)
from companion.core.env import MLFLOW_INTEGER_HINT, quiet
from companion.data import ChurnDataset, check_dataset, content_hash
from companion.errors import InvalidParameterError
from companion.registry.names import (
    EXPERIMENT,
    FEATURE_SERVICE,
    FEATURE_SET_DIGEST,
    FEATURE_VERSION,
    check_name,
    code_files_tag,
    code_hash,
    month,
    snapshot,
)
from companion.training import (
    FEATURES,
    MODEL_KINDS,
    TARGET,
    evaluate,
    make_model,
    snapshot_features,
    time_split,
    train,
)

if TYPE_CHECKING:  # pragma: no cover - annotations only
    from companion.registry.store import Registry

__all__ = ["RegisteredVersion", "register_candidate", "version_tags"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RegisteredVersion:
    """A model version just registered, with what it was built from.

    Attributes:
        name: registered model name.
        version: version number.
        run_id: the MLflow run that trained and logged it.
        kind: model kind (``logistic`` or ``gbm``).
        training_snapshots: the monthly snapshots it was trained on.
        holdout_snapshot: the later month it was evaluated on at training time.
        metrics: its metrics on that month.
        tags: the tags set on the version.
        model: the fitted pipeline (kept in memory to compare with what the registry loads).
    """

    name: str
    version: int
    run_id: str
    kind: str
    training_snapshots: tuple[str, ...]
    holdout_snapshot: str
    metrics: dict[str, float]
    tags: dict[str, str]
    model: Any = field(repr=False, compare=False)


def version_tags(
    dataset: ChurnDataset,
    training_frame: pd.DataFrame,
    kind: str,
    training_snapshots: Sequence[str],
    holdout_snapshot: str,
    metrics: Mapping[str, float],
    run_id: str,
    *,
    code_sha256: str | None = None,
) -> dict[str, str]:
    """Return the lineage tags of a model version: features, run, code, data and metrics.

    ``features.service`` names the Feast feature service whose features the model reads
    (:data:`~companion.registry.names.FEATURE_SERVICE`), ``training.run_id`` the run that
    trained it and ``code.sha256`` the code (:func:`~companion.registry.names.code_hash`
    unless given).
    """
    check_dataset(dataset)
    check_frame("training_frame", training_frame, non_empty=True)
    check_choice("model kind", kind, MODEL_KINDS)
    if isinstance(training_snapshots, str) or not isinstance(training_snapshots, Sequence) \
            or not training_snapshots:
        raise InvalidParameterError(
            f"training_snapshots must be a non-empty list of months, got {training_snapshots!r}"
        )
    months = [month(s) for s in training_snapshots]
    holdout = month(holdout_snapshot)
    if not isinstance(metrics, Mapping) or not metrics:
        raise InvalidParameterError(f"metrics must be a non-empty mapping, got {metrics!r}")
    for key, value in metrics.items():
        check_number(f"metrics[{key!r}]", value)
    check_identifier("run_id", run_id, r"[0-9a-f]{32}", "32 hex digits (an MLflow run id)")
    if code_sha256 is None:
        code_sha256 = code_hash()
    check_identifier("code_sha256", code_sha256, r"[0-9a-f]{64}",
                     "64 hex digits (a SHA-256 digest)")
    return {
        "data.dataset_hash": dataset.content_hash(),
        "data.training_rows_hash": content_hash({"training": training_frame}),
        "data.training_snapshots": ",".join(months),
        "data.training_end": max(months),
        "data.dataset_seed": str(dataset.config.seed),
        "data.holdout_snapshot": holdout,
        "features.service": FEATURE_SERVICE,
        "features.version": FEATURE_VERSION,
        "features.digest": FEATURE_SET_DIGEST,
        "code.sha256": code_sha256,
        "code.files": code_files_tag(),
        "model.kind": kind,
        **{f"metrics.holdout_{key}": f"{value:.4f}" for key, value in metrics.items()},
        "training.run_id": run_id,
    }


def _check_params(kind: str, seed: int, params: Any) -> dict[str, Any]:
    """Check extra estimator parameters on an unfitted model, before anything is trained."""
    if params is None:
        return {}
    if not isinstance(params, Mapping) or not all(isinstance(k, str) for k in params):
        raise InvalidParameterError(
            f"params must be a mapping of estimator parameter names to values, got {params!r}"
        )
    for key, value in params.items():
        if isinstance(value, float) and not math.isfinite(value):
            raise InvalidParameterError(f"params[{key!r}] must be finite, got {value!r}")
    estimator = make_model(kind, seed).named_steps["model"]
    unknown = sorted(set(params) - set(estimator.get_params()))
    if unknown:
        raise InvalidParameterError(
            f"the {kind} model has no parameter {', '.join(map(repr, unknown))}; accepted: "
            f"{', '.join(sorted(estimator.get_params()))}"
        )
    try:
        estimator.set_params(**params)
        estimator._validate_params()  # scikit-learn's own check of types and ranges
    except (TypeError, ValueError) as exc:
        raise InvalidParameterError(f"the {kind} model refuses params {params!r}: {exc}") from exc
    return dict(params)


def _two_classes(frame: pd.DataFrame, what: str) -> None:
    counts = frame[TARGET].value_counts()
    if len(counts) < 2:
        raise InvalidParameterError(
            f"{what} has {len(frame):,} rows of a single class "
            f"({', '.join(f'{int(k)}: {v}' for k, v in counts.items()) or 'no rows'}); "
            "training and evaluating need churners and stayers"
        )


def register_candidate(
    registry: Registry,
    dataset: ChurnDataset,
    kind: str,
    training_snapshots: Sequence[Any],
    holdout_snapshot: Any,
    *,
    name: str,
    seed: int = 0,
    params: Mapping[str, Any] | None = None,
    note: str = "",
) -> RegisteredVersion:
    """Train, log and register a candidate: the body of ``Registry.register_candidate``.

    Train a churn model of ``kind`` (model seed ``seed``, extra estimator ``params``) on
    ``training_snapshots`` (distinct snapshots of the dataset), score it on the later
    ``holdout_snapshot`` (the split is :func:`companion.training.time_split`'s), log it in a
    run of the registry's experiment and register it as a new version of ``name``, whose
    description ends with ``note``. The run records the parameters (with the feature
    service), the held-out metrics, the training rows as its input and the code hash; the
    version gets a description and the tags of :func:`version_tags`. No alias moves.

    Every argument is checked before anything is trained, logged or registered: a bad one
    raises a companion error and leaves the store as it was.
    """
    import mlflow
    from mlflow.data.pandas_dataset import from_pandas

    from companion.tracking import log_sklearn_model

    check_dataset(dataset)
    check_choice("model kind", kind, MODEL_KINDS)
    check_name("model name", name)
    check_int("seed", seed, minimum=0)
    extra = _check_params(kind, seed, params)
    if not isinstance(note, str):
        raise InvalidParameterError(f"note must be a string, got {note!r}")
    if isinstance(training_snapshots, str) or not isinstance(training_snapshots, (list, tuple)) \
            or not training_snapshots:
        raise InvalidParameterError(
            f"training_snapshots must be a non-empty list of snapshots, got {training_snapshots!r}"
        )
    train_months = [snapshot(dataset, s, "training snapshot") for s in training_snapshots]
    holdout = snapshot(dataset, holdout_snapshot, "holdout snapshot")
    frame = snapshot_features(dataset, sorted({*train_months, holdout}))
    training_frame, holdout_frame = time_split(frame, train_months, holdout)
    train_months = sorted(train_months)
    _two_classes(training_frame, f"the training snapshots {', '.join(train_months)}")
    _two_classes(holdout_frame, f"the holdout snapshot {holdout}")
    code = code_hash()
    model = train(training_frame, kind=kind, seed=seed, **extra)
    scores = evaluate(model, holdout_frame)
    metrics = {k: scores[k] for k in ("roc_auc", "average_precision", "brier")}

    experiment_id = registry.experiment_id(EXPERIMENT)
    with registry.fluent(), mlflow.start_run(experiment_id=experiment_id,
                                             run_name=f"train {kind}") as run:
        mlflow.log_params(
            {"kind": kind, "seed": seed, **extra, "feature_service": FEATURE_SERVICE,
             "training_snapshots": ",".join(train_months), "holdout_snapshot": holdout}
        )
        mlflow.log_metrics({f"holdout_{k}": v for k, v in metrics.items()})
        with quiet("mlflow", level=logging.WARNING, ignore=(MLFLOW_INTEGER_HINT,)):
            mlflow.log_input(
                from_pandas(
                    training_frame[["customer_id", "snapshot_timestamp", *FEATURES, TARGET]],
                    name=f"{FEATURE_SERVICE} {train_months[0][:7]}..{train_months[-1][:7]}",
                    targets=TARGET,
                ),
                context="training",
            )
        info = log_sklearn_model(model, training_frame)
        run_id = run.info.run_id
        tags = version_tags(dataset, training_frame, kind, train_months, holdout, metrics,
                            run_id, code_sha256=code)
        mlflow.set_tags({k: v for k, v in tags.items() if k != "training.run_id"})

    client = registry.client
    registry.ensure_model(
        name, description="Lumen's churn model: who is likely to cancel in the next 30 days."
    )
    description = (
        f"{kind} churn model trained on snapshots {train_months[0]}..{train_months[-1]} "
        f"({len(training_frame):,} rows, data {tags['data.dataset_hash'][:12]}), features of "
        f"the Feast feature service {FEATURE_SERVICE}; ROC AUC {metrics['roc_auc']:.4f} on "
        f"{holdout}; training run {run_id}." + (f" {note}" if note else "")
    )
    # MLflow resolves a logged model's source (``models:/m-...``) through its global URI,
    # whatever the client's: point it at this store for the call.
    with registry.fluent():
        version = client.create_model_version(
            name,
            source=info.model_uri,
            run_id=run_id,
            tags=tags,
            description=description,
            model_id=info.model_id,
        )
    logger.info("registered %s version %s (run %s)", name, version.version, run_id)
    return RegisteredVersion(
        name=name,
        version=int(version.version),
        run_id=run_id,
        kind=kind,
        training_snapshots=tuple(train_months),
        holdout_snapshot=holdout,
        metrics=metrics,
        tags=tags,
        model=model,
    )
