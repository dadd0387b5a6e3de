"""The prediction log: one JSON line per scored request, the record chapters 9 and 10 read.

Format (``predictions.jsonl``, UTF-8, one JSON object per line, keys in this order):

=============== ========= ===========================================================
column          type      meaning
=============== ========= ===========================================================
request_id      str       one id per request; a shadow row shares its request's id
time            str       when the request was scored, ISO 8601 UTC (``...+00:00``)
customer_id     int       the customer the request named
arm             str       the arm that scored this row (``champion``, ``challenger``...)
model_version   str       the registry version of the model behind that arm
score           float     the model's score (probability of churn)
latency_ms      float     time spent in that arm's scorer, in milliseconds
shadow          bool      True for a shadow score: computed and logged, never returned
=============== ========= ===========================================================

A request that is answered writes one row with ``shadow=False`` (the arm whose score was
returned); in shadow mode it also writes one row with ``shadow=True`` for the challenger,
with the same ``request_id``. Readers count arms on the rows with ``shadow=False``.

:class:`PredictionLog` appends under a lock, each record as a single ``write`` of one whole
line to a file opened in append mode, flushed at once, so concurrent threads never interleave
and a reader always sees whole lines (a line cut by a crash is skipped by :func:`read_log`).
An append-only log is the one file not written with :mod:`companion.core.files`' atomic
replace: it grows in place by design.

:func:`srm_check` is the sample-ratio-mismatch test of a split: a chi-square goodness-of-fit
of the observed arm counts against the configured weights.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from companion.core.checks import check_bool, check_number, check_path, check_text
from companion.errors import InvalidParameterError

__all__ = [
    "LOG_COLUMNS",
    "LOG_DTYPES",
    "SRM_ALPHA",
    "Prediction",
    "PredictionLog",
    "SrmResult",
    "arm_counts",
    "check_weights",
    "read_log",
    "srm_check",
    "utc_now",
]

logger = logging.getLogger(__name__)

LOG_DTYPES: Mapping[str, str] = {
    "request_id": "string",
    "time": "datetime64[ns, UTC]",
    "customer_id": "int64",
    "arm": "string",
    "model_version": "string",
    "score": "float64",
    "latency_ms": "float64",
    "shadow": "bool",
}
"""The columns of the log as :func:`read_log` returns them, with their pandas dtypes."""

LOG_COLUMNS = tuple(LOG_DTYPES)
"""The log's columns, in the order of every line."""

SRM_ALPHA = 0.001
"""The p-value below which a split is declared a sample-ratio mismatch (the usual, strict
threshold: an SRM check runs on every experiment, so false alarms must be rare)."""


def utc_now() -> datetime:
    """The default clock of the log: the current time, timezone-aware UTC."""
    return datetime.now(UTC)


@dataclass(frozen=True)
class Prediction:
    """One row of the prediction log (see the module docstring for the format)."""

    request_id: str
    time: str
    customer_id: int
    arm: str
    model_version: str
    score: float
    latency_ms: float
    shadow: bool

    def to_json(self) -> str:
        """The record as one JSON line (without the newline), keys in :data:`LOG_COLUMNS` order."""
        return json.dumps(asdict(self), allow_nan=False, separators=(",", ":"))


def _iso(moment: datetime) -> str:
    if not isinstance(moment, datetime) or moment.tzinfo is None:
        raise InvalidParameterError(
            f"the log's clock must return a timezone-aware datetime, got {moment!r}"
        )
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


class PredictionLog:
    """An append-only JSON-lines prediction log at ``path``, safe to share between threads.

    Args:
        path: the log file (created with its folder on the first append).
        clock: returns the time of a record, timezone-aware (default :func:`utc_now`); inject
            a fixed clock for reproducible logs.
    """

    def __init__(self, path: str | Path, *, clock: Callable[[], datetime] = utc_now) -> None:
        self.path = check_path("path", path)
        if not callable(clock):
            raise InvalidParameterError(f"clock must be callable, got {clock!r}")
        self.clock = clock
        self._lock = threading.Lock()
        self.count = 0

    def record(
        self, *, request_id: str, customer_id: int, arm: str, model_version: str,
        score: float, latency_ms: float, shadow: bool,
    ) -> Prediction:
        """Build a :class:`Prediction` stamped by the clock, append it and return it."""
        check_text("request_id", request_id)
        if isinstance(customer_id, bool) or not isinstance(customer_id, int):
            raise InvalidParameterError(f"customer_id must be an int, got {customer_id!r}")
        row = Prediction(
            request_id=request_id, time=_iso(self.clock()), customer_id=int(customer_id),
            arm=check_text("arm", arm), model_version=check_text("model_version", model_version),
            score=check_number("score", float(score)),
            latency_ms=check_number("latency_ms", float(latency_ms), minimum=0.0),
            shadow=check_bool("shadow", shadow),
        )
        self.append(row)
        return row

    def append(self, row: Prediction) -> None:
        """Append one record as one whole line (one write, flushed, under the lock)."""
        if not isinstance(row, Prediction):
            raise InvalidParameterError(f"row must be a Prediction, got {row!r}")
        line = row.to_json() + "\n"
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.path, "a", encoding="utf-8", newline="\n") as handle:
                handle.write(line)
                handle.flush()
            self.count += 1

    def read(self) -> pd.DataFrame:
        """The whole log as a frame (see :func:`read_log`)."""
        with self._lock:
            return read_log(self.path)


