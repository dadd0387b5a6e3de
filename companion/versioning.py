"""Data versioning: DVC snapshots in git, Delta Lake time travel, snapshot manifests, lineage.

A model can only be explained if the data it was trained on can be read back, byte for byte,
long after the warehouse has moved on. This module gives a chapter's workspace three ways to
make that true:

- **DVC snapshots**: the monthly export is written to ``data/raw`` in a git repo, tracked with
  ``dvc add``, committed and tagged (``data-2025-04``); any tag reads back with
  :func:`read_bytes`, and a local DVC remote holds the content for :func:`push` / :func:`pull`.
  A small ``dvc.yaml`` pipeline (validate, features, train) records how a model is derived.
  The remote is committed as a relative path (the same on every machine) and also written as
  an absolute path to the uncommitted ``.dvc/config.local``: DVC resolves a relative remote URL
  against the filesystem root for revisions other than the working copy (``dvc push -T`` with
  ``url = ../remote`` writes to ``/remote``), so the local setting keeps every push inside the
  workspace. DVC's own per-repo state (its "site cache", ``/var/tmp/dvc`` by default) is kept
  in the repo too: ``core.site_cache_dir`` in ``.dvc/config.local`` (:data:`SITE_CACHE_DIR`).
  Each stage lists the companion modules it runs as dependencies (:data:`STAGE_CODE`), so a
  change of code shows in ``dvc status`` (:func:`summarize_status` counts it) and reruns it.
- **Delta Lake versions**: monthly activity appended to a Delta table, one version per month,
  read as of a version or a commit time (:func:`append_month`, :func:`read_delta`).
- **Manifests and lineage**: every snapshot carries a JSON manifest (content hash, rows,
  schema, generating parameters); a training run logs its input dataset, the git commit and the
  DVC tag to MLflow, the SHA-256 of the code that trained it (:func:`code_version`), with the
  model's ROC AUC and its 95% interval (:func:`train_and_log`), so
  :func:`trace_run` can answer from the stores alone which data and which code produced a model.
- **Comparing data versions**: :func:`compare_exports` trains the same model on several exports
  and scores them all on one later month none of them has seen, with paired intervals on the
  differences and the true probabilities as the ceiling (:func:`untouched_month`).

Git runs with a fixed identity and fixed dates, so commit hashes are the same on every run.
Nothing recorded or printed depends on the model file's bytes (they vary with the CPU's float
arithmetic): the code commit of a run is the last commit that changed the pipeline or its
parameters, never one that also records the model's hash in ``dvc.lock``.
Nothing happens at import.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import hashlib
import io
import json
import os
import pickle
import re
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from companion.data import (
    LABEL_WINDOW_DAYS,
    ChurnDataset,
    SimulationConfig,
    content_hash,
)
from companion.errors import (
    CompanionError,
    InvalidParameterError,
    UnknownNameError,
    WorkspaceError,
)

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


# --------------------------------------------------------------------------- the data repo


@dataclass(frozen=True)
class DataRepo:
    """A git + DVC repository holding versioned exports.

    Attributes:
        path: the repository's root folder.
    """

    path: Path

    def git(self, *args: str, date: str | None = None) -> str:
        """Run ``git args`` in the repo with the fixed identity (and ``date`` for commits)."""
        env = {**os.environ, **GIT_IDENTITY, "GIT_CONFIG_NOSYSTEM": "1", "HOME": str(self.path)}
        if date is not None:
            env["GIT_AUTHOR_DATE"] = env["GIT_COMMITTER_DATE"] = date
        result = subprocess.run(
            ["git", "-c", "init.defaultBranch=main", "-c", "commit.gpgsign=false", *args],
            cwd=self.path, env=env, capture_output=True, text=True,
        )
        if result.returncode != 0:
            raise WorkspaceError(
                f"git {' '.join(args)} failed in {self.path}: {result.stderr.strip()}"
            )
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
        if tag is not None and (
            not isinstance(tag, str) or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", tag)
            or tag.endswith((".", ".lock")) or ".." in tag
        ):
            raise InvalidParameterError(
                f"tag must be a plain name such as 'data-2025-04', got {tag!r}; accepted: "
                "letters, digits, '.', '_' and '-', starting with a letter or digit"
            )
        if tag is not None and tag in self.tags():
            raise InvalidParameterError(
                f"tag {tag!r} already exists; accepted: a new tag name (existing: {self.tags()})"
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
        except WorkspaceError:
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
        """Open the DVC repo from its own folder, with DVC's chatter captured, and close it."""
        from dvc.repo import Repo

        with contextlib.chdir(self.path), _quiet():
            repo = Repo(".")
            try:
                yield repo
            finally:
                repo.close()


def _check_repo(repo: Any) -> DataRepo:
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


def _check_dataset(dataset: Any) -> ChurnDataset:
    if not isinstance(dataset, ChurnDataset):
        raise InvalidParameterError(
            f"dataset must be a ChurnDataset, got {type(dataset).__name__}; accepted: the "
            "result of companion.data.generate (or ws.require('data'))"
        )
    return dataset


def _check_frame(name: str, frame: Any, columns: Sequence[str] = ()) -> pd.DataFrame:
    if not isinstance(frame, pd.DataFrame):
        raise InvalidParameterError(
            f"{name} must be a pandas DataFrame, got {type(frame).__name__}"
        )
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise InvalidParameterError(
            f"{name} is missing column(s) {missing}; accepted: a frame with {list(columns)}"
        )
    return frame


