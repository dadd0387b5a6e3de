"""Level 2: chapter 7's pipeline with the feature store and automated tests in it.

:data:`LEVEL2` runs, for each monthly export, from the raw files to a registered candidate
waiting in ``staging``, with a test at every step and no person in the loop:

ingest (chapter 7's: every file against the manifest) -> :func:`data_tests` (chapter 2's
schema, ranges and freshness tests and chapter 7's quality checks) -> :func:`feast_features`
(the export's tables written as the Feast repo's sources, the definitions applied, the
training set read from Feast's offline store with ``get_historical_features``, the online
store materialised for serving) -> train (chapter 7's) -> :func:`model_tests` (chapter 2's
AUC lower bound, invariance and direction tests) -> evaluate (chapter 7's) -> :func:`register`
(an MLflow model version with its lineage, then chapter 6's interval gate puts it in
``staging`` or refuses it, audited).

Feast joins on event time only: a weekly row stamped at midnight counts for a label taken at
that midnight although it reached the warehouse hours later (chapter 4). The activity source
written here stamps each row with the time it *arrived* (the later of its event and created
timestamps), so Feast's point-in-time join reads only what Lumen knew at each snapshot, like
chapter 7's ``features`` step; the online store is materialised from the same source.

The Feast repo and the MLflow registry are state shared by every run (a folder and a URI,
passed as parameters); everything else a run writes is in its own folder.
"""

import functools
import json
import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import pandas as pd

from companion.core.checks import check_choice, check_date, check_int, check_number, check_text
from companion.core.files import atomic_write, atomic_write_text
from companion.data import ChurnDataset
from companion.errors import DataQualityError, InvalidParameterError, PipelineError
from companion.pipelines.exports import check_month, config_of, quality_checks, read_export
from companion.pipelines.level2_gate import ACTOR
from companion.pipelines.spec import Input, Output, Pipeline, step
from companion.pipelines.steps import evaluate, ingest, train

logger = logging.getLogger(__name__)

__all__ = ["ACTOR", "FEATURE_SERVICE", "LEVEL2", "audit_clock", "data_test_results",
           "data_tests", "export_dataset", "feast_features", "model_test_results",
           "model_tests", "register"]

FEATURE_SERVICE = "churn_model_v1"
"""The Feast feature service the pipeline's model reads (chapter 4's version 1)."""
GATE_RULES = ("superiority", "non-inferiority")


def _json(path: Path, value: Any) -> None:
    atomic_write_text(path, json.dumps(value, indent=2, sort_keys=True) + "\n")


def export_dataset(folder: Path, month: str = "") -> tuple[ChurnDataset, dict[str, Any]]:
    """The export in ``folder`` as a :class:`ChurnDataset` (no truth), and its manifest.

    Every file is checked against the manifest first (``DataQualityError`` otherwise).
    """
    tables, manifest = read_export(Path(folder), month or None)
    empty = pd.DataFrame()
    dataset = ChurnDataset(config_of(manifest), tables["customers"], tables["activity"],
                           tables["labels"], tables["prices"], empty, empty)
    return dataset, manifest


def data_test_results(raw: Path, month: str = "", *, max_missing: float = 0.02,
                      max_age_days: int = 31) -> list[dict[str, Any]]:
    """Run every data test on an export folder; return one row per test, failures included.

    Level 1's tests (:mod:`companion.cicd`: schema, ranges, freshness; suite ``"level 1"``)
    run on the export month's snapshot features (:func:`companion.training.snapshot_features`),
    with the export's cut-off as the day it was taken; the pipeline's quality checks
    (:func:`companion.pipelines.quality_checks`: schema, keys, ranges, missing values, units,
    the month's rows; suite ``"pipeline"``) on its raw tables. Each row: ``suite``,
    ``check``, ``passed``, ``detail``.
    """
    from companion.cicd import data_checks
    from companion.training import snapshot_features

    check_number("max_missing", max_missing, minimum=0.0, maximum=1.0)
    check_int("max_age_days", max_age_days, minimum=0, maximum=366)
    dataset, manifest = export_dataset(raw, month)
    month = manifest["month"]
    rows = [{"suite": "pipeline", **check} for check in quality_checks(
        {"customers": dataset.customers, "activity": dataset.activity,
         "labels": dataset.labels, "prices": dataset.prices}, month, max_missing=max_missing)]
    frame = snapshot_features(dataset, [pd.Timestamp(month)])
    rows += [{"suite": "level 1", "check": result.name, "passed": bool(result.passed),
              "detail": result.detail}
             for result in data_checks(frame, manifest["as_of"], max_age_days)]
    return rows


