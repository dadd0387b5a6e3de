"""The code version of a run: a SHA-256 of the source files it executes, and a git commit.

A commit alone would not do: it misses uncommitted changes, and a notebook run outside git
has none. The digest covers each file's name and bytes (Windows line ends read as Unix
ones), so the same code gives the same digest on any machine and checkout.

:func:`module_files` finds the files: the modules named, and every companion module they
import at module level, followed transitively through packages, read from the source with
:mod:`ast` (nothing is imported).
"""

from __future__ import annotations

import ast
import hashlib
import os
import subprocess
from collections.abc import Iterable, Sequence
from pathlib import Path

from companion.errors import InvalidParameterError

__all__ = ["PACKAGE_DIR", "code_version", "module_files", "source_name"]

PACKAGE_DIR = Path(__file__).resolve().parent.parent
"""The folder of the ``companion`` package."""


def _source(module: str) -> Path | None:
    """Return the file of a ``companion...`` module (a package's ``__init__.py``), or None."""
    parts = module.split(".")
    if parts[0] != "companion":
        return None
    base = PACKAGE_DIR.joinpath(*parts[1:])
    if (base / "__init__.py").is_file():
        return base / "__init__.py"
    if base.with_suffix(".py").is_file():
        return base.with_suffix(".py")
    return None


def _runtime_nodes(tree: ast.AST) -> list[ast.AST]:
    """Every node of ``tree`` except what sits under ``if TYPE_CHECKING:`` (never run)."""
    found: list[ast.AST] = []
    todo = [tree]
    while todo:
        node = todo.pop()
        found.append(node)
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and (
                (isinstance(child.test, ast.Name) and child.test.id == "TYPE_CHECKING")
                or (isinstance(child.test, ast.Attribute) and child.test.attr == "TYPE_CHECKING")
            ):
                todo.extend(child.orelse)
                continue
            todo.append(child)
    return found


def _imported(module: str, source: Path, everywhere: bool = False) -> list[str]:
    """The companion modules ``module`` (whose file is ``source``) imports at module level, or
    anywhere in the file (inside functions too) with ``everywhere``."""
    package = module if source.name == "__init__.py" else module.rpartition(".")[0]
    found: list[str] = []
    tree = ast.parse(source.read_text(encoding="utf-8"))
    for node in _runtime_nodes(tree) if everywhere else tree.body:
        if isinstance(node, ast.Import):
            found.extend(a.name for a in node.names if a.name.split(".")[0] == "companion")
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, *([node.module] if node.module else [])])
            else:
                base = node.module or ""
            if base.split(".")[0] != "companion":
                continue
            found.append(base)
            # ``from companion.core import checks`` imports the submodule ``checks`` too.
            found.extend(f"{base}.{a.name}" for a in node.names if _source(f"{base}.{a.name}"))
    return found


def module_files(*modules: str, everywhere: bool = False) -> list[Path]:
    """Return the source files of ``modules`` and of every companion module they import.

    Modules are dotted names (``"companion.training"``); a package counts as its
    ``__init__.py`` plus what that imports. Imports are followed at module level, or, with
    ``everywhere``, also inside functions (what a call may run: a pipeline step that imports
    the trainer when it runs depends on the trainer's code). Files come sorted by
    :func:`source_name`.

    Example:
        >>> [source_name(p) for p in module_files("companion.errors")]
        ['errors.py']
    """
    seen: dict[str, Path] = {}
    todo = list(modules)
    while todo:
        module = todo.pop()
        if module in seen:
            continue
        source = _source(module)
        if source is None:
            if module in modules:
                raise InvalidParameterError(
                    f"module {module!r} is not part of the companion package; accepted: "
                    "dotted names such as 'companion.training'"
                )
            continue
        seen[module] = source
        # A submodule runs its package's __init__ first.
        parent = module.rpartition(".")[0]
        if parent and parent != "companion":
            todo.append(parent)
        todo.extend(_imported(module, source, everywhere))
    return sorted(set(seen.values()), key=source_name)


def source_name(path: Path) -> str:
    """Name of a file in a digest: relative to its ``companion`` folder (``tracking/runs.py``).

    A copy of the package elsewhere (a pipeline's code folder) gives the same names.
    """
    resolved = path.resolve()
    for parent in resolved.parents:
        if parent.name == PACKAGE_DIR.name:
            return resolved.relative_to(parent).as_posix()
    return path.name


def code_version(
    files: Sequence[str | os.PathLike[str]],
    repo_dir: str | os.PathLike[str] | None = None,
) -> dict[str, str]:
    """Return tags that name the code a run used: a SHA-256 of ``files``, and a git commit.

    Args:
        files: the source files to digest, in the order given.
        repo_dir: the root folder of a git repository (its ``.git`` is right there); when it
            has a ``HEAD`` commit, that commit is added as ``code.git_commit``.

    Returns:
        ``{"code.sha256": digest, "code.files": "a.py,b.py"}``, plus ``"code.git_commit"``.

    Example:
        >>> sorted(code_version(module_files("companion.errors")))
        ['code.files', 'code.sha256']
    """
    if repo_dir is not None and (
        not isinstance(repo_dir, (str, os.PathLike)) or not Path(repo_dir).is_dir()
    ):
        raise InvalidParameterError(
            f"repo_dir must be None or an existing folder, got {repo_dir!r}"
        )
    if isinstance(files, (str, bytes, os.PathLike)) or not isinstance(files, Iterable):
        raise InvalidParameterError(
            f"files must be a list of paths, got {files!r}; accepted: e.g. ['train.py']"
        )
    paths = []
    for entry in files:
        if not isinstance(entry, (str, os.PathLike)):
            raise InvalidParameterError(f"files must hold paths, got {entry!r}")
        paths.append(Path(entry))
    missing = [p.name for p in paths if not p.is_file()]
    if not paths or missing:
        raise InvalidParameterError(
            f"cannot digest code files {missing or '[]'}; accepted: paths of existing files"
        )
    resolved = [p.resolve() for p in paths]
    if len(set(resolved)) != len(resolved):
        raise InvalidParameterError(f"files lists a file twice: {[p.name for p in paths]}")
    digest = hashlib.sha256()
    names = [source_name(p) for p in paths]
    for name, path in zip(names, paths, strict=True):
        digest.update(name.encode() + b"\0")
        digest.update(path.read_bytes().replace(b"\r\n", b"\n") + b"\0")
    tags = {"code.sha256": digest.hexdigest(), "code.files": ",".join(names)}
    if repo_dir is not None and (Path(repo_dir) / ".git").exists():
        result = subprocess.run(  # noqa: S603
            ["git", "-C", str(repo_dir), "rev-parse", "--verify", "--quiet", "HEAD"],  # noqa: S607
            capture_output=True, text=True, check=False,
        )
        if result.returncode == 0 and result.stdout.strip():
            tags["code.git_commit"] = result.stdout.strip()
    return tags