def _check_bool(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise InvalidParameterError(f"{name} must be True or False, got {value!r}")
    return value


def _check_path(name: str, value: Any) -> Path:
    if not isinstance(value, (str, os.PathLike)) or not str(value).strip():
        raise InvalidParameterError(f"{name} must be a path (str or Path), got {value!r}")
    return Path(value)


@contextlib.contextmanager
def _quiet() -> Iterator[io.StringIO]:
    """Silence DVC's hints ('To track the changes with git ...'); its errors still raise.

    Importing ``dvc`` installs its own console handlers at level INFO, so the level is lowered
    here, for the duration of the call only, and restored afterwards.
    """
    import logging

    import colorama
    import dvc  # noqa: F401 - installs DVC's handlers before their level is changed

    # Importing dvc also wraps sys.stdout with colorama, which flushes every write separately
    # (a notebook then shows a print as many fragments); put the original stream back.
    colorama.deinit()
    logger = logging.getLogger("dvc")
    level = logger.level
    logger.setLevel(logging.ERROR)
    sink = io.StringIO()
    try:
        # In a notebook DVC's status spinner (rich) displays an empty block: capture it too.
        from IPython.utils.capture import capture_output
    except ImportError:  # pragma: no cover - IPython comes with the book's stack
        capture_output = contextlib.nullcontext
    try:
        with capture_output(), contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
            yield sink
    finally:
        logger.setLevel(level)


def _git_date(day: str | pd.Timestamp, hours: int = 6) -> str:
    """Return the ISO date git records for a commit made ``hours`` after midnight UTC of ``day``."""
    try:
        stamp = pd.Timestamp(day)
    except (ValueError, TypeError):
        stamp = None
    if isinstance(day, bool) or stamp is None or pd.isna(stamp):
        raise InvalidParameterError(f"date must be a day like '2025-01-01', got {day!r}")
    stamp = stamp.normalize() + pd.Timedelta(hours=hours)
    return stamp.strftime("%Y-%m-%dT%H:%M:%S+00:00")


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
    date = _git_date(date, hours=0)  # validates the date before anything is written
    created = [p for p in (path, remote_dir) if not p.exists()]
    try:
        path.mkdir(parents=True, exist_ok=True)
        repo = DataRepo(path)
        repo.git("init", "-q")
        remote_dir.mkdir(parents=True, exist_ok=True)
        site_cache = path / SITE_CACHE_DIR
        # DVC opens the new repo once during init, before its config exists: point it at the
        # workspace's folder for that moment too (the variable is restored right after)
        with contextlib.chdir(path), _quiet(), _env(DVC_SITE_CACHE_DIR=str(site_cache)):
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
    return repo


SITE_CACHE_DIR = ".dvc/tmp/site_cache"
"""Where DVC keeps its per-repo state (the "site cache"), inside the repo and ignored by git.

DVC's default is ``/var/tmp/dvc/repo/<hash>``, outside the workspace, one folder for every
repository it ever opened. :func:`init_data_repo` writes this folder's absolute path to
``.dvc/config.local`` as ``core.site_cache_dir``: the setting is read as given (a relative
path would be taken from the current directory, not from the repo), so it belongs to the
machine's own config, never to the committed one.
"""


@contextlib.contextmanager
def _env(**values: str) -> Iterator[None]:
    """Set environment variables for the duration of the block, then restore them."""
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


# --------------------------------------------------------------------------- exports and manifests


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
    _check_dataset(dataset)
    as_of = _check_as_of(dataset.config, as_of)
    labels_known = dataset.labels["snapshot_timestamp"] + pd.Timedelta(days=LABEL_WINDOW_DAYS)
    tables = {
        "customers": dataset.customers[dataset.customers["signup_date"] <= as_of],
        "activity": dataset.activity[dataset.activity["created_timestamp"] <= as_of],
        "labels": dataset.labels[labels_known <= as_of],
        "prices": dataset.prices[dataset.prices["effective_from"] <= as_of],
    }
    return {name: frame.reset_index(drop=True) for name, frame in tables.items()}


def _check_as_of(config: SimulationConfig, as_of: Any) -> pd.Timestamp:
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
    """Return the SHA-256 of a file's bytes.

    Raises:
        InvalidParameterError: ``path`` is not a path, or names no file.
    """
    path = _check_path("path", path)
    if not path.is_file():
        raise InvalidParameterError(f"no file at {str(path)!r}; accepted: the path of a file")
    return hashlib.sha256(path.read_bytes()).hexdigest()


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
        _check_frame(f"table {name!r}", frame)
    if not isinstance(files, Mapping) or set(files) != set(tables):
        shown = sorted(files) if isinstance(files, Mapping) else type(files).__name__
        raise InvalidParameterError(
            f"files must map exactly the tables {sorted(tables)} to their files, got {shown}"
        )
    for name in files:
        file_sha256(files[name])
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
                "sha256": file_sha256(files[name]),
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
    _check_repo(repo)
    _check_dataset(dataset)
    stamp = _check_as_of(dataset.config, as_of)
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
    _write_text(repo.path / MANIFEST_PATH, json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    export = {"as_of": str(stamp.date())}
    _write_params(repo, {"simulation": dataset.config.to_dict(), "export": export})
    with repo.dvc() as dvc:
        dvc.add(RAW_DIR)
    commit = repo.commit(f"Export as of {stamp.date()}", _git_date(stamp), tag=tag)
    return Snapshot(tag, commit, manifest)


def _write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def _write_params(repo: DataRepo, updates: Mapping[str, Any]) -> None:
    import yaml

    path = repo.path / PARAMS_PATH
    params = (yaml.safe_load(path.read_text(encoding="utf-8")) or {}) if path.exists() else {}
    params.update(updates)
    _write_text(path, yaml.safe_dump(params, sort_keys=True))


# --------------------------------------------------------------------------- reading back


def read_bytes(repo: DataRepo, path: str, rev: str | None = None) -> bytes:
    """Return the bytes of ``path`` at revision ``rev`` (working copy if None) via ``dvc.api``.

    Works for DVC-tracked files (from the cache or the remote) and git-tracked files alike.

    Raises:
        UnknownNameError: ``rev`` names no commit, or ``path`` is not in the repo at ``rev``.
    """
    import dvc.api
    from dvc.exceptions import PathMissingError

    _check_repo(repo)
    if not isinstance(path, str) or not path.strip() or os.path.isabs(path):
        raise InvalidParameterError(
            f"path must be a path relative to the repo such as {MANIFEST_PATH!r}, got {path!r}"
        )
    if rev is not None:
        repo.resolve(rev)
    try:
        with _quiet():
            return dvc.api.read(path, repo=str(repo.path), rev=rev, mode="rb")
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
    _check_repo(repo)
    if rev is None:
        path = repo.path / MANIFEST_PATH
        if not path.exists():
            raise WorkspaceError(f"no manifest at {MANIFEST_PATH}; take a snapshot first")
        return json.loads(path.read_text(encoding="utf-8"))
    return json.loads(read_bytes(repo, MANIFEST_PATH, rev))


def read_tables(repo: DataRepo, rev: str | None = None) -> dict[str, pd.DataFrame]:
    """Return the export's tables as they were at ``rev``, checked against its manifest.

    Raises:
        WorkspaceError: a file's bytes do not match the manifest committed with them.
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
        raise WorkspaceError(
            f"{file} does not match its manifest at {rev or 'the working copy'}: expected "
            f"sha256 {expected[:12]}, found {found[:12]}; the file was changed after the "
            "snapshot. Restore it with `dvc checkout` (or `dvc pull`) or take a new snapshot"
        )


def verify_snapshot(repo: DataRepo) -> dict[str, str]:
    """Check every file of the working copy's ``data/raw`` against the manifest.

    Returns the verified sha256 of each file.

    Raises:
        WorkspaceError: a file is missing or its bytes differ from the manifest.
    """
    manifest = read_manifest(repo)  # checks repo
    verified = {}
    for entry in manifest["tables"].values():
        path = repo.path / entry["file"]
        if not path.exists():
            raise WorkspaceError(
                f"{entry['file']} is missing from the working copy; accepted: restore it "
                "with `dvc checkout` or `dvc pull`"
            )
        found = file_sha256(path)
        _check_hash(entry["file"], entry["sha256"], found, None)
        verified[entry["file"]] = found
    return verified


def dvc_status(repo: DataRepo) -> dict[str, Any]:
    """Return ``dvc status`` for the working copy: empty when data matches its ``.dvc`` files."""
    _check_repo(repo)
    with repo.dvc() as dvc:
        return dvc.status()


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
    stages, paths = set(), set()
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
        base = _check_path("relative_to", relative_to)
        paths = {Path(os.path.relpath(p, base)).as_posix() if os.path.isabs(p) else p
                 for p in paths}
    return StatusSummary(tuple(sorted(stages)), tuple(sorted(paths)))


def folder_bytes(path: str | os.PathLike[str]) -> int:
    """Return the bytes of every file under ``path`` (0 if it does not exist)."""
    path = _check_path("path", path)
    if path.is_file():
        return path.stat().st_size
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


# --------------------------------------------------------------------------- remote


def _check_remote(repo: DataRepo, remote: str | None, must_exist: bool) -> str:
    _check_repo(repo)
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
    if not isinstance(all_revisions, bool):
        raise InvalidParameterError(f"all_revisions must be True or False, got {all_revisions!r}")
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
    _check_repo(repo)
    with repo.dvc() as dvc:
        return dvc.checkout(force=True)


def drop_local_data(repo: DataRepo) -> None:
    """Delete the working copy of ``data/raw`` and the DVC cache, as on a fresh clone."""
    _check_repo(repo)
    shutil.rmtree(repo.path / RAW_DIR, ignore_errors=True)
    shutil.rmtree(repo.path / ".dvc" / "cache", ignore_errors=True)


# --------------------------------------------------------------------------- the pipeline

STAGE_CODE = {
    "validate": ("versioning.py",),
    "features": ("versioning.py", "data.py", "training.py"),
    "train": ("versioning.py", "training.py", "evaluation.py"),
}
"""The companion modules each pipeline stage runs: its code dependencies in ``dvc.yaml``."""
CODE_MODULES = ("data.py", "evaluation.py", "training.py", "versioning.py")
"""Every module a model of this pipeline is built with (the code :func:`code_files` names)."""


def package_root() -> Path:
    """Return the folder that holds the imported ``companion`` package (its parent)."""
    return Path(__file__).resolve().parent.parent


def code_files(code_root: str | os.PathLike[str] | None = None) -> list[Path]:
    """Return the companion module files a model is trained with, in a fixed order.

    ``code_root`` is the folder holding the ``companion`` package (default: the imported
    one, :func:`package_root`). Their bytes are the code version a training run records
    (:func:`train_and_log`), and each stage of the pipeline lists its own as dependencies.

    Raises:
        InvalidParameterError: ``code_root`` holds no ``companion`` package with these modules.
    """
    root = package_root() if code_root is None else _check_code_root(code_root)
    return [root / "companion" / name for name in CODE_MODULES]


def _check_code_root(code_root: Any) -> Path:
    if not isinstance(code_root, (str, os.PathLike)) or not str(code_root):
        raise InvalidParameterError(
            f"code_root must be a folder path, got {code_root!r}; accepted: the folder that "
            "holds the companion package"
        )
    root = Path(code_root).resolve()
    missing = [n for n in CODE_MODULES if not (root / "companion" / n).is_file()]
    if missing:
        raise InvalidParameterError(
            f"code_root {str(code_root)!r} holds no companion package with {missing}; "
            f"accepted: a folder with companion/{{{', '.join(CODE_MODULES)}}}"
        )
    return root


def code_version(code_root: str | os.PathLike[str] | None = None) -> dict[str, str]:
    """Return the code version of a training run: the SHA-256 of the modules' bytes.

    ``{"code.sha256": ..., "code.files": "data.py,evaluation.py,..."}``, from
    :func:`companion.tracking.code_version` over :func:`code_files`. Any change to the code
    that builds features or trains the model changes it; nothing else does.
    """
    from companion.tracking import code_version as digest

    return digest(files=code_files(code_root))


def pipeline_spec(code_dir: str) -> dict[str, Any]:
    """Return the ``dvc.yaml`` of the workspace pipeline, code dependencies under ``code_dir``.

    ``code_dir`` is the ``companion`` package's folder as a path relative to the repo (POSIX
    separators). Each stage lists the data it reads, the parameters it uses and the module
    files it runs, so ``dvc status`` reports a stage as changed when any of them changes.
    """
    code = {stage: [f"{code_dir}/{name}" for name in files] for stage, files in STAGE_CODE.items()}
    return {
        "stages": {
            "validate": {
                "cmd": "python -m companion.versioning validate --out reports/validation.json",
                "deps": [RAW_DIR, MANIFEST_PATH, *code["validate"]],
                "outs": [{"reports/validation.json": {"cache": False}}],
            },
            "features": {
                "cmd": "python -m companion.versioning features --out data/features.parquet",
                "deps": [RAW_DIR, "reports/validation.json", *code["features"]],
                "params": ["simulation"],
                "outs": ["data/features.parquet"],
            },
            "train": {
                "cmd": (
                    "python -m companion.versioning train --features data/features.parquet "
                    "--model models/churn_model.pkl --metrics metrics.json"
                ),
                "deps": ["data/features.parquet", *code["train"]],
                "params": ["train"],
                "outs": ["models/churn_model.pkl"],
                "metrics": [{"metrics.json": {"cache": False}}],
            },
        }
    }


def write_pipeline(
    repo: DataRepo,
    kind: str = "gbm",
    seed: int = 0,
    code_root: str | os.PathLike[str] | None = None,
) -> Path:
    """Write ``dvc.yaml`` and the ``train`` parameters into the repo; return the dvc.yaml path.

    The stages run the ``companion`` package found in ``code_root`` (default: the imported
    one) and list its module files as dependencies, by a path relative to the repo, so the
    committed pipeline is the same wherever the book sits as long as the workspace sits at
    the same place relative to the package (``build/`` beside ``companion/`` in the book).
    :func:`reproduce` runs the stages with that package first on the import path.
    """
    import yaml

    from companion.training import make_model

    _check_repo(repo)
    make_model(kind, seed)  # validates kind and seed before anything is written
    root = package_root() if code_root is None else _check_code_root(code_root)
    try:
        code_dir = Path(os.path.relpath(root / "companion", repo.path)).as_posix()
    except ValueError:  # another drive (Windows): no relative path exists
        code_dir = (root / "companion").as_posix()
    _write_params(repo, {"train": {"kind": kind, "seed": seed}})
    path = repo.path / "dvc.yaml"
    _write_text(path, yaml.safe_dump(pipeline_spec(code_dir), sort_keys=False))
    return path


def pipeline_code(repo: DataRepo) -> dict[str, list[str]]:
    """Return each stage's code dependencies as ``dvc.yaml`` lists them (paths from the repo)."""
    import yaml

    _check_repo(repo)
    path = repo.path / "dvc.yaml"
    if not path.exists():
        raise WorkspaceError("the data repo has no dvc.yaml; accepted: call write_pipeline first")
    stages = (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("stages", {})
    return {
        name: [d for d in stage.get("deps", []) if str(d).endswith(".py")]
        for name, stage in stages.items()
    }


def _code_root_of(repo: DataRepo) -> Path | None:
    """Return the folder holding the package the pipeline's code dependencies name."""
    for deps in pipeline_code(repo).values():
        for dep in deps:
            module = (repo.path / dep).resolve()
            if module.parent.name == "companion":
                return module.parent.parent
    return None


def _run_dvc(repo: DataRepo, *args: str) -> str:
    """Run the ``dvc`` command line in the repo with the venv's Python first on PATH.

    When the repo has a pipeline, the package its stages list as code dependencies comes
    first on ``PYTHONPATH``: the stages run exactly the files ``dvc status`` watches.
    """
    env = {**os.environ, "DVC_NO_ANALYTICS": "1"}
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    root = _code_root_of(repo) if (repo.path / "dvc.yaml").exists() else None
    if root is not None:
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(root), env.get("PYTHONPATH", "")) if p
        )
    result = subprocess.run(
        [sys.executable, "-m", "dvc", *args], cwd=repo.path, env=env, capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        # keep what explains the failure: the stage's error line and DVC's own, not tracebacks
        lines = (result.stderr + result.stdout).splitlines()
        summary = [
            line for line in lines
            if line.strip() and not line.startswith((" ", "\t", "Traceback", "^"))
        ]
        raise WorkspaceError(
            f"dvc {' '.join(args)} failed in the data repo: {' | '.join(summary) or 'no output'}"
        )
    return result.stdout


def reproduce(repo: DataRepo) -> list[str]:
    """Run ``dvc repro``; return the stages that ran (stages already up to date are skipped)."""
    _check_repo(repo)
    output = _run_dvc(repo, "repro")
    return [line.split("'")[1] for line in output.splitlines() if line.startswith("Running stage")]


def pipeline_mermaid(repo: DataRepo) -> str:
    """Return the pipeline's lineage as ``dvc dag --mermaid`` draws it."""
    _check_repo(repo)
    return _run_dvc(repo, "dag", "--mermaid").strip()


def mermaid_edges(mermaid: str) -> set[tuple[str, str]]:
    r"""Return the ``(upstream, downstream)`` edges of a ``dvc dag --mermaid`` flowchart.

    Example:
        >>> sorted(mermaid_edges('flowchart TD\n\tnode1["a"]\n\tnode2["b"]\n\tnode1-->node2'))
        [('a', 'b')]
    """
    if not isinstance(mermaid, str):
        raise InvalidParameterError(
            f"mermaid must be the text of `dvc dag --mermaid`, got {type(mermaid).__name__}"
        )
    labels, edges = {}, set()
    for line in mermaid.splitlines():
        line = line.strip()
        if "-->" in line:
            upstream, downstream = line.split("-->")
            edges.add((upstream.strip(), downstream.strip()))
        elif line.endswith('"]') and '["' in line:
            node, label = line[:-2].split('["', 1)
            labels[node.strip()] = label
    unknown = sorted({node for edge in edges for node in edge} - set(labels))
    if unknown:
        raise InvalidParameterError(
            f"mermaid flowchart has edges to undeclared node(s) {unknown}; accepted: the "
            "output of `dvc dag --mermaid`"
        )
    return {(labels[a], labels[b]) for a, b in edges}


def training_frame(
    tables: Mapping[str, pd.DataFrame], config: SimulationConfig
) -> pd.DataFrame:
    """Build model features for every labelled snapshot of an export (the ``features`` stage)."""
    from companion.training import snapshot_features

    if not isinstance(tables, Mapping):
        raise InvalidParameterError(
            f"tables must be a mapping of table name to DataFrame, got {type(tables).__name__}"
        )
    if not isinstance(config, SimulationConfig):
        raise InvalidParameterError(
            f"config must be a SimulationConfig, got {type(config).__name__}; accepted: "
            "SimulationConfig.from_mapping(manifest['parameters']['simulation'])"
        )
    missing = [name for name in EXPORT_TABLES if name not in tables]
    if missing:
        raise InvalidParameterError(
            f"export is missing table(s) {missing}; accepted: a mapping with {list(EXPORT_TABLES)}"
        )
    for name in EXPORT_TABLES:
        _check_frame(f"table {name!r}", tables[name])
    _check_frame("table 'labels'", tables["labels"], ["snapshot_timestamp"])
    empty = pd.DataFrame()
    dataset = ChurnDataset(config, tables["customers"], tables["activity"], tables["labels"],
                           tables["prices"], empty, empty)
    snapshots = sorted(pd.DatetimeIndex(tables["labels"]["snapshot_timestamp"].unique()))
    if not snapshots:
        raise InvalidParameterError("export has no labelled snapshot; take it at a later as_of")
    return snapshot_features(dataset, snapshots)


def fit_and_score(frame: pd.DataFrame, kind: str, seed: int) -> tuple[Any, dict[str, float]]:
    """Train on every snapshot but the last and score on the last (the ``train`` stage).

    The last labelled month is a time split: the model never saw it. Its ROC AUC comes with
    DeLong's 95% interval (``roc_auc_low``, ``roc_auc_high``), rounded to 6 decimals.
    """
    from companion.evaluation import auc_interval
    from companion.training import FEATURES, TARGET, make_model, time_split, train

    make_model(kind, seed)  # validates kind and seed
    _check_frame("frame", frame, ["snapshot_timestamp", TARGET, *FEATURES])
    snapshots = sorted(frame["snapshot_timestamp"].unique())
    if len(snapshots) < 2:
        raise InvalidParameterError(
            f"training needs at least 2 labelled snapshots, got {len(snapshots)}"
        )
    train_rows, test_rows = time_split(frame, snapshots[:-1], snapshots[-1])
    model = train(train_rows, kind=kind, seed=seed)
    y = test_rows[TARGET].to_numpy()
    auc = auc_interval(y, model.predict_proba(test_rows[FEATURES])[:, 1])
    metrics = {
        "roc_auc": round(auc.value, 6),
        "roc_auc_low": round(auc.low, 6),
        "roc_auc_high": round(auc.high, 6),
        "test_rows": int(len(test_rows)),
        "test_churners": int(y.sum()),
        "train_rows": int(len(train_rows)),
    }
    return model, metrics


def _read_params(path: str | os.PathLike[str]) -> dict[str, Any]:
    import yaml

    return yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}


