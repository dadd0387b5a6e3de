"""Lumen's monthly exports as folders, and the data-quality checks an export must pass.

An export of month ``M`` (``"2025-10-01"``) is what the warehouse knew when the month closed,
on the first day of ``M + 1``: the four tables of :data:`EXPORT_TABLES` as Parquet files and a
``manifest.json`` (month, cut-off, rows and SHA-256 of every file, the simulation's
parameters). :func:`write_export` makes one land from a simulated dataset, all or nothing (the
manifest is there only when every table is); :func:`read_export` reads one back after checking
every file against the manifest.

:func:`quality_checks` is the ``validate`` step's body: schema, keys and cut-off, ranges,
missing values, units, and the month's own rows. Each check says whether it passed and why;
the data-quality incident (``minutes_watched`` in seconds for a third of customers, 8% empty)
fails ``ranges``, ``missing_values`` and ``units``.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from companion.core.checks import check_date, check_number, check_path
from companion.core.files import atomic_write_text, file_sha256
from companion.data import ChurnDataset, SimulationConfig, check_dataset
from companion.errors import DataQualityError, InvalidParameterError
from companion.versioning import EXPORT_TABLES, tables_as_of

logger = logging.getLogger(__name__)

__all__ = [
    "EXPORT_MANIFEST",
    "EXPORT_SCHEMA",
    "EXPORT_TABLES",
    "check_month",
    "export_as_of",
    "quality_checks",
    "read_export",
    "read_manifest",
    "write_export",
]

EXPORT_MANIFEST = "manifest.json"
"""The file that says an export is complete: written last, beside the tables."""

EXPORT_SCHEMA: dict[str, dict[str, str]] = {
    "customers": {"customer_id": "i", "signup_date": "M", "plan": "c", "region": "c",
                  "acquisition_channel": "c", "age_band": "c", "monthly_fee": "f"},
    "activity": {"customer_id": "i", "event_timestamp": "M", "created_timestamp": "M",
                 "sessions": "i", "minutes_watched": "f", "days_active": "i",
                 "support_tickets": "i", "payment_failures": "i"},
    "labels": {"customer_id": "i", "snapshot_timestamp": "M", "churned_30d": "i"},
    "prices": {"plan": "c", "effective_from": "M", "monthly_fee": "f"},
}
"""Each table's columns and their kind: ``i`` integer, ``f`` float, ``M`` timestamp, ``c``
category or text."""

MINUTES_PER_WEEK = 7 * 24 * 60
"""No one watches more minutes in a week than the week has: a larger value is not minutes."""
COUNT_RANGES = {"sessions": (0, None), "days_active": (0, 7), "support_tickets": (0, None),
                "payment_failures": (0, None), "minutes_watched": (0, MINUTES_PER_WEEK)}
UNIT_BOUNDS = (0.5, 2.0)
"""Accepted ratio of the month's 90th percentile of minutes per session to the three months
before: a change of unit (seconds for minutes) moves it by a factor of 60."""


def check_month(value: Any, name: str = "month") -> pd.Timestamp:
    """Return ``value`` (``'YYYY-MM-01'``) as the first day of a month, or raise naming it."""
    stamp = check_date(name, value)
    if stamp != stamp.normalize() or stamp.day != 1:
        raise InvalidParameterError(
            f"{name} must be the first day of a month like '2025-10-01', got {value!r}"
        )
    return stamp


def export_as_of(month: Any) -> pd.Timestamp:
    """The cut-off of month ``month``'s export: the first day of the next month."""
    return check_month(month) + pd.DateOffset(months=1)


def write_export(dataset: ChurnDataset, month: str, folder: str | os.PathLike[str]) -> Path:
    """Write the export of ``month`` (what the warehouse knew when it closed) into ``folder``.

    The tables are written into a temporary folder beside ``folder``, the manifest last, and
    the whole folder is renamed into place: an export either lands complete or not at all.
    ``folder`` must not exist yet (an export lands once). Returns ``folder``.
    """
    check_dataset(dataset)
    stamp = check_month(month)
    target = check_path("folder", folder)
    if target.exists():
        raise InvalidParameterError(
            f"{target} already exists; accepted: a new folder (an export lands once)"
        )
    tables = tables_as_of(dataset, export_as_of(stamp))
    target.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        entries = {}
        for name in EXPORT_TABLES:
            path = scratch / f"{name}.parquet"
            tables[name].to_parquet(path, index=False)
            entries[name] = {"file": path.name, "rows": int(len(tables[name])),
                             "sha256": file_sha256(path)}
        manifest = {"month": str(stamp.date()), "as_of": str(export_as_of(stamp).date()),
                    "simulation": dataset.config.to_dict(), "tables": entries}
        atomic_write_text(scratch / EXPORT_MANIFEST,
                          json.dumps(manifest, indent=2, sort_keys=True) + "\n")
        os.chmod(scratch, 0o755)
        os.replace(scratch, target)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    logger.info("export of %s written", stamp.date())
    return target


def read_manifest(folder: str | os.PathLike[str]) -> dict[str, Any]:
    """Return an export's manifest; raise :class:`DataQualityError` if there is none."""
    path = check_path("folder", folder) / EXPORT_MANIFEST
    if not path.is_file():
        raise DataQualityError(
            f"no {EXPORT_MANIFEST} in the export folder {Path(folder).name!r}: the export is "
            "incomplete (a complete export holds its tables and a manifest)"
        )
    manifest: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return manifest


