"""Exports and their manifests: what the warehouse knew at a date, written, tracked and tagged.

:func:`tables_as_of` cuts the simulated dataset at a date the way a monthly export would;
:func:`snapshot_export` writes it to ``data/raw``, tracks it with ``dvc add``, commits and
tags it ``data-YYYY-MM`` with a JSON manifest (content hash, rows, schema, file hashes and the
generating parameters, :func:`build_manifest`).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from companion.core.checks import check_frame, check_path
from companion.core.files import atomic_write_text
from companion.core.files import file_sha256 as _file_digest
from companion.data import (
    LABEL_WINDOW_DAYS,
    ChurnDataset,
    SimulationConfig,
    check_dataset,
    content_hash,
)
from companion.errors import InvalidParameterError
from companion.versioning.repo import (
    DATA_TAG_PREFIX,
    EXPORT_TABLES,
    MANIFEST_PATH,
    RAW_DIR,
    DataRepo,
    check_repo,
    git_date,
    write_params,
)

logger = logging.getLogger(__name__)

__all__ = ["Snapshot", "build_manifest", "file_sha256", "snapshot_export", "tables_as_of"]


def tables_as_of(dataset: ChurnDataset, as_of: str | pd.Timestamp) -> dict[str, pd.DataFrame]:
    """Return what the warehouse knew at ``as_of``: the export a data team would ship then.

    Customers who had signed up, activity rows that had arrived (``created_timestamp``), and
    the labels whose 30-day window had closed.

    Example:
        >>> from companion.data import generate
        >>> ds = generate(n_customers=50, months=3, scenarios=())
        >>> {k: len(v) > 0 for k, v in tables_as_of(ds, "2025-03-01").items()}
        {'customers': True, 'activity': True, 'labels': True, 'prices': True}
    """
    check_dataset(dataset)
    stamp = check_as_of(dataset.config, as_of)
    labels_known = dataset.labels["snapshot_timestamp"] + pd.Timedelta(days=LABEL_WINDOW_DAYS)
    tables = {
        "customers": dataset.customers[dataset.customers["signup_date"] <= stamp],
        "activity": dataset.activity[dataset.activity["created_timestamp"] <= stamp],
        "labels": dataset.labels[labels_known <= stamp],
        "prices": dataset.prices[dataset.prices["effective_from"] <= stamp],
    }
    return {name: frame.reset_index(drop=True) for name, frame in tables.items()}


def check_as_of(config: SimulationConfig, as_of: Any) -> pd.Timestamp:
    """Return ``as_of`` as a midnight timestamp within the data, or raise naming the range."""
    try:
        stamp = pd.Timestamp(as_of)
    except (ValueError, TypeError):
        stamp = None
    first_label = config.start_timestamp + pd.Timedelta(days=LABEL_WINDOW_DAYS)
    if stamp is None or pd.isna(stamp) or stamp != stamp.normalize():
        raise InvalidParameterError(f"as_of must be a date like '2025-04-01', got {as_of!r}")
    if not first_label <= stamp <= config.end_timestamp:
        raise InvalidParameterError(
            f"as_of {stamp.date()} is outside the data; accepted: dates from "
            f"{first_label.date()} (first labels known) to {config.end_timestamp.date()}"
        )
    return stamp


def file_sha256(path: str | os.PathLike[str]) -> str:
    """Return the SHA-256 of a file's bytes (:func:`companion.core.files.file_sha256`).

    Raises:
        InvalidParameterError: ``path`` is not a path, or names no file.
    """
    path = check_path("path", path)
    if not path.is_file():
        raise InvalidParameterError(f"no file at {str(path)!r}; accepted: the path of a file")
    return _file_digest(path)


def build_manifest(
    tables: Mapping[str, pd.DataFrame],
    files: Mapping[str, str | os.PathLike[str]],
    parameters: Mapping[str, Any],
) -> dict[str, Any]:
    """Describe a snapshot: content hash, rows, schema and file hash per table, parameters.

    ``files`` maps each table to its file; the manifest records paths relative to the repo's
    ``data/raw`` folder, so it is the same wherever the repo lives.

    Raises:
        InvalidParameterError: a table that is not a DataFrame, a table without a file (or a
            file without a table), or parameters that are not a mapping.
    """
    if not isinstance(tables, Mapping) or not tables:
        raise InvalidParameterError(
            f"tables must be a non-empty mapping of name to DataFrame, got {type(tables).__name__}"
        )
    for name, frame in tables.items():
        check_frame(f"table {name!r}", frame)
    if not isinstance(files, Mapping) or set(files) != set(tables):
        shown = sorted(files) if isinstance(files, Mapping) else type(files).__name__
        raise InvalidParameterError(
            f"files must map exactly the tables {sorted(tables)} to their files, got {shown}"
        )
    digests = {name: file_sha256(files[name]) for name in files}
    if not isinstance(parameters, Mapping):
        raise InvalidParameterError(
            f"parameters must be a mapping, got {type(parameters).__name__}"
        )
    return {
        "content_hash": content_hash(tables),
        "parameters": dict(parameters),
        "tables": {
            name: {
                "file": f"{RAW_DIR}/{Path(files[name]).name}",
                "sha256": digests[name],
                "rows": int(len(frame)),
                "schema": {str(c): str(t) for c, t in frame.dtypes.items()},
            }
            for name, frame in sorted(tables.items())
        },
    }


@dataclass(frozen=True)
class Snapshot:
    """One committed, tagged export.

    Attributes:
        tag: the git tag, e.g. ``data-2025-04``.
        commit: the git commit the tag points to.
        manifest: the manifest committed with it (see :func:`build_manifest`).
    """

    tag: str
    commit: str
    manifest: dict[str, Any]


def snapshot_export(repo: DataRepo, dataset: ChurnDataset, as_of: str) -> Snapshot:
    """Write the export as of ``as_of``, ``dvc add`` it, commit and tag it ``data-YYYY-MM``.

    The Parquet files are written to a temporary folder and moved into ``data/raw`` only when
    all are written; the commit is dated ``as_of`` (06:00 UTC) so its hash is reproducible.
    """
    check_repo(repo)
    check_dataset(dataset)
    stamp = check_as_of(dataset.config, as_of)
    tag = f"{DATA_TAG_PREFIX}{stamp.strftime('%Y-%m')}"
    if tag in repo.tags():
        raise InvalidParameterError(
            f"tag {tag!r} already exists; accepted: an as_of month not yet snapshotted "
            f"(existing: {repo.tags()})"
        )
    tables = tables_as_of(dataset, stamp)
    raw = repo.path / RAW_DIR
    raw.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=".raw-", dir=raw.parent))
    try:
        files = {}
        for name in EXPORT_TABLES:
            files[name] = scratch / f"{name}.parquet"
            tables[name].to_parquet(files[name], index=False)
        parameters = {"as_of": str(stamp.date()), "simulation": dataset.config.to_dict()}
        manifest = build_manifest(tables, files, parameters)
        if raw.exists():
            shutil.rmtree(raw)
        os.replace(scratch, raw)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    atomic_write_text(
        repo.path / MANIFEST_PATH, json.dumps(manifest, indent=2, sort_keys=True) + "\n"
    )
    export = {"as_of": str(stamp.date())}
    write_params(repo, {"simulation": dataset.config.to_dict(), "export": export})
    with repo.dvc() as dvc:
        dvc.add(RAW_DIR)
    commit = repo.commit(f"Export as of {stamp.date()}", git_date(stamp), tag=tag)
    logger.info("export as of %s committed as %s (%s)", stamp.date(), tag, commit[:7])
    return Snapshot(tag, commit, manifest)
