"""The registry's audit trail and its lock: who moved which alias, when and why.

Every alias move (and every refusal) is one JSON line of ``audit.jsonl`` in the registry's
audit folder (``registry/`` in a workspace). Moves run under an exclusive file lock
(:mod:`filelock`) beside it, so two releases racing each other take turns: each reads the
aliases, decides, moves them and writes its audit line before the next one reads.

A line is added by rewriting the file atomically (:func:`companion.core.files.atomic_write_text`)
while the lock is held: the lock keeps writers from losing each other's lines, and the
replace means a reader, or a crash half-way, never sees a torn last line. The log of a
registry holds a few lines per release, so the rewrite costs nothing worth saving.

:class:`AuditLog` reads the log back as a table, replays it into the aliases it says a model
should have now (:meth:`AuditLog.aliases`), and into the spans during which each alias held
each version (:meth:`AuditLog.timeline`).
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from companion.core.checks import check_choice, check_number, check_path
from companion.core.files import atomic_write_text
from companion.errors import LockTimeoutError
from companion.registry.names import MODEL_NAME, PRODUCTION, STAGING, check_name

__all__ = ["AUDIT_ACTIONS", "AUDIT_COLUMNS", "LOCK_TIMEOUT_SECONDS", "AuditLog", "audit_entry"]

logger = logging.getLogger(__name__)

AUDIT_ACTIONS = ("stage", "refuse", "promote", "rollback")
"""What an audit line records: an alias moved (stage, promote, rollback) or a refused move."""

AUDIT_COLUMNS = ["time", "actor", "action", "model", "alias", "version", "previous", "reason"]
"""The fields of an audit line, in the order :meth:`AuditLog.read` returns them."""

LOCK_TIMEOUT_SECONDS = 60.0
"""How long a move waits for the registry lock before it gives up."""


def audit_entry(
    time: str,
    actor: str,
    action: str,
    name: str,
    alias: str,
    version: int,
    previous: int | None,
    reason: str,
) -> dict[str, Any]:
    """Return one audit line: who (``actor``) did what to which alias of model ``name``, why."""
    check_choice("audit action", action, AUDIT_ACTIONS)
    return {
        "time": time,
        "actor": actor,
        "action": action,
        "model": name,
        "alias": alias,
        "version": version,
        "previous": previous,
        "reason": reason,
    }


def production_history(audit: pd.DataFrame) -> list[int]:
    """The versions ``production`` held, oldest first: promotions push, rollbacks pop."""
    history: list[int] = []
    for entry in audit.itertuples():
        if entry.action == "promote":
            history.append(int(entry.version))
        elif entry.action == "rollback":
            history.pop()
    return history


class AuditLog:
    """The append-only audit log of a registry's alias moves, and the lock moves run under.

    Args:
        directory: the folder that holds ``audit.jsonl`` and the lock file (created on the
            first move, never by reading).
    """

    def __init__(self, directory: str | Path) -> None:
        self.directory = check_path("audit directory", directory)

    @property
    def path(self) -> Path:
        """The audit log: one JSON object per line."""
        return self.directory / "audit.jsonl"

    @property
    def lock_path(self) -> Path:
        """The lock file moves hold while they read, decide, move and audit."""
        return self.directory / "audit.lock"

    def __repr__(self) -> str:
        return f"AuditLog({str(self.directory)!r})"

    @contextlib.contextmanager
    def lock(self, timeout: float = LOCK_TIMEOUT_SECONDS) -> Iterator[None]:
        """Hold the registry's exclusive lock while inside (threads and processes take turns).

        Raises:
            LockTimeoutError: another move held the lock for longer than ``timeout`` seconds.
        """
        from filelock import FileLock, Timeout

        check_number("timeout", timeout, positive=True)
        self.directory.mkdir(parents=True, exist_ok=True)
        # One lock object per call: on POSIX two file descriptors of one file exclude each
        # other, so two threads of this process take turns as two processes would.
        lock = FileLock(self.lock_path, timeout=timeout, thread_local=False)
        try:
            lock.acquire()
        except Timeout as exc:
            raise LockTimeoutError(
                f"could not take the registry lock {self.lock_path} within {timeout} s; "
                "another promotion is still running"
            ) from exc
        try:
            yield
        finally:
            lock.release()

    def append(self, entry: Mapping[str, Any]) -> None:
        """Add one line to the log; call it while holding :meth:`lock`."""
        line = json.dumps(dict(entry), sort_keys=True) + "\n"
        existing = self.path.read_text(encoding="utf-8") if self.path.exists() else ""
        atomic_write_text(self.path, existing + line)
        logger.info("audit: %s %s v%s of %s by %s", entry.get("action"), entry.get("alias"),
                    entry.get("version"), entry.get("model"), entry.get("actor"))

    def read(self, name: str | None = MODEL_NAME) -> pd.DataFrame:
        """Return the log (of model ``name``, or of all models if None) as a table.

        Columns: ``time, actor, action, model, alias, version, previous, reason``.
        """
        if name is not None:
            check_name("model name", name)
        entries = []
        if self.path.exists():
            text = self.path.read_text(encoding="utf-8")
            entries = [json.loads(line) for line in text.splitlines()]
        frame = pd.DataFrame(entries, columns=AUDIT_COLUMNS)
        if name is not None:
            frame = frame[frame["model"] == name].reset_index(drop=True)
        for column in ("version", "previous"):
            frame[column] = frame[column].astype("Int64")
        return frame

    def aliases(self, name: str = MODEL_NAME) -> dict[str, int]:
        """Replay the log and return the aliases it says model ``name`` should have now."""
        check_name("model name", name)
        state: dict[str, int] = {}
        for entry in self.read(name).itertuples():
            if entry.action == "stage":
                state[STAGING] = int(entry.version)
            elif entry.action == "promote":
                state[PRODUCTION] = int(entry.version)
                state.pop(STAGING, None)
            elif entry.action == "rollback":
                state[PRODUCTION] = int(entry.version)
        return dict(sorted(state.items()))

    def timeline(self, name: str = MODEL_NAME) -> pd.DataFrame:
        """Replay the log into the spans during which each alias held each version.

        Returns one row per span: ``alias, version, start, end`` (audit times; ``end`` is
        empty while the alias still holds the version), ``moved_by`` (the action and actor
        that started the span) and ``ended_by``. Refusals move nothing and start no span.
        """
        audit = self.read(name)
        spans: list[dict[str, Any]] = []
        open_spans: dict[str, dict[str, Any]] = {}

        def close(alias: str, time: Any, why: str) -> None:
            span = open_spans.pop(alias, None)
            if span is not None:
                span.update(end=time, ended_by=why)

        def start(alias: str, version: int, time: Any, why: str) -> None:
            close(alias, time, why)
            span = {"alias": alias, "version": version, "start": time, "end": pd.NaT,
                    "moved_by": why, "ended_by": ""}
            spans.append(span)
            open_spans[alias] = span

        for entry in audit.itertuples():
            time = pd.Timestamp(str(entry.time))
            why = f"{entry.action} by {entry.actor}"
            if entry.action == "stage":
                start(STAGING, int(entry.version), time, why)
            elif entry.action == "promote":
                start(PRODUCTION, int(entry.version), time, why)
                close(STAGING, time, why)
            elif entry.action == "rollback":
                start(PRODUCTION, int(entry.version), time, why)
        columns = ["alias", "version", "start", "end", "moved_by", "ended_by"]
        return pd.DataFrame(spans, columns=columns).astype({"version": "int64"})
