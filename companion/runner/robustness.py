"""Robustness: every chapter run with other seeds, and how many of its checks pass."""

from __future__ import annotations

import logging
import os
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import nbformat

from companion.core.checks import check_path
from companion.core.files import atomic_write_text
from companion.errors import InvalidParameterError
from companion.runner.chapters import KERNEL_NAME
from companion.runner.parameters import (
    check_chapter_list,
    check_notebook,
    check_notebook_path,
    check_parameters,
)

logger = logging.getLogger(__name__)

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
    check_notebook(notebook)
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
    PASS/FAIL lines read. Any other error is reported with its cell, and so is an
    ``AssertionError`` that no failed check explains: an exercise's solution after the checks
    whose claim no longer holds, or an ``assert`` in the middle of the chapter.
    """
    import papermill

    path = check_notebook_path(path)
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= 2**32 - 1:
        raise InvalidParameterError(f"seed must be an int between 0 and 2**32 - 1, got {seed!r}")
    workspace_root = check_path("workspace_root", workspace_root)
    parameters = {"SEED": seed, "MODEL_SEED": seed, "WORKSPACE_ROOT": str(workspace_root)}
    check_parameters(path, parameters)
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
            error = f"cell {exc.exec_count}: {exc.ename}: {exc.evalue}".rstrip(": ")
        checks = read_checks(nbformat.read(scratch, as_version=4)) if scratch.exists() else []
    failures = tuple(claim for passed, claim in checks if not passed)
    if error is not None and error.split(": ", 2)[1] == "AssertionError" and failures:
        error = None  # the checks cell's own assert, failing on the FAIL lines read above
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
    """Run every chapter with every seed; log a table and write it as JSON to ``report``.

    A report written earlier with the same seeds keeps the rows of chapters not run now, so
    ``--only 07`` adds chapter 7 to the book's table instead of replacing it.
    """
    import json

    chapters = check_chapter_list(chapters)
    if isinstance(seeds, (str, bytes)) or not isinstance(seeds, Sequence) or not seeds:
        raise InvalidParameterError(f"seeds must be a non-empty list of ints, got {seeds!r}")
    for seed in seeds:
        if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= 2**32 - 1:
            raise InvalidParameterError(
                f"seeds must be ints between 0 and 2**32 - 1, got {seed!r} in {list(seeds)}"
            )
    if len(set(seeds)) != len(seeds):
        raise InvalidParameterError(f"seeds must not repeat, got {list(seeds)}")
    workspace_root = check_path("workspace_root", workspace_root)
    if report is not None:
        report = check_path("report", report)
        if report.is_dir():
            raise InvalidParameterError(f"report must be a file path, got the folder {report}")
    for chapter in chapters:
        check_parameters(chapter, {"SEED": 0, "MODEL_SEED": 0, "WORKSPACE_ROOT": ""})
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
        # A report of other chapters run earlier with the same seeds keeps their rows.
        previous = json.loads(report.read_text(encoding="utf-8")) if report.is_file() else {}
        if previous.get("seeds") == list(seeds):
            ran = {r["chapter"] for r in rows}
            kept = [r for r in previous.get("results", []) if r["chapter"] not in ran]
            rows = sorted(kept + rows, key=lambda r: (r["chapter"], r["seed"]))
        summary = {"seeds": list(seeds), "results": rows}
        atomic_write_text(report, json.dumps(summary, indent=2) + "\n")
    return results


