"""Every chapter ends with exercises whose worked solutions run, and are checked, with it.

The exercises are the chapter's last section, ``## Exercises``, after the quick wins. Each is a
``###`` heading with its statement, then a collapsed callout (the worked solution the reader
reveals in the rendered book) that opens in one markdown cell, holds the solution's code cells
and closes in a later markdown cell after the result in words. Because the solutions are cells of
the chapter, ``make run`` executes them, nbval compares their outputs and ``make robustness``
runs them for other seeds; a solution states its result as ``assert`` lines, so a solution whose
claim stops being true fails the chapter instead of rotting in the text.
"""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
CONFIG = yaml.safe_load((ROOT / "_quarto.yml").read_text())
CHAPTERS = [ROOT / chapter for part in CONFIG["book"]["chapters"] if isinstance(part, dict)
            for chapter in part.get("chapters", [])]
OPEN = '::: {.callout-tip collapse="true" title="Worked solution"}'
CLOSE = ":::"


class Exercise:
    """One exercise of a chapter: its heading, statement and the cells of its solution."""

    def __init__(self, title: str) -> None:
        self.title = title
        self.statement = ""
        self.opened = 0
        self.closed = 0
        self.code: list[nbformat.NotebookNode] = []
        self.after_close: list[nbformat.NotebookNode] = []


def exercises(nb: nbformat.NotebookNode) -> list[Exercise]:
    """Split the cells after ``## Exercises`` into exercises (raises if the section is missing)."""
    start = next(i for i, c in enumerate(nb.cells)
                 if c.cell_type == "markdown" and c.source.startswith("## Exercises"))
    found: list[Exercise] = []
    inside = False
    for cell in nb.cells[start:]:
        if cell.cell_type == "code":
            if found and inside:
                found[-1].code.append(cell)
            elif found:
                found[-1].after_close.append(cell)
            continue
        for line in cell.source.splitlines():
            if line.startswith("### "):
                found.append(Exercise(line[4:].strip()))
            elif line.strip() == OPEN and found:
                found[-1].opened += 1
                inside = True
            elif line.strip() == CLOSE and found and inside:
                found[-1].closed += 1
                inside = False
            elif found and not inside and not found[-1].opened:
                found[-1].statement += line + "\n"
    return found


def test_the_chapters_are_the_parts_chapters():
    assert len(CHAPTERS) == 13 and all(p.is_file() for p in CHAPTERS)


@pytest.mark.parametrize("path", CHAPTERS, ids=[p.stem for p in CHAPTERS])
def test_every_chapter_ends_with_two_to_four_exercises_after_its_quick_wins(path):
    nb = nbformat.read(path, as_version=4)
    headings = [line for c in nb.cells if c.cell_type == "markdown"
                for line in c.source.splitlines() if line.startswith("## ")]
    assert headings[-2:] == ["## Quick wins", "## Exercises"], headings[-3:]
    assert 2 <= len(exercises(nb)) <= 4


@pytest.mark.parametrize("path", CHAPTERS, ids=[p.stem for p in CHAPTERS])
def test_every_exercise_has_one_collapsed_worked_solution_that_runs_and_checks(path):
    nb = nbformat.read(path, as_version=4)
    for exercise in exercises(nb):
        where = f"{path.stem}, exercise {exercise.title!r}"
        assert len(exercise.statement.split()) >= 12, f"{where}: state the exercise"
        assert (exercise.opened, exercise.closed) == (1, 1), f"{where}: one callout, closed"
        assert exercise.code, f"{where}: the solution has code"
        assert not exercise.after_close, f"{where}: code after the solution's callout"
        assert all(c.execution_count is not None for c in exercise.code), f"{where}: executed"
        assert re.search(r"^\s*assert ", exercise.code[-1].source, re.M), (
            f"{where}: the solution's last cell checks its stated result with assert")
        assert any(c.outputs for c in exercise.code), f"{where}: the solution shows its result"


def test_the_split_reads_statements_callouts_and_code():
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_markdown_cell("## Quick wins\n\n- a\n- b"),
        nbformat.v4.new_markdown_cell("## Exercises\n\nIntro.\n\n### One\n\nMove the threshold."),
        nbformat.v4.new_markdown_cell(OPEN + "\nHow."),
        nbformat.v4.new_code_cell("x = 1\nassert x == 1"),
        nbformat.v4.new_markdown_cell("It holds.\n" + CLOSE + "\n\n### Two\n\nAgain."),
        nbformat.v4.new_code_cell("y = 2"),
    ]
    one, two = exercises(nb)
    assert (one.title, one.opened, one.closed, len(one.code)) == ("One", 1, 1, 1)
    assert one.statement.strip() == "Move the threshold."
    assert (two.title, two.opened, len(two.code), len(two.after_close)) == ("Two", 0, 0, 1)