def main(argv: Sequence[str] | None = None) -> None:
    """Run one stage of the workspace pipeline (``python -m companion.versioning STAGE``)."""
    parser = argparse.ArgumentParser(
        prog="python -m companion.versioning", description=main.__doc__
    )
    sub = parser.add_subparsers(dest="stage", required=True)
    validate = sub.add_parser("validate", help="check data/raw against data/manifest.json")
    validate.add_argument("--out", required=True)
    features = sub.add_parser("features", help="build the training frame from data/raw")
    features.add_argument("--out", required=True)
    train = sub.add_parser("train", help="train and score the churn model")
    train.add_argument("--features", required=True)
    train.add_argument("--model", required=True)
    train.add_argument("--metrics", required=True)
    args = parser.parse_args(argv)
    repo = DataRepo(Path.cwd())
    params = _read_params(PARAMS_PATH)
    if args.stage == "validate":
        verified = verify_snapshot(repo)
        report = json.dumps({"verified": verified}, indent=2, sort_keys=True)
        _write_text(Path(args.out), report + "\n")
    elif args.stage == "features":
        tables = {n: pd.read_parquet(Path(RAW_DIR) / f"{n}.parquet") for n in EXPORT_TABLES}
        frame = training_frame(tables, SimulationConfig.from_mapping(params["simulation"]))
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        frame.to_parquet(args.out, index=False)
    else:
        frame = pd.read_parquet(args.features)
        model, metrics = fit_and_score(frame, **params["train"])
        Path(args.model).parent.mkdir(parents=True, exist_ok=True)
        with open(args.model, "wb") as handle:
            pickle.dump(model, handle)
        _write_text(Path(args.metrics), json.dumps(metrics, indent=2, sort_keys=True) + "\n")


