"""Lumen's training pipeline, written once as six typed steps, and :data:`LUMEN` that wires them.

ingest -> validate -> features -> train -> evaluate -> register. Each step is a plain function
whose signature declares what it reads, writes and takes (:mod:`companion.pipelines.spec`);
each body calls the companion's tested functions. Every runner (in process, DVC, Kubeflow
Pipelines, Azure ML) runs these same functions.

The model trains on ``train_months`` monthly snapshots and is scored on the export's own month
(the last labelled snapshot, never seen in training). ``month`` may be left empty: each step
then takes the export's own month from its manifest, which is what a scheduled run passes (it
points at the latest export and cannot know its month in advance).

Training and scoring run on one thread (:func:`threadpoolctl.threadpool_limits`): on a small
shared machine a second OpenMP thread makes the gradient boosting tens of times slower, never
faster, and one thread gives the same numbers in every runner.
"""

import hashlib
import json
import logging
import os
import pickle
import shutil
import tempfile
from pathlib import Path
from typing import Annotated, Any

import pandas as pd

from companion.core.checks import check_choice, check_int, check_number, check_text
from companion.core.env import quiet
from companion.core.files import atomic_write, atomic_write_bytes, atomic_write_text
from companion.data import ChurnDataset
from companion.errors import DataQualityError, InvalidParameterError, PipelineError
from companion.pipelines.exports import (
    EXPORT_MANIFEST,
    EXPORT_TABLES,
    check_month,
    config_of,
    quality_checks,
    read_export,
)
from companion.pipelines.spec import Input, Output, Pipeline, step

logger = logging.getLogger(__name__)

__all__ = ["EXPERIMENT", "LUMEN", "evaluate", "features", "ingest", "predictions_sha256",
           "register", "train", "validate"]

HISTORY_NEEDED = pd.Timedelta(days=14 + 56 + 14)
"""How far before the first training month the features step reads activity: the join's TTL
(14 days), the longest window (8 weeks) and a margin."""
AUC_KEYS = ("roc_auc", "roc_auc_low", "roc_auc_high")
EXPERIMENT = "lumen-pipelines"
"""The MLflow experiment that holds the register step's runs."""


def _json(path: Path, value: Any) -> None:
    atomic_write_text(path, json.dumps(value, indent=2, sort_keys=True) + "\n")


def _one_thread() -> Any:
    from threadpoolctl import threadpool_limits

    return threadpool_limits(1)


@step(retries=1)
def ingest(
    export: Annotated[Path, Input(external=True, folder=True)],
    raw: Annotated[Path, Output("raw", folder=True)],
    *,
    month: str = "",
) -> None:
    """Copy a monthly export into the run, after checking every file against its manifest."""
    # month "" takes the export's own month from its manifest (what a schedule passes)
    tables, manifest = read_export(export, month or None)  # DataQualityError on a bad file
    month = manifest["month"]
    raw.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f".{raw.name}-", dir=raw.parent))
    try:
        for name in (*[f"{t}.parquet" for t in EXPORT_TABLES], EXPORT_MANIFEST):
            shutil.copyfile(Path(export) / name, scratch / name)
        if raw.exists():
            shutil.rmtree(raw)
        os.chmod(scratch, 0o755)
        os.replace(scratch, raw)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    logger.info("ingested the export of %s (%d activity rows)", month, len(tables["activity"]))


@step
def validate(
    raw: Annotated[Path, Input(folder=True)],
    validation: Annotated[Path, Output("validation.json")],
    *,
    month: str = "",
    max_missing: float = 0.02,
) -> None:
    """Check schema, keys, ranges, missing values and units; refuse the export if one fails."""
    tables, manifest = read_export(raw, month or None)
    month = manifest["month"]
    checks = quality_checks(tables, month, max_missing=max_missing)
    failed = [c for c in checks if not c["passed"]]
    if failed:
        raise DataQualityError(
            f"the export of {month} failed {len(failed)} data-quality check(s): "
            + "; ".join(f"{c['check']} ({c['detail']})" for c in failed)
        )
    _json(validation, {"month": month, "passed": True, "checks": checks})


