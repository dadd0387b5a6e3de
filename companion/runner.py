"""Executing the chapters: papermill runs, outputs written back, volatile metadata stripped.

``make run`` calls :func:`main`. Each chapter is executed by papermill from the ``notebooks/``
folder (the same working directory nbval uses), into a temporary file; only a chapter that ran
to the end replaces the committed notebook, after :func:`normalise` has removed what changes
from run to run (timings, papermill paths, the Python patch version). Running twice therefore
leaves ``git diff`` empty.
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nbformat

from companion.core.files import atomic_write, atomic_write_text
from companion.errors import InvalidParameterError, NotebookExecutionError

logger = logging.getLogger(__name__)

NOTEBOOKS_DIR = Path(__file__).resolve().parent.parent / "notebooks"
KERNEL_NAME = "python3"
_VOLATILE_NOTEBOOK_KEYS = ("papermill", "widgets")
_VOLATILE_CELL_KEYS = ("papermill", "execution", "ExecuteTime")


def list_chapters(directory: str | os.PathLike[str] = NOTEBOOKS_DIR) -> list[Path]:
    """Return the chapter notebooks (``NN-slug.ipynb``) of ``directory``, in order."""
    directory = _path("directory", directory)
    if not directory.is_dir():
        raise InvalidParameterError(f"no notebooks folder at {directory}")
    return sorted(p for p in directory.glob("[0-9][0-9]-*.ipynb") if not p.name.startswith("."))


def normalise(notebook: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """Remove run-to-run noise from ``notebook`` in place and return it.

    Strips papermill's per-cell timings and notebook-level run record, execution timestamps,
    widget state and the Python patch version; sets the standard ``python3`` kernelspec; joins
    stream outputs that the kernel happened to split.
    """
    _check_notebook(notebook)
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

    path = _notebook_path(path)
    if output is None:
        output = path
    else:
        output = _path("output", output).resolve()
        if output.suffix != ".ipynb" or output.is_dir():
            raise InvalidParameterError(
                f"output must be a notebook file path ending in .ipynb, got {output.name!r}"
            )
    _check_parameters(path, parameters)
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
    chapters: Sequence[Path], parameters: Mapping[str, Any] | None = None
) -> list[ChapterRun]:
    """Execute ``chapters`` in order, logging a time per chapter; stop at the first failure.

    Every chapter and the parameters are checked before the first one runs.
    """
    chapters = _chapter_list(chapters)
    for chapter in chapters:
        _check_parameters(chapter, parameters)
    runs = []
    for chapter in chapters:
        logger.info("executing %s ...", chapter.name)
        run = execute(chapter, parameters=parameters)
        logger.info("  %6.1f s  %d code cells", run.seconds, run.cells)
        runs.append(run)
    total = sum(r.seconds for r in runs)
    logger.info("%d chapter(s) executed in %.1f s", len(runs), total)
    return runs


# --------------------------------------------------------------------------- robustness

CHECK_PREFIXES = ("PASS", "FAIL")
"""Each chapter's last section prints one line per claim, starting with PASS or FAIL."""


@dataclass(frozen=True)
class CheckResult:
    """The end-of-chapter checks of one chapter run with one pair of seeds."""

    chapter: str
    seed: int
    passed: int
    failed: int
    error: str | None = None
    failures: tuple[str, ...] = ()

    @property
    def total(self) -> int:
        return self.passed + self.failed

    @property
    def ok(self) -> bool:
        return self.error is None and self.failed == 0 and self.passed > 0


def read_checks(notebook: nbformat.NotebookNode) -> list[tuple[bool, str]]:
    """Return ``(passed, claim)`` for every ``PASS ...`` / ``FAIL ...`` line a notebook printed."""
    _check_notebook(notebook)
    checks = []
    for cell in notebook.cells:
        if cell.cell_type != "code":
            continue
        for output in cell.get("outputs", []):
            if output.get("output_type") != "stream":
                continue
            for line in output.get("text", "").splitlines():
                word, _, claim = line.partition(" ")
                if word in CHECK_PREFIXES and claim:
                    checks.append((word == "PASS", claim.strip()))
    return checks


def check_chapter(
    path: str | os.PathLike[str], seed: int, workspace_root: str | os.PathLike[str]
) -> CheckResult:
    """Run one chapter with ``SEED = MODEL_SEED = seed`` and count its passing checks.

    The chapter runs in a scratch copy (the committed notebook is never touched) with its
    workspace under ``workspace_root``. A chapter whose final ``assert`` fails still has its
    PASS/FAIL lines read; any other error is reported with its cell.
    """
    import papermill

    path = _notebook_path(path)
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= 2**32 - 1:
        raise InvalidParameterError(f"seed must be an int between 0 and 2**32 - 1, got {seed!r}")
    workspace_root = _path("workspace_root", workspace_root)
    parameters = {"SEED": seed, "MODEL_SEED": seed, "WORKSPACE_ROOT": str(workspace_root)}
    _check_parameters(path, parameters)
    with tempfile.TemporaryDirectory(prefix="robustness-") as scratch_dir:
        scratch = Path(scratch_dir) / path.name
        error = None
        try:
            papermill.execute_notebook(
                str(path), str(scratch), parameters=parameters, cwd=str(path.parent),
                kernel_name=KERNEL_NAME, progress_bar=False, log_output=False,
                extra_arguments=["--IPKernelApp.log_level=ERROR"],
            )
        except papermill.PapermillExecutionError as exc:
            if exc.ename != "AssertionError":
                error = f"cell {exc.exec_count}: {exc.ename}: {exc.evalue}"
        checks = read_checks(nbformat.read(scratch, as_version=4)) if scratch.exists() else []
    failures = tuple(claim for passed, claim in checks if not passed)
    passed = sum(1 for ok, _ in checks if ok)
    if error is None and not checks:
        error = "the chapter printed no PASS/FAIL check"
    return CheckResult(path.name, seed, passed, len(failures), error, failures)


