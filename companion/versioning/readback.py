"""Reading a snapshot back by revision, and checking its bytes against the manifest.

:func:`read_bytes` returns any file of the data repo at any revision through ``dvc.api``
(DVC-tracked files from the cache or the remote, git-tracked files alike);
:func:`read_tables` and :func:`verify_snapshot` check every file against the manifest
committed with it and raise :class:`~companion.errors.LineageError` when one does not match.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
from typing import Any

import pandas as pd

from companion.errors import (
    CompanionError,
    InvalidParameterError,
    LineageError,
    UnknownNameError,
    WorkspaceError,
)
from companion.versioning.exports import file_sha256
from companion.versioning.repo import MANIFEST_PATH, PARAMS_PATH, DataRepo, check_repo, quiet_dvc

logger = logging.getLogger(__name__)

__all__ = ["read_bytes", "read_manifest", "read_tables", "verify_snapshot"]


def read_bytes(repo: DataRepo, path: str, rev: str | None = None) -> bytes:
    """Return the bytes of ``path`` at revision ``rev`` (working copy if None) via ``dvc.api``.

    Works for DVC-tracked files (from the cache or the remote) and git-tracked files alike.

    Raises:
        UnknownNameError: ``rev`` names no commit, or ``path`` is not in the repo at ``rev``.
    """
    import dvc.api
    from dvc.exceptions import PathMissingError

    check_repo(repo)
    if not isinstance(path, str) or not path.strip() or os.path.isabs(path):
        raise InvalidParameterError(
            f"path must be a path relative to the repo such as {MANIFEST_PATH!r}, got {path!r}"
        )
    if rev is not None:
        repo.resolve(rev)
    try:
        with quiet_dvc():
            payload: bytes = dvc.api.read(path, repo=str(repo.path), rev=rev, mode="rb")
            return payload
    except (PathMissingError, FileNotFoundError):
        raise UnknownNameError(
            f"{path!r} is not in the data repo at revision {rev or 'working copy'!r}; accepted: "
            f"{', '.join(_tracked_files(repo, rev))}"
        ) from None


def _tracked_files(repo: DataRepo, rev: str | None) -> list[str]:
    try:
        manifest = json.loads(read_bytes(repo, MANIFEST_PATH, rev))
    except CompanionError:
        return [MANIFEST_PATH, PARAMS_PATH]
    return [MANIFEST_PATH, PARAMS_PATH, *(t["file"] for t in manifest["tables"].values())]


def read_manifest(repo: DataRepo, rev: str | None = None) -> dict[str, Any]:
    """Return the snapshot manifest committed at ``rev`` (working copy if None)."""
    check_repo(repo)
    if rev is None:
        path = repo.path / MANIFEST_PATH
        if not path.exists():
            raise WorkspaceError(f"no manifest at {MANIFEST_PATH}; take a snapshot first")
        manifest: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        return manifest
    manifest = json.loads(read_bytes(repo, MANIFEST_PATH, rev))
    return manifest


def read_tables(repo: DataRepo, rev: str | None = None) -> dict[str, pd.DataFrame]:
    """Return the export's tables as they were at ``rev``, checked against its manifest.

    Raises:
        LineageError: a file's bytes do not match the manifest committed with them.
    """
    manifest = read_manifest(repo, rev)
    tables = {}
    for name, entry in manifest["tables"].items():
        payload = read_bytes(repo, entry["file"], rev)
        _check_hash(entry["file"], entry["sha256"], hashlib.sha256(payload).hexdigest(), rev)
        tables[name] = pd.read_parquet(io.BytesIO(payload))
    return tables


def _check_hash(file: str, expected: str, found: str, rev: str | None) -> None:
    if expected != found:
        raise LineageError(
            f"{file} does not match its manifest at {rev or 'the working copy'}: expected "
            f"sha256 {expected[:12]}, found {found[:12]}; the file was changed after the "
            "snapshot. Restore it with `dvc checkout` (or `dvc pull`) or take a new snapshot"
        )


def verify_snapshot(repo: DataRepo) -> dict[str, str]:
    """Check every file of the working copy's ``data/raw`` against the manifest.

    Returns the verified sha256 of each file.

    Raises:
        LineageError: a file is missing or its bytes differ from the manifest.
    """
    manifest = read_manifest(repo)  # checks repo
    verified = {}
    for entry in manifest["tables"].values():
        path = repo.path / entry["file"]
        if not path.exists():
            raise LineageError(
                f"{entry['file']} is missing from the working copy; accepted: restore it "
                "with `dvc checkout` or `dvc pull`"
            )
        found = file_sha256(path)
        _check_hash(entry["file"], entry["sha256"], found, None)
        verified[entry["file"]] = found
    logger.info("%d file(s) of the working copy match the manifest", len(verified))
    return verified
