"""Tests for data: the export a model is trained on, checked before any training starts.

Three checks, each a function that returns a :class:`CheckResult` (what was checked, whether it
held, and the rows or columns that broke it), so that a notebook can print the result and a
pytest file in a project repository can assert on it:

- :func:`check_schema`: the columns and dtypes of :data:`EXPORT_SCHEMA`, in any order, no more;
- :func:`check_ranges`: every column within :data:`RANGES` and without missing values. The
  bounds are physical or business facts, not statistics of last month: four weeks hold at most
  40,320 minutes, seven days a week, a payment can fail once a week;
- :func:`check_freshness`: the newest snapshot is no older than ``max_age_days`` before the
  day the export was taken.

:func:`data_checks` runs all three. Nothing is written and nothing is printed.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd

from companion.core.checks import check_date, check_frame, check_int
from companion.errors import InvalidParameterError

__all__ = [
    "EXPORT_SCHEMA",
    "MINUTES_IN_4_WEEKS",
    "RANGES",
    "CheckResult",
    "check_freshness",
    "check_ranges",
    "check_schema",
    "data_checks",
]

EXPORT_SCHEMA: dict[str, str] = {
    "customer_id": "int64",
    "snapshot_timestamp": "datetime64[ns]",
    "sessions_4w": "float64",
    "minutes_4w": "float64",
    "days_active_4w": "float64",
    "support_tickets_4w": "float64",
    "payment_failures_4w": "float64",
    "weeks_seen_4w": "float64",
    "tenure_days": "float64",
    "monthly_fee": "float64",
    "plan": "category",
    "region": "category",
    "acquisition_channel": "category",
    "age_band": "category",
    "churned_30d": "int8",
}
"""Columns and dtypes of the monthly export (``companion.training.snapshot_features``)."""

MINUTES_IN_4_WEEKS = 4 * 7 * 24 * 60
"""40,320: nobody watches more minutes in four weeks than four weeks hold."""

RANGES: dict[str, tuple[float, float]] = {
    "customer_id": (1, math.inf),
    "sessions_4w": (0, math.inf),
    "minutes_4w": (0, MINUTES_IN_4_WEEKS),
    "days_active_4w": (0, 28),
    "support_tickets_4w": (0, math.inf),
    "payment_failures_4w": (0, 4),
    "weeks_seen_4w": (0, 4),
    "tenure_days": (0, math.inf),
    "monthly_fee": (0.01, 100),
    "churned_30d": (0, 1),
}
"""Inclusive bounds per numeric column: facts of the business, not last month's quantiles."""


@dataclass(frozen=True)
class CheckResult:
    """The outcome of one data or model test.

    Attributes:
        name: what was checked, e.g. ``"ranges"``.
        passed: whether it held.
        detail: one line saying what was measured, for a reader or an assertion message.
        failures: one entry per broken rule (a column, a threshold), empty when it passed.
    """

    name: str
    passed: bool
    detail: str
    failures: tuple[str, ...] = ()

    def __str__(self) -> str:
        return f"{self.name} {'passed' if self.passed else 'FAILED'}: {self.detail}"


def _check_schema_map(schema: Any) -> dict[str, str]:
    if not isinstance(schema, Mapping) or not schema:
        raise InvalidParameterError(
            f"schema must be a non-empty mapping of column to dtype name, got {schema!r}"
        )
    bad = [k for k, v in schema.items() if not isinstance(k, str) or not isinstance(v, str)]
    if bad:
        raise InvalidParameterError(
            f"schema must map column names to dtype names (str), got entries {bad}"
        )
    return dict(schema)


def check_schema(frame: pd.DataFrame, schema: Mapping[str, str] = EXPORT_SCHEMA) -> CheckResult:
    """Check that ``frame`` has exactly the columns of ``schema``, each with its dtype.

    Example:
        >>> check_schema(pd.DataFrame({"a": [1]}), {"a": "int64"}).passed
        True
        >>> print(check_schema(pd.DataFrame({"a": [1.5]}), {"a": "int64", "b": "float64"}))
        schema FAILED: 2 of 2 columns wrong: missing b; a is float64, expected int64
    """
    check_frame("frame", frame)
    expected = _check_schema_map(schema)
    failures = [f"missing {c}" for c in expected if c not in frame.columns]
    failures += [f"unexpected {c}" for c in frame.columns if c not in expected]
    failures += [
        f"{c} is {frame[c].dtype}, expected {t}"
        for c, t in expected.items()
        if c in frame.columns and str(frame[c].dtype) != t
    ]
    if failures:
        wrong = len({f.split()[1] if f.startswith(("missing", "unexpected")) else f.split()[0]
                     for f in failures})
        detail = f"{wrong} of {len(expected)} columns wrong: {'; '.join(failures)}"
    else:
        detail = f"{len(expected)} columns with the expected dtypes"
    return CheckResult("schema", not failures, detail, tuple(failures))