def robustness(
    chapters: Sequence[Path],
    seeds: Sequence[int],
    workspace_root: str | os.PathLike[str],
    report: str | os.PathLike[str] | None = None,
) -> list[CheckResult]:
    """Run every chapter with every seed; log a table and write it as JSON to ``report``."""
    import json

    chapters = _chapter_list(chapters)
    if isinstance(seeds, (str, bytes)) or not isinstance(seeds, Sequence) or not seeds:
        raise InvalidParameterError(f"seeds must be a non-empty list of ints, got {seeds!r}")
    for seed in seeds:
        if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= 2**32 - 1:
            raise InvalidParameterError(
                f"seeds must be ints between 0 and 2**32 - 1, got {seed!r} in {list(seeds)}"
            )
    if len(set(seeds)) != len(seeds):
        raise InvalidParameterError(f"seeds must not repeat, got {list(seeds)}")
    workspace_root = _path("workspace_root", workspace_root)
    if report is not None:
        report = _path("report", report)
        if report.is_dir():
            raise InvalidParameterError(f"report must be a file path, got the folder {report}")
    for chapter in chapters:
        _check_parameters(chapter, {"SEED": 0, "MODEL_SEED": 0, "WORKSPACE_ROOT": ""})
    results = []
    for chapter in chapters:
        for seed in seeds:
            started = time.perf_counter()
            result = check_chapter(chapter, seed, Path(workspace_root) / f"seed-{seed}")
            results.append(result)
            status = "ok" if result.ok else "FAILED"
            logger.info(
                "%-40s seed %3d: %d/%d checks pass  (%5.1f s) %s", chapter.name, seed,
                result.passed, result.total, time.perf_counter() - started, status,
            )
            for claim in result.failures:
                logger.info("    FAIL %s", claim)
            if result.error:
                logger.info("    ERROR %s", result.error)
    logger.info("\nchapter                                   %s",
                " ".join(f"seed {s:>3}" for s in seeds))
    for chapter in chapters:
        row = [r for r in results if r.chapter == chapter.name]
        cells = " ".join(f"{f'{r.passed}/{r.total}':>8}" if r.error is None else "   error"
                         for r in row)
        logger.info("%-40s %s", chapter.name, cells)
    if report is not None:
        rows = [
            {"chapter": r.chapter, "seed": r.seed, "passed": r.passed, "failed": r.failed,
             "error": r.error, "failures": list(r.failures)}
            for r in results
        ]
        summary = {"seeds": list(seeds), "results": rows}
        atomic_write_text(report, json.dumps(summary, indent=2) + "\n")
    return results


def _path(name: str, value: object) -> Path:
    if isinstance(value, bytes) or not isinstance(value, (str, os.PathLike)) or str(value) == "":
        raise InvalidParameterError(
            f"{name} must be a non-empty path (str or os.PathLike), got {value!r}"
        )
    return Path(value)


def _notebook_path(value: object) -> Path:
    path = _path("path", value).resolve()
    if path.suffix != ".ipynb" or not path.is_file():
        raise InvalidParameterError(f"no notebook at {path}; give the path of an .ipynb file")
    return path


def _chapter_list(chapters: object) -> list[Path]:
    if isinstance(chapters, (str, bytes, os.PathLike)) or not isinstance(chapters, Sequence):
        raise InvalidParameterError(
            f"chapters must be a list of notebook paths (e.g. list_chapters()), got {chapters!r}"
        )
    paths = [_notebook_path(c) for c in chapters]
    if len(set(paths)) != len(paths):
        raise InvalidParameterError(f"chapters must not repeat, got {[p.name for p in paths]}")
    return paths


def _check_notebook(notebook: object) -> None:
    if not isinstance(notebook, Mapping) or not isinstance(notebook.get("cells"), list):
        raise InvalidParameterError(
            f"expected a notebook (nbformat.read(...)), got {type(notebook).__name__}"
        )


def parameter_names(path: str | os.PathLike[str]) -> list[str]:
    """Return the names the ``parameters`` cell of the notebook at ``path`` assigns, in order."""
    import ast

    notebook = nbformat.read(_notebook_path(path), as_version=4)
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


def _check_parameters(path: Path, parameters: object) -> None:
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
    robust = sub.add_parser(
        "robustness", help="run every chapter with other seeds and count its passing checks"
    )
    robust.add_argument("--only", default="", help="chapters whose file name contains this")
    robust.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3, 4, 5])
    robust.add_argument("--dir", default=str(NOTEBOOKS_DIR), help="folder of the chapters")
    robust.add_argument("--workspaces", default="build/robustness", help="workspace root")
    robust.add_argument("--report", default="benchmarks/results/robustness.json")
    args = parser.parse_args(argv)
    # The command line shows the library's progress messages on stdout, as they come.
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stdout, force=True)
    chapters = [c for c in list_chapters(args.dir) if args.only in c.name]
    if not chapters:
        raise SystemExit(f"no chapter in {args.dir} matches {args.only!r}")
    if args.command == "robustness":
        results = robustness(chapters, args.seeds, Path(args.workspaces).resolve(), args.report)
        if not all(r.ok for r in results):
            raise SystemExit("some chapter checks fail for some seed (table above)")
        return
    parameters = dict(_parse_parameter(p) for p in args.param) or None
    run_all(chapters, parameters)


if __name__ == "__main__":
    main()
