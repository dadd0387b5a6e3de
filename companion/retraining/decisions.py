"""The decision log: every step of the retraining loop, with its reason, as JSON lines.

Format (``decisions.jsonl``, UTF-8, one JSON object per line, keys in this order; version
``retraining/1``):

=========== ============ ==================================================================
key         type         meaning
=========== ============ ==================================================================
schema      str          ``retraining/1``
policy      str          the policy's name
month       str          the month the loop was deciding for, ``YYYY-MM``
step        str          ``post_check``, ``trigger``, ``retrain``, ``gate``, ``canary``,
                         ``promote`` or ``rollback``
outcome     str          ``fired``, ``skipped``, ``passed``, ``refused``, ``failed``,
                         ``done`` or ``degraded``
version     int | null   the model version the step is about
production  int | null   the version in production after the step
reason      str          why, in one sentence, with the numbers
numbers     dict         the numbers behind it (str -> float, rounded to 6 decimals)
=========== ============ ==================================================================

No wall-clock time is recorded: the same loop on the same data writes the same file.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import pandas as pd

from companion.core.checks import check_choice, check_path, check_text, is_real
from companion.core.files import atomic_write_text
from companion.errors import InvalidParameterError

__all__ = ["DECISION_SCHEMA", "OUTCOMES", "STEPS", "Decision", "decisions_frame",
           "read_decisions", "write_decisions"]

DECISION_SCHEMA = "retraining/1"
STEPS = ("post_check", "trigger", "retrain", "gate", "canary", "promote", "rollback")
OUTCOMES = ("fired", "skipped", "passed", "refused", "failed", "done", "degraded")
_MONTH = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")


def _version(name: str, value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidParameterError(f"decision {name} must be a version >= 1 or None, "
                                    f"got {value!r}")
    return value


@dataclass(frozen=True)
class Decision:
    """One record of the decision log (see the module docstring)."""

    policy: str
    month: str
    step: str
    outcome: str
    version: int | None
    production: int | None
    reason: str
    numbers: dict[str, float] = field(default_factory=dict)
    schema: str = DECISION_SCHEMA

    def __post_init__(self) -> None:
        check_text("decision policy", self.policy)
        if not isinstance(self.month, str) or not _MONTH.match(self.month):
            raise InvalidParameterError(
                f"decision month must look like '2025-07', got {self.month!r}")
        check_choice("decision step", self.step, STEPS)
        check_choice("decision outcome", self.outcome, OUTCOMES)
        _version("version", self.version)
        _version("production", self.production)
        check_text("decision reason", self.reason)
        if not isinstance(self.numbers, dict):
            raise InvalidParameterError(f"decision numbers must be a dict, got {self.numbers!r}")
        clean = {}
        for key, value in self.numbers.items():
            if not isinstance(key, str) or not is_real(value) or not math.isfinite(float(value)):
                raise InvalidParameterError(
                    f"decision numbers must map names to finite numbers, got {key!r}: {value!r}"
                )
            clean[key] = round(float(value), 6)
        object.__setattr__(self, "numbers", clean)
        if self.schema != DECISION_SCHEMA:
            raise InvalidParameterError(
                f"decision schema must be {DECISION_SCHEMA!r}, got {self.schema!r}")

    def to_json(self) -> str:
        """The record as one JSON line (no newline), keys in the documented order."""
        values = asdict(self)
        ordered = {"schema": values.pop("schema"), **values}
        return json.dumps(ordered, allow_nan=False, separators=(",", ":"))

    @classmethod
    def from_dict(cls, values: Any) -> Decision:
        """Build and validate a record; unknown or missing keys raise."""
        if not isinstance(values, dict):
            raise InvalidParameterError(f"a decision record must be an object, got {values!r}")
        expected = {f.name for f in fields(cls)}
        if set(values) != expected:
            raise InvalidParameterError(
                f"decision record has missing key(s) {sorted(expected - set(values))} and "
                f"unknown key(s) {sorted(set(values) - expected)}"
            )
        return cls(**values)


def write_decisions(path: str | Path, decisions: Iterable[Decision]) -> Path:
    """Validate ``decisions`` and write them as JSON lines to ``path`` in one atomic replace."""
    target = check_path("path", path)
    records = list(decisions)
    for record in records:
        if not isinstance(record, Decision):
            raise InvalidParameterError(f"decisions must be Decision records, got {record!r}")
    target.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(target, "".join(r.to_json() + "\n" for r in records))
    return target


def read_decisions(path: str | Path) -> list[Decision]:
    """Read and validate a decision log; a bad line raises naming its number."""
    source = check_path("path", path)
    if not source.is_file():
        raise InvalidParameterError(f"no decision log at {source}")
    records = []
    for number, line in enumerate(source.read_text(encoding="utf-8").splitlines(), start=1):
        try:
            records.append(Decision.from_dict(json.loads(line)))
        except (ValueError, TypeError) as exc:
            raise InvalidParameterError(f"line {number} of {source.name}: {exc}") from exc
    return records


def decisions_frame(decisions: Iterable[Decision]) -> pd.DataFrame:
    """The records as a table (numbers left out), in log order."""
    rows = [{k: v for k, v in asdict(d).items() if k not in ("schema", "numbers")}
            for d in decisions]
    columns = ["policy", "month", "step", "outcome", "version", "production", "reason"]
    frame = pd.DataFrame(rows, columns=columns)
    for column in ("version", "production"):
        frame[column] = frame[column].astype("Int64")
    return frame