def read_export(
    folder: str | os.PathLike[str], month: str | None = None
) -> tuple[dict[str, pd.DataFrame], dict[str, Any]]:
    """Read an export's tables after checking each file's rows and SHA-256 against its manifest.

    Raises:
        DataQualityError: a missing or altered file, or an export of another month.
    """
    manifest = read_manifest(folder)
    wanted = None if month is None else str(check_month(month).date())
    if wanted is not None and manifest.get("month") != wanted:
        raise DataQualityError(f"the export holds month {manifest.get('month')!r}, not {wanted!r}")
    tables = {}
    for name in EXPORT_TABLES:
        entry = manifest.get("tables", {}).get(name)
        path = Path(folder) / f"{name}.parquet"
        if entry is None or not path.is_file():
            raise DataQualityError(
                f"the export has no {name} table; it needs {list(EXPORT_TABLES)}"
            )
        if file_sha256(path) != entry["sha256"]:
            raise DataQualityError(f"{path.name} does not match the SHA-256 of its manifest")
        tables[name] = pd.read_parquet(path)
        if len(tables[name]) != entry["rows"]:
            raise DataQualityError(
                f"{path.name} holds {len(tables[name])} rows; its manifest says {entry['rows']}"
            )
    return tables, manifest


def config_of(manifest: dict[str, Any]) -> SimulationConfig:
    """The simulation parameters an export was cut from (they date its snapshots)."""
    return SimulationConfig.from_mapping(manifest["simulation"])


def _kind(series: pd.Series) -> str:
    dtype = series.dtype
    if isinstance(dtype, pd.CategoricalDtype) or pd.api.types.is_string_dtype(dtype):
        return "c"
    return str(np.dtype(dtype).kind).replace("u", "i")


def _check(name: str, problems: list[str], passed_detail: str) -> dict[str, Any]:
    return {"check": name, "passed": not problems,
            "detail": "; ".join(problems) if problems else passed_detail}


def quality_checks(
    tables: dict[str, pd.DataFrame], month: str, *, max_missing: float = 0.02
) -> list[dict[str, Any]]:
    """Run the export's data-quality checks; return one ``{check, passed, detail}`` per check.

    ``max_missing``: the largest share of empty values a column may have in the month's rows.
    """
    stamp = check_month(month)
    check_number("max_missing", max_missing, minimum=0.0, maximum=1.0)
    as_of = export_as_of(stamp)
    results = []
    problems = []
    for table, columns in EXPORT_SCHEMA.items():
        for column, kind in columns.items():
            found = _kind(tables[table][column]) if column in tables[table] else "none"
            if found != kind:
                problems.append(f"{table}.{column} is {found!r}, expected {kind!r}")
    results.append(_check("schema", problems, "every table has its columns and types"))
    if problems:  # the other checks read these columns
        return results
    customers, activity, labels = tables["customers"], tables["activity"], tables["labels"]
    known = set(customers["customer_id"])
    problems = []
    if customers["customer_id"].duplicated().any():
        problems.append("customer_id repeats in customers")
    for name in ("activity", "labels"):
        strangers = int((~tables[name]["customer_id"].isin(known)).sum())
        if strangers:
            problems.append(f"{strangers} {name} rows name unknown customers")
    late = int((activity["created_timestamp"] > as_of).sum())
    if late:
        problems.append(f"{late} activity rows arrived after the cut-off {as_of.date()}")
    results.append(_check("keys", problems, "customers unique, every row's customer known"))

    problems = []
    for column, (low, high) in COUNT_RANGES.items():
        values = activity[column].dropna()
        bad = (values < low) | (values > high if high is not None else False)
        if bad.any():
            bound = f"[{low}, {high}]" if high is not None else f">= {low}"
            problems.append(f"activity.{column}: {bad.mean():.2%} of values outside {bound}")
    if not labels["churned_30d"].isin([0, 1]).all():
        problems.append("labels.churned_30d holds values other than 0 and 1")
    if not (customers["monthly_fee"] > 0).all():
        problems.append("customers.monthly_fee holds values <= 0")
    results.append(_check("ranges", problems, "every value within its range"))

    start = as_of - pd.DateOffset(months=1)
    new = activity[activity["event_timestamp"] >= start]
    missing = {f"activity.{c}": float(new[c].isna().mean()) for c in EXPORT_SCHEMA["activity"]}
    missing.update({f"customers.{c}": float(customers[c].isna().mean())
                    for c in EXPORT_SCHEMA["customers"]})
    problems = [f"{column}: {share:.2%} empty (accepted: {max_missing:.0%})"
                for column, share in missing.items() if share > max_missing]
    worst = max(missing.values()) if missing else 0.0
    results.append(_check("missing_values", problems, f"at most {worst:.2%} empty"))

    before = activity[(activity["event_timestamp"] < start)
                      & (activity["event_timestamp"] >= start - pd.DateOffset(months=3))]
    ratio = _minutes_per_session(new) / _minutes_per_session(before)
    problems = [] if UNIT_BOUNDS[0] <= ratio <= UNIT_BOUNDS[1] else [
        f"minutes_watched per session is {ratio:.1f}x the three months before (accepted: "
        f"{UNIT_BOUNDS[0]}x to {UNIT_BOUNDS[1]}x): a change of unit"
    ]
    results.append(_check("units", problems, f"minutes per session {ratio:.2f}x the months before"))

    problems = [] if len(new) else [f"no activity rows for the month {stamp.date()}"]
    results.append(_check("new_rows", problems, "the month's activity arrived"))
    return results


def _minutes_per_session(activity: pd.DataFrame) -> float:
    rows = activity[(activity["sessions"] > 0) & activity["minutes_watched"].notna()]
    if rows.empty:
        return float("nan")
    return float((rows["minutes_watched"] / rows["sessions"]).quantile(0.9))
