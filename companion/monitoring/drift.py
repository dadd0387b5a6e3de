"""Data drift and prediction drift with Evidently, decided from ``snapshot.dict()``, month by month.

One Evidently ``Report`` per month compares that month's rows with the reference month:
a ``DataDriftPreset`` configured by a :class:`~companion.monitoring.policy.DriftPolicy`
(columns, method and threshold per column, tests included) and, when the frame carries the
model's scores, a ``ValueDrift`` of the score column (prediction drift: visible the day the
month is scored, long before its labels).

Decisions are read from ``snapshot.dict()``, never from the HTML: each column's score, method
and threshold come from its ``ValueDrift`` metric; the policy reads the score in the direction
its method means (:meth:`DriftPolicy.drifted`), and the reading is checked against the status of
Evidently's own test of that column, so a silent change of method or direction fails loudly.

:func:`drift_pass` runs the policy over a year; :func:`preset_default_pass` runs the preset at
its defaults on every feature (the contrast: the dataset alarm that never fires, and "any
column drifted" that false-alarms while customers age); :func:`noise_floor` is the multiple
testing guard of a PSI policy.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from companion.core.checks import check_choice, check_frame, check_path, check_timestamps
from companion.core.env import quiet
from companion.core.files import atomic_write
from companion.errors import InvalidParameterError
from companion.monitoring.policy import DEFAULT_POLICY, DriftPolicy
from companion.training import CATEGORICAL_FEATURES, FEATURES, NUMERIC_FEATURES

__all__ = [
    "SCORE_COLUMN",
    "DriftReading",
    "DriftPass",
    "drift_pass",
    "drift_report",
    "month_label",
    "noise_floor",
    "preset_default_pass",
    "read_drift",
    "save_html",
]

logger = logging.getLogger(__name__)

SCORE_COLUMN = "score"
"""The column of model scores in a monitored frame (prediction drift reads it)."""
PREDICTION_METHOD = "psi"
PREDICTION_THRESHOLD = 0.1
"""Prediction drift: PSI of the score distribution against the reference month, >= 0.1."""
_TIME = "snapshot_timestamp"


def month_label(moment: Any) -> str:
    """``YYYY-MM`` of a timestamp: how months are named in tables, alerts and snapshots."""
    return pd.Timestamp(moment).strftime("%Y-%m")


def _evidently() -> tuple[Any, Any, Any, Any, Any]:
    from evidently import DataDefinition, Dataset, Report
    from evidently.metrics import ValueDrift
    from evidently.presets import DataDriftPreset

    return DataDefinition, Dataset, Report, ValueDrift, DataDriftPreset


def _dataset(frame: pd.DataFrame, numeric: list[str], categorical: list[str]) -> Any:
    data_definition, dataset, *_ = _evidently()
    definition = data_definition(numerical_columns=numeric, categorical_columns=categorical)
    return dataset.from_pandas(frame[numeric + categorical], data_definition=definition)


def drift_report(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    policy: DriftPolicy = DEFAULT_POLICY,
    timestamp: Any = None,
) -> Any:
    """Run one Evidently report of ``current`` against ``reference``; return its snapshot.

    ``timestamp`` stamps the snapshot (the month it describes: a dashboard plots snapshots by
    it); default: the current month's ``snapshot_timestamp`` if the frame has one value.

    The report holds ``DataDriftPreset(**policy.preset_arguments())`` with tests and, if both
    frames have a ``score`` column, a ``ValueDrift`` of the scores (PSI, threshold 0.1).
    """
    if not isinstance(policy, DriftPolicy):
        raise InvalidParameterError(f"policy must be a DriftPolicy, got {type(policy).__name__}")
    columns = list(policy.columns)
    check_frame("reference", reference, columns, non_empty=True)
    check_frame("current", current, columns, non_empty=True)
    with_scores = SCORE_COLUMN in reference.columns and SCORE_COLUMN in current.columns
    numeric = list(policy.numeric) + ([SCORE_COLUMN] if with_scores else [])
    *_, report_class, value_drift, preset = _evidently()
    metrics: list[Any] = [preset(**policy.preset_arguments())]
    if with_scores:
        metrics.append(
            value_drift(column=SCORE_COLUMN, method=PREDICTION_METHOD,
                        threshold=PREDICTION_THRESHOLD)
        )
    report = report_class(metrics, include_tests=True)
    categorical = list(policy.categorical)
    if timestamp is None and _TIME in current.columns and current[_TIME].nunique() == 1:
        timestamp = current[_TIME].iloc[0]
    stamp = None if timestamp is None else pd.Timestamp(timestamp).to_pydatetime()
    with quiet("evidently"):
        return report.run(
            _dataset(current, numeric, categorical), _dataset(reference, numeric, categorical),
            timestamp=stamp,
        )


@dataclass(frozen=True)
class DriftReading:
    """What one month's report says, read by a policy.

    Attributes:
        scores: each watched column's score (PSI, distance or p-value per its method).
        methods: each column's method, as Evidently reports it.
        drifted: the columns the policy reads as drifted, in policy order.
        alarm: whether at least ``min_columns`` columns drifted.
        prediction_score: the PSI of the model's scores (None without scores).
        prediction_drift: whether it is at or above 0.1 (None without scores).
    """

    scores: dict[str, float]
    methods: dict[str, str]
    drifted: tuple[str, ...]
    alarm: bool
    prediction_score: float | None = None
    prediction_drift: bool | None = None


def _column_tests(values: dict[str, Any]) -> dict[str, str]:
    status = {}
    for test in values.get("tests", []):
        params = test.get("metric_config", {}).get("params", {})
        if params.get("type", "").endswith("ValueDrift") and "column" in params:
            status[params["column"]] = test["status"]
    return status


def read_drift(values: dict[str, Any], policy: DriftPolicy = DEFAULT_POLICY) -> DriftReading:
    """Read a report's ``snapshot.dict()`` with ``policy``.

    Raises:
        InvalidParameterError: the dict lacks a watched column, or a column's method,
            threshold or Evidently's test status disagrees with the policy.
    """
    if not isinstance(values, dict) or "metrics" not in values:
        raise InvalidParameterError("values must be an Evidently snapshot.dict() with 'metrics'")
    found: dict[str, tuple[float, str, float]] = {}
    for metric in values["metrics"]:
        config = metric.get("config", {})
        if config.get("type", "").endswith("ValueDrift"):
            found[config["column"]] = (float(metric["value"]), config["method"],
                                       float(config["threshold"]))
    missing = [c for c in policy.columns if c not in found]
    if missing:
        raise InvalidParameterError(
            f"the report has no drift score for watched column(s) {missing}; it has {sorted(found)}"
        )
    status = _column_tests(values)
    drifted = []
    for column in policy.columns:
        score, method, threshold = found[column]
        expected = policy.column_threshold(column)
        if method != policy.column_method(column) or abs(threshold - expected) > 1e-12:
            raise InvalidParameterError(
                f"{column}: the report used {method} at {threshold}, the policy asks for "
                f"{policy.column_method(column)} at {policy.column_threshold(column)}"
            )
        ours = policy.drifted(column, score)
        if column in status and (status[column] == "FAIL") != ours:
            raise InvalidParameterError(
                f"{column}: Evidently's test says {status[column]} for {method} score {score:.4g} "
                f"at {threshold}, the policy reads drifted={ours}"
            )
        if ours:
            drifted.append(column)
    prediction = found.get(SCORE_COLUMN)
    return DriftReading(
        scores={c: found[c][0] for c in policy.columns},
        methods={c: found[c][1] for c in policy.columns},
        drifted=tuple(drifted),
        alarm=len(drifted) >= policy.min_columns,
        prediction_score=None if prediction is None else prediction[0],
        prediction_drift=None if prediction is None else prediction[0] >= PREDICTION_THRESHOLD,
    )


@dataclass
class DriftPass:
    """A year of monthly drift readings against one reference month.

    Attributes:
        policy: the policy applied.
        reference: the reference month.
        months: the months compared, in order.
        readings: one :class:`DriftReading` per month.
        snapshots: the Evidently snapshots, per month label (for a dashboard or HTML).
    """

    policy: DriftPolicy
    reference: pd.Timestamp
    months: list[pd.Timestamp]
    readings: list[DriftReading]
    snapshots: dict[str, Any] = field(default_factory=dict, repr=False)

    def scores(self) -> pd.DataFrame:
        """Months x columns of scores (and ``score`` for prediction drift when measured)."""
        rows = {}
        for month, reading in zip(self.months, self.readings, strict=True):
            row: dict[str, float] = dict(reading.scores)
            if reading.prediction_score is not None:
                row[SCORE_COLUMN] = reading.prediction_score
            rows[month_label(month)] = row
        return pd.DataFrame.from_dict(rows, orient="index").rename_axis("month")

    def table(self, digits: int = 3) -> pd.DataFrame:
        """One row per month: alarm, drifted columns, largest score, prediction drift."""
        rows = []
        for month, reading in zip(self.months, self.readings, strict=True):
            top = max(reading.scores, key=lambda c: reading.scores[c])
            rows.append({
                "month": month_label(month),
                "alarm": reading.alarm,
                "drifted": ", ".join(reading.drifted) or "-",
                "top_column": top,
                "top_score": round(reading.scores[top], digits),
                "prediction_psi": None if reading.prediction_score is None
                else round(reading.prediction_score, digits),
                "prediction_drift": reading.prediction_drift,
            })
        return pd.DataFrame(rows)

    def alarms(self) -> dict[str, bool]:
        """Month label -> data drift alarm."""
        return {month_label(m): r.alarm for m, r in zip(self.months, self.readings, strict=True)}


def _months(
    frame: pd.DataFrame, reference: Any, months: Sequence[Any] | None
) -> tuple[pd.Timestamp, list[pd.Timestamp]]:
    check_frame("frame", frame, [_TIME], non_empty=True, hint="build it with snapshot_features()")
    known = pd.DatetimeIndex(sorted(frame[_TIME].unique()))
    ref = check_timestamps("reference", [reference])[0] if reference is not None else known[0]
    wanted = known[known > ref] if months is None else check_timestamps("months", months)
    unknown = [month_label(m) for m in [ref, *wanted] if m not in known]
    if unknown:
        raise InvalidParameterError(
            f"month(s) {unknown} are not in the frame; it has {[month_label(m) for m in known]}"
        )
    if ref in wanted:
        raise InvalidParameterError(
            f"the reference month {month_label(ref)} cannot also be monitored"
        )
    return ref, list(wanted)


def drift_pass(
    frame: pd.DataFrame,
    policy: DriftPolicy = DEFAULT_POLICY,
    *,
    reference: Any = None,
    months: Sequence[Any] | None = None,
    html_dir: str | Path | None = None,
) -> DriftPass:
    """Apply ``policy`` to every month of ``frame`` against the ``reference`` month.

    Args:
        frame: rows of :func:`companion.training.snapshot_features` (optionally with a
            ``score`` column, for prediction drift).
        policy: the drift policy.
        reference: the reference month (default: the first month of the frame).
        months: the months to compare (default: every month after the reference).
        html_dir: if given, each month's HTML report is saved there as ``drift-YYYY-MM.html``
            (about 3.7 MB each; never display it inline).
    """
    if not isinstance(policy, DriftPolicy):
        raise InvalidParameterError(f"policy must be a DriftPolicy, got {type(policy).__name__}")
    check_frame("frame", frame, list(policy.columns), hint="build it with snapshot_features()")
    ref, wanted = _months(frame, reference, months)
    folder = None if html_dir is None else check_path("html_dir", html_dir)
    base = frame[frame[_TIME] == ref]
    result = DriftPass(policy, ref, wanted, [])
    for month in wanted:
        snapshot = drift_report(base, frame[frame[_TIME] == month], policy)
        reading = read_drift(snapshot.dict(), policy)
        result.readings.append(reading)
        result.snapshots[month_label(month)] = snapshot
        logger.info("%s: drifted %s", month_label(month), reading.drifted)
        if folder is not None:
            save_html(folder / f"drift-{month_label(month)}.html", snapshot)
    return result


def save_html(path: str | Path, snapshot: Any) -> Path:
    """Save an Evidently snapshot's HTML report to ``path`` atomically (never inline)."""
    target = check_path("path", path)

    def write(tmp: Path) -> None:
        snapshot.save_html(str(tmp))

    return atomic_write(target, write)