@step
def features(
    raw: Annotated[Path, Input(folder=True)],
    validation: Annotated[Path, Input()],
    features: Annotated[Path, Output("features.parquet")],
    *,
    month: str = "",
    train_months: int = 3,
) -> None:
    """Build the training and holdout rows with point-in-time joins (what was known then)."""
    from companion.features import (
        activity_feature_table,
        model_frame,
        profile_feature_table,
        training_set,
    )

    check_int("train_months", train_months, minimum=1, maximum=24)
    tables, manifest = read_export(raw, month or None)
    month = manifest["month"]
    holdout = check_month(month)
    report = json.loads(Path(validation).read_text(encoding="utf-8"))
    if not report.get("passed") or report.get("month") != month:
        raise DataQualityError(f"the export of {month} has not passed validation")
    labels = tables["labels"]
    known = sorted(pd.DatetimeIndex(labels["snapshot_timestamp"].unique()))
    if holdout not in known:
        raise InvalidParameterError(f"the export has no labels for its month {month}")
    earlier = [s for s in known if s < holdout][-train_months:]
    if len(earlier) < train_months:
        raise InvalidParameterError(
            f"train_months={train_months} needs {train_months} labelled months before {month}; "
            f"the export has {len(earlier)}"
        )
    # Rows the joins can reach: a week within the TTL before a label, and the eight weeks its
    # longest window sums (with a week to spare); older rows only slow the running sums.
    activity = tables["activity"]
    activity = activity[activity["event_timestamp"] > earlier[0] - HISTORY_NEEDED]
    empty = pd.DataFrame()
    dataset = ChurnDataset(config_of(manifest), tables["customers"], activity,
                           labels, tables["prices"], empty, empty)
    entities = labels[labels["snapshot_timestamp"].isin([*earlier, holdout])]
    entities = entities.rename(columns={"snapshot_timestamp": "event_timestamp"})
    frame = training_set(entities.reset_index(drop=True),
                         activity_feature_table(dataset, until=holdout),
                         profile_feature_table(dataset), "v1", arrived_only=True)
    frame = model_frame(frame).rename(columns={"event_timestamp": "snapshot_timestamp"})
    atomic_write(features, lambda tmp: frame.to_parquet(tmp, index=False))
    logger.info("features: %d rows over %d months", len(frame), len(earlier) + 1)