@step
def data_tests(
    raw: Annotated[Path, Input(folder=True)],
    report: Annotated[Path, Output("data_tests.json")],
    *,
    month: str = "",
    max_missing: float = 0.02,
    max_age_days: int = 31,
) -> None:
    """Run the Level 1 data tests and the pipeline's checks; stop on a failure."""
    rows = data_test_results(raw, month, max_missing=max_missing,
                             max_age_days=max_age_days)
    _, manifest = read_export(raw, month or None)
    failed = [r for r in rows if not r["passed"]]
    if failed:
        raise DataQualityError(
            f"the export of {manifest['month']} failed {len(failed)} data test(s): "
            + "; ".join(f"{r['check']} ({r['suite']})" for r in failed)
        )
    _json(report, {"month": manifest["month"], "passed": True, "tests": rows})


def _to_parquet(frame: pd.DataFrame, path: Path) -> None:
    frame.to_parquet(path, index=False)


def _arrival_stamped(weekly: pd.DataFrame) -> pd.DataFrame:
    """The weekly source with each row stamped when it arrived (later of event and created)."""
    stamped = weekly.copy()
    stamped["event_timestamp"] = stamped[["event_timestamp", "created_timestamp"]].max(axis=1)
    return stamped


@step
def feast_features(
    raw: Annotated[Path, Input(folder=True)],
    report: Annotated[Path, Input()],
    features: Annotated[Path, Output("features.parquet")],
    feast: Annotated[Path, Output("feast.json")],
    *,
    feature_repo: str,
    month: str = "",
    train_months: int = 3,
) -> None:
    """Write the export into the Feast repo, apply it, read the training set, materialise."""
    from companion.features import (
        activity_feature_table,
        feature_definitions,
        feature_store,
        historical_features,
        history_start,
        materialize,
        model_frame,
        profile_feature_table,
        quiet_feast,
    )
    from companion.features.repo import FeatureRepo

    check_text("feature_repo", feature_repo)
    check_int("train_months", train_months, minimum=1, maximum=24)
    dataset, manifest = export_dataset(raw, month)
    month = manifest["month"]
    tested = json.loads(Path(report).read_text(encoding="utf-8"))
    if not tested.get("passed") or tested.get("month") != month:
        raise DataQualityError(f"the export of {month} has not passed its data tests")
    holdout = check_month(month)
    known = sorted(pd.DatetimeIndex(dataset.labels["snapshot_timestamp"].unique()))
    earlier = [s for s in known if s < holdout][-train_months:]
    if holdout not in known or len(earlier) < train_months:
        raise InvalidParameterError(
            f"train_months={train_months} needs {train_months} labelled months before {month} "
            f"and the month's own labels; the export has {len(earlier)} before it"
        )
    cutoff = pd.Timestamp(manifest["as_of"])
    repo = FeatureRepo(Path(feature_repo).resolve())
    sources = ((_arrival_stamped(activity_feature_table(dataset)), repo.activity_source),
               (profile_feature_table(dataset), repo.profile_source))
    for frame, path in sources:  # written whole, then moved into place
        atomic_write(path, functools.partial(_to_parquet, frame))
    store = feature_store(repo)
    definitions = list(feature_definitions(repo).values())
    with quiet_feast():
        store.apply(definitions)
    labels = dataset.labels[dataset.labels["snapshot_timestamp"].isin([*earlier, holdout])]
    entities = labels.sort_values(["snapshot_timestamp", "customer_id"], kind="mergesort")
    frame = historical_features(store, entities.reset_index(drop=True), FEATURE_SERVICE,
                                timestamp="snapshot_timestamp")
    frame = model_frame(frame)
    atomic_write(features, lambda tmp: frame.to_parquet(tmp, index=False))
    views = materialize(store, history_start(dataset), cutoff)
    _json(feast, {"month": month, "service": FEATURE_SERVICE, "rows": int(len(frame)),
                  "definitions": len(definitions), "materialized_views": views,
                  "materialized_until": str(cutoff.date()),
                  "snapshots": [str(s.date()) for s in [*earlier, holdout]]})
    logger.info("features from Feast: %d rows over %d months", len(frame), len(earlier) + 1)


def _holdout(frame: pd.DataFrame) -> pd.DataFrame:
    last = frame["snapshot_timestamp"].max()
    return frame[frame["snapshot_timestamp"] == last].reset_index(drop=True)