# --------------------------------------------------------------------------- lineage in MLflow


def train_and_log(
    repo: DataRepo, rev: str, experiment_id: str, kind: str = "gbm", seed: int = 0
) -> str:
    """Train on the export at ``rev`` and log the run with its data lineage; return the run id.

    The export is read back from DVC by revision and checked against its manifest; the run
    logs the training frame as an MLflow dataset input (with its digest), the manifest's
    content hash, the DVC tag and commit of the data, the code commit (see
    :func:`code_commit`), the code version (``code.sha256``: the SHA-256 of the module
    files that build the features and train the model, :func:`code_version`), and the metrics
    of :func:`fit_and_score`: the ROC AUC on the export's last labelled month with its 95%
    interval (``roc_auc_low``, ``roc_auc_high``). Everything is checked and the model trained
    before the run starts, so a bad call leaves no run behind.

    Raises:
        WorkspaceError: the repo has uncommitted changes, so HEAD would not describe the code.
        UnknownNameError: ``experiment_id`` names no experiment, or ``rev`` no revision.
        InvalidParameterError: an unknown model kind or a bad seed.
    """
    import mlflow
    from mlflow.tracking import MlflowClient

    from companion.training import make_model

    _check_repo(repo)
    make_model(kind, seed)
    if not isinstance(experiment_id, str) or not experiment_id.isdigit():
        raise InvalidParameterError(
            f"experiment_id must be an MLflow experiment id (a string of digits), got "
            f"{experiment_id!r}; accepted: ensure_experiment(ws, name)"
        )
    from mlflow.exceptions import MlflowException

    try:
        experiment = MlflowClient().get_experiment(experiment_id)
    except MlflowException:
        experiment = None
    if experiment is None or experiment.lifecycle_stage != "active":
        raise UnknownNameError(
            f"no active MLflow experiment with id {experiment_id!r} in the current tracking "
            "store; accepted: the id returned by ensure_experiment(ws, name)"
        )
    if repo.git("status", "--porcelain"):
        raise WorkspaceError(
            "the data repo has uncommitted changes; accepted: a clean working tree, so that "
            "its HEAD commit records the code and parameters of this run (commit first)"
        )
    commit = repo.resolve(rev)
    manifest = read_manifest(repo, rev)
    config = SimulationConfig.from_mapping(manifest["parameters"]["simulation"])
    frame = training_frame(read_tables(repo, rev), config)
    model, metrics = fit_and_score(frame, kind, seed)
    tags = [
        t for t in repo.git("tag", "--points-at", commit).split() if t.startswith(DATA_TAG_PREFIX)
    ]
    with warnings.catch_warnings():  # MLflow hints that a local path has two readers
        warnings.simplefilter("ignore", UserWarning)
        dataset = mlflow.data.from_pandas(
            frame, source=str(repo.path / RAW_DIR), name=f"lumen-churn-export@{rev}"
        )
    with mlflow.start_run(experiment_id=experiment_id) as run, warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # schema hint about integer columns
        mlflow.log_input(dataset, context="training")
        test_month = str(pd.Timestamp(frame["snapshot_timestamp"].max()).date())
        mlflow.log_params({"kind": kind, "seed": seed, "as_of": manifest["parameters"]["as_of"],
                           "test_month": test_month})
        mlflow.log_metrics({k: float(v) for k, v in metrics.items()})
        mlflow.set_tags(
            {
                "data.git_commit": commit,
                "data.dvc_tag": tags[0] if tags else rev,
                "data.content_hash": manifest["content_hash"],
                "code.git_commit": code_commit(repo),
                **code_version(),
            }
        )
    return run.info.run_id


