"""Argument and frame checks shared by every module of the companion.

Each check returns the value it accepted (converted where that is its job) or raises
:class:`~companion.errors.InvalidParameterError` (:class:`~companion.errors.UnknownNameError`
for names) with a message that names the argument, shows the bad value and says what is
accepted. Public functions call them before their first side effect, so a bad call leaves
nothing half-written.
"""

from __future__ import annotations

import math
import numbers
import os
import re
import warnings
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from companion.errors import InvalidParameterError, UnknownNameError

__all__ = [
    "check_bool",
    "check_choice",
    "check_columns",
    "check_date",
    "check_frame",
    "check_identifier",
    "check_int",
    "check_number",
    "check_path",
    "check_text",
    "check_timestamps",
    "datetime_column",
    "is_real",
]


def _shown(value: Any) -> str:
    """``repr`` of a small value; the type's name for anything large (a frame, an array)."""
    simple = value is None or isinstance(value, (str, bytes, int, float, bool, Path))
    return repr(value) if simple else f"of type {type(value).__name__}"


def check_int(
    name: str, value: Any, *, minimum: int | None = None, maximum: int | None = None
) -> int:
    """Return ``value`` if it is an int (not a bool) within ``[minimum, maximum]``.

    Example:
        >>> check_int("n_customers", 10, minimum=1)
        10
    """
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise InvalidParameterError(
            f"{name} must be an int, got {value!r} of type {type(value).__name__}"
        )
    value = int(value)
    if minimum is not None and value < minimum:
        raise InvalidParameterError(f"{name} must be >= {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise InvalidParameterError(f"{name} must be <= {maximum}, got {value}")
    return value


def is_real(value: object) -> bool:
    """True for an int or float (NumPy's included), False for a bool or anything else."""
    return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))


def check_number(
    name: str,
    value: Any,
    *,
    minimum: float | None = None,
    maximum: float | None = None,
    positive: bool = False,
) -> float:
    """Return ``value`` as a float if it is a finite real number within the bounds.

    ``positive`` asks for a number > 0; ``minimum`` and ``maximum`` are inclusive.

    Example:
        >>> check_number("price_per_cpu_hour", 0.05, positive=True)
        0.05
    """
    if not is_real(value) or not math.isfinite(float(value)):
        raise InvalidParameterError(f"{name} must be a finite number, got {_shown(value)}")
    number = float(value)
    if positive and number <= 0:
        raise InvalidParameterError(f"{name} must be a finite number > 0, got {value!r}")
    if minimum is not None and number < minimum:
        raise InvalidParameterError(f"{name} must be a finite number >= {minimum}, got {value!r}")
    if maximum is not None and number > maximum:
        raise InvalidParameterError(f"{name} must be a finite number <= {maximum}, got {value!r}")
    return number


def check_bool(name: str, value: Any) -> bool:
    """Return ``value`` if it is ``True`` or ``False`` (not 0, 1 or a string).

    Example:
        >>> check_bool("all_revisions", True)
        True
    """
    if not isinstance(value, (bool, np.bool_)):
        raise InvalidParameterError(f"{name} must be True or False, got {_shown(value)}")
    return bool(value)


def check_choice(name: str, value: Any, accepted: Iterable[str]) -> str:
    """Return ``value`` if it is one of ``accepted``; raise naming both otherwise.

    Example:
        >>> check_choice("kind", "logistic", ["logistic", "gbm"])
        'logistic'
    """
    accepted = list(accepted)
    # Compare only with values of the same type: a DataFrame or list passed by mistake must
    # get this message, not pandas' "truth value is ambiguous" or "unhashable type".
    if not any(isinstance(value, type(a)) and value == a for a in accepted):
        simple = value is None or isinstance(value, (str, bytes, int, float))
        shown = repr(value) if simple else f"of type {type(value).__name__}"
        raise UnknownNameError(
            f"{name} {shown} is not known; accepted: {', '.join(map(repr, accepted))}"
        )
    return value


def check_text(name: str, value: Any) -> str:
    """Return ``value`` if it is a non-empty string without NUL characters (a free text).

    Example:
        >>> check_text("reason", "gate passed")
        'gate passed'
    """
    if not isinstance(value, str) or not value.strip() or "\x00" in value:
        raise InvalidParameterError(f"{name} must be a non-empty string, got {_shown(value)}")
    return value


def check_identifier(name: str, value: Any, pattern: str, accepted: str) -> str:
    """Return ``value`` if it is a string matching ``pattern`` whole; ``accepted`` says how.

    Example:
        >>> check_identifier("alias", "production", r"[a-z]+", "lowercase letters")
        'production'
    """
    if not isinstance(value, str) or not re.fullmatch(pattern, value):
        raise InvalidParameterError(
            f"{name} must be a non-empty string of {accepted}, got {_shown(value)}"
        )
    return value


def check_path(name: str, value: Any) -> Path:
    """Return ``value`` as a :class:`~pathlib.Path` if it is a non-empty str or path.

    Example:
        >>> check_path("directory", "data").as_posix()
        'data'
    """
    if isinstance(value, bytes) or not isinstance(value, (str, os.PathLike)):
        raise InvalidParameterError(f"{name} must be a path (str or Path), got {_shown(value)}")
    if not str(value).strip():
        raise InvalidParameterError(f"{name} must be a path (str or Path), got {_shown(value)}")
    return Path(value)


