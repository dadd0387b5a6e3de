"""The validation gate: score a candidate and production on one held-out month, and decide.

:func:`gate_rows` and :func:`oracle_interval` are pure (a dataset and a month). The gate itself
(:func:`validate_candidate`, run by :meth:`companion.registry.Registry.validate_candidate` and
:meth:`~companion.registry.Registry.stage`) first checks the month can decide, then loads both
versions from the registry, scores the same rows in an MLflow run and lets the
:class:`~companion.registry.policy.GatePolicy` decide on the intervals of
:mod:`companion.evaluation`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from companion.core.env import MLFLOW_INTEGER_HINT, quiet
from companion.data import ChurnDataset, check_dataset, content_hash
from companion.errors import InvalidParameterError
from companion.evaluation import Estimate, auc_difference, auc_interval
from companion.registry.names import EXPERIMENT, PRODUCTION, snapshot
from companion.registry.names import (
    month as as_month,
)
from companion.registry.policy import GateDataError, GateDecision, GatePolicy
from companion.training import TARGET, snapshot_features

if TYPE_CHECKING:  # pragma: no cover - annotations only
    from mlflow.entities.model_registry import ModelVersion

    from companion.registry.store import Registry

__all__ = ["gate_rows", "oracle_interval", "validate_candidate"]


def gate_rows(dataset: ChurnDataset, month: Any) -> pd.DataFrame:
    """Return the labelled rows of gate month ``month``: features and label, one per customer.

    These are the rows both versions are scored on; their content hash is recorded on the
    version that passes (``gate.rows_hash``).
    """
    check_dataset(dataset)
    return snapshot_features(dataset, [snapshot(dataset, month, "gate month")])


def oracle_interval(dataset: ChurnDataset, month: Any) -> Estimate:
    """Return the ROC AUC of the *true* churn probabilities on ``month``, with its interval.

    The simulator knows each customer's probability of churning (``dataset.truth``); ranking
    customers by it is the best any model can do, so this is the ceiling a candidate's AUC is
    graded against. The truth is never a model input and the gate never reads it.
    """
    rows = gate_rows(dataset, month)[["customer_id", "snapshot_timestamp", TARGET]]
    truth = rows.merge(dataset.truth, on=["customer_id", "snapshot_timestamp"], how="left")
    if truth["churn_probability"].isna().any():
        raise InvalidParameterError(
            f"the dataset's truth has no churn probability for "
            f"{int(truth['churn_probability'].isna().sum())} rows of {as_month(month)}"
        )
    return auc_interval(truth[TARGET].to_numpy(), truth["churn_probability"].to_numpy())


def check_policy(policy: Any) -> GatePolicy:
    """Return ``policy`` (the default :class:`GatePolicy` if None) if it is a GatePolicy."""
    policy = GatePolicy() if policy is None else policy
    if not isinstance(policy, GatePolicy):
        raise InvalidParameterError(f"policy must be a GatePolicy, got {type(policy).__name__}")
    return policy


def _training_end(version: ModelVersion, role: str) -> str:
    tags = version.tags
    end = tags.get("data.training_end") or max(
        (s for s in tags.get("data.training_snapshots", "").split(",") if s), default=""
    )
    if not end:
        raise GateDataError(
            f"{role} v{version.version} has no data.training_snapshots tag: the gate cannot "
            "tell which months it was trained on, so no month is known to be held out from it; "
            "register it with Registry.register_candidate()"
        )
    return str(end)


@dataclass(frozen=True)
class GateInputs:
    """What the gate scores: the candidate, production (None without one), month and rows."""

    candidate: int
    production: int | None
    month: str
    frame: pd.DataFrame


def gate_inputs(
    registry: Registry, dataset: ChurnDataset, version: int | str, name: str, month: Any
) -> GateInputs:
    """Check the gate can decide on ``month``, before anything is run or written.

    Raises:
        GateDataError: the month is not after every training month of the candidate and of
            the production version, or its rows hold one class only (the AUC is undefined).
    """
    candidate = registry.get_version(name, version=version)
    number = int(candidate.version)
    if month is None:
        month = candidate.tags.get("data.holdout_snapshot")
        if not month:
            raise InvalidParameterError(
                f"version {number} of {name!r} has no data.holdout_snapshot tag; pass month="
            )
    month = snapshot(dataset, month, "gate month")
    production = registry.aliases(name).get(PRODUCTION)
    versions = [("candidate", candidate)]
    if production is not None and production != number:
        versions.append(("production", registry.get_version(name, version=production)))
    inside = []
    for role, model_version in versions:
        end = _training_end(model_version, role)
        if month <= end:
            inside.append(f"{role} v{model_version.version} was trained on snapshots up to {end}")
    if inside:
        raise GateDataError(
            f"gate month {month} is not held out: {'; '.join(inside)}. Scoring a version on "
            "a month it was trained on (or before its training ended) flatters it; choose a "
            "month after every version's training"
        )
    frame = gate_rows(dataset, month)
    classes = frame[TARGET].unique()
    if len(classes) < 2:
        raise GateDataError(
            f"the ROC AUC is undefined on gate month {month}: its {len(frame):,} labelled rows "
            f"are all of class {int(classes[0]) if len(classes) else 'none'} (no "
            f"{'churner' if len(classes) and classes[0] == 0 else 'stayer'}); the gate needs "
            "churners and stayers, so check that the month's labels are complete"
        )
    return GateInputs(number, production if production != number else None, month, frame)


def _roc_auc_metric() -> Any:
    """ROC AUC with its 95% DeLong interval (:func:`companion.evaluation.auc_interval`), as an
    MLflow evaluation metric over churn probabilities."""
    from mlflow.metrics import MetricValue, make_metric

    def roc_auc(predictions: pd.Series, targets: pd.Series) -> MetricValue:
        y = np.asarray(targets)
        if min((y == 1).sum(), (y == 0).sum()) < 2:  # MLflow first tries it on one row
            return MetricValue(aggregate_results={"roc_auc": float("nan")})
        estimate = auc_interval(y, np.asarray(predictions))
        return MetricValue(aggregate_results={
            "roc_auc": estimate.value, "roc_auc_low": estimate.low, "roc_auc_high": estimate.high,
        })

    return make_metric(eval_fn=roc_auc, greater_is_better=True, name="roc_auc")


def _score_version(
    name: str, version: int, frame: pd.DataFrame, role: str, experiment_id: str
) -> np.ndarray:
    """Score the gate rows with ``version`` loaded from the registry; log it with MLflow.

    Runs inside the registry's :meth:`~companion.registry.Registry.fluent` block. The model is
    loaded through ``models:/name/version``, exactly as a deployment would load it;
    ``mlflow.models.evaluate`` logs its ROC AUC and interval (computed by
    :func:`companion.evaluation.auc_interval`) in a nested run named after the role
    (``candidate`` or ``production``). The decision is not MLflow's: it comes from the paired
    interval computed on the returned scores.
    """
    import mlflow
    import mlflow.models
    import mlflow.sklearn

    from companion.tracking import model_input

    model = mlflow.sklearn.load_model(f"models:/{name}/{version}")
    scores = np.asarray(model.predict_proba(model_input(frame)))[:, 1]
    scored = pd.DataFrame({TARGET: frame[TARGET].to_numpy(), "churn_probability": scores})
    # The experiment is explicit: a nested run would otherwise land in the default
    # experiment, whose artifacts go to ./mlruns in the current directory.
    with mlflow.start_run(experiment_id=experiment_id, run_name=f"{role} v{version}",
                          nested=True):
        mlflow.set_tags({"gate.role": role, "gate.version": str(version)})
        with quiet("mlflow", level=logging.WARNING, ignore=(MLFLOW_INTEGER_HINT,)):
            mlflow.models.evaluate(
                data=scored,
                predictions="churn_probability",
                targets=TARGET,
                model_type=None,
                extra_metrics=[_roc_auc_metric()],
            )
    return scores


def validate_candidate(
    registry: Registry,
    dataset: ChurnDataset,
    version: int | str,
    *,
    name: str,
    month: Any = None,
    policy: GatePolicy | None = None,
) -> GateDecision:
    """Run the gate for ``version``: the body of ``Registry.validate_candidate``.

    First the gate month is checked (the candidate's holdout snapshot unless ``month`` is
    given): it must come after every training month of both versions, and hold churners and
    stayers; otherwise :class:`GateDataError` is raised before any MLflow run exists. Then,
    in an MLflow run named ``gate vN``, both versions are loaded from the registry and score
    the same rows (``mlflow.models.evaluate`` logs each one's ROC AUC in a nested run); the
    candidate's DeLong interval and the paired DeLong interval of the difference are logged,
    and :meth:`GatePolicy.decide` applies the policy to them. Nothing in the registry changes.

    Raises:
        GateDataError: the month is not held out from a version, or has a single class.
    """
    import mlflow

    policy = check_policy(policy)
    check_dataset(dataset)
    inputs = gate_inputs(registry, dataset, version, name, month)
    number, production, month, frame = (
        inputs.candidate, inputs.production, inputs.month, inputs.frame
    )
    y = frame[TARGET].to_numpy()
    rows_hash = content_hash({"gate": frame})
    experiment_id = registry.experiment_id(EXPERIMENT)
    with registry.fluent(), mlflow.start_run(experiment_id=experiment_id,
                                             run_name=f"gate v{number}"):
        mlflow.set_tags({"gate.candidate": str(number), "gate.month": month,
                         "gate.policy": policy.describe(), "gate.rows_hash": rows_hash,
                         "gate.dataset_seed": str(dataset.config.seed)})
        candidate_scores = _score_version(name, number, frame, "candidate", experiment_id)
        candidate = auc_interval(y, candidate_scores)
        production_auc = difference = None
        if production is not None:
            production_scores = _score_version(name, production, frame, "production",
                                               experiment_id)
            production_auc = auc_interval(y, production_scores)
            difference = auc_difference(y, candidate_scores, production_scores)
        passed, why = policy.decide(candidate, difference)
        metrics = {"roc_auc": candidate, "production_roc_auc": production_auc,
                   "difference": difference}
        mlflow.log_metrics({
            f"gate_{key}{suffix}": getattr(value, attr)
            for key, value in metrics.items() if value is not None
            for suffix, attr in (("", "value"), ("_low", "low"), ("_high", "high"))
        })
        mlflow.set_tag("gate.passed", str(passed).lower())
    against = "nothing in production" if production is None else f"against production v{production}"
    return GateDecision(
        candidate_version=number,
        production_version=production,
        month=month,
        candidate=candidate,
        production=production_auc,
        difference=difference,
        passed=passed,
        reason=f"v{number} on {month} ({against}): {why}",
        policy=policy.describe(),
        rows=len(frame),
        churners=int(y.sum()),
        rows_hash=rows_hash,
        dataset_seed=int(dataset.config.seed),
        dataset_hash=dataset.content_hash(),
    )
