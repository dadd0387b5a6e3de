"""The monitoring pass of a year: quality, drift, prediction drift, performance, alerts.

:func:`monitor_year` does, for a dataset and a deployed model, what a team's monthly job does:
checks each month's inputs before scoring (:mod:`~companion.monitoring.quality`), scores it,
compares inputs and scores with the reference month through Evidently
(:mod:`~companion.monitoring.drift`), measures performance for the months whose labels are
known (:mod:`~companion.monitoring.performance`), and turns every finding into an
:class:`~companion.monitoring.alerts.Alert`. :func:`concept_contrast` puts the concept drift in
numbers: the inputs barely move, who churns changes.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from companion.core.checks import check_date, check_path, check_timestamps
from companion.data import ChurnDataset, check_dataset
from companion.errors import InvalidParameterError
from companion.monitoring.alerts import Alert
from companion.monitoring.drift import (
    PREDICTION_METHOD,
    PREDICTION_THRESHOLD,
    SCORE_COLUMN,
    DriftPass,
    drift_pass,
    drift_report,
    month_label,
    read_drift,
)
from companion.monitoring.performance import (
    CALIBRATION_TOLERANCE,
    performance_by_month,
    score_frame,
)
from companion.monitoring.policy import DEFAULT_POLICY, DriftPolicy
from companion.monitoring.quality import QualityResult, gate_scores, quality_checks
from companion.training import TARGET, snapshot_features

__all__ = ["MonitoringRun", "concept_contrast", "monitor_year"]

logger = logging.getLogger(__name__)
_TIME = "snapshot_timestamp"


@dataclass
class MonitoringRun:
    """Everything one monitoring pass found.

    Attributes:
        scored: the feature rows with ``score`` and ``score_status`` (``ok`` / ``blocked``).
        quality: the quality checks, one per month.
        drift: the drift pass (data and prediction drift), months after the reference.
        performance: one row per month with known labels (see
            :func:`~companion.monitoring.performance.performance_by_month`).
        alerts: the alert records, by month then kind.
        as_of: the date the pass was run for.
    """

    scored: pd.DataFrame
    quality: list[QualityResult]
    drift: DriftPass
    performance: pd.DataFrame
    alerts: list[Alert]
    as_of: pd.Timestamp

    def summary(self, digits: int = 3) -> pd.DataFrame:
        """One row per month: quality, drift, prediction drift, AUC, observed/predicted churn."""
        drift = self.drift.table(digits).set_index("month")
        perf = self.performance.set_index("month")
        rows = []
        for result in self.quality:
            month = result.month
            row: dict[str, Any] = {"month": month, "quality": "ok" if result.passed else "blocked"}
            if month in drift.index:
                row["drift_alarm"] = bool(drift.loc[month, "alarm"])
                row["drifted"] = drift.loc[month, "drifted"]
                row["prediction_psi"] = drift.loc[month, "prediction_psi"]
            else:
                row.update(drift_alarm=None, drifted="reference", prediction_psi=None)
            if month in perf.index:
                low, value, high = (perf.loc[month, k] for k in ("auc_low", "auc", "auc_high"))
                row["auc"] = f"{value:.{digits}f} [{low:.{digits}f}, {high:.{digits}f}]"
                row["observed"] = perf.loc[month, "observed"]
                row["predicted"] = perf.loc[month, "predicted"]
                row["performance_alarm"] = bool(perf.loc[month, "alarm"])
            else:
                row.update(auc="labels pending", observed=None, predicted=None,
                           performance_alarm=None)
            rows.append(row)
        return pd.DataFrame(rows)


def _drift_alerts(result: DriftPass) -> list[Alert]:
    alerts = []
    policy = result.policy
    for month, reading in zip(result.months, result.readings, strict=True):
        day = str(month.date())
        if reading.alarm:
            worst = max(reading.drifted, key=lambda c: reading.scores[c])
            alerts.append(Alert(
                month_label(month), "data_drift", policy.column_method(worst),
                reading.scores[worst], policy.column_threshold(worst), policy.direction(worst),
                reading.drifted, "warning", day, policy.version,
            ))
        if reading.prediction_drift:
            assert reading.prediction_score is not None
            alerts.append(Alert(
                month_label(month), "prediction_drift", PREDICTION_METHOD,
                reading.prediction_score, PREDICTION_THRESHOLD, "above", (SCORE_COLUMN,),
                "warning", day, policy.version,
            ))
    return alerts


def monitor_year(
    dataset: ChurnDataset,
    model: Any,
    *,
    policy: DriftPolicy = DEFAULT_POLICY,
    reference: Any = None,
    performance_reference: Any = None,
    as_of: Any = None,
    html_dir: str | Path | None = None,
) -> MonitoringRun:
    """Monitor every month of ``dataset`` for ``model``, as known at ``as_of``.

    Args:
        dataset: the simulated dataset.
        model: the deployed model (``predict_proba`` on the features), trained on data up to
            the ``reference`` month.
        policy: the drift policy.
        reference: the drift reference month (default: the first month).
        performance_reference: the months performance is compared with, pooled (default: the
            months after ``reference`` and before the first onset, or the next month if the
            dataset has no scenario: out of sample for a model trained on the reference month).
        as_of: the date of the pass (default: the end of the simulated window, when every
            month's labels are known).
        html_dir: where each month's Evidently HTML report is saved (none if None).
    """
    check_dataset(dataset)
    if not callable(getattr(model, "predict_proba", None)):
        raise InvalidParameterError(
            f"model must be fitted and have predict_proba, got {type(model).__name__}"
        )
    if not isinstance(policy, DriftPolicy):
        raise InvalidParameterError(f"policy must be a DriftPolicy, got {type(policy).__name__}")
    months = list(dataset.snapshots)
    ref = months[0] if reference is None else check_date("reference", reference)
    if ref not in months or ref == months[-1]:
        raise InvalidParameterError(
            f"reference {month_label(ref)} must be a month of the dataset before the last; "
            f"months: {[month_label(m) for m in months]}"
        )
    if performance_reference is None:
        onsets = [dataset.config.onset(s) for s in dataset.config.scenarios]
        starts = [m for m in onsets if m is not None]
        stable = [m for m in months if m > ref and (not starts or m < min(starts))]
        perf_ref = stable[:4] or [months[months.index(ref) + 1]]
    else:
        perf_ref = list(check_timestamps("performance_reference", performance_reference))
    outside = [month_label(m) for m in perf_ref if m not in months]
    if outside:
        raise InvalidParameterError(
            f"performance_reference month(s) {outside} are not months of the dataset"
        )
    when = dataset.config.end_timestamp if as_of is None else check_date("as_of", as_of)
    if html_dir is not None:
        check_path("html_dir", html_dir)
    frame = snapshot_features(dataset)
    fees = dataset.prices["monthly_fee"]
    quality = [quality_checks(frame, m, dataset.activity, fees=fees) for m in months if m <= when]
    scored = gate_scores(score_frame(model, frame[frame[_TIME] <= when]), quality)
    drift = drift_pass(scored, policy, reference=ref,
                       months=[m for m in months if ref < m <= when], html_dir=html_dir)
    performance = performance_by_month(scored, when, perf_ref)
    alerts = []
    for result in quality:
        for row in result.checks[~result.checks["passed"]].itertuples(index=False):
            columns = () if row.column == "*" else (row.column,)
            alerts.append(Alert(result.month, "data_quality", row.check, row.value, row.limit,
                                "above", columns, "critical", f"{result.month}-01",
                                policy.version))
    alerts += _drift_alerts(drift)
    for row in performance[performance["auc_alarm"]].itertuples(index=False):
        alerts.append(Alert(row.month, "performance", "roc_auc_change", row.auc_change, 0.0,
                            "below", (TARGET,), "critical", row.labels_known_from,
                            policy.version))
    for row in performance[performance["calibration_alarm"]].itertuples(index=False):
        above = row.ratio_low > CALIBRATION_TOLERANCE
        alerts.append(Alert(row.month, "performance", "churn_ratio", row.churn_ratio,
                            CALIBRATION_TOLERANCE if above else 1 / CALIBRATION_TOLERANCE,
                            "above" if above else "below", (TARGET, SCORE_COLUMN), "critical",
                            row.labels_known_from, policy.version))
    alerts.sort(key=lambda a: (a.month, a.created_for, a.kind, a.metric))
    logger.info("monitoring pass as of %s: %d alerts", when.date(), len(alerts))
    return MonitoringRun(scored, quality, drift, performance, alerts, when)


def concept_contrast(run: MonitoringRun, onset: Any, *, digits: int = 3) -> pd.DataFrame:
    """The onset month against the month before it: inputs, scores, churn, AUC, in numbers.

    One more Evidently report compares the onset month with the month before (not with the
    reference, so the earlier covariate shift does not hide the comparison). Rows: the
    largest input PSI other than the price (``monthly_fee``, which a price rise moves by
    definition), the price's PSI, the scores' PSI, mean predicted churn, observed churn, the
    AUC, and churn among customers aged 45+ on the standard and premium plans.
    """
    if not isinstance(run, MonitoringRun):
        raise InvalidParameterError(f"run must be a MonitoringRun, got {type(run).__name__}")
    after = check_date("onset", onset)
    months = sorted(run.scored[_TIME].unique())
    if after not in months or months.index(after) == 0:
        raise InvalidParameterError(
            f"onset {month_label(after)} must be a scored month with one before it; scored: "
            f"{[month_label(m) for m in months]}"
        )
    before = months[months.index(after) - 1]
    perf = run.performance.set_index("month")
    for month in (before, after):
        if month_label(month) not in perf.index:
            raise InvalidParameterError(
                f"labels of {month_label(month)} are not known at {run.as_of.date()}"
            )
    policy = run.drift.policy
    scored = run.scored
    snapshot = drift_report(scored[scored[_TIME] == before], scored[scored[_TIME] == after], policy)
    reading = read_drift(snapshot.dict(), policy)
    inputs = {c: v for c, v in reading.scores.items() if c != "monthly_fee"}
    rows = {}
    for month in (before, after):
        label = month_label(month)
        part = scored[scored[_TIME] == month]
        segment = part[(part["age_band"].astype(str).isin(["45-54", "55+"]))
                       & (part["plan"].astype(str).isin(["standard", "premium"]))]
        first = month == before
        rows[label] = {
            "input_psi_max_without_price": 0.0 if first else round(max(inputs.values()), digits),
            "price_psi": 0.0 if first else round(reading.scores.get("monthly_fee", 0.0), digits),
            "score_psi": 0.0 if first else round(reading.prediction_score or 0.0, digits),
            "predicted_churn": round(float(part[SCORE_COLUMN].mean()), 4),
            "observed_churn": round(float(part[TARGET].mean()), 4),
            "churn_45plus_standard_premium": round(float(segment[TARGET].mean()), 4),
            "auc": perf.loc[label, "auc"],
        }
    return pd.DataFrame(rows)

