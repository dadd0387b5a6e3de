"""The offline environment of the stack, and the one way to quiet a library.

:data:`OFFLINE_ENV` is the single list of environment variables that keep every tool of the
book offline, telemetry-free and quiet. The Makefile exports the same list (a test keeps the
two in step), a chapter's kernel gets it from :func:`companion.workspace.setup_notebook`, and
server processes started by the companion inherit it.

:func:`quiet` is the one mechanism that silences libraries: scoped (levels come back when the
block ends), nested and thread-safe (each logger keeps the strictest level of the blocks inside
it, in any thread, and gets back the level it had when the last one ends), and usable as a
decorator.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import re
import threading
import warnings
from collections.abc import Iterator, Mapping

__all__ = [
    "MLFLOW_INTEGER_HINT",
    "NOISY_LOGGERS",
    "OFFLINE_ENV",
    "apply_offline_env",
    "offline_env",
    "quiet",
    "scoped_env",
]

OFFLINE_ENV: Mapping[str, str] = {
    # Telemetry off: MLflow, DVC, Feast, and every tool that honours DO_NOT_TRACK (Evidently).
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "DO_NOT_TRACK": "1",
    "DVC_NO_ANALYTICS": "1",
    "FEAST_USAGE": "False",
    # Offline: no model hub downloads, no git password prompt that would hang a run.
    "HF_HUB_OFFLINE": "1",
    "GIT_TERMINAL_PROMPT": "0",
    # Quiet: MLflow reads these when it is imported and when a run ends (no INFO logs, no
    # "View run" links, no progress bars in a chapter's output).
    "MLFLOW_LOGGING_LEVEL": "ERROR",
    "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": "true",
    "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
    # The Jupyter kernel's debugger warns about frozen modules on stderr without it.
    "PYDEVD_DISABLE_FILE_VALIDATION": "1",
}
"""Every environment variable the book sets, with its value. The Makefile exports the same."""

NOISY_LOGGERS = ("mlflow", "alembic", "feast", "dvc", "evidently", "urllib3", "py4j", "kfp")
"""Loggers of the stack that speak at INFO or WARNING about things a reader need not see."""


MLFLOW_INTEGER_HINT = "Hint: Inferred schema contains integer column(s)"
"""Start of the warning MLflow gives whenever it infers a schema from a frame with integer
columns (ids, labels): advice for model signatures with missing values, noise everywhere else."""


def offline_env() -> dict[str, str]:
    """Return a copy of :data:`OFFLINE_ENV`, e.g. to merge into a child process's environment.

    Example:
        >>> offline_env()["DO_NOT_TRACK"]
        '1'
    """
    return dict(OFFLINE_ENV)


def apply_offline_env() -> dict[str, str]:
    """Set :data:`OFFLINE_ENV` in this process's environment and return what was set.

    Call it before the tools are imported: MLflow and Feast read some of these at import.
    """
    os.environ.update(OFFLINE_ENV)
    return offline_env()


@contextlib.contextmanager
def scoped_env(**values: str) -> Iterator[None]:
    """Set environment variables for the block, then put back exactly what was there.

    For libraries that read a setting only from the environment (DVC's site cache folder).

    Example:
        >>> with scoped_env(COMPANION_EXAMPLE="1"):
        ...     os.environ["COMPANION_EXAMPLE"]
        '1'
        >>> "COMPANION_EXAMPLE" in os.environ
        False
    """
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


_LOCK = threading.RLock()
_ACTIVE: dict[str, list[int]] = {}  # per logger: the level of every block inside it, any thread
_SAVED: dict[str, int] = {}  # per logger: the level it had before the first block


def _apply(name: str) -> None:
    logger = logging.getLogger(name)
    if _ACTIVE.get(name):
        # The strictest block wins, and a block never makes a logger louder than it was.
        logger.setLevel(max(_SAVED[name], *_ACTIVE[name]))
    else:
        logger.setLevel(_SAVED.pop(name))
        _ACTIVE.pop(name, None)


def _lower(names: tuple[str, ...], level: int) -> None:
    with _LOCK:
        for name in names:
            if not _ACTIVE.get(name):
                _SAVED[name] = logging.getLogger(name).level
            _ACTIVE.setdefault(name, []).append(level)
            _apply(name)


def _restore(names: tuple[str, ...], level: int) -> None:
    with _LOCK:
        for name in names:
            _ACTIVE[name].remove(level)
            _apply(name)


def _capture_displays() -> contextlib.AbstractContextManager[object]:
    """In a notebook, rich displays (DVC's status spinner) bypass ``sys.stdout``: catch them."""
    try:
        from IPython.utils.capture import capture_output
    except ImportError:  # pragma: no cover - IPython comes with the book's stack
        return contextlib.nullcontext()
    return capture_output()


@contextlib.contextmanager
def quiet(
    *loggers: str,
    level: int = logging.ERROR,
    capture_output: bool = False,
    ignore: tuple[str | type[Warning], ...] = (),
) -> Iterator[io.StringIO]:
    """Raise ``loggers`` to ``level`` for the block, and optionally capture what is printed.

    Args:
        loggers: logger names (default: :data:`NOISY_LOGGERS`).
        level: messages below it are dropped while the block runs (errors still raise).
        capture_output: also send ``sys.stdout``/``sys.stderr`` (and, in a notebook, rich
            displays such as progress spinners) to the returned buffer instead of the reader.
        ignore: warnings to drop inside the block: a category (``UserWarning``) or the start
            of a message (:data:`MLFLOW_INTEGER_HINT`). Python's warning filters are restored
            when the block ends.

    Yields:
        The buffer that holds captured output (empty unless ``capture_output``).

    Example:
        >>> with quiet("mlflow"):
        ...     logging.getLogger("mlflow").getEffectiveLevel() >= logging.ERROR
        True
    """
    names = loggers or NOISY_LOGGERS
    sink = io.StringIO()
    _lower(names, level)
    try:
        with contextlib.ExitStack() as stack:
            if ignore:
                stack.enter_context(warnings.catch_warnings())
                for item in ignore:
                    if isinstance(item, str):
                        warnings.filterwarnings("ignore", message=re.escape(item))
                    else:
                        warnings.simplefilter("ignore", item)
            if capture_output:
                stack.enter_context(_capture_displays())
                stack.enter_context(contextlib.redirect_stdout(sink))
                stack.enter_context(contextlib.redirect_stderr(sink))
            yield sink
    finally:
        _restore(names, level)
