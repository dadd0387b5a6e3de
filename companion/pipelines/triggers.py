"""When the pipeline runs: on a cron schedule, or when a new monthly export lands.

- :func:`cron_times`: the times a cron expression fires between two dates (croniter), e.g.
  ``"0 6 1 * *"``, 06:00 on the first of every month.
- :class:`ArrivalTrigger`: exports land in a folder, one subfolder per month (``2025-10``,
  complete once its manifest is there, see :func:`~companion.pipelines.exports.write_export`).
  :meth:`ArrivalTrigger.poll` returns the months not yet processed; a ledger (a JSON file,
  written atomically) records each month when its run starts and how it ended, so a month runs
  once, not twice, however often ``poll`` is called and across restarts.
- :func:`run_on_arrival`: poll, then run the pipeline in process once per new export.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from companion.core.checks import check_date, check_path, check_text
from companion.core.files import atomic_write_text
from companion.errors import InvalidParameterError, PipelineError
from companion.pipelines.exports import EXPORT_MANIFEST
from companion.pipelines.local import RunResult, run_local
from companion.pipelines.spec import Pipeline

logger = logging.getLogger(__name__)

__all__ = ["ArrivalRun", "ArrivalTrigger", "cron_times", "export_folder", "run_on_arrival"]

MONTH_FOLDER = re.compile(r"\d{4}-\d{2}")


def cron_times(expression: str, start: Any, end: Any) -> list[pd.Timestamp]:
    """The times ``expression`` fires in ``[start, end)`` (naive timestamps, UTC by convention).

    Example:
        >>> [str(t) for t in cron_times("0 6 1 * *", "2025-01-01", "2025-03-15")]
        ['2025-01-01 06:00:00', '2025-02-01 06:00:00', '2025-03-01 06:00:00']
    """
    from croniter import croniter

    check_text("expression", expression)
    first, last = check_date("start", start), check_date("end", end)
    if last <= first:
        raise InvalidParameterError(f"end {end!r} must be after start {start!r}")
    if not croniter.is_valid(expression):
        raise InvalidParameterError(
            f"{expression!r} is not a cron expression; accepted: five fields such as '0 6 1 * *'"
        )
    times = []
    cursor = croniter(expression, (first - pd.Timedelta(microseconds=1)).to_pydatetime())
    while (moment := pd.Timestamp(cursor.get_next(pd.Timestamp))) < last:
        times.append(moment)
    return times


def export_folder(landing: str | os.PathLike[str], month: str) -> Path:
    """The subfolder of ``landing`` where month ``month``'s export lands (``2025-10``)."""
    from companion.pipelines.exports import check_month

    return check_path("landing", landing) / check_month(month).strftime("%Y-%m")


@dataclass(frozen=True)
class ArrivalRun:
    """A run started by an arrival: the month, ``succeeded`` or ``failed``, and the run."""

    month: str
    status: str
    result: RunResult | None
    error: str = ""


class ArrivalTrigger:
    """Exports landing in ``landing`` (one subfolder per month), with a ledger of those done."""

    def __init__(self, landing: str | os.PathLike[str], ledger: str | os.PathLike[str]) -> None:
        self.landing = check_path("landing", landing)
        self.ledger_path = check_path("ledger", ledger)

    def ledger(self) -> dict[str, dict[str, str]]:
        """Month -> ``{"status": started|succeeded|failed, "error": ...}``."""
        if not self.ledger_path.exists():
            return {}
        entries: dict[str, dict[str, str]] = json.loads(
            self.ledger_path.read_text(encoding="utf-8"))
        return entries

    def record(self, month: str, status: str, error: str = "") -> None:
        """Write ``month``'s status into the ledger (atomically)."""
        entries = self.ledger()
        entries[month] = {"status": status, "error": error}
        atomic_write_text(self.ledger_path, json.dumps(entries, indent=2, sort_keys=True) + "\n")

    def landed(self) -> list[str]:
        """Months whose export is complete in ``landing`` (``YYYY-MM-01``), oldest first."""
        if not self.landing.is_dir():
            return []
        return sorted(f"{p.name}-01" for p in self.landing.iterdir()
                      if p.is_dir() and MONTH_FOLDER.fullmatch(p.name)
                      and (p / EXPORT_MANIFEST).is_file())

    def poll(self) -> list[str]:
        """Months landed and not in the ledger (a month started once is never returned again)."""
        done = self.ledger()
        return [month for month in self.landed() if month not in done]


def run_on_arrival(
    pipeline: Pipeline,
    trigger: ArrivalTrigger,
    runs_dir: str | os.PathLike[str],
    params: Mapping[str, Any] | None = None,
    *,
    input_name: str = "export",
) -> list[ArrivalRun]:
    """Run ``pipeline`` in process once per newly landed export; return what each run did.

    Each month runs in ``runs_dir/YYYY-MM`` with ``params`` and ``month`` set to it. The month
    is written to the ledger as ``started`` before its run and ``succeeded`` or ``failed``
    after: a failed month (an export that fails validation) is not retried by the next poll.
    """
    if not isinstance(trigger, ArrivalTrigger):
        raise InvalidParameterError(f"trigger must be an ArrivalTrigger, got {trigger!r}")
    runs = check_path("runs_dir", runs_dir)
    base = dict(params or {})
    if "month" in base:
        raise InvalidParameterError("params must not set month: each arrival sets its own")
    done = []
    for month in trigger.poll():
        trigger.record(month, "started")
        folder = runs / month[:7]
        try:
            result = run_local(pipeline, folder, {**base, "month": month},
                               {input_name: trigger.landing / month[:7]})
        except PipelineError as error:
            trigger.record(month, "failed", str(error))
            done.append(ArrivalRun(month, "failed", getattr(error, "result", None), str(error)))
            logger.warning("the run for %s failed: %s", month, error)
            continue
        trigger.record(month, "succeeded")
        done.append(ArrivalRun(month, "succeeded", result))
    return done
