"""Model drift: what the scores say at once, and what the labels say thirty days later.

A month's scores exist the day the month is scored; its labels (``churned_30d``) exist only
thirty days later, when the window closes. :func:`label_calendar` says what is known at a date,
:func:`score_frame` adds the model's scores to a frame, and :func:`performance_by_month` measures
every month whose labels are known at ``as_of``: ROC AUC with DeLong's 95% interval
(:func:`companion.evaluation.auc_interval`), the difference to a reference month with its
interval, the observed and predicted churn, and the expected calibration error.

Two performance alarms, both known only when the month's labels are:

- ranking: the month's AUC is below the reference's and the 95% interval of the difference
  lies below zero (a drop the month's few hundred churners can support; with 5,000 customers
  it misses drops of 0.04);
- calibration: observed churners over the churners the scores predict, relative to the same
  ratio in the reference months (a model is rarely calibrated to the month: the reference
  ratio absorbs that), with a 95% interval on the log scale (Poisson counts, the two periods
  independent); an alarm when the whole interval lies above 1.25 or below 0.8 (a quarter more,
  or fewer, churners than the model expects). This is the stronger signal of a concept drift:
  who churns changes, the scores do not.

:func:`calibration_table` is observed against predicted churn per score decile.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from companion.core.checks import check_date, check_frame, check_int, check_number, check_timestamps
from companion.data import LABEL_WINDOW_DAYS
from companion.errors import InvalidParameterError
from companion.evaluation import auc_interval, clustered_auc_interval, unpaired_difference
from companion.monitoring.drift import SCORE_COLUMN, month_label
from companion.training import FEATURES, TARGET, check_training_frame

__all__ = [
    "CALIBRATION_TOLERANCE",
    "PERFORMANCE_LEVEL",
    "calibration_table",
    "expected_calibration_error",
    "label_calendar",
    "labels_known",
    "performance_by_month",
    "score_frame",
]

_TIME = "snapshot_timestamp"
PERFORMANCE_LEVEL = 0.95
"""Level of the AUC intervals and of the difference that raises a performance alarm."""
CALIBRATION_TOLERANCE = 1.25
"""A calibration alarm needs the observed / expected churn ratio's interval beyond 1.25 (or
below 1 / 1.25)."""


def score_frame(
    model: Any, frame: pd.DataFrame, features: Sequence[str] = FEATURES
) -> pd.DataFrame:
    """Return a copy of ``frame`` with the model's churn probability in a ``score`` column."""
    if not callable(getattr(model, "predict_proba", None)):
        raise InvalidParameterError(
            f"model must be fitted and have predict_proba, got {type(model).__name__}"
        )
    check_frame("frame", frame, list(features), non_empty=True,
                hint="build it with snapshot_features()")
    scores = np.asarray(model.predict_proba(frame[list(features)]), dtype="float64")[:, 1]
    if not np.isfinite(scores).all():
        raise InvalidParameterError("the model returned NaN or infinite scores on this frame")
    out = frame.copy()
    out[SCORE_COLUMN] = scores
    return out


def label_calendar(
    months: Sequence[Any], as_of: Any, label_days: int = LABEL_WINDOW_DAYS
) -> pd.DataFrame:
    """What is known about each month at ``as_of``: its scores, and its labels (month + 30 d).

    Example:
        >>> label_calendar(["2025-08-01", "2025-09-01"], "2025-09-15")["labels_known"].tolist()
        [True, False]
    """
    wanted = check_timestamps("months", months)
    when = check_date("as_of", as_of)
    check_int("label_days", label_days, minimum=1)
    ready = wanted + pd.Timedelta(days=label_days)
    return pd.DataFrame({
        "month": [month_label(m) for m in wanted],
        "scored": wanted <= when,
        "labels_known_from": [str(d.date()) for d in ready],
        "labels_known": ready <= when,
    })


def labels_known(
    frame: pd.DataFrame, as_of: Any, label_days: int = LABEL_WINDOW_DAYS
) -> pd.DataFrame:
    """The rows of ``frame`` whose 30-day label exists at ``as_of``."""
    check_frame("frame", frame, [_TIME, TARGET], hint="build it with snapshot_features()")
    when = check_date("as_of", as_of)
    check_int("label_days", label_days, minimum=1)
    return frame[frame[_TIME] + pd.Timedelta(days=label_days) <= when]


def expected_calibration_error(y: Any, scores: Any, bins: int = 10) -> float:
    """Expected calibration error: row-weighted mean |observed - predicted| over deciles."""
    table = calibration_table(y, scores, bins)
    weights = table["rows"] / table["rows"].sum()
    return float((weights * (table["observed"] - table["predicted"]).abs()).sum())