def trace_run(run_id: str) -> dict[str, Any]:
    """Answer from MLflow alone: which data version and which commit produced run ``run_id``."""
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    if not isinstance(run_id, str) or not re.fullmatch(r"[0-9a-f]{32}", run_id):
        raise InvalidParameterError(
            f"run_id must be an MLflow run id (32 hex digits), got {run_id!r}; accepted: the "
            "id train_and_log returned"
        )
    try:
        run = MlflowClient().get_run(run_id)
    except MlflowException:
        raise UnknownNameError(
            f"no MLflow run {run_id!r} in the current tracking store; accepted: a run id "
            "logged by train_and_log"
        ) from None
    inputs = [i for i in run.inputs.dataset_inputs
              if any(t.key == "mlflow.data.context" and t.value == "training" for t in i.tags)]
    if "data.git_commit" not in run.data.tags or not inputs:
        raise WorkspaceError(
            f"run {run_id} records no data lineage (no training input or data.git_commit tag); "
            "accepted: a run logged by train_and_log"
        )
    dataset = inputs[0].dataset
    return {
        "dataset": dataset.name,
        "digest": dataset.digest,
        "rows": json.loads(dataset.profile)["num_rows"],
        "dvc_tag": run.data.tags["data.dvc_tag"],
        "data_commit": run.data.tags["data.git_commit"],
        "content_hash": run.data.tags["data.content_hash"],
        "code_commit": run.data.tags["code.git_commit"],
        "code_sha256": run.data.tags.get("code.sha256"),
        "code_files": run.data.tags.get("code.files", ""),
        "kind": run.data.params["kind"],
        "seed": int(run.data.params["seed"]),
        "test_month": run.data.params.get("test_month"),
        "roc_auc": run.data.metrics["roc_auc"],
        "roc_auc_low": run.data.metrics.get("roc_auc_low"),
        "roc_auc_high": run.data.metrics.get("roc_auc_high"),
    }


