"""The code version a training run records: ``code.sha256`` over the modules it executes.

The files are those of :data:`CODE_ROOTS` and every companion module they import, found by
:func:`companion.core.provenance.module_files`; the digest is
:func:`companion.core.provenance.code_version`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from companion.core import provenance

CODE_ROOTS = ("companion.training", "companion.tracking")
"""Companion modules that train and log a run; :func:`training_modules` adds what they import."""


def training_modules() -> list[Path]:
    """Return the companion source files a training run executes, sorted by name.

    They are the modules of :data:`CODE_ROOTS` and every companion module they import at
    module level, followed transitively through packages (read from the source with
    :mod:`ast`, nothing is imported).

    Example:
        >>> [provenance.source_name(p) for p in training_modules()][:2]
        ['core/__init__.py', 'core/checks.py']
    """
    return provenance.module_files(*CODE_ROOTS)


def code_version(
    repo_dir: str | os.PathLike[str] | None = None,
    files: Sequence[str | os.PathLike[str]] | None = None,
) -> dict[str, str]:
    """Return tags that name the code a run used: a SHA-256 of its source, and a git commit.

    The digest covers each file's name (relative to the ``companion`` folder) and bytes, with
    Windows line ends read as Unix ones, so the same code gives the same digest on any machine
    and checkout, git or not. A commit alone would not do: it misses uncommitted changes.

    Args:
        repo_dir: the root folder of a git repository (its ``.git`` is right there); when it
            has a ``HEAD`` commit, that commit is added as ``code.git_commit``.
        files: the source files to digest (default: :func:`training_modules`, every companion
            module a training run executes).

    Returns:
        ``{"code.sha256": digest, "code.files": "a.py,b.py"}``, plus ``"code.git_commit"``.

    Example:
        >>> sorted(code_version())
        ['code.files', 'code.sha256']
    """
    return provenance.code_version(training_modules() if files is None else files, repo_dir)