def calibration_table(y: Any, scores: Any, bins: int = 10) -> pd.DataFrame:
    """Observed against predicted churn per quantile bin of the score (deciles by default)."""
    check_int("bins", bins, minimum=2, maximum=100)
    labels = np.asarray(y, dtype="float64")
    values = np.asarray(scores, dtype="float64")
    if labels.ndim != 1 or labels.shape != values.shape or not labels.size:
        raise InvalidParameterError(
            f"y and scores must be 1-D, non-empty and of one length, got shapes {labels.shape} "
            f"and {values.shape}"
        )
    if not np.isin(labels, (0.0, 1.0)).all() or not np.isfinite(values).all():
        raise InvalidParameterError("y must hold 0 or 1 and scores finite numbers")
    ranks = pd.Series(values).rank(method="first").to_numpy()
    codes = np.minimum((ranks - 1) * bins // len(values), bins - 1).astype(int)
    frame = pd.DataFrame({"bin": codes + 1, "y": labels, "score": values})
    table = frame.groupby("bin").agg(rows=("y", "size"), predicted=("score", "mean"),
                                     observed=("y", "mean"))
    return table.reset_index()


def _month_metrics(rows: pd.DataFrame, level: float) -> dict[str, Any]:
    y = rows[TARGET].to_numpy().astype(int)
    scores = rows[SCORE_COLUMN].to_numpy()
    auc = auc_interval(y, scores, level)
    return {
        "auc": auc, "rows": len(rows), "churners": int(y.sum()),
        "observed": float(y.mean()), "predicted": float(scores.mean()),
        "ece": expected_calibration_error(y, scores),
    }


def performance_by_month(
    frame: pd.DataFrame,
    as_of: Any,
    reference: Sequence[Any],
    *,
    label_days: int = LABEL_WINDOW_DAYS,
    level: float = PERFORMANCE_LEVEL,
    digits: int = 3,
) -> pd.DataFrame:
    """Performance of every month whose labels are known at ``as_of``, against a reference.

    Args:
        frame: rows with ``customer_id``, ``snapshot_timestamp``, ``churned_30d`` and
            ``score`` (:func:`score_frame`).
        as_of: the date of the question: months whose labels are not yet known are left out.
        reference: the stable months the others are compared with, pooled (after the training
            data, so the AUC is out of sample; several months narrow its interval). Their
            labels must be known at ``as_of``. The pooled AUC's interval is clustered by
            customer (a customer has a row in each month).
        digits: rounding of the printed columns.

    Returns:
        One row per month with known labels: ``month, labels_known_from, rows, churners,
        auc, auc_low, auc_high, auc_change, change_low, change_high, observed, predicted,
        ece, churn_ratio, ratio_low, ratio_high, auc_alarm, calibration_alarm, alarm``
        (``alarm``: either). The reference AUC is in ``DataFrame.attrs["reference_auc"]``.
    """
    check_training_frame(frame, [SCORE_COLUMN, _TIME, "customer_id"],
                         hint="score it with score_frame()")
    check_number("level", level, minimum=0.5, maximum=0.999)
    check_int("digits", digits, minimum=0, maximum=10)
    known = labels_known(frame, as_of, label_days)
    refs = check_timestamps("reference", reference)
    base = known[known[_TIME].isin(refs)]
    present = set(base[_TIME])
    missing = [month_label(m) for m in refs if m not in present]
    if missing:
        raise InvalidParameterError(
            f"reference month(s) {missing} have no known labels at "
            f"{check_date('as_of', as_of).date()}; months with labels: "
            f"{sorted({month_label(m) for m in known[_TIME]})}"
        )
    base_ratio = float(base[TARGET].sum()) / float(base[SCORE_COLUMN].sum())
    base_churners = int(base[TARGET].sum())
    z = float(stats.norm.ppf(0.5 + level / 2))
    base_auc = clustered_auc_interval(
        base[TARGET].to_numpy().astype(int), base[SCORE_COLUMN].to_numpy(),
        base["customer_id"].to_numpy(), level,
    )
    rows = []
    for month, part in known.groupby(_TIME, sort=True):
        metrics = _month_metrics(part, level)
        auc = metrics["auc"]
        change = None if month in present else unpaired_difference(auc, base_auc)
        ratio = metrics["churners"] / (metrics["predicted"] * metrics["rows"]) / base_ratio
        spread = z * math.sqrt(1 / max(metrics["churners"], 1) + 1 / max(base_churners, 1))
        low, high = ratio * math.exp(-spread), ratio * math.exp(spread)
        auc_alarm = bool(change is not None and change.high < 0)
        calibration_alarm = bool(month not in present and (
            low > CALIBRATION_TOLERANCE or high < 1 / CALIBRATION_TOLERANCE))
        rows.append({
            "month": month_label(month),
            "labels_known_from": str((pd.Timestamp(month) + pd.Timedelta(days=label_days)).date()),
            "rows": metrics["rows"], "churners": metrics["churners"],
            "auc": round(auc.value, digits), "auc_low": round(auc.low, digits),
            "auc_high": round(auc.high, digits),
            "auc_change": None if change is None else round(change.value, digits),
            "change_low": None if change is None else round(change.low, digits),
            "change_high": None if change is None else round(change.high, digits),
            "observed": round(metrics["observed"], 4), "predicted": round(metrics["predicted"], 4),
            "ece": round(metrics["ece"], 4),
            "churn_ratio": round(ratio, digits), "ratio_low": round(low, digits),
            "ratio_high": round(high, digits),
            "auc_alarm": auc_alarm, "calibration_alarm": calibration_alarm,
            "alarm": auc_alarm or calibration_alarm,
        })
    table = pd.DataFrame(rows)
    table.attrs["reference_auc"] = base_auc
    return table