def _split(frame: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    from companion.training import time_split

    snapshots = sorted(frame["snapshot_timestamp"].unique())
    if len(snapshots) < 2:
        raise InvalidParameterError("features hold fewer than two months: nothing to hold out")
    return time_split(frame, snapshots[:-1], snapshots[-1])


@step
def train(
    features: Annotated[Path, Input()],
    model: Annotated[Path, Output("model.pkl")],
    *,
    kind: str = "gbm",
    seed: int = 0,
) -> None:
    """Fit the churn model on every month but the last (companion.training.train)."""
    from companion.training import MODEL_KINDS
    from companion.training import train as fit

    check_choice("kind", kind, MODEL_KINDS)
    check_int("seed", seed, minimum=0)
    rows, _ = _split(pd.read_parquet(features))
    with _one_thread():
        fitted = fit(rows, kind=kind, seed=seed)
    atomic_write_bytes(model, pickle.dumps(fitted))


def predictions_sha256(predictions: pd.DataFrame) -> str:
    """SHA-256 of ``customer_id,probability`` lines, probabilities rounded to 6 decimals."""
    lines = "".join(f"{c},{p:.6f}\n" for c, p in zip(
        predictions["customer_id"], predictions["churn_probability"], strict=True))
    return hashlib.sha256(lines.encode()).hexdigest()


@step
def evaluate(
    features: Annotated[Path, Input()],
    model: Annotated[Path, Input()],
    metrics: Annotated[Path, Output("metrics.json")],
    predictions: Annotated[Path, Output("predictions.parquet")],
) -> None:
    """Score the held-out last month: ROC AUC with its 95% interval, and the predictions."""
    from companion.evaluation import auc_interval
    from companion.training import FEATURES, TARGET

    train_rows, test_rows = _split(pd.read_parquet(features))
    fitted = pickle.loads(Path(model).read_bytes())  # noqa: S301 - written by the train step
    with _one_thread():
        scores = fitted.predict_proba(test_rows[FEATURES])[:, 1]
    auc = auc_interval(test_rows[TARGET].to_numpy(), scores)
    table = pd.DataFrame({"customer_id": test_rows["customer_id"].to_numpy(),
                          "churn_probability": scores.round(6)})
    atomic_write(predictions, lambda tmp: table.to_parquet(tmp, index=False))
    _json(metrics, {
        "holdout_month": str(pd.Timestamp(test_rows["snapshot_timestamp"].iloc[0]).date()),
        "roc_auc": round(auc.value, 6), "roc_auc_low": round(auc.low, 6),
        "roc_auc_high": round(auc.high, 6), "test_rows": int(len(test_rows)),
        "test_churners": int(test_rows[TARGET].sum()), "train_rows": int(len(train_rows)),
        "predictions_sha256": predictions_sha256(table),
    })


@step
def register(
    model: Annotated[Path, Input()],
    metrics: Annotated[Path, Input()],
    registration: Annotated[Path, Output("registration.json")],
    *,
    month: str = "",
    tracking_uri: str,
    min_roc_auc: float = 0.75,
    model_name: str = "lumen-churn",
    pipeline_run: str = "",
) -> None:
    """Register the model as a candidate if its ROC AUC interval clears the gate's minimum."""
    from companion.registry.names import check_name

    if month:
        check_month(month)
    check_text("tracking_uri", tracking_uri)
    check_number("min_roc_auc", min_roc_auc, minimum=0.0, maximum=1.0)
    check_name("model_name", model_name)
    values = json.loads(Path(metrics).read_text(encoding="utf-8"))
    month = month or values["holdout_month"]
    if month != values["holdout_month"]:
        raise PipelineError(
            f"month {month} does not match the month the model was scored on "
            f"({values['holdout_month']})"
        )
    if values["roc_auc_low"] < min_roc_auc:
        raise PipelineError(
            f"gate refused the model of {month}: ROC AUC {values['roc_auc']:.3f} "
            f"[{values['roc_auc_low']:.3f}, {values['roc_auc_high']:.3f}] has its lower bound "
            f"below the minimum {min_roc_auc:.3f}; nothing registered"
        )
    run = pipeline_run or f"lumen-training/{month[:7]}"
    tags = {"pipeline.name": "lumen-training", "pipeline.run": run, "data.export_month": month,
            "gate.min_roc_auc": f"{min_roc_auc:.3f}",
            **{f"metrics.{k}": f"{values[k]:.4f}" for k in AUC_KEYS},
            "metrics.predictions_sha256": values["predictions_sha256"]}
    version = _register_file(Path(model), tracking_uri, model_name, run, tags, values)
    _json(registration, {"model_name": model_name, "version": version, "month": month,
                         "tags": tags})
    logger.info("registered %s version %s for %s", model_name, version, month)


def _register_file(model: Path, tracking_uri: str, name: str, run_name: str,
                   tags: dict[str, str], values: dict[str, Any]) -> int:
    """Log ``model`` in a run of :data:`EXPERIMENT` and register it as a new version of
    ``name`` (no alias moves); return the version number. A SQLite store keeps the artifacts
    in ``artifacts/`` beside its database file."""
    from mlflow.entities import Metric
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    with quiet("mlflow", "alembic"):
        client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
        experiment = client.get_experiment_by_name(EXPERIMENT)
        if experiment is not None:
            experiment_id = experiment.experiment_id
        else:
            location = None
            if tracking_uri.startswith("sqlite:///"):
                location = (Path(tracking_uri.removeprefix("sqlite:///")).resolve().parent
                            / "artifacts").as_uri()
            experiment_id = client.create_experiment(EXPERIMENT, artifact_location=location)
        run = client.create_run(experiment_id, run_name=run_name, tags=tags)
        numbers = [Metric(k, float(values[k]), 0, 0) for k in AUC_KEYS]
        client.log_batch(run.info.run_id, metrics=numbers)
        client.log_artifact(run.info.run_id, str(model), "model")
        client.set_terminated(run.info.run_id)
        try:
            client.get_registered_model(name)
        except MlflowException:
            client.create_registered_model(name)
        version = client.create_model_version(
            name, source=f"{run.info.artifact_uri}/model", run_id=run.info.run_id, tags=tags,
            description=f"candidate from pipeline run {run_name}",
        )
    return int(version.version)


LUMEN = Pipeline("lumen-training", [ingest, validate, features, train, evaluate, register])
"""Lumen's training pipeline: a monthly export in, a registered candidate out."""
