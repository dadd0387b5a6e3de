"""Executing the chapters: papermill runs, outputs written back, volatile metadata stripped.

``make run`` calls :func:`main`. Each chapter is executed by papermill from the ``notebooks/``
folder (the same working directory nbval uses), into a temporary file; only a chapter that ran
to the end replaces the committed notebook, after :func:`normalise` has removed what changes
from run to run (timings, papermill paths, the Python patch version). Running twice therefore
leaves ``git diff`` empty.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nbformat

from companion.errors import InvalidParameterError, NotebookExecutionError

NOTEBOOKS_DIR = Path(__file__).resolve().parent.parent / "notebooks"
KERNEL_NAME = "python3"
_VOLATILE_NOTEBOOK_KEYS = ("papermill", "widgets")
_VOLATILE_CELL_KEYS = ("papermill", "execution", "ExecuteTime")


def list_chapters(directory: str | os.PathLike[str] = NOTEBOOKS_DIR) -> list[Path]:
    """Return the chapter notebooks (``NN-slug.ipynb``) of ``directory``, in order."""
    directory = Path(directory)
    if not directory.is_dir():
        raise InvalidParameterError(f"no notebooks folder at {directory}")
    return sorted(p for p in directory.glob("[0-9][0-9]-*.ipynb") if not p.name.startswith("."))


def normalise(notebook: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """Remove run-to-run noise from ``notebook`` in place and return it.

    Strips papermill's per-cell timings and notebook-level run record, execution timestamps,
    widget state and the Python patch version; sets the standard ``python3`` kernelspec; joins
    stream outputs that the kernel happened to split.
    """
    for key in _VOLATILE_NOTEBOOK_KEYS:
        notebook.metadata.pop(key, None)
    notebook.metadata["kernelspec"] = {
        "display_name": "Python 3 (ipykernel)",
        "language": "python",
        "name": KERNEL_NAME,
    }
    info = notebook.metadata.get("language_info")
    if info is not None:
        notebook.metadata["language_info"] = {
            "name": "python",
            "pygments_lexer": "ipython3",
            "file_extension": ".py",
            "mimetype": "text/x-python",
        }
    for cell in notebook.cells:
        for key in _VOLATILE_CELL_KEYS:
            cell.metadata.pop(key, None)
        if cell.cell_type == "code":
            cell.outputs = _merge_streams(cell.get("outputs", []))
            for output in cell.outputs:
                output.get("metadata", {}).pop("execution", None)
    return notebook


def _merge_streams(outputs: list) -> list:
    """Join consecutive outputs of the same stream.

    The kernel may split one ``print`` into two outputs when a flush timer fires in between;
    merged, the stored notebook is the same whatever the timing was.
    """
    merged: list = []
    for output in outputs:
        previous = merged[-1] if merged else None
        if (
            previous is not None
            and output.get("output_type") == "stream"
            and previous.get("output_type") == "stream"
            and previous.get("name") == output.get("name")
        ):
            previous["text"] += output["text"]
        else:
            merged.append(output)
    return merged


@dataclass(frozen=True)
class ChapterRun:
    """What executing one chapter took."""

    chapter: str
    seconds: float
    cells: int


def execute(
    path: str | os.PathLike[str],
    output: str | os.PathLike[str] | None = None,
    parameters: Mapping[str, Any] | None = None,
) -> ChapterRun:
    """Execute the notebook at ``path`` with papermill and write the normalised result.

    Args:
        path: the chapter notebook.
        output: where to write the executed notebook; ``path`` itself if None. Written only
            if every cell ran, so a failure never leaves a half-executed chapter behind.
        parameters: values for the ``parameters`` cell; None runs the chapter's defaults.

    Raises:
        NotebookExecutionError: a cell raised; the message names the chapter and the error.
    """
    import papermill

    path = Path(path).resolve()
    if not path.is_file():
        raise InvalidParameterError(f"no notebook at {path}")
    output = path if output is None else Path(output).resolve()
    if parameters is not None and not isinstance(parameters, Mapping):
        raise InvalidParameterError(
            f"parameters must be a mapping of name to value, got {type(parameters).__name__}"
        )
    output.parent.mkdir(parents=True, exist_ok=True)
    handle, scratch = tempfile.mkstemp(suffix=".ipynb", prefix=f".{path.stem}-", dir=output.parent)
    os.close(handle)
    started = time.perf_counter()
    try:
        try:
            papermill.execute_notebook(
                str(path),
                scratch,
                parameters=dict(parameters or {}),
                cwd=str(path.parent),
                kernel_name=KERNEL_NAME,
                progress_bar=False,
                log_output=False,
                request_save_on_cell_execute=False,
                # The kernel's own start-up notices are noise next to the chapter timings.
                extra_arguments=["--IPKernelApp.log_level=ERROR"],
            )
        except papermill.PapermillExecutionError as exc:
            raise NotebookExecutionError(
                f"{path.name} failed in cell {exc.exec_count}: {exc.ename}: {exc.evalue}"
            ) from exc
        seconds = time.perf_counter() - started
        notebook = normalise(nbformat.read(scratch, as_version=4))
        nbformat.validate(notebook)
        nbformat.write(notebook, scratch)
        os.replace(scratch, output)
    finally:
        if os.path.exists(scratch):
            os.remove(scratch)
    cells = sum(1 for c in notebook.cells if c.cell_type == "code")
    return ChapterRun(path.name, seconds, cells)


def run_all(
    chapters: Sequence[Path], parameters: Mapping[str, Any] | None = None
) -> list[ChapterRun]:
    """Execute ``chapters`` in order, printing a time per chapter; stop at the first failure."""
    runs = []
    for chapter in chapters:
        print(f"executing {chapter.name} ...", flush=True)
        run = execute(chapter, parameters=parameters)
        print(f"  {run.seconds:6.1f} s  {run.cells} code cells", flush=True)
        runs.append(run)
    total = sum(r.seconds for r in runs)
    print(f"{len(runs)} chapter(s) executed in {total:.1f} s")
    return runs


def _parse_parameter(text: str) -> tuple[str, Any]:
    import yaml

    name, sep, value = text.partition("=")
    if not sep or not name.isidentifier():
        raise InvalidParameterError(f"parameter must look like NAME=VALUE, got {text!r}")
    return name, yaml.safe_load(value)


def main(argv: list[str] | None = None) -> None:
    """Execute the book's chapters (``python -m companion.runner run``)."""
    parser = argparse.ArgumentParser(prog="python -m companion.runner", description=main.__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="execute chapters in place with papermill")
    run.add_argument("--only", default="", help="run chapters whose file name contains this")
    run.add_argument("-p", "--param", action="append", default=[], help="NAME=VALUE (YAML)")
    run.add_argument("--dir", default=str(NOTEBOOKS_DIR), help="folder of the chapters")
    args = parser.parse_args(argv)
    chapters = [c for c in list_chapters(args.dir) if args.only in c.name]
    if not chapters:
        raise SystemExit(f"no chapter in {args.dir} matches {args.only!r}")
    parameters = dict(_parse_parameter(p) for p in args.param) or None
    run_all(chapters, parameters)


if __name__ == "__main__":
    main()
