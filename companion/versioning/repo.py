"""The data repo: a git + DVC repository with a fixed identity, its remote, DVC kept quiet.

:func:`init_data_repo` creates one with a local DVC remote; :class:`DataRepo` runs git in it
(failures raise :class:`~companion.errors.GitError`) and opens DVC's Python API on it
(failures raise :class:`~companion.errors.DvcError`). The remote is committed as a relative
path (the same on every machine) and also written as an absolute path to the uncommitted
``.dvc/config.local``: DVC resolves a relative remote URL against the filesystem root for
revisions other than the working copy (``dvc push -T`` with ``url = ../remote`` writes to
``/remote``), so the local setting keeps every push inside the workspace. DVC's own per-repo
state (its "site cache", ``/var/tmp/dvc`` by default) is kept in the repo too
(:data:`SITE_CACHE_DIR`).

The small helpers the other modules of :mod:`companion.versioning` share live here as well:
argument checks for a repo and a dataset, the commit date of a day, ``params.yaml``.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import shutil
import subprocess
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from companion.core.checks import check_date, check_identifier
from companion.core.env import quiet, scoped_env
from companion.core.files import atomic_write_text
from companion.errors import (
    DvcError,
    GitError,
    InvalidParameterError,
    UnknownNameError,
    WorkspaceError,
)

logger = logging.getLogger(__name__)

RAW_DIR = "data/raw"
"""Folder of the data repo that holds the tracked export (one Parquet file per table)."""
MANIFEST_PATH = "data/manifest.json"
"""The snapshot manifest, tracked by git beside the DVC pointer ``data/raw.dvc``."""
PARAMS_PATH = "params.yaml"
EXPORT_TABLES = ("customers", "activity", "labels", "prices")
"""Tables of an export: what the warehouse knew about customers, activity, labels and prices."""
REMOTE_NAME = "storage"
DATA_TAG_PREFIX = "data-"
GIT_IDENTITY = {
    "GIT_AUTHOR_NAME": "Lumen Data Team",
    "GIT_AUTHOR_EMAIL": "data@lumen.example",
    "GIT_COMMITTER_NAME": "Lumen Data Team",
    "GIT_COMMITTER_EMAIL": "data@lumen.example",
}
"""The fixed identity of every commit in a workspace's data repo."""
SITE_CACHE_DIR = ".dvc/tmp/site_cache"
"""Where DVC keeps its per-repo state (the "site cache"), inside the repo and ignored by git.

DVC's default is ``/var/tmp/dvc/repo/<hash>``, outside the workspace, one folder for every
repository it ever opened. :func:`init_data_repo` writes this folder's absolute path to
``.dvc/config.local`` as ``core.site_cache_dir``: the setting is read as given (a relative
path would be taken from the current directory, not from the repo), so it belongs to the
machine's own config, never to the committed one.
"""
_TAG = r"(?!.*\.\.)(?!.*(\.|\.lock)$)[A-Za-z0-9][A-Za-z0-9._-]*"


@contextlib.contextmanager
def quiet_dvc() -> Iterator[io.StringIO]:
    """Silence DVC's hints and spinners for the block (:func:`companion.core.env.quiet`).

    Importing ``dvc`` also wraps ``sys.stdout`` with colorama, which flushes every write
    separately (a notebook then shows a print as many fragments): the original stream is put
    back first. Errors still raise.
    """
    import colorama
    import dvc  # noqa: F401 - installs DVC's handlers before their level is raised

    colorama.deinit()
    with quiet("dvc", capture_output=True) as sink:
        yield sink


