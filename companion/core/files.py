"""Atomic writes and file digests.

A reader who interrupts a chapter, or a call that fails half-way, must never leave a truncated
file where a complete one is expected. Every file the companion writes goes through
:func:`atomic_write`: the bytes go to a uniquely named temporary file in the same folder, which
then replaces the target in one ``os.replace`` (atomic on POSIX and Windows).
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

__all__ = ["atomic_write", "atomic_write_bytes", "atomic_write_text", "file_sha256"]


def atomic_write(path: str | os.PathLike[str], write: Callable[[Path], object]) -> Path:
    """Call ``write(tmp)`` to write a temporary file, then move it to ``path`` in one step.

    The temporary file sits beside ``path`` under a unique hidden name with the same extension
    (two writers never share it) and is removed if ``write`` raises; the folder is created
    when missing.

    Example:
        >>> import tempfile
        >>> target = Path(tempfile.mkdtemp()) / "note.txt"
        >>> atomic_write(target, lambda tmp: tmp.write_text("hello")).read_text()
        'hello'
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    # Hidden, unique, and ending like the target (tools that check a file's extension accept it).
    handle, name = tempfile.mkstemp(
        prefix=f".{target.stem}-", suffix=target.suffix, dir=target.parent
    )
    os.close(handle)
    tmp = Path(name)
    try:
        write(tmp)
        # mkstemp makes the file private (0600); give it the permissions any new file gets.
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return target


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_text(path: str | os.PathLike[str], text: str) -> Path:
    """Write ``text`` (UTF-8, ``\\n`` line ends on every platform) to ``path`` atomically."""
    return atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8", newline="\n"))


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically."""
    return atomic_write(path, lambda tmp: tmp.write_bytes(data))


def file_sha256(path: str | os.PathLike[str]) -> str:
    """Return the SHA-256 of a file's bytes, read in chunks (any size, little memory).

    Example:
        >>> import tempfile
        >>> target = Path(tempfile.mkdtemp()) / "empty"
        >>> _ = target.write_bytes(b"")
        >>> file_sha256(target)[:12]
        'e3b0c44298fc'
    """
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()