def read_log(path: str | Path) -> pd.DataFrame:
    """Read a prediction log into a frame with the columns and dtypes of :data:`LOG_DTYPES`.

    A missing file gives an empty frame; a last line cut short by a crash is skipped (and
    logged); a malformed line anywhere else raises :class:`InvalidParameterError`.
    """
    path = check_path("path", path)
    rows: list[dict[str, Any]] = []
    if path.exists():
        lines = path.read_text(encoding="utf-8").split("\n")
        for number, line in enumerate(lines, start=1):
            if not line:
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as error:
                if number == len(lines):  # the file does not end with "\n": an unfinished line
                    logger.warning("%s: last line is incomplete, skipped", path.name)
                    continue
                raise InvalidParameterError(
                    f"{path.name} line {number} is not JSON: {error}") from error
            if not isinstance(row, dict) or list(row) != list(LOG_COLUMNS):
                keys = list(row) if isinstance(row, dict) else row
                raise InvalidParameterError(
                    f"{path.name} line {number} has keys {keys!r}; expected {list(LOG_COLUMNS)}"
                )
            rows.append(row)
    frame = pd.DataFrame(rows, columns=list(LOG_COLUMNS))
    frame["time"] = pd.to_datetime(frame["time"], utc=True, format="ISO8601")
    return frame.astype({k: v for k, v in LOG_DTYPES.items() if k != "time"})


def check_weights(weights: Any) -> dict[str, float]:
    """Return ``weights`` (arm -> weight) normalised to sum 1, arms in the given order.

    Weights are non-negative numbers, at least one positive, arm names non-empty strings.
    """
    if not isinstance(weights, Mapping) or not weights:
        raise InvalidParameterError(
            f"weights must be a non-empty mapping of arm -> weight, got {weights!r}"
        )
    checked = {check_text("arm name", arm): check_number(f"weight of {arm!r}", w, minimum=0.0)
               for arm, w in weights.items()}
    total = sum(checked.values())
    if total <= 0:
        raise InvalidParameterError(f"weights must have a positive total, got {weights!r}")
    return {arm: w / total for arm, w in checked.items()}


def arm_counts(log: pd.DataFrame) -> dict[str, int]:
    """Requests answered per arm: the rows with ``shadow=False``, counted by ``arm``."""
    if not isinstance(log, pd.DataFrame) or not {"arm", "shadow"} <= set(log.columns):
        raise InvalidParameterError("log must be a prediction-log frame with 'arm' and 'shadow'")
    served = log.loc[~log["shadow"].astype(bool), "arm"].astype(str)
    return {str(k): int(v) for k, v in served.value_counts().sort_index().items()}


@dataclass(frozen=True)
class SrmResult:
    """A sample-ratio-mismatch check: observed against expected counts per arm."""

    counts: dict[str, int]
    expected: dict[str, float]
    chi2: float
    p_value: float
    alpha: float

    @property
    def mismatch(self) -> bool:
        """True when the split is unlikely under the weights (``p_value < alpha``)."""
        return self.p_value < self.alpha

    @property
    def verdict(self) -> str:
        """``"ok"`` or ``"sample ratio mismatch"``."""
        return "sample ratio mismatch" if self.mismatch else "ok"


def srm_check(
    log_or_counts: pd.DataFrame | Mapping[str, int], weights: Mapping[str, float],
    *, alpha: float = SRM_ALPHA,
) -> SrmResult:
    """Chi-square test of the arm counts against ``weights`` (scipy's ``chisquare``).

    Args:
        log_or_counts: a prediction log (rows with ``shadow=False`` are counted) or a mapping
            arm -> count.
        weights: the configured split, arm -> weight (normalised here). Arms with weight 0 must
            have no requests; an arm in the counts that is not in the weights is an error.
        alpha: the mismatch threshold on the p-value.

    Example:
        >>> srm_check({"a": 5000, "b": 5000}, {"a": 1, "b": 1}).verdict
        'ok'
    """
    from scipy.stats import chisquare

    shares = check_weights(weights)
    check_number("alpha", alpha, minimum=0.0, maximum=1.0)
    if isinstance(log_or_counts, pd.DataFrame):
        counts = arm_counts(log_or_counts)
    elif isinstance(log_or_counts, Mapping):
        counts = {check_text("arm", a): int(check_number(f"count of {a!r}", c, minimum=0))
                  for a, c in log_or_counts.items()}
    else:
        raise InvalidParameterError(
            f"log_or_counts must be a prediction log or arm -> count, got {log_or_counts!r}"
        )
    unknown = sorted(set(counts) - set(shares))
    if unknown:
        raise InvalidParameterError(f"arms {unknown} have requests but no weight; "
                                    f"weighted arms: {sorted(shares)}")
    total = sum(counts.values())
    if total == 0:
        raise InvalidParameterError("no requests to check: every arm count is 0")
    observed = {arm: counts.get(arm, 0) for arm in shares}
    expected = {arm: share * total for arm, share in shares.items()}
    if any(observed[a] > 0 and expected[a] == 0 for a in shares):
        return SrmResult(observed, expected, float("inf"), 0.0, float(alpha))
    live = [a for a in shares if expected[a] > 0]
    if len(live) < 2:
        return SrmResult(observed, expected, 0.0, 1.0, float(alpha))
    result = chisquare([observed[a] for a in live], [expected[a] for a in live])
    return SrmResult(observed, expected, float(result.statistic), float(result.pvalue),
                     float(alpha))