def _check_ranges_map(ranges: Any) -> dict[str, tuple[float, float]]:
    if not isinstance(ranges, Mapping) or not ranges:
        raise InvalidParameterError(
            f"ranges must be a non-empty mapping of column to (low, high), got {ranges!r}"
        )
    checked = {}
    for column, bounds in ranges.items():
        if (not isinstance(column, str) or not isinstance(bounds, (tuple, list))
                or len(bounds) != 2
                or not all(isinstance(b, (int, float)) and not isinstance(b, bool)
                           for b in bounds)
                or math.isnan(bounds[0]) or math.isnan(bounds[1]) or bounds[0] > bounds[1]):
            raise InvalidParameterError(
                f"ranges[{column!r}] must be (low, high) numbers with low <= high, got {bounds!r}"
            )
        checked[column] = (float(bounds[0]), float(bounds[1]))
    return checked


def _number(value: float) -> str:
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.2f}"


def check_ranges(
    frame: pd.DataFrame, ranges: Mapping[str, tuple[float, float]] = RANGES
) -> CheckResult:
    """Check that every column of ``ranges`` lies within its bounds and has no missing value.

    Each failure names the column, how many rows broke the rule and the worst value seen.

    Example:
        >>> frame = pd.DataFrame({"minutes_4w": [10.0, 90_000.0, None]})
        >>> for line in check_ranges(frame, {"minutes_4w": (0, 40_320)}).failures:
        ...     print(line)
        minutes_4w: 1 of 3 rows above 40,320 (max 90,000)
        minutes_4w: 1 of 3 rows missing
    """
    check_frame("frame", frame, non_empty=True)
    bounds = _check_ranges_map(ranges)
    check_frame("frame", frame, list(bounds), hint=f"accepted: a frame with {list(bounds)}")
    failures = []
    for column, (low, high) in bounds.items():
        values = pd.to_numeric(frame[column], errors="coerce").astype("float64")
        rows = len(values)
        below, above = values < low, values > high
        if below.any():
            failures.append(f"{column}: {int(below.sum()):,} of {rows:,} rows below "
                            f"{_number(low)} (min {_number(values.min())})")
        if above.any():
            failures.append(f"{column}: {int(above.sum()):,} of {rows:,} rows above "
                            f"{_number(high)} (max {_number(values.max())})")
        missing = values.isna()
        if missing.any():
            failures.append(f"{column}: {int(missing.sum()):,} of {rows:,} rows missing")
    detail = (f"{len(bounds)} columns within their bounds, no missing value" if not failures
              else "; ".join(failures))
    return CheckResult("ranges", not failures, detail, tuple(failures))


def check_freshness(
    frame: pd.DataFrame,
    as_of: str | pd.Timestamp,
    max_age_days: int = 31,
    column: str = "snapshot_timestamp",
) -> CheckResult:
    """Check that the newest ``column`` value is at most ``max_age_days`` before ``as_of``.

    ``as_of`` is the day the export was taken. A row dated after it is refused too: an export
    cannot hold the future.

    Example:
        >>> frame = pd.DataFrame({"snapshot_timestamp": pd.to_datetime(["2025-03-01"])})
        >>> print(check_freshness(frame, "2025-06-01", max_age_days=31))
        freshness FAILED: newest snapshot 2025-03-01 is 92 days before 2025-06-01 (at most 31)
    """
    check_frame("frame", frame, [column], non_empty=True)
    day = check_date("as_of", as_of)
    check_int("max_age_days", max_age_days, minimum=0)
    stamps = pd.to_datetime(frame[column], errors="coerce")
    if stamps.isna().all():
        return CheckResult("freshness", False, f"no valid date in {column}",
                           (f"{column}: no valid date",))
    newest = stamps.max()
    age = int((day.normalize() - newest.normalize()).days)
    shown = f"newest snapshot {newest.date()} is {age} days before {day.date()}"
    if age < 0:
        failure = f"newest snapshot {newest.date()} is after the export date {day.date()}"
        return CheckResult("freshness", False, failure, (failure,))
    if age > max_age_days:
        detail = f"{shown} (at most {max_age_days})"
        return CheckResult("freshness", False, detail, (detail,))
    return CheckResult("freshness", True, f"{shown} (at most {max_age_days})")


def data_checks(
    frame: pd.DataFrame, as_of: str | pd.Timestamp, max_age_days: int = 31
) -> list[CheckResult]:
    """Run :func:`check_schema`, :func:`check_ranges` and :func:`check_freshness` on an export.

    The arguments are checked before any test runs; a range test on a frame that lacks a
    column reports the schema failure instead of raising.
    """
    check_frame("frame", frame, non_empty=True)
    check_date("as_of", as_of)
    check_int("max_age_days", max_age_days, minimum=0)
    schema = check_schema(frame)
    present = {c: b for c, b in RANGES.items() if c in frame.columns}
    ranges = check_ranges(frame, present) if present else CheckResult(
        "ranges", False, "no column to check", ("no column to check",))
    freshness = (check_freshness(frame, as_of, max_age_days)
                 if "snapshot_timestamp" in frame.columns
                 else CheckResult("freshness", False, "no snapshot_timestamp column",
                                  ("no snapshot_timestamp column",)))
    return [schema, ranges, freshness]
