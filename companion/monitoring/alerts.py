"""Alerts as records: the JSON-lines file a monitor writes and a retraining trigger reads.

Format (``alerts.jsonl``, UTF-8, one JSON object per line, keys in this order; version
``alerts/1``):

=============== ============ ==============================================================
key             type         meaning
=============== ============ ==============================================================
schema          str          ``alerts/1``
month           str          the month the alert is about, ``YYYY-MM``
kind            str          ``data_drift``, ``prediction_drift``, ``performance``,
                             ``data_quality`` or ``serving``
metric          str          what was measured (``psi``, ``roc_auc_change``, a check name)
value           float        the measured value, rounded to 6 decimals
threshold       float        the value it was compared with, rounded to 6 decimals
direction       str          ``above`` (alert when value >= threshold) or ``below``
columns         list[str]    the columns involved (empty if none)
severity        str          ``info``, ``warning`` or ``critical``
created_for     str          the date the alert could first be raised, ``YYYY-MM-DD`` (a
                             month's drift: the month itself; its performance: 30 days later)
policy          str          the policy version that raised it (``drift-policy/1``)
=============== ============ ==============================================================

There is no wall-clock time in a record, and numbers are rounded to :data:`DECIMALS` places
(the last bits of a drift score may differ between runs and machines): the same monitoring
writes the same file.
:func:`write_alerts` validates every record and replaces the file atomically;
:func:`read_alerts` validates every line and returns records in file order.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import pandas as pd

from companion.core.checks import check_choice, check_date, check_path, check_text, is_real
from companion.core.files import atomic_write_text
from companion.errors import InvalidParameterError

__all__ = [
    "ALERT_KINDS",
    "ALERT_SCHEMA",
    "SEVERITIES",
    "Alert",
    "alerts_frame",
    "read_alerts",
    "write_alerts",
]

ALERT_SCHEMA = "alerts/1"
ALERT_KINDS = ("data_drift", "prediction_drift", "performance", "data_quality", "serving")
SEVERITIES = ("info", "warning", "critical")
DECIMALS = 6
"""Decimal places kept of an alert's value and threshold."""
_MONTH = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")


@dataclass(frozen=True)
class Alert:
    """One alert record (see the module docstring for the format)."""

    month: str
    kind: str
    metric: str
    value: float
    threshold: float
    direction: str
    columns: tuple[str, ...]
    severity: str
    created_for: str
    policy: str
    schema: str = ALERT_SCHEMA

    def __post_init__(self) -> None:
        if not isinstance(self.month, str) or not _MONTH.match(self.month):
            raise InvalidParameterError(f"alert month must look like '2025-07', got {self.month!r}")
        check_choice("alert kind", self.kind, ALERT_KINDS)
        check_text("alert metric", self.metric)
        for name in ("value", "threshold"):
            number = getattr(self, name)
            if not is_real(number) or not math.isfinite(float(number)):
                raise InvalidParameterError(f"alert {name} must be a finite number, got {number!r}")
            object.__setattr__(self, name, round(float(number), DECIMALS))
        check_choice("alert direction", self.direction, ("above", "below"))
        if isinstance(self.columns, str) or not isinstance(self.columns, (list, tuple)) or not all(
            isinstance(c, str) and c for c in self.columns
        ):
            raise InvalidParameterError(
                f"alert columns must be a list of column names, got {self.columns!r}"
            )
        object.__setattr__(self, "columns", tuple(self.columns))
        check_choice("alert severity", self.severity, SEVERITIES)
        if not isinstance(self.created_for, str):
            raise InvalidParameterError(
                f"alert created_for must be a date string, got {self.created_for!r}"
            )
        day = check_date("alert created_for", self.created_for)
        if str(day.date()) != self.created_for:
            raise InvalidParameterError(
                f"alert created_for must be YYYY-MM-DD, got {self.created_for!r}"
            )
        check_text("alert policy", self.policy)
        if self.schema != ALERT_SCHEMA:
            raise InvalidParameterError(
                f"alert schema must be {ALERT_SCHEMA!r}, got {self.schema!r}"
            )

    def to_json(self) -> str:
        """The record as one JSON line (no newline), keys in the documented order."""
        values = asdict(self)
        ordered = {"schema": values.pop("schema"), **values}
        ordered["columns"] = list(self.columns)
        return json.dumps(ordered, allow_nan=False, separators=(",", ":"))

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> Alert:
        """Build and validate an alert from a decoded record; unknown or missing keys raise."""
        if not isinstance(values, dict):
            raise InvalidParameterError(f"an alert record must be an object, got {values!r}")
        expected = [f.name for f in fields(cls)]
        missing = sorted(set(expected) - set(values))
        extra = sorted(set(values) - set(expected))
        if missing or extra:
            raise InvalidParameterError(
                f"alert record has missing key(s) {missing} and unknown key(s) {extra}; "
                f"expected {sorted(expected)}"
            )
        return cls(**values)


def write_alerts(path: str | Path, alerts: Iterable[Alert]) -> Path:
    """Validate ``alerts`` and write them as JSON lines to ``path`` in one atomic replace."""
    target = check_path("path", path)
    records = list(alerts) if not isinstance(alerts, (str, bytes)) else [alerts]
    bad = [a for a in records if not isinstance(a, Alert)]
    if bad:
        raise InvalidParameterError(f"alerts must be Alert records, got {type(bad[0]).__name__}")
    return atomic_write_text(target, "".join(a.to_json() + "\n" for a in records))


def read_alerts(path: str | Path) -> list[Alert]:
    """Read and validate every line of an alerts file (a missing file raises)."""
    source = check_path("path", path)
    if not source.is_file():
        raise InvalidParameterError(f"no alerts file at {source.name!r}")
    alerts = []
    for number, line in enumerate(source.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            values = json.loads(line)
        except json.JSONDecodeError as error:
            raise InvalidParameterError(
                f"{source.name} line {number} is not JSON: {error}"
            ) from error
        try:
            alerts.append(Alert.from_dict(values))
        except InvalidParameterError as error:
            raise InvalidParameterError(f"{source.name} line {number}: {error}") from error
    return alerts


def alerts_frame(alerts: Iterable[Alert]) -> pd.DataFrame:
    """The alerts as a table (columns joined by commas), for printing."""
    rows = []
    for alert in alerts:
        if not isinstance(alert, Alert):
            raise InvalidParameterError(f"alerts must be Alert records, got {type(alert).__name__}")
        row = asdict(alert)
        row["columns"] = ", ".join(alert.columns) or "-"
        row.pop("schema")
        rows.append(row)
    columns = [f.name for f in fields(Alert) if f.name != "schema"]
    return pd.DataFrame(rows, columns=columns)
