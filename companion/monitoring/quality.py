"""Data quality checks before scoring: a month's inputs are checked, then scored or blocked.

Drift asks "is this month different?"; quality asks "is this month *possible*?". A quality
check needs no reference month and no statistics: a rate of missing values, a range, a unit
that makes sense. The November incident of the simulation (a new TV app reports
``minutes_watched`` in seconds for about a third of customers, 8% of values arrive empty) is
invisible in a feature's missing rate (a four-week sum skips empty weeks) but plain in the raw
weekly rows and in minutes per session.

:data:`QUALITY_RULES` are the checks; :func:`quality_checks` runs them on one month (the
feature rows and, if given, the raw activity of its window) and returns a
:class:`QualityResult`; :func:`gate_scores` marks the scores of a failed month ``blocked``,
so nothing downstream acts on them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from companion.core.checks import check_date, check_frame, check_int
from companion.data import AGE_BANDS, CHANNELS, PLANS, REGIONS
from companion.errors import InvalidParameterError
from companion.monitoring.drift import SCORE_COLUMN, month_label
from companion.training import FEATURES, WINDOW_WEEKS

__all__ = [
    "QUALITY_RULES",
    "QualityResult",
    "gate_scores",
    "quality_checks",
]

_TIME = "snapshot_timestamp"

QUALITY_RULES: dict[str, dict[str, Any]] = {
    "raw_minutes_missing": {
        "column": "minutes_watched", "limit": 0.02,
        "meaning": "share of the window's weekly activity rows with minutes_watched empty "
                   "(0.3% is the usual rate)",
    },
    "minutes_per_session": {
        "column": "minutes_4w", "limit": 0.01,
        "meaning": "share of customers averaging more than 300 minutes a session over the "
                   "window (five hours: a unit error, seconds reported as minutes)",
    },
    "features_missing": {
        "column": "*", "limit": 0.0, "meaning": "share of missing values in any model input",
    },
    "out_of_range": {
        "column": "*", "limit": 0.0,
        "meaning": "share of rows with a negative count, more active days than days, more "
                   "weeks seen than weeks, or a fee outside the price list",
    },
    "unknown_category": {
        "column": "*", "limit": 0.0,
        "meaning": "share of rows with a plan, region, channel or age band the model never saw",
    },
}
"""Each check: the column it reads, the largest acceptable value, what it measures."""
MAX_MINUTES_PER_SESSION = 300.0
_KNOWN = {"plan": PLANS, "region": REGIONS, "acquisition_channel": CHANNELS, "age_band": AGE_BANDS}
_COUNTS = ["sessions_4w", "minutes_4w", "days_active_4w", "support_tickets_4w",
           "payment_failures_4w", "weeks_seen_4w", "tenure_days"]


@dataclass(frozen=True)
class QualityResult:
    """The quality checks of one month.

    Attributes:
        month: the month checked (``YYYY-MM``).
        checks: one row per check: ``check, column, value, limit, passed``.
    """

    month: str
    checks: pd.DataFrame

    @property
    def passed(self) -> bool:
        """Whether every check passed: the month's scores may be used."""
        return bool(self.checks["passed"].all())

    @property
    def failed(self) -> list[str]:
        """The names of the checks that failed."""
        return self.checks.loc[~self.checks["passed"], "check"].tolist()


def _window_activity(activity: pd.DataFrame, month: pd.Timestamp, weeks: int) -> pd.DataFrame:
    check_frame("activity", activity, ["event_timestamp", "minutes_watched"],
                hint="pass dataset.activity")
    start = month - pd.Timedelta(weeks=weeks)
    times = activity["event_timestamp"]
    return activity[(times > start) & (times <= month)]