CODE_FILES = ("dvc.yaml", PARAMS_PATH)
"""The files that define how a model is trained: the pipeline and its parameters."""


def code_commit(repo: DataRepo, rev: str = "HEAD") -> str:
    """Return the last commit up to ``rev`` that changed the pipeline or its parameters.

    That commit pins the code and parameters a model is trained with. It is deliberately
    not HEAD: the commit after ``dvc repro`` records ``dvc.lock``, which holds the hash of the
    model file, and a pickled model's bytes differ from one CPU to another; its hash would
    make the lineage differ from machine to machine for the same code and data.
    """
    _check_repo(repo)
    commit = repo.resolve(rev)
    found = repo.git("log", "-1", "--format=%H", commit, "--", *CODE_FILES)
    return found or commit


def describe_commit(repo: DataRepo, rev: str, hash_digits: int = 7) -> str:
    """Return ``hash date subject (refs)`` of a commit, for printing (``hash_digits=0``: none)."""
    _check_repo(repo)
    check_hash = isinstance(hash_digits, int) and not isinstance(hash_digits, bool)
    if not check_hash or not 0 <= hash_digits <= 40:
        raise InvalidParameterError(f"hash_digits must be an integer 0 to 40, got {hash_digits!r}")
    commit = repo.resolve(rev)
    text = repo.git("log", "-1", "--format=%ad %s%d", "--date=short", commit)
    return f"{commit[:hash_digits]} {text}" if hash_digits else text


