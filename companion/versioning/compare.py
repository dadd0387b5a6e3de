"""Comparing data versions: the same model trained on several exports, scored on a later month.

:func:`untouched_month` takes the last month labelled by a later date, with the simulator's
true churn probabilities as the ceiling; :func:`compare_exports` trains the pipeline's model
on each export (read back by revision) and scores them all on that month, with paired
intervals on the differences.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from companion.data import ChurnDataset, SimulationConfig
from companion.errors import InvalidParameterError
from companion.versioning.exports import tables_as_of
from companion.versioning.readback import read_manifest, read_tables
from companion.versioning.repo import DataRepo, check_repo
from companion.versioning.stages import fit_and_score, training_frame

logger = logging.getLogger(__name__)

__all__ = ["ORACLE", "ExportComparison", "compare_exports", "untouched_month"]

ORACLE = "true probabilities"
"""The row of :func:`compare_exports` that scores with the simulator's true churn probabilities."""


def untouched_month(dataset: ChurnDataset, as_of: str | pd.Timestamp) -> pd.DataFrame:
    """Return the last month labelled by ``as_of``: features, label and true probability.

    The rows are those of the latest snapshot whose 30-day label window had closed by
    ``as_of`` (what a later export brings), with ``true_probability`` from ``dataset.truth``:
    never a model input, only the ceiling an evaluation is graded against.

    Example:
        >>> from companion.data import generate
        >>> ds = generate(n_customers=300, months=4, scenarios=())
        >>> month = untouched_month(ds, "2025-04-01")
        >>> str(month["snapshot_timestamp"].max().date()), "true_probability" in month
        ('2025-03-01', True)
    """
    tables = dict(tables_as_of(dataset, as_of))  # checks dataset and as_of
    labels = tables["labels"]
    if labels.empty:
        raise InvalidParameterError(f"no month is labelled by {as_of}; take a later as_of")
    last = labels["snapshot_timestamp"].max()
    tables["labels"] = labels[labels["snapshot_timestamp"] == last].reset_index(drop=True)
    frame = training_frame(tables, dataset.config)
    keys = ["customer_id", "snapshot_timestamp"]
    truth = frame[keys].merge(dataset.truth, on=keys, how="left")["churn_probability"]
    if truth.isna().any():
        raise InvalidParameterError(
            f"the dataset's truth has no probability for {int(truth.isna().sum())} row(s) of "
            f"{last.date()}; accepted: a dataset generated with its truth table"
        )
    return frame.assign(true_probability=truth.to_numpy())


@dataclass(frozen=True)
class ExportComparison:
    """The same model trained on several exports, scored on one later month none has seen.

    Attributes:
        month: the evaluation month (its snapshot date).
        rows: customers scored in that month.
        churners: churners among them.
        auc: ROC AUC with DeLong's 95% interval, per model label and for :data:`ORACLE`.
        difference: per model but the baseline, AUC(model) - AUC(baseline), paired DeLong.
        gap_to_truth: per model, AUC(model) - AUC(true probabilities), paired DeLong.
        validation: per model, the AUC on its own export's last month (the pipeline's metric).
        table: the printable table of :func:`companion.evaluation.compare_models`.
    """

    month: pd.Timestamp
    rows: int
    churners: int
    auc: dict[str, Any]
    difference: dict[str, Any]
    gap_to_truth: dict[str, Any]
    validation: dict[str, Any]
    table: pd.DataFrame


def compare_exports(
    repo: DataRepo,
    revs: Sequence[str],
    evaluation: pd.DataFrame,
    kind: str = "logistic",
    seed: int = 0,
) -> ExportComparison:
    """Train on each export in ``revs`` (read back by revision) and score all on ``evaluation``.

    Each model is the one the pipeline trains on that export (:func:`fit_and_score`). They are
    compared on the same rows, a month later than every month of every export (a time split),
    so the differences are paired: DeLong's interval on AUC(model) - AUC(first of ``revs``).
    ``evaluation`` comes from :func:`untouched_month`; its true probabilities give the ceiling.

    Raises:
        InvalidParameterError: fewer than two revisions, a revision twice, or an evaluation
            month that an export has already seen.
    """
    from companion.evaluation import Estimate, auc_difference, auc_interval, compare_models
    from companion.training import FEATURES, TARGET, make_model

    check_repo(repo)
    make_model(kind, seed)
    if not isinstance(revs, (str, Sequence)):
        raise InvalidParameterError(f"revs must be a list of tags, got {type(revs).__name__}")
    revs = list(revs) if not isinstance(revs, str) else [revs]
    if not all(isinstance(r, str) for r in revs):
        raise InvalidParameterError(f"revs must be tags (strings), got {revs!r}")
    if len(revs) < 2 or len(set(revs)) != len(revs):
        raise InvalidParameterError(
            f"revs must name at least two different exports, got {revs}; accepted: tags such "
            f"as {repo.tags()}"
        )
    missing = [c for c in ("snapshot_timestamp", TARGET, "true_probability", *FEATURES)
               if c not in getattr(evaluation, "columns", ())]
    if missing:
        raise InvalidParameterError(
            f"evaluation is missing column(s) {missing}; build it with untouched_month()"
        )
    for rev in revs:
        repo.resolve(rev)
    months = pd.DatetimeIndex(evaluation["snapshot_timestamp"].unique())
    if len(months) != 1:
        raise InvalidParameterError(
            f"evaluation must hold one month, got {sorted(str(m.date()) for m in months)}"
        )
    month = months[0]
    frames = {}
    for rev in revs:
        manifest = read_manifest(repo, rev)
        config = SimulationConfig.from_mapping(manifest["parameters"]["simulation"])
        frames[rev] = training_frame(read_tables(repo, rev), config)
        latest = frames[rev]["snapshot_timestamp"].max()
        if latest >= month:
            raise InvalidParameterError(
                f"export {rev} already holds the month {latest.date()}, so {month.date()} is "
                "not untouched; accepted: an evaluation month after every export's last "
                "labelled month (a later as_of for untouched_month)"
            )
    y = evaluation[TARGET].to_numpy()
    scores, validation = {}, {}
    for rev in revs:
        model, metrics = fit_and_score(frames[rev], kind, seed)
        label = f"trained on {rev}"
        scores[label] = model.predict_proba(evaluation[FEATURES])[:, 1]
        validation[label] = Estimate(
            metrics["roc_auc"], metrics["roc_auc_low"], metrics["roc_auc_high"]
        )
    truth = evaluation["true_probability"].to_numpy()
    baseline = f"trained on {revs[0]}"
    auc = {label: auc_interval(y, s) for label, s in {**scores, ORACLE: truth}.items()}
    difference = {
        label: auc_difference(y, s, scores[baseline])
        for label, s in scores.items() if label != baseline
    }
    gap = {label: auc_difference(y, s, truth) for label, s in scores.items()}
    table = compare_models(y, {**scores, ORACLE: truth}, baseline=baseline)
    return ExportComparison(
        month=month, rows=int(len(y)), churners=int(y.sum()), auc=auc, difference=difference,
        gap_to_truth=gap, validation=validation, table=table,
    )