def check_frame(
    name: str,
    frame: Any,
    columns: Sequence[str] = (),
    *,
    non_empty: bool = False,
    hint: str | None = None,
) -> pd.DataFrame:
    """Return ``frame`` if it is a DataFrame holding ``columns`` (and rows, if ``non_empty``).

    ``hint`` ends the message of a missing column (default: the columns the frame has).

    Example:
        >>> check_frame("frame", pd.DataFrame({"a": [1]}), ["a"]).shape
        (1, 1)
    """
    if not isinstance(frame, pd.DataFrame):
        raise InvalidParameterError(
            f"{name} must be a pandas DataFrame, got {type(frame).__name__}"
        )
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        tail = hint if hint is not None else f"it has {list(frame.columns)}"
        raise InvalidParameterError(f"{name} is missing column(s) {missing}; {tail}")
    if non_empty and frame.empty:
        raise InvalidParameterError(f"{name} has no rows")
    return frame


def check_columns(name: str, values: Any) -> list[str]:
    """Return ``values`` as a list if it is a non-empty list of distinct column names.

    Example:
        >>> check_columns("features", ["plan", "region"])
        ['plan', 'region']
    """
    if isinstance(values, (str, bytes)) or not isinstance(values, Sequence):
        raise InvalidParameterError(f"{name} must be a list of column names, got {values!r}")
    names = list(values)
    bad = [v for v in names if not isinstance(v, str) or not v]
    if bad or not names:
        raise InvalidParameterError(
            f"{name} must be a non-empty list of column names, got {names!r}"
        )
    repeated = sorted({v for v in names if names.count(v) > 1})
    if repeated:
        raise InvalidParameterError(f"{name} repeat {repeated}; name each column once")
    return names


def check_date(name: str, value: Any, *, aware: str = "reject") -> pd.Timestamp:
    """Return ``value`` as a time-zone-naive :class:`pandas.Timestamp`, or raise naming it.

    Accepted: a string like ``'2025-01-01'``, a ``datetime``, ``date``, ``numpy.datetime64``
    or ``pandas.Timestamp``; not numbers, bools or missing values. A time-zone-aware value is
    refused (``aware="reject"``) or converted to naive UTC (``aware="utc"``).

    Example:
        >>> str(check_date("as_of", "2025-03-01").date())
        '2025-03-01'
    """
    if aware not in ("reject", "utc"):
        raise InvalidParameterError(f"aware must be 'reject' or 'utc', got {aware!r}")
    message = f"{name} must be a date like '2025-01-01', got {_shown(value)}"
    if value is None or isinstance(value, (bool, np.bool_, numbers.Number, bytes)):
        raise InvalidParameterError(message)
    try:
        stamp = pd.Timestamp(value)
    except (ValueError, TypeError, OverflowError) as exc:
        raise InvalidParameterError(message) from exc
    if pd.isna(stamp):
        raise InvalidParameterError(message)
    if stamp.tzinfo is not None:
        if aware == "reject":
            raise InvalidParameterError(f"{name} must have no time zone, got {value!r}")
        stamp = stamp.tz_convert("UTC").tz_localize(None)
    return stamp


def check_timestamps(name: str, values: object, allow_empty: bool = False) -> pd.DatetimeIndex:
    """Return ``values`` as distinct time-zone-naive timestamps, or raise naming the bad one.

    Example:
        >>> list(check_timestamps("snapshots", ["2025-02-01"]).strftime("%Y-%m-%d"))
        ['2025-02-01']
    """
    if isinstance(values, (str, bytes, pd.Timestamp)) or not isinstance(values, Iterable):
        raise InvalidParameterError(
            f"{name} must be a list of snapshot timestamps (e.g. dataset.snapshots[:3]), got "
            f"{values!r} of type {type(values).__name__}"
        )
    stamps = []
    for value in values:
        try:
            stamp = pd.Timestamp(value)
        except (ValueError, TypeError) as exc:
            raise InvalidParameterError(
                f"{name} holds {value!r}, which is not a timestamp like '2025-03-01'"
            ) from exc
        if pd.isna(stamp) or stamp.tz is not None:
            raise InvalidParameterError(
                f"{name} holds {value!r}; accepted: timestamps without a time zone"
            )
        stamps.append(stamp)
    if not stamps and not allow_empty:
        raise InvalidParameterError(f"{name} must name at least one snapshot, got none")
    index = pd.DatetimeIndex(stamps)
    repeated = index[index.duplicated()].unique()
    if len(repeated):
        raise InvalidParameterError(
            f"{name} repeats {[str(s.date()) for s in repeated]}; each snapshot may appear once "
            "(a repeated snapshot would count its rows twice)"
        )
    return index


def datetime_column(name: str, frame: pd.DataFrame, column: str) -> np.ndarray:
    """Return a frame's timestamp column as naive ``datetime64[ns]`` (aware ones in UTC)."""
    values = frame[column]
    try:
        with warnings.catch_warnings():  # "could not infer format" for text that is no date
            warnings.simplefilter("ignore")
            stamps = pd.to_datetime(values)
    except (TypeError, ValueError, OverflowError) as exc:
        raise InvalidParameterError(
            f"{name} column {column!r} must hold timestamps, got e.g. "
            f"{values.dropna().head(3).tolist()!r}"
        ) from exc
    if isinstance(stamps.dtype, pd.DatetimeTZDtype):
        stamps = stamps.dt.tz_convert("UTC").dt.tz_localize(None)
    return stamps.to_numpy(dtype="datetime64[ns]")