def dataset_digest(frame: pd.DataFrame) -> str:
    """Return the digest MLflow computes for ``frame`` as a dataset input."""
    import mlflow

    _check_frame("frame", frame)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return mlflow.data.from_pandas(frame).digest


# --------------------------------------------------------------------------- comparing exports

ORACLE = "true probabilities"
"""The row of :func:`compare_exports` that scores with the simulator's true churn probabilities."""


def untouched_month(dataset: ChurnDataset, as_of: str | pd.Timestamp) -> pd.DataFrame:
    """Return the last month labelled by ``as_of``: features, label and true probability.

    The rows are those of the latest snapshot whose 30-day label window had closed by
    ``as_of`` (what a later export brings), with ``true_probability`` from ``dataset.truth``:
    never a model input, only the ceiling an evaluation is graded against.

    Example:
        >>> from companion.data import generate
        >>> ds = generate(n_customers=300, months=4, scenarios=())
        >>> month = untouched_month(ds, "2025-04-01")
        >>> str(month["snapshot_timestamp"].max().date()), "true_probability" in month
        ('2025-03-01', True)
    """
    tables = dict(tables_as_of(dataset, as_of))  # checks dataset and as_of
    labels = tables["labels"]
    if labels.empty:
        raise InvalidParameterError(f"no month is labelled by {as_of}; take a later as_of")
    last = labels["snapshot_timestamp"].max()
    tables["labels"] = labels[labels["snapshot_timestamp"] == last].reset_index(drop=True)
    frame = training_frame(tables, dataset.config)
    keys = ["customer_id", "snapshot_timestamp"]
    truth = frame[keys].merge(dataset.truth, on=keys, how="left")["churn_probability"]
    if truth.isna().any():
        raise InvalidParameterError(
            f"the dataset's truth has no probability for {int(truth.isna().sum())} row(s) of "
            f"{last.date()}; accepted: a dataset generated with its truth table"
        )
    return frame.assign(true_probability=truth.to_numpy())


