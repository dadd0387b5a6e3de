"""Executing the chapters: papermill runs, outputs written back, and robustness over seeds.

- :mod:`companion.runner.chapters`: :func:`execute` one chapter, :func:`run_all` in order,
  :func:`normalise` what changes from run to run, :func:`list_chapters`.
- :mod:`companion.runner.robustness`: every chapter with other seeds, its PASS/FAIL checks
  counted (:func:`robustness`, ``make robustness``).
- :mod:`companion.runner.parameters`: checks of paths, chapter lists and parameters.
- :mod:`companion.runner.cli`: ``python -m companion.runner run|robustness`` (``make run``).
"""

from companion.runner.chapters import (
    KERNEL_NAME,
    NOTEBOOKS_DIR,
    ChapterRun,
    execute,
    list_chapters,
    normalise,
    run_all,
)
from companion.runner.cli import main, parse_parameter
from companion.runner.parameters import parameter_names
from companion.runner.robustness import (
    CHECK_PREFIXES,
    CheckResult,
    check_chapter,
    read_checks,
    robustness,
)

__all__ = [
    "CHECK_PREFIXES",
    "KERNEL_NAME",
    "NOTEBOOKS_DIR",
    "ChapterRun",
    "CheckResult",
    "check_chapter",
    "execute",
    "list_chapters",
    "main",
    "normalise",
    "parameter_names",
    "parse_parameter",
    "read_checks",
    "robustness",
    "run_all",
]
