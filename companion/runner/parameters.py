"""Checks of what the runner is given: paths, chapter lists, and a chapter's parameters."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import nbformat

from companion.core.checks import check_path
from companion.errors import InvalidParameterError


def check_notebook_path(value: object) -> Path:
    path = check_path("path", value).resolve()
    if path.suffix != ".ipynb" or not path.is_file():
        raise InvalidParameterError(f"no notebook at {path}; give the path of an .ipynb file")
    return path


def check_chapter_list(chapters: object) -> list[Path]:
    if isinstance(chapters, (str, bytes, os.PathLike)) or not isinstance(chapters, Sequence):
        raise InvalidParameterError(
            f"chapters must be a list of notebook paths (e.g. list_chapters()), got {chapters!r}"
        )
    paths = [check_notebook_path(c) for c in chapters]
    if len(set(paths)) != len(paths):
        raise InvalidParameterError(f"chapters must not repeat, got {[p.name for p in paths]}")
    return paths


def check_notebook(notebook: object) -> None:
    if not isinstance(notebook, Mapping) or not isinstance(notebook.get("cells"), list):
        raise InvalidParameterError(
            f"expected a notebook (nbformat.read(...)), got {type(notebook).__name__}"
        )


def parameter_names(path: str | os.PathLike[str]) -> list[str]:
    """Return the names the ``parameters`` cell of the notebook at ``path`` assigns, in order."""
    import ast

    notebook = nbformat.read(check_notebook_path(path), as_version=4)
    names: list[str] = []
    for cell in notebook.cells:
        if cell.cell_type == "code" and "parameters" in cell.metadata.get("tags", []):
            try:
                tree = ast.parse(cell.source)
            except SyntaxError as exc:
                raise InvalidParameterError(f"the parameters cell does not parse: {exc}") from exc
            for node in tree.body:
                targets = node.targets if isinstance(node, ast.Assign) else (
                    [node.target] if isinstance(node, ast.AnnAssign) else []
                )
                names += [t.id for t in targets if isinstance(t, ast.Name) and t.id not in names]
    return names


_PARAMETER_TYPES = (str, int, float, bool, type(None), list, dict)


def check_parameters(path: Path, parameters: object) -> None:
    """Refuse parameters the chapter's ``parameters`` cell does not define, before running it."""
    if parameters is None:
        return
    if not isinstance(parameters, Mapping):
        raise InvalidParameterError(
            f"parameters must be a mapping of name to value, got {type(parameters).__name__}"
        )
    if not parameters:
        return
    accepted = parameter_names(path)
    for name, value in parameters.items():
        if not isinstance(name, str) or name not in accepted:
            raise InvalidParameterError(
                f"{path.name} has no parameter {name!r}; accepted: {accepted}"
            )
        if not isinstance(value, _PARAMETER_TYPES):
            raise InvalidParameterError(
                f"parameter {name} must be a str, number, bool, None, list or dict, got "
                f"{type(value).__name__}"
            )
        if isinstance(value, float) and not math.isfinite(value):
            raise InvalidParameterError(f"parameter {name} must be finite, got {value!r}")


