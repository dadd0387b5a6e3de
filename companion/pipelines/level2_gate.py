"""The Level 2 pipeline's last step: register the candidate, then chapter 6's gate stages it.

:func:`register_and_stage` logs the model the pipeline trained (through Feast's features) as
an MLflow model with its lineage tags (:func:`companion.registry.version_tags`, plus the
pipeline's), registers it as a new version, and asks chapter 6's
:meth:`companion.registry.Registry.stage` to put it in ``staging``: the gate scores the
candidate and the version in ``production`` (if any) on the export's own month, held out from
both, and decides on their 95% intervals. A refusal changes no alias; both outcomes are in the
registry's audit log, stamped by the clock given (a fixed time in a chapter). The gate's
numbers are read back from its MLflow run, so a refused candidate's interval is reported too.
No alias other than ``staging`` ever moves: promotion to ``production`` is a person's call.
"""

from __future__ import annotations

import logging
import pickle
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from companion.core.checks import check_choice, check_frame, check_text
from companion.core.env import MLFLOW_INTEGER_HINT, quiet
from companion.data import ChurnDataset, check_dataset
from companion.errors import InvalidParameterError, PromotionRefusedError

logger = logging.getLogger(__name__)

__all__ = ["ACTOR", "artifact_root_of", "gate_outcome", "register_and_stage"]

ACTOR = "pipeline lumen-level2"
"""Who the audit log says moved ``staging`` (or was refused): the pipeline, not a person."""
PIPELINE = "lumen-level2"


def artifact_root_of(tracking_uri: str) -> Path | None:
    """Where a SQLite store's artifacts go: ``mlartifacts/`` beside the database (else None)."""
    check_text("tracking_uri", tracking_uri)
    if not tracking_uri.startswith("sqlite:///"):
        return None
    return Path(tracking_uri.removeprefix("sqlite:///")).resolve().parent / "mlartifacts"


def gate_outcome(registry: Any, version: int) -> dict[str, Any]:
    """The numbers of the last gate run for ``version``: its interval, production's, the
    difference (paired), and the verdict, read from the gate's MLflow run."""
    from companion.registry import EXPERIMENT

    client = registry.client
    experiment = client.get_experiment_by_name(EXPERIMENT)
    runs = client.search_runs([experiment.experiment_id],
                              filter_string=f"tags.`gate.candidate` = '{int(version)}'",
                              order_by=["attributes.start_time DESC"], max_results=1)
    if not runs:
        raise InvalidParameterError(f"no gate run for version {version}")
    metrics = runs[0].data.metrics

    def interval(key: str) -> list[float] | None:
        if f"gate_{key}" not in metrics:
            return None
        return [round(metrics[f"gate_{key}{s}"], 6) for s in ("", "_low", "_high")]

    return {"gate_roc_auc": interval("roc_auc"),
            "gate_production_roc_auc": interval("production_roc_auc"),
            "gate_difference": interval("difference"),
            "gate_passed": runs[0].data.tags.get("gate.passed") == "true"}


def register_and_stage(
    dataset: ChurnDataset,
    frame: pd.DataFrame,
    model_path: Path,
    metrics: Mapping[str, Any],
    *,
    tracking_uri: str,
    audit_dir: Path,
    policy: Any,
    kind: str = "gbm",
    model_name: str = "lumen-churn",
    clock: Callable[[], Any],
    run_name: str,
) -> dict[str, Any]:
    """Register the pipeline's model as a new version, then run the gate to stage it.

    Args:
        dataset: the export as a dataset (the gate's rows and the lineage hashes come from it).
        frame: the features the model was trained and evaluated on (its last month held out).
        model_path: the pickled fitted model.
        metrics: the evaluate step's metrics (``roc_auc`` and its interval).
        tracking_uri: the MLflow store (its registry too).
        audit_dir: the folder of the registry's audit log.
        policy: a :class:`companion.registry.GatePolicy`.
        kind: the model kind the train step fitted.
        model_name: the registered model.
        clock: returns the (timezone-aware) time the audit records.
        run_name: the pipeline run, as MLflow run name and ``pipeline.run`` tag.

    Returns:
        ``version``, ``staged`` (bool), ``reason`` (the gate's sentence), the gate's numbers
        (:func:`gate_outcome`) and ``aliases`` after the step.
    """
    import mlflow

    from companion.registry import (
        EXPERIMENT,
        GatePolicy,
        Registry,
        version_tags,
    )
    from companion.tracking import log_sklearn_model
    from companion.training import MODEL_KINDS, time_split

    check_dataset(dataset)
    check_frame("frame", frame, ["snapshot_timestamp"], non_empty=True)
    check_choice("kind", kind, MODEL_KINDS)
    check_text("run_name", run_name)
    if not isinstance(policy, GatePolicy):
        raise InvalidParameterError(f"policy must be a GatePolicy, got {type(policy).__name__}")
    snapshots = sorted(pd.DatetimeIndex(frame["snapshot_timestamp"].unique()))
    if len(snapshots) < 2:
        raise InvalidParameterError("frame holds fewer than two months: nothing held out")
    training_frame, _ = time_split(frame, snapshots[:-1], snapshots[-1])
    months = [str(s.date()) for s in snapshots]
    model = pickle.loads(Path(model_path).read_bytes())  # noqa: S301 - the train step's file
    registry = Registry.at(tracking_uri, audit_dir=audit_dir,
                           artifact_root=artifact_root_of(tracking_uri))
    scores = {k: float(metrics[k]) for k in ("roc_auc", "roc_auc_low", "roc_auc_high")}
    with quiet("mlflow", "alembic", level=logging.WARNING, ignore=(MLFLOW_INTEGER_HINT,)):
        experiment_id = registry.experiment_id(EXPERIMENT)
        with registry.fluent(), mlflow.start_run(experiment_id=experiment_id,
                                                 run_name=run_name) as run:
            mlflow.log_params({"kind": kind, "feature_service": "churn_model_v1 (Feast)",
                               "training_snapshots": ",".join(months[:-1]),
                               "holdout_snapshot": months[-1]})
            mlflow.log_metrics({f"holdout_{k}": v for k, v in scores.items()})
            info = log_sklearn_model(model, training_frame)
            tags = version_tags(dataset, training_frame, kind, months[:-1], months[-1],
                                {"roc_auc": scores["roc_auc"]}, run.info.run_id)
            tags.update({"pipeline.name": PIPELINE, "pipeline.run": run_name,
                         "features.source": "feast get_historical_features"})
            mlflow.set_tags({k: v for k, v in tags.items() if k != "training.run_id"})
        client = registry.client
        registry.ensure_model(model_name)
        with registry.fluent():
            created = client.create_model_version(
                model_name, source=info.model_uri, run_id=run.info.run_id, tags=tags,
                description=f"candidate from pipeline run {run_name}", model_id=info.model_id)
        version = int(created.version)
        try:
            decision = registry.stage(dataset, version, actor=ACTOR,
                                      reason=f"{run_name}: the export of {months[-1]}",
                                      name=model_name, month=months[-1], policy=policy,
                                      clock=clock)
            staged, reason = True, decision.reason
        except PromotionRefusedError as refused:
            staged, reason = False, str(refused)
        outcome = gate_outcome(registry, version)
        aliases = registry.aliases(model_name)
    logger.info("registered %s version %d; staged: %s", model_name, version, staged)
    return {"model_name": model_name, "version": version, "staged": staged, "reason": reason,
            "policy": policy.describe(), "aliases": aliases, **outcome}