@dataclass(frozen=True)
class ExportComparison:
    """The same model trained on several exports, scored on one later month none has seen.

    Attributes:
        month: the evaluation month (its snapshot date).
        rows: customers scored in that month.
        churners: churners among them.
        auc: ROC AUC with DeLong's 95% interval, per model label and for :data:`ORACLE`.
        difference: per model but the baseline, AUC(model) - AUC(baseline), paired DeLong.
        gap_to_truth: per model, AUC(model) - AUC(true probabilities), paired DeLong.
        validation: per model, the AUC on its own export's last month (the pipeline's metric).
        table: the printable table of :func:`companion.evaluation.compare_models`.
    """

    month: pd.Timestamp
    rows: int
    churners: int
    auc: dict[str, Any]
    difference: dict[str, Any]
    gap_to_truth: dict[str, Any]
    validation: dict[str, Any]
    table: pd.DataFrame


def compare_exports(
    repo: DataRepo,
    revs: Sequence[str],
    evaluation: pd.DataFrame,
    kind: str = "logistic",
    seed: int = 0,
) -> ExportComparison:
    """Train on each export in ``revs`` (read back by revision) and score all on ``evaluation``.

    Each model is the one the pipeline trains on that export (:func:`fit_and_score`). They are
    compared on the same rows, a month later than every month of every export (a time split),
    so the differences are paired: DeLong's interval on AUC(model) - AUC(first of ``revs``).
    ``evaluation`` comes from :func:`untouched_month`; its true probabilities give the ceiling.

    Raises:
        InvalidParameterError: fewer than two revisions, a revision twice, or an evaluation
            month that an export has already seen.
    """
    from companion.evaluation import Estimate, auc_difference, auc_interval, compare_models
    from companion.training import FEATURES, TARGET, make_model

    _check_repo(repo)
    make_model(kind, seed)
    if not isinstance(revs, (str, Sequence)):
        raise InvalidParameterError(f"revs must be a list of tags, got {type(revs).__name__}")
    revs = list(revs) if not isinstance(revs, str) else [revs]
    if not all(isinstance(r, str) for r in revs):
        raise InvalidParameterError(f"revs must be tags (strings), got {revs!r}")
    if len(revs) < 2 or len(set(revs)) != len(revs):
        raise InvalidParameterError(
            f"revs must name at least two different exports, got {revs}; accepted: tags such "
            f"as {repo.tags()}"
        )
    missing = [c for c in ("snapshot_timestamp", TARGET, "true_probability", *FEATURES)
               if c not in getattr(evaluation, "columns", ())]
    if missing:
        raise InvalidParameterError(
            f"evaluation is missing column(s) {missing}; build it with untouched_month()"
        )
    for rev in revs:
        repo.resolve(rev)
    months = pd.DatetimeIndex(evaluation["snapshot_timestamp"].unique())
    if len(months) != 1:
        raise InvalidParameterError(
            f"evaluation must hold one month, got {sorted(str(m.date()) for m in months)}"
        )
    month = months[0]
    frames = {}
    for rev in revs:
        manifest = read_manifest(repo, rev)
        config = SimulationConfig.from_mapping(manifest["parameters"]["simulation"])
        frames[rev] = training_frame(read_tables(repo, rev), config)
        latest = frames[rev]["snapshot_timestamp"].max()
        if latest >= month:
            raise InvalidParameterError(
                f"export {rev} already holds the month {latest.date()}, so {month.date()} is "
                "not untouched; accepted: an evaluation month after every export's last "
                "labelled month (a later as_of for untouched_month)"
            )
    y = evaluation[TARGET].to_numpy()
    scores, validation = {}, {}
    for rev in revs:
        model, metrics = fit_and_score(frames[rev], kind, seed)
        label = f"trained on {rev}"
        scores[label] = model.predict_proba(evaluation[FEATURES])[:, 1]
        validation[label] = Estimate(
            metrics["roc_auc"], metrics["roc_auc_low"], metrics["roc_auc_high"]
        )
    truth = evaluation["true_probability"].to_numpy()
    baseline = f"trained on {revs[0]}"
    auc = {label: auc_interval(y, s) for label, s in {**scores, ORACLE: truth}.items()}
    difference = {
        label: auc_difference(y, s, scores[baseline])
        for label, s in scores.items() if label != baseline
    }
    gap = {label: auc_difference(y, s, truth) for label, s in scores.items()}
    table = compare_models(y, {**scores, ORACLE: truth}, baseline=baseline)
    return ExportComparison(
        month=month, rows=int(len(y)), churners=int(y.sum()), auc=auc, difference=difference,
        gap_to_truth=gap, validation=validation, table=table,
    )


# --------------------------------------------------------------------------- Delta Lake


def monthly_batches(
    dataset: ChurnDataset, months: Sequence[str | pd.Timestamp]
) -> list[tuple[str, pd.DataFrame]]:
    """Split activity into the batches that had arrived by each of ``months`` (by creation).

    The first batch holds everything created up to ``months[0]``; each later one what arrived
    in the month up to it, so batches line up with :func:`tables_as_of`. Returns
    ``(label, rows)`` pairs, the label being the month each batch closes.
    """
    _check_dataset(dataset)
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

    table = _check_path("table", table)
    _check_frame("rows", rows)
    _check_bool("merge_schema", merge_schema)
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
    path = _check_path("table", table)
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


if __name__ == "__main__":
    main()
