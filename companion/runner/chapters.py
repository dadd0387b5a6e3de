"""Executing a chapter: papermill runs it, its outputs are written back, volatile data stripped.

Each chapter is executed by papermill from the ``notebooks/`` folder (the same working
directory nbval uses), into a temporary file; only a chapter that ran to the end replaces the
committed notebook, after :func:`normalise` has removed what changes from run to run (timings,
papermill paths, the Python patch version). Running twice therefore leaves ``git diff`` empty.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nbformat

from companion.core.checks import check_int, check_path
from companion.core.files import atomic_write
from companion.errors import InvalidParameterError, NotebookExecutionError
from companion.runner.parameters import (
    check_chapter_list,
    check_notebook,
    check_notebook_path,
    check_parameters,
)

logger = logging.getLogger(__name__)

NOTEBOOKS_DIR = Path(__file__).resolve().parents[2] / "notebooks"
KERNEL_NAME = "python3"
_VOLATILE_NOTEBOOK_KEYS = ("papermill", "widgets")
_VOLATILE_CELL_KEYS = ("papermill", "execution", "ExecuteTime")


def list_chapters(directory: str | os.PathLike[str] = NOTEBOOKS_DIR) -> list[Path]:
    """Return the chapter notebooks (``NN-slug.ipynb``) of ``directory``, in order."""
    directory = check_path("directory", directory)
    if not directory.is_dir():
        raise InvalidParameterError(f"no notebooks folder at {directory}")
    return sorted(p for p in directory.glob("[0-9][0-9]-*.ipynb") if not p.name.startswith("."))


def normalise(notebook: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """Remove run-to-run noise from ``notebook`` in place and return it.

    Strips papermill's per-cell timings and notebook-level run record, execution timestamps,
    widget state and the Python patch version; sets the standard ``python3`` kernelspec; joins
    stream outputs that the kernel happened to split.
    """
    check_notebook(notebook)
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

    path = check_notebook_path(path)
    if output is None:
        output = path
    else:
        output = check_path("output", output).resolve()
        if output.suffix != ".ipynb" or output.is_dir():
            raise InvalidParameterError(
                f"output must be a notebook file path ending in .ipynb, got {output.name!r}"
            )
    check_parameters(path, parameters)
    executed: list[nbformat.NotebookNode] = []

    def run_into(scratch: Path) -> None:
        try:
            papermill.execute_notebook(
                str(path),
                str(scratch),
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
        notebook = normalise(nbformat.read(scratch, as_version=4))
        nbformat.validate(notebook)
        nbformat.write(notebook, scratch)
        executed.append(notebook)

    started = time.perf_counter()
    # The chapter is replaced only by a complete, successful run.
    atomic_write(output, run_into)
    seconds = time.perf_counter() - started
    notebook = executed[0]
    cells = sum(1 for c in notebook.cells if c.cell_type == "code")
    return ChapterRun(path.name, seconds, cells)


def run_all(
    chapters: Sequence[Path], parameters: Mapping[str, Any] | None = None, jobs: int = 1
) -> list[ChapterRun]:
    """Execute ``chapters``, logging a time per chapter; stop at the first failure.

    Every chapter and the parameters are checked before the first one runs. With ``jobs`` above
    1, that many chapters run at once, each in its own process with its own kernel: a chapter
    works only in its own workspace, so chapters never wait on each other, and a machine with
    two cores executes the book in about half the time. Once a chapter fails no other starts;
    those running finish (each writes its notebook only when every cell ran), then the first
    failure is raised.

    Returns:
        The runs, in the order of ``chapters``.

    Raises:
        NotebookExecutionError: a chapter failed (the first, in the order they finished).
    """
    chapters = check_chapter_list(chapters)
    jobs = check_int("jobs", jobs, minimum=1)
    for chapter in chapters:
        check_parameters(chapter, parameters)
    started = time.perf_counter()
    if jobs == 1 or len(chapters) == 1:
        runs = []
        for chapter in chapters:
            logger.info("executing %s ...", chapter.name)
            run = execute(chapter, parameters=parameters)
            logger.info("  %6.1f s  %d code cells", run.seconds, run.cells)
            runs.append(run)
    else:
        runs = _run_parallel(chapters, parameters, jobs)
    wall = time.perf_counter() - started
    total = sum(r.seconds for r in runs)
    if jobs == 1:
        logger.info("%d chapter(s) executed in %.1f s", len(runs), total)
    else:
        logger.info("%d chapter(s) executed in %.1f s, %d at a time (%.1f s one after another)",
                    len(runs), wall, jobs, total)
    return runs


def _kernels_write_nothing_here() -> None:
    """Point a worker's stdout and stderr, which its kernels inherit, at the null device.

    A kernel shut down while another chapter keeps the machine busy can print "KeyboardInterrupt
    caught in kernel" (the interrupt jupyter_client sends before every shutdown); a chapter's
    own output is in its notebook, and a failure reaches the parent as an exception.
    """
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.dup2(devnull, 2)
    os.close(devnull)


def _run_parallel(
    chapters: list[Path], parameters: Mapping[str, Any] | None, jobs: int
) -> list[ChapterRun]:
    import multiprocessing
    from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait

    # spawn: each worker imports the runner afresh (no forked copy of this process's threads)
    context = multiprocessing.get_context("spawn")
    done_runs: dict[Path, ChapterRun] = {}
    failure: BaseException | None = None
    queue = list(chapters)
    with ProcessPoolExecutor(max_workers=jobs, mp_context=context,
                             initializer=_kernels_write_nothing_here) as pool:
        running: dict[Future[ChapterRun], Path] = {}
        while queue or running:
            while queue and failure is None and len(running) < jobs:
                chapter = queue.pop(0)
                logger.info("executing %s ...", chapter.name)
                running[pool.submit(execute, chapter, None, parameters)] = chapter
            if not running:
                break
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in finished:
                chapter = running.pop(future)
                try:
                    run = future.result()
                except BaseException as exc:  # a chapter's failure, raised after the others end
                    failure = failure or exc
                    logger.info("  %s failed", chapter.name)
                    continue
                done_runs[chapter] = run
                logger.info("  %6.1f s  %d code cells  %s", run.seconds, run.cells, chapter.name)
    if failure is not None:
        raise failure
    return [done_runs[c] for c in chapters]


