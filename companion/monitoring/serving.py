"""Serving health from chapter 8's prediction log: traffic, latency and errors per arm and period.

The prediction log (:mod:`companion.deployment.predlog`) has one row per answered score;
requests that failed never reach it, so their count comes from the caller that sent them (a
gateway's log, or :class:`companion.deployment.remote.Traffic`) as a frame of failures with
``time`` and ``arm``. :func:`serving_health` groups both by arm and period and gives requests,
shadow scores, latency percentiles (p50, p99, nearest-rank, so the numbers are values of the
log), the share above a latency objective and the error rate. Fed a deterministic log (a fixed
clock and latencies), its table is deterministic.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from companion.core.checks import check_choice, check_frame, check_number, check_text
from companion.deployment.predlog import LOG_COLUMNS
from companion.errors import InvalidParameterError
from companion.monitoring.alerts import SEVERITIES, Alert

__all__ = [
    "PERIODS",
    "SERVING_LIMITS",
    "SERVING_POLICY",
    "serving_alarms",
    "serving_alerts",
    "serving_health",
]

PERIODS = {"hour": "h", "day": "D", "week": "W-SUN", "month": "M"}
"""Periods a health table can be grouped by, with their pandas frequencies."""
SERVING_LIMITS = {"p99_ms": 250.0, "error_rate": 0.01}
"""Default objectives: 99% of scores within 250 ms, at most 1% of requests failing."""
SERVING_POLICY = "serving-limits/1"
"""The name stamped on serving alerts (the objectives of :data:`SERVING_LIMITS`)."""


def _nearest_rank(values: np.ndarray, q: float) -> float:
    ordered = np.sort(values)
    index = max(int(np.ceil(q * len(ordered))) - 1, 0)
    return float(ordered[index])


def serving_health(
    log: pd.DataFrame,
    *,
    period: str = "day",
    failures: pd.DataFrame | None = None,
    slo_ms: float = SERVING_LIMITS["p99_ms"],
    digits: int = 2,
) -> pd.DataFrame:
    """Return one row per arm and period: traffic, latency and errors.

    Args:
        log: the prediction log as :func:`companion.deployment.predlog.read_log` returns it.
        period: ``hour``, ``day``, ``week`` or ``month`` (UTC).
        failures: one row per failed request with ``time`` (UTC) and ``arm`` (None: no
            failures known).
        slo_ms: the latency objective; ``slow_share`` is the share of scores above it.
        digits: rounding of the latency columns.

    Returns:
        Columns ``period, arm, requests, shadow, failed, error_rate, p50_ms, p99_ms, max_ms,
        slow_share``, sorted by period then arm. ``requests`` counts answered rows
        (``shadow == False``); ``shadow`` counts shadow scores, whose latency is included.
    """
    check_frame("log", log, list(LOG_COLUMNS), hint="read it with companion.deployment.read_log")
    frequency = PERIODS[check_choice("period", period, PERIODS)]
    check_number("slo_ms", slo_ms, positive=True)
    if failures is not None:
        check_frame("failures", failures, ["time", "arm"])
    times = pd.to_datetime(log["time"], utc=True)
    frame = pd.DataFrame({
        "period": times.dt.tz_localize(None).dt.to_period(frequency).astype(str),
        "arm": log["arm"].astype(str), "latency_ms": log["latency_ms"].astype("float64"),
        "shadow": log["shadow"].astype(bool),
    })
    failed = pd.Series(dtype="int64")
    if failures is not None and len(failures):
        try:
            failure_times = pd.to_datetime(failures["time"], utc=True)
        except (ValueError, TypeError) as error:
            raise InvalidParameterError(f"failures' time column is not a time: {error}") from error
        keys = pd.DataFrame({
            "period": failure_times.dt.tz_localize(None).dt.to_period(frequency).astype(str),
            "arm": failures["arm"].astype(str),
        })
        failed = keys.groupby(["period", "arm"]).size()
    rows = []
    groups = set(frame.groupby(["period", "arm"]).groups) | set(failed.index)
    for key in sorted(groups):
        part = frame[(frame["period"] == key[0]) & (frame["arm"] == key[1])]
        latency = part["latency_ms"].to_numpy()
        answered = int((~part["shadow"]).sum())
        lost = int(failed.get(key, 0))
        total = answered + lost
        rows.append({
            "period": key[0], "arm": key[1], "requests": answered,
            "shadow": int(part["shadow"].sum()), "failed": lost,
            "error_rate": round(lost / total, 4) if total else 0.0,
            "p50_ms": round(_nearest_rank(latency, 0.5), digits) if len(latency) else None,
            "p99_ms": round(_nearest_rank(latency, 0.99), digits) if len(latency) else None,
            "max_ms": round(float(latency.max()), digits) if len(latency) else None,
            "slow_share": round(float(np.mean(latency > slo_ms)), 4) if len(latency) else 0.0,
        })
    columns = ["period", "arm", "requests", "shadow", "failed", "error_rate", "p50_ms",
               "p99_ms", "max_ms", "slow_share"]
    return pd.DataFrame(rows, columns=columns)


def serving_alarms(health: pd.DataFrame, limits: dict[str, Any] | None = None) -> pd.DataFrame:
    """The rows of a health table that break an objective, with the objective broken."""
    check_frame("health", health, ["period", "arm", "p99_ms", "error_rate"],
                hint="build it with serving_health()")
    chosen = {**SERVING_LIMITS, **(limits or {})}
    unknown = sorted(set(chosen) - set(SERVING_LIMITS))
    if unknown:
        raise InvalidParameterError(
            f"unknown serving limit(s) {unknown}; accepted: {sorted(SERVING_LIMITS)}"
        )
    for name, value in chosen.items():
        check_number(name, value, minimum=0.0)
    rows = []
    for row in health.itertuples(index=False):
        for metric, limit in chosen.items():
            value = getattr(row, metric)
            if value is not None and not pd.isna(value) and value > limit:
                rows.append({"period": row.period, "arm": row.arm, "metric": metric,
                             "value": value, "limit": limit})
    return pd.DataFrame(rows, columns=["period", "arm", "metric", "value", "limit"])


def serving_alerts(
    alarms: pd.DataFrame,
    *,
    period: str = "day",
    severity: str = "critical",
    policy: str = SERVING_POLICY,
) -> list[Alert]:
    """Turn :func:`serving_alarms` rows into :class:`~companion.monitoring.alerts.Alert` records.

    Each alarm becomes one ``serving`` alert: ``metric`` is ``"<arm>.<objective>"`` (for
    example ``champion.p99_ms``), ``columns`` is ``["latency_ms"]`` for a latency objective and
    empty for the error rate, ``month`` the period's month and ``created_for`` the day the
    period ends (an hour's alarm can be raised that day, a month's on its last day).

    Args:
        alarms: the table of :func:`serving_alarms`.
        period: the period the health table was grouped by (as given to
            :func:`serving_health`).
        severity: the severity of every alert.
        policy: the name of the objectives that raised them.
    """
    check_frame("alarms", alarms, ["period", "arm", "metric", "value", "limit"],
                hint="build it with serving_alarms()")
    frequency = PERIODS[check_choice("period", period, PERIODS)]
    check_choice("severity", severity, SEVERITIES)
    check_text("policy", policy)
    alerts = []
    for row in alarms.itertuples(index=False):
        try:
            end = pd.Period(str(row.period), freq=frequency).end_time
        except (ValueError, TypeError) as error:
            raise InvalidParameterError(
                f"alarm period {row.period!r} is not a {period} period: {error}"
            ) from error
        columns = ("latency_ms",) if str(row.metric).endswith("_ms") else ()
        alerts.append(Alert(end.strftime("%Y-%m"), "serving", f"{row.arm}.{row.metric}",
                            float(row.value), float(row.limit), "above", columns, severity,
                            str(end.date()), policy))
    return alerts