@dataclass(frozen=True)
class DataRepo:
    """A git + DVC repository holding versioned exports.

    Attributes:
        path: the repository's root folder.
    """

    path: Path

    def git(self, *args: str, date: str | None = None) -> str:
        """Run ``git args`` in the repo with the fixed identity (and ``date`` for commits).

        Raises:
            GitError: git failed; the message holds the command and git's own words.
        """
        env = {**os.environ, **GIT_IDENTITY, "GIT_CONFIG_NOSYSTEM": "1", "HOME": str(self.path)}
        if date is not None:
            env["GIT_AUTHOR_DATE"] = env["GIT_COMMITTER_DATE"] = date
        result = subprocess.run(  # noqa: S603
            ["git", "-c", "init.defaultBranch=main", "-c", "commit.gpgsign=false", *args],  # noqa: S607
            cwd=self.path, env=env, capture_output=True, text=True, check=False,
        )
        if result.returncode != 0:
            raise GitError(f"git {' '.join(args)} failed in {self.path}: {result.stderr.strip()}")
        return result.stdout.strip()

    def commit(self, message: str, date: str, tag: str | None = None) -> str:
        """Stage everything, commit with ``date`` as author and committer date; return the hash.

        Raises:
            InvalidParameterError: an empty message, a date that is not a date, a tag that is
                not a plain name (letters, digits, ``.``, ``_``, ``-``) or already exists;
                all checked before anything is staged.
        """
        if not isinstance(message, str) or not message.strip():
            raise InvalidParameterError(f"message must be a non-empty string, got {message!r}")
        try:
            stamp = pd.Timestamp(date) if isinstance(date, str) else None
        except ValueError:
            stamp = None
        if stamp is None or pd.isna(stamp):
            raise InvalidParameterError(
                f"date must be an ISO date string like '2025-04-01T06:00:00+00:00', got {date!r}"
            )
        if tag is not None:
            try:
                check_identifier("tag", tag, _TAG, "letters, digits, '.', '_', '-'")
            except InvalidParameterError:
                raise InvalidParameterError(
                    f"tag must be a plain name such as 'data-2025-04', got {tag!r}; accepted: "
                    "letters, digits, '.', '_' and '-', starting with a letter or digit"
                ) from None
            if tag in self.tags():
                raise InvalidParameterError(
                    f"tag {tag!r} already exists; accepted: a new tag name "
                    f"(existing: {self.tags()})"
                )
        self.git("add", "-A")
        self.git("commit", "-q", "--allow-empty", "-m", message, date=date)
        if tag is not None:
            self.git("tag", tag)
        return self.head()

    def head(self) -> str:
        """Return the commit hash of HEAD."""
        return self.git("rev-parse", "HEAD")

    def tags(self) -> list[str]:
        """Return the repo's tags, sorted."""
        return sorted(self.git("tag", "--list").split())

    def resolve(self, rev: str) -> str:
        """Return the commit hash ``rev`` (a tag, branch or hash) names.

        Raises:
            UnknownNameError: ``rev`` names no commit; the message lists the tags.
        """
        if not isinstance(rev, str) or not rev or rev.startswith("-"):
            raise InvalidParameterError(f"revision must be a tag, branch or commit, got {rev!r}")
        try:
            return self.git("rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}")
        except GitError:
            raise UnknownNameError(
                f"revision {rev!r} does not exist in the data repo; accepted: a tag "
                f"({', '.join(self.tags()) or 'none yet'}), 'main' or a commit hash"
            ) from None

    def remotes(self, level: str = "repo") -> dict[str, str]:
        """Return the DVC remotes of one config file, name to URL as written there.

        ``level`` is ``"repo"`` (``.dvc/config``, committed) or ``"local"``
        (``.dvc/config.local``, this machine only, ignored by git).
        """
        from configobj import ConfigObj

        files = {"repo": "config", "local": "config.local"}
        if level not in files:
            raise InvalidParameterError(
                f"config level {level!r} is not known; accepted: {sorted(files)}"
            )
        config = ConfigObj(str(self.path / ".dvc" / files[level]))
        return {
            section.split('"')[1]: values["url"]
            for section, values in config.items()
            if section.startswith('remote "') and "url" in values
        }

    def remote_url(self, name: str) -> str:
        """Return the URL DVC uses for remote ``name``: the local setting wins over the repo's.

        A relative path of ``.dvc/config`` is returned resolved against ``.dvc``, as DVC does
        for the working copy.
        """
        local, committed = self.remotes("local"), self.remotes()
        url = local.get(name, committed.get(name))
        if url is None:
            raise UnknownNameError(
                f"DVC remote {name!r} is not configured; accepted: "
                f"{sorted(set(local) | set(committed))}"
            )
        if "://" in url or os.path.isabs(url):
            return url
        return str((self.path / ".dvc" / url).resolve())

    @contextlib.contextmanager
    def dvc(self) -> Iterator[Any]:
        """Open DVC's Python API on the repo, from its own folder and quiet, and close it.

        Raises:
            DvcError: DVC failed inside the block; the message holds DVC's own words.
        """
        from dvc.exceptions import DvcException
        from dvc.repo import Repo

        with contextlib.chdir(self.path), quiet_dvc():
            repo = Repo(".")
            try:
                yield repo
            except DvcException as error:
                raise DvcError(f"DVC failed in the data repo {self.path}: {error}") from error
            finally:
                repo.close()


