"""Delta Lake versions: monthly loads appended to a table, read back by version or by time.

:func:`append_month` appends one month's activity as one table version (new columns only with
``merge_schema``); :func:`read_delta` reads a version or the version current at a time;
:func:`delta_history` and :func:`delta_storage` show what each version holds and what the
table stores against a full copy of every version.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import re
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from companion.core.checks import check_bool, check_frame, check_path
from companion.data import ChurnDataset, check_dataset
from companion.errors import InvalidParameterError, UnknownNameError, WorkspaceError

logger = logging.getLogger(__name__)

__all__ = [
    "append_month",
    "delta_history",
    "delta_storage",
    "monthly_batches",
    "read_delta",
    "stored_rows",
]


def monthly_batches(
    dataset: ChurnDataset, months: Sequence[str | pd.Timestamp]
) -> list[tuple[str, pd.DataFrame]]:
    """Split activity into the batches that had arrived by each of ``months`` (by creation).

    The first batch holds everything created up to ``months[0]``; each later one what arrived
    in the month up to it, so batches line up with :func:`tables_as_of`. Returns
    ``(label, rows)`` pairs, the label being the month each batch closes.
    """
    check_dataset(dataset)
    if isinstance(months, (str, pd.Timestamp)) or not isinstance(months, Sequence):
        raise InvalidParameterError(
            f"months must be a list of dates like ['2025-02-01', '2025-03-01'], got {months!r}"
        )
    try:
        stamps = [pd.Timestamp(m) for m in months]
    except (ValueError, TypeError):
        stamps = [pd.NaT]
    if any(pd.isna(st) for st in stamps) or any(isinstance(m, bool) for m in months):
        raise InvalidParameterError(
            f"months must be dates like '2025-02-01', got {list(months)!r}"
        )
    if not stamps or stamps != sorted(set(stamps)):
        raise InvalidParameterError(f"months must be distinct and increasing, got {list(months)}")
    created = dataset.activity["created_timestamp"]
    batches = []
    previous = None
    for stamp in stamps:
        mask = created <= stamp if previous is None else (created > previous) & (created <= stamp)
        label = (stamp - pd.DateOffset(months=1)).strftime("%Y-%m")
        batches.append((label, dataset.activity[mask].reset_index(drop=True)))
        previous = stamp
    return batches


def append_month(
    table: str | os.PathLike[str], rows: pd.DataFrame, month: str, merge_schema: bool = False
) -> int:
    """Append one month of rows to the Delta table at ``table``; return the new version.

    The month is stored in the commit's metadata. New columns are refused unless
    ``merge_schema`` is True (Delta's ``schema_mode="merge"``).

    Raises:
        InvalidParameterError: ``rows`` bring columns the table does not have.
    """
    from deltalake import CommitProperties, DeltaTable, write_deltalake

    table = check_path("table", table)
    check_frame("rows", rows)
    check_bool("merge_schema", merge_schema)
    if rows.empty:
        raise InvalidParameterError(
            f"rows for {month!r} are empty; accepted: a month with at least one row"
        )
    if not isinstance(month, str) or not re.fullmatch(r"\d{4}-\d{2}", month):
        raise InvalidParameterError(f"month must be a label like '2025-04', got {month!r}")
    if table.exists() and not (table / "_delta_log").is_dir():
        raise WorkspaceError(
            f"{table} exists but is not a Delta table (no _delta_log); accepted: a new folder "
            "or an existing Delta table"
        )
    if table.exists() and not merge_schema:
        known = {field.name for field in DeltaTable(str(table)).schema().fields}
        new = sorted(set(rows.columns) - known)
        if new:
            raise InvalidParameterError(
                f"rows for {month} bring new column(s) {new} the table does not have; accepted: "
                f"the columns {sorted(known)}, or merge_schema=True to add them"
            )
    if table.exists():
        # Reads as of a time need commits that are clearly apart in time: the monthly loads
        # of a real warehouse are days apart; here they are kept at least 50 ms apart.
        time.sleep(0.05)
    write_deltalake(
        str(table), rows, mode="append", schema_mode="merge" if merge_schema else None,
        commit_properties=CommitProperties(custom_metadata={"month": month}),
    )
    return DeltaTable(str(table)).version()


def delta_history(table: str | os.PathLike[str]) -> pd.DataFrame:
    """Return the table's versions, oldest first: version, operation, month, rows added, times.

    ``committed_at`` is the wall-clock time of each commit and ``latest_at`` a moment at which
    that version was the table's latest (halfway to the next commit); both differ run to run.
    Delta resolves an as-of time by the commit files' modification times, which can sit a
    millisecond away from ``committed_at``; ``latest_at`` stays clear of that edge.
    """
    from deltalake import DeltaTable

    _check_delta(table)
    rows = [
        {
            "version": entry["version"],
            "operation": entry["operation"],
            "month": entry.get("month", ""),
            "rows_added": entry.get("operationMetrics", {}).get("num_added_rows", 0),
            "committed_at": pd.Timestamp(entry["timestamp"], unit="ms", tz="UTC"),
        }
        for entry in DeltaTable(str(table)).history()
    ]
    history = pd.DataFrame(rows).sort_values("version").reset_index(drop=True)
    following = history["committed_at"].shift(-1)
    last = history["committed_at"].iloc[-1] + pd.Timedelta(milliseconds=25)
    history["latest_at"] = (
        history["committed_at"] + (following - history["committed_at"]) / 2
    ).fillna(last)
    return history


def read_delta(
    table: str | os.PathLike[str],
    version: int | None = None,
    as_of: dt.datetime | pd.Timestamp | None = None,
) -> tuple[int, pd.DataFrame]:
    """Read the Delta table at ``version`` or as of time ``as_of`` (latest if neither).

    Returns the version read and its rows, sorted by event time and customer.

    Raises:
        UnknownNameError: ``version`` does not exist or ``as_of`` precedes the first commit.
    """
    from deltalake import DeltaTable

    if version is not None and as_of is not None:
        raise InvalidParameterError("pass version or as_of, not both")
    _check_delta(table)
    delta = DeltaTable(str(table))
    latest = delta.version()
    if version is not None:
        if isinstance(version, bool) or not isinstance(version, int) or not 0 <= version <= latest:
            raise UnknownNameError(
                f"Delta table version {version!r} does not exist; accepted: 0 to {latest}"
            )
        delta.load_as_version(version)
    elif as_of is not None:
        try:
            stamp = pd.Timestamp(as_of)
        except (ValueError, TypeError):
            stamp = pd.NaT
        if pd.isna(stamp) or isinstance(as_of, (bool, int, float)):
            raise InvalidParameterError(
                f"as_of must be a time (datetime or ISO string), got {as_of!r}"
            )
        stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp
        first = delta_history(table)["committed_at"].min()
        if stamp < first:
            raise UnknownNameError(
                f"as_of {stamp} precedes the table's first commit; accepted: times from "
                f"version 0's commit on"
            )
        delta.load_as_version(stamp.to_pydatetime())
    frame = delta.to_pandas()
    keys = [c for c in ("event_timestamp", "customer_id") if c in frame.columns]
    return delta.version(), frame.sort_values(keys).reset_index(drop=True)


def _check_delta(table: Any) -> Path:
    path = check_path("table", table)
    if not (path / "_delta_log").is_dir():
        raise UnknownNameError(
            f"no Delta table at {str(path)!r}; accepted: a folder written by append_month "
            "(with a _delta_log)"
        )
    return path


def delta_storage(table: str | os.PathLike[str]) -> pd.DataFrame:
    """Return the bytes of the table's data files, version by version, against full copies.

    Per version: ``table_bytes``, the size of the files that make up that version (what a
    full copy of it would take); ``stored_bytes``, the bytes of every data file written up to
    it (what Delta keeps: each version's new files once, until ``vacuum``); and
    ``full_copies_bytes``, what keeping a full copy of every version up to it would take.
    The transaction log (small JSON) is left out.
    """
    import pyarrow as pa
    from deltalake import DeltaTable

    _check_delta(table)
    history = delta_history(table)
    seen: dict[str, int] = {}
    rows = []
    full = 0
    for version, month in zip(history["version"], history["month"], strict=True):
        actions = DeltaTable(str(table), version=int(version)).get_add_actions(flatten=True)
        frame = pa.table(actions).to_pandas()
        files = dict(zip(frame["path"], frame["size_bytes"].astype(int), strict=True))
        seen.update(files)
        full += sum(files.values())
        rows.append({"version": int(version), "month": month,
                     "table_bytes": int(sum(files.values())),
                     "stored_bytes": int(sum(seen.values())), "full_copies_bytes": int(full)})
    return pd.DataFrame(rows)


def stored_rows(table: str | os.PathLike[str]) -> int:
    """Return the rows held in the Delta table's data files (every version's files once)."""
    return int(delta_history(table)["rows_added"].sum())
