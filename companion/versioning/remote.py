"""The working copy against DVC: ``dvc status`` in numbers, push, pull, checkout.

:func:`dvc_status` and :func:`summarize_status` say which stages would rerun and which
tracked paths changed; :func:`push` and :func:`pull` move data to and from the repo's DVC
remote (a vanished remote folder is named before DVC is asked), :func:`checkout` restores the
working copy from the cache and :func:`drop_local_data` forgets it, as on a fresh clone.
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from companion.core.checks import check_bool, check_path
from companion.errors import InvalidParameterError, UnknownNameError, WorkspaceError
from companion.versioning.repo import RAW_DIR, REMOTE_NAME, DataRepo, check_repo

logger = logging.getLogger(__name__)

__all__ = [
    "StatusSummary",
    "checkout",
    "drop_local_data",
    "dvc_status",
    "folder_bytes",
    "pull",
    "push",
    "summarize_status",
]


def dvc_status(repo: DataRepo) -> dict[str, Any]:
    """Return ``dvc status`` for the working copy: empty when data matches its ``.dvc`` files."""
    check_repo(repo)
    with repo.dvc() as dvc:
        status: dict[str, Any] = dvc.status()
    return status


@dataclass(frozen=True)
class StatusSummary:
    """``dvc status`` in numbers: which stages would rerun, which tracked paths changed.

    Attributes:
        stages_changed: pipeline stages with a changed dependency, output or command.
        paths_changed: data, code or output paths DVC reports as modified, new or deleted.
    """

    stages_changed: tuple[str, ...]
    paths_changed: tuple[str, ...]

    def __str__(self) -> str:
        def part(items: tuple[str, ...], noun: str, verb: str) -> str:
            names = f" ({', '.join(items)})" if items else ""
            return f"{len(items)} {noun}{'' if len(items) == 1 else 's'} {verb}{names}"

        return (f"{part(self.stages_changed, 'stage', 'changed')}, "
                f"{part(self.paths_changed, 'file', 'modified')}")


def summarize_status(
    status: Mapping[str, Any], relative_to: str | os.PathLike[str] | None = None
) -> StatusSummary:
    """Count what a ``dvc status`` result reports: stages to rerun and paths that changed.

    Entries named ``*.dvc`` are tracked data (``dvc add``), not stages; their changed outputs
    count as paths only. DVC names a dependency outside the repo (the companion's code) by
    its absolute path: with ``relative_to`` (the repo's folder) it is shown relative to it.

    Example:
        >>> str(summarize_status({}))
        '0 stages changed, 0 files modified'
        >>> str(summarize_status({"train": [{"changed deps": {"a.py": "modified"}}]}))
        '1 stage changed (train), 1 file modified (a.py)'
    """
    if not isinstance(status, Mapping):
        raise InvalidParameterError(
            f"status must be the dict dvc status returns, got {type(status).__name__}"
        )
    stages: set[str] = set()
    paths: set[str] = set()
    for name, changes in status.items():
        if not isinstance(changes, list):
            raise InvalidParameterError(
                f"status entry {name!r} must be a list of changes, got {changes!r}"
            )
        if not str(name).endswith(".dvc"):
            stages.add(str(name))
        for change in changes:
            if isinstance(change, Mapping):
                for kind in change.values():
                    if isinstance(kind, Mapping):
                        paths.update(str(p) for p in kind)
    if relative_to is not None:
        base = check_path("relative_to", relative_to)
        paths = {Path(os.path.relpath(p, base)).as_posix() if os.path.isabs(p) else p
                 for p in paths}
    return StatusSummary(tuple(sorted(stages)), tuple(sorted(paths)))


def folder_bytes(path: str | os.PathLike[str]) -> int:
    """Return the bytes of every file under ``path`` (0 if it does not exist)."""
    path = check_path("path", path)
    if path.is_file():
        return path.stat().st_size
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())



def _check_remote(repo: DataRepo, remote: str | None, must_exist: bool) -> str:
    check_repo(repo)
    if remote is not None and (not isinstance(remote, str) or not remote):
        raise InvalidParameterError(f"remote must be a remote's name or None, got {remote!r}")
    remotes = {**repo.remotes(), **repo.remotes("local")}
    name = REMOTE_NAME if remote is None else remote
    if name not in remotes:
        raise UnknownNameError(
            f"DVC remote {name!r} is not configured; accepted: {sorted(remotes)} "
            "(add one with `dvc remote add NAME URL`)"
        )
    url = repo.remote_url(name)
    if must_exist and "://" not in url and not Path(url).is_dir():
        shown = repo.remotes().get(name, "set in .dvc/config.local")
        raise WorkspaceError(
            f"DVC remote {name!r} (url {shown!r} in .dvc/config) points to a folder "
            "that does not exist; accepted: an existing remote folder (restore it, or "
            "`dvc remote modify` its url)"
        )
    return name


def push(repo: DataRepo, remote: str | None = None, all_revisions: bool = False) -> int:
    """Upload data to ``remote``; return the files transferred.

    By default the data the working copy references (``dvc push``); with ``all_revisions``
    the data of every tag and branch (``dvc push --all-tags --all-branches``). Every revision
    lands in the configured remote folder: its absolute path in ``.dvc/config.local`` is what
    DVC uses, for the working copy and for older revisions alike (see :func:`init_data_repo`).
    """
    check_bool("all_revisions", all_revisions)
    name = _check_remote(repo, remote, must_exist=False)
    with repo.dvc() as dvc:
        return int(
            dvc.push(remote=name, all_tags=all_revisions, all_branches=all_revisions)
        )


def pull(repo: DataRepo, remote: str | None = None) -> int:
    """Download the working copy's data from ``remote`` and check it out; return files fetched.

    Raises:
        UnknownNameError: ``remote`` is not configured.
        WorkspaceError: the remote's folder is gone.
    """
    name = _check_remote(repo, remote, must_exist=True)
    with repo.dvc() as dvc:
        result = dvc.pull(remote=name)
    return int(result["stats"]["fetched"])


def checkout(repo: DataRepo) -> dict[str, Any]:
    """Restore the working copy of tracked data from the cache (``dvc checkout``)."""
    check_repo(repo)
    with repo.dvc() as dvc:
        restored: dict[str, Any] = dvc.checkout(force=True)
    return restored


def drop_local_data(repo: DataRepo) -> None:
    """Delete the working copy of ``data/raw`` and the DVC cache, as on a fresh clone."""
    check_repo(repo)
    shutil.rmtree(repo.path / RAW_DIR, ignore_errors=True)
    shutil.rmtree(repo.path / ".dvc" / "cache", ignore_errors=True)