def quality_checks(
    frame: pd.DataFrame,
    month: Any,
    activity: pd.DataFrame | None = None,
    *,
    fees: Any = None,
    window_weeks: int = WINDOW_WEEKS,
) -> QualityResult:
    """Run :data:`QUALITY_RULES` on one month before it is scored.

    Args:
        frame: feature rows (:func:`companion.training.snapshot_features`), any months.
        month: the month to check.
        activity: the raw weekly activity (``dataset.activity``); without it the raw
            missing-rate check is skipped (reported as passed with value NaN).
        fees: the fees of the price list (default: every fee in ``frame`` of months before
            ``month``, plus the month's own if the price list is not given: pass
            ``dataset.prices["monthly_fee"]``).
        window_weeks: the feature window, in weeks.
    """
    check_frame("frame", frame, [_TIME, *FEATURES], hint="build it with snapshot_features()")
    when = check_date("month", month)
    check_int("window_weeks", window_weeks, minimum=1)
    rows = frame[frame[_TIME] == when]
    if rows.empty:
        months = sorted({month_label(m) for m in frame[_TIME]})
        raise InvalidParameterError(
            f"month {month_label(when)} has no rows; the frame has {months}"
        )
    allowed = None if fees is None else np.unique(np.asarray(fees, dtype="float64"))
    values: dict[str, float] = {}
    if activity is None:
        values["raw_minutes_missing"] = float("nan")
    else:
        window = _window_activity(activity, when, window_weeks)
        values["raw_minutes_missing"] = (
            float(window["minutes_watched"].isna().mean()) if len(window) else 0.0
        )
    sessions = rows["sessions_4w"].to_numpy(dtype="float64")
    minutes = rows["minutes_4w"].to_numpy(dtype="float64")
    with np.errstate(divide="ignore", invalid="ignore"):
        per_session = np.where(sessions > 0, minutes / sessions, 0.0)
    values["minutes_per_session"] = float(np.mean(per_session > MAX_MINUTES_PER_SESSION))
    values["features_missing"] = float(rows[FEATURES].isna().any(axis=1).mean())
    bad = (rows[_COUNTS] < 0).any(axis=1)
    bad |= rows["days_active_4w"] > 7 * window_weeks
    bad |= rows["weeks_seen_4w"] > window_weeks
    if allowed is not None:
        bad |= ~np.isin(rows["monthly_fee"].to_numpy(dtype="float64"), allowed)
    values["out_of_range"] = float(bad.mean())
    unknown = pd.Series(False, index=rows.index)
    for column, known in _KNOWN.items():
        unknown |= ~rows[column].astype("object").isin(known)
    values["unknown_category"] = float(unknown.mean())
    table = pd.DataFrame([
        {"check": name, "column": rule["column"], "value": values[name], "limit": rule["limit"],
         "passed": bool(np.isnan(values[name]) or values[name] <= rule["limit"])}
        for name, rule in QUALITY_RULES.items()
    ])
    return QualityResult(month_label(when), table)


def gate_scores(scored: pd.DataFrame, results: list[QualityResult]) -> pd.DataFrame:
    """Return ``scored`` with a ``score_status`` column: ``ok``, or ``blocked`` for a failed month.

    A blocked month keeps its scores for inspection, but no campaign, report or retraining
    trigger may read them: downstream code filters on ``score_status == "ok"``.
    """
    check_frame("scored", scored, [_TIME, SCORE_COLUMN], hint="score it with score_frame()")
    if not isinstance(results, list) or not all(isinstance(r, QualityResult) for r in results):
        raise InvalidParameterError("results must be a list of QualityResult (quality_checks)")
    months = {month_label(m) for m in scored[_TIME].unique()}
    unchecked = sorted(months - {r.month for r in results})
    if unchecked:
        raise InvalidParameterError(
            f"month(s) {unchecked} have scores but no quality check; run quality_checks first"
        )
    blocked = {r.month for r in results if not r.passed}
    out = scored.copy()
    labels = out[_TIME].dt.strftime("%Y-%m")
    out["score_status"] = np.where(labels.isin(blocked), "blocked", "ok")
    return out