def model_test_results(model: Any, frame: pd.DataFrame, *,
                       min_auc: float = 0.65) -> list[dict[str, Any]]:
    """Chapter 2's model tests on the held-out month of ``frame``: one row per test.

    The ROC AUC's 95% lower bound against ``min_auc``; invariance to the customer id and to
    the snapshot's date; more payment failures must raise the scores.
    """
    from companion.cicd import check_direction, check_invariance, check_min_auc

    check_number("min_auc", min_auc, minimum=0.0, maximum=1.0)
    rows = _holdout(frame)
    results = [
        check_min_auc(model, rows, min_auc),
        check_invariance(model, rows, "customer_id", lambda ids: ids + 1_000_000),
        check_invariance(model, rows, "snapshot_timestamp",
                         lambda t: t + pd.Timedelta(days=365)),
        check_direction(model, rows, "payment_failures_4w", lambda n: n + 1),
    ]
    return [{"test": r.name, "passed": bool(r.passed), "detail": r.detail} for r in results]


@step
def model_tests(
    features: Annotated[Path, Input()],
    model: Annotated[Path, Input()],
    tests: Annotated[Path, Output("model_tests.json")],
    *,
    min_auc: float = 0.65,
) -> None:
    """Chapter 2's model tests on the held-out month; refuse the model if one fails."""
    import pickle

    from threadpoolctl import threadpool_limits

    check_number("min_auc", min_auc, minimum=0.0, maximum=1.0)
    fitted = pickle.loads(Path(model).read_bytes())  # noqa: S301 - written by the train step
    with threadpool_limits(1):
        rows = model_test_results(fitted, pd.read_parquet(features), min_auc=min_auc)
    failed = [r for r in rows if not r["passed"]]
    if failed:
        raise PipelineError(
            f"the model failed {len(failed)} model test(s): "
            + "; ".join(f"{r['test']} ({r['detail']})" for r in failed)
        )
    _json(tests, {"passed": True, "tests": rows})


def audit_clock(as_of: str, hour: int = 6) -> Any:
    """A clock fixed at ``hour`` UTC on the export's cut-off day: when the run is audited.

    Example:
        >>> audit_clock("2025-11-01")().isoformat()
        '2025-11-01T06:00:00+00:00'
    """
    day = check_date("as_of", as_of)
    check_int("hour", hour, minimum=0, maximum=23)
    moment = datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(hours=hour)
    return lambda: moment


@step
def register(
    raw: Annotated[Path, Input(folder=True)],
    features: Annotated[Path, Input()],
    model: Annotated[Path, Input()],
    metrics: Annotated[Path, Input()],
    tests: Annotated[Path, Input()],
    registration: Annotated[Path, Output("registration.json")],
    *,
    month: str = "",
    tracking_uri: str,
    audit_dir: str,
    kind: str = "gbm",
    min_roc_auc: float = 0.6,
    margin: float = 0.02,
    rule: str = "non-inferiority",
    model_name: str = "lumen-churn",
) -> None:
    """Register the tested model with its lineage; chapter 6's gate stages it or refuses it."""
    from companion.pipelines.level2_gate import register_and_stage
    from companion.registry.names import check_name
    from companion.registry.policy import GatePolicy

    check_text("tracking_uri", tracking_uri)
    check_text("audit_dir", audit_dir)
    check_choice("rule", rule, GATE_RULES)
    check_name("model_name", model_name)
    policy = GatePolicy(min_roc_auc=min_roc_auc, margin=margin, rule=rule)
    if not json.loads(Path(tests).read_text(encoding="utf-8")).get("passed"):
        raise PipelineError("the model has not passed its model tests; nothing registered")
    dataset, manifest = export_dataset(raw, month)
    outcome = register_and_stage(
        dataset, pd.read_parquet(features), Path(model),
        json.loads(Path(metrics).read_text(encoding="utf-8")),
        tracking_uri=tracking_uri, audit_dir=Path(audit_dir), policy=policy,
        kind=kind, model_name=model_name, clock=audit_clock(manifest["as_of"]),
        run_name=f"lumen-level2/{manifest['month'][:7]}",
    )
    _json(registration, {"month": manifest["month"], **outcome})


LEVEL2 = Pipeline("lumen-level2", [ingest, data_tests, feast_features, train, model_tests,
                                   evaluate, register])
"""Lumen's Level 2 pipeline: a monthly export in, a tested, gated candidate in staging out."""