def check_repo(repo: Any) -> DataRepo:
    """Refuse anything but a :class:`DataRepo` whose folder holds a git and a DVC repo."""
    if not isinstance(repo, DataRepo):
        raise InvalidParameterError(
            f"repo must be a DataRepo, got {type(repo).__name__}; accepted: the DataRepo "
            "returned by init_data_repo (or DataRepo(path) of an existing one)"
        )
    missing = [name for name in (".git", ".dvc") if not (repo.path / name).is_dir()]
    if missing:
        raise WorkspaceError(
            f"{repo.path} is not a data repo (no {' or '.join(missing)}); accepted: a folder "
            "made by init_data_repo"
        )
    return repo


def git_date(day: str | pd.Timestamp, hours: int = 6) -> str:
    """Return the ISO date git records for a commit made ``hours`` after midnight UTC of ``day``."""
    try:
        stamp = check_date("date", day, aware="utc")
    except InvalidParameterError:
        raise InvalidParameterError(f"date must be a day like '2025-01-01', got {day!r}") from None
    stamp = stamp.normalize() + pd.Timedelta(hours=hours)
    return stamp.strftime("%Y-%m-%dT%H:%M:%S+00:00")


def read_params(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Return the contents of a ``params.yaml`` (empty if the file is empty)."""
    import yaml

    return yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}


def write_params(repo: DataRepo, updates: Mapping[str, Any]) -> None:
    """Update top-level sections of the repo's ``params.yaml``, written atomically."""
    import yaml

    path = repo.path / PARAMS_PATH
    params = read_params(path) if path.exists() else {}
    params.update(updates)
    atomic_write_text(path, yaml.safe_dump(params, sort_keys=True))


def init_data_repo(
    path: str | os.PathLike[str],
    remote_dir: str | os.PathLike[str],
    date: str = "2025-01-01",
) -> DataRepo:
    """Create a git + DVC repo at ``path`` with a local DVC remote at ``remote_dir``.

    The remote is written twice. In ``.dvc/config`` (committed) as a path relative to the
    repo, so the committed config, and every commit hash after it, is the same wherever the
    workspace lives, and a clone next to the remote finds it. In ``.dvc/config.local`` (ignored
    by git) as an absolute path, which DVC prefers: DVC resolves a relative URL against the
    filesystem root when it reads a revision other than the working copy (``dvc push -T``
    would write to ``/remote``), and the absolute one keeps every push inside the workspace.
    An existing repo at ``path`` is refused rather than overwritten.
    """
    from dvc.repo import Repo

    path = Path(path).resolve()
    remote_dir = Path(remote_dir).resolve()
    if (path / ".dvc").exists() or (path / ".git").exists():
        raise WorkspaceError(
            f"{path} already holds a git or DVC repo; accepted: an empty folder "
            "(open the existing one with DataRepo(path))"
        )
    if remote_dir == path or path in remote_dir.parents:
        raise InvalidParameterError(
            f"remote_dir {remote_dir} is inside the repo {path}; accepted: a folder outside it "
            "(a remote inside the repo would be tracked by git)"
        )
    date = git_date(date, hours=0)  # validates the date before anything is written
    created = [p for p in (path, remote_dir) if not p.exists()]
    try:
        path.mkdir(parents=True, exist_ok=True)
        repo = DataRepo(path)
        repo.git("init", "-q")
        remote_dir.mkdir(parents=True, exist_ok=True)
        site_cache = path / SITE_CACHE_DIR
        # DVC opens the new repo once during init, before its config exists: point it at the
        # workspace's folder for that moment too (the variable is restored right after)
        with contextlib.chdir(path), quiet_dvc(), scoped_env(DVC_SITE_CACHE_DIR=str(site_cache)):
            dvc = Repo.init(".")
            try:
                with dvc.config.edit() as conf:
                    conf["core"]["remote"] = REMOTE_NAME
                    conf["remote"][REMOTE_NAME] = {"url": os.path.relpath(remote_dir, path)}
                with dvc.config.edit("local") as conf:
                    conf["core"]["site_cache_dir"] = str(site_cache)
                    conf["remote"][REMOTE_NAME] = {"url": str(remote_dir)}
            finally:
                dvc.close()
        repo.commit("Initialise DVC with a local remote", date)
    except BaseException:
        for folder in created:
            shutil.rmtree(folder, ignore_errors=True)
        raise
    logger.info("data repo created at %s with remote %s", path, remote_dir)
    return repo


__all__ = [
    "DATA_TAG_PREFIX",
    "EXPORT_TABLES",
    "GIT_IDENTITY",
    "MANIFEST_PATH",
    "PARAMS_PATH",
    "RAW_DIR",
    "REMOTE_NAME",
    "SITE_CACHE_DIR",
    "DataRepo",
    "check_repo",
    "git_date",
    "init_data_repo",
    "quiet_dvc",
    "read_params",
    "write_params",
]