def preset_default_pass(
    frame: pd.DataFrame, *, reference: Any = None, months: Sequence[Any] | None = None
) -> pd.DataFrame:
    """Evidently's ``DataDriftPreset()`` at its defaults on every feature, month by month.

    Returns one row per month: the share of drifted columns, the preset's dataset alarm
    (its test "share of drifted columns < 0.5" failing), whether any column drifted (by
    Evidently's per-column tests), which ones, and the methods Evidently chose.
    """
    check_frame("frame", frame, FEATURES, hint="build it with snapshot_features()")
    ref, wanted = _months(frame, reference, months)
    *_, report_class, _, preset = _evidently()
    base = _dataset(frame[frame[_TIME] == ref], NUMERIC_FEATURES, CATEGORICAL_FEATURES)
    rows = []
    for month in wanted:
        current = _dataset(frame[frame[_TIME] == month], NUMERIC_FEATURES, CATEGORICAL_FEATURES)
        with quiet("evidently"):
            values = report_class([preset()], include_tests=True).run(current, base).dict()
        share, dataset_alarm = 0.0, False
        for metric in values["metrics"]:
            if metric["config"]["type"].endswith("DriftedColumnsCount"):
                share = float(metric["value"]["share"])
        for test in values["tests"]:
            params = test.get("metric_config", {}).get("params", {})
            if params.get("type", "").endswith("DriftedColumnsCount"):
                dataset_alarm = test["status"] == "FAIL"
        status = _column_tests(values)
        drifted = [c for c in FEATURES if status.get(c) == "FAIL"]
        methods = sorted({m["config"]["method"] for m in values["metrics"]
                          if m["config"]["type"].endswith("ValueDrift")})
        rows.append({
            "month": month_label(month), "drifted_share": round(share, 3),
            "dataset_alarm": dataset_alarm, "any_column": bool(drifted),
            "drifted": ", ".join(drifted) or "-", "methods": ", ".join(methods),
        })
    return pd.DataFrame(rows)


def noise_floor(result: DriftPass, stable: Sequence[Any], statistic: str = "max") -> float:
    """The largest (or mean) score of any watched column over the ``stable`` months.

    For a distance policy (PSI), the multiple-testing guard: the threshold must sit well above
    the largest score that columns x stable months produce when nothing changed.
    """
    if not isinstance(result, DriftPass):
        raise InvalidParameterError(f"result must be a DriftPass, got {type(result).__name__}")
    check_choice("statistic", statistic, ("max", "mean"))
    wanted = [month_label(m) for m in check_timestamps("stable", stable)]
    scores = result.scores()[list(result.policy.columns)]
    unknown = [m for m in wanted if m not in scores.index]
    if unknown:
        raise InvalidParameterError(
            f"stable month(s) {unknown} were not monitored; monitored: {list(scores.index)}"
        )
    values = scores.loc[wanted].to_numpy()
    return float(values.max() if statistic == "max" else values.mean())

