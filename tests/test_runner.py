"""Executing chapters: papermill with parameters, normalised outputs, failures leave nothing."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from companion import runner
from companion.errors import InvalidParameterError, NotebookExecutionError

ROOT = Path(__file__).resolve().parent.parent
CHAPTER_1 = ROOT / "notebooks" / "01-level-0-manual.ipynb"


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def small_notebook(path: Path, body: str) -> Path:
    nb = new_notebook(
        cells=[
            new_markdown_cell("# Demo {#sec-demo}"),
            new_code_cell(
                "X = 2\nSEED = 0\nMODEL_SEED = 0\nWORKSPACE_ROOT = 'build'",
                metadata={"tags": ["parameters"]},
            ),
            new_code_cell(body),
        ],
        metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
    )
    nbformat.write(nb, path)
    return path


def test_list_chapters_finds_numbered_notebooks_in_order(tmp_path):
    for name in ["02-b.ipynb", "01-a.ipynb", "notes.ipynb", "10-c.ipynb"]:
        (tmp_path / name).write_text("{}")
    assert [p.name for p in runner.list_chapters(tmp_path)] == ["01-a.ipynb", "02-b.ipynb", "10-c.ipynb"]
    with pytest.raises(InvalidParameterError, match="no notebooks folder at"):
        runner.list_chapters(tmp_path / "missing")


def test_normalise_strips_what_changes_between_runs():
    nb = new_notebook(cells=[new_code_cell("1")])
    nb.metadata["papermill"] = {"start_time": "2026-01-01T00:00:00", "input_path": "/tmp/x"}
    nb.metadata["widgets"] = {"state": {}}
    nb.metadata["language_info"] = {"name": "python", "version": "3.11.7"}
    nb.cells[0].metadata["papermill"] = {"duration": 0.1}
    nb.cells[0].metadata["execution"] = {"iopub.execute_input": "2026-01-01"}
    nb.cells[0].metadata["tags"] = ["parameters"]
    nb.cells[0].outputs = [
        nbformat.v4.new_output("stream", name="stdout", text="same "),
        nbformat.v4.new_output("stream", name="stdout", text="print\n"),
        nbformat.v4.new_output("stream", name="stderr", text="warning\n"),
        nbformat.v4.new_output("stream", name="stdout", text="later\n"),
    ]
    runner.normalise(nb)
    assert [(o.name, o.text) for o in nb.cells[0].outputs] == [
        ("stdout", "same print\n"), ("stderr", "warning\n"), ("stdout", "later\n")
    ]
    assert "papermill" not in nb.metadata and "widgets" not in nb.metadata
    assert "version" not in nb.metadata["language_info"]
    assert nb.metadata["kernelspec"]["name"] == "python3"
    assert nb.cells[0].metadata == {"tags": ["parameters"]}


@pytest.mark.slow
def test_execute_injects_parameters_and_writes_a_normalised_notebook(tmp_path):
    source = small_notebook(tmp_path / "01-demo.ipynb", "print(X * 21)")
    out = tmp_path / "out.ipynb"
    run = runner.execute(source, out, parameters={"X": 3})
    assert run.chapter == "01-demo.ipynb" and run.cells == 3
    nb = nbformat.read(out, as_version=4)
    assert nb.cells[-1].outputs[0]["text"] == "63\n"
    assert any("injected-parameters" in c.metadata.get("tags", []) for c in nb.cells)
    assert "papermill" not in nb.metadata
    assert all("papermill" not in c.metadata and "execution" not in c.metadata for c in nb.cells)


@pytest.mark.slow
def test_a_failing_chapter_names_the_cell_and_leaves_the_file_untouched(tmp_path):
    source = small_notebook(tmp_path / "01-demo.ipynb", "raise ValueError('bad month')")
    before = digest(source)
    with pytest.raises(NotebookExecutionError, match=r"01-demo.ipynb failed in cell \d+: ValueError: bad month"):
        runner.execute(source)
    assert digest(source) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["01-demo.ipynb"]


def test_execute_refuses_bad_arguments(tmp_path):
    with pytest.raises(InvalidParameterError, match="no notebook at"):
        runner.execute(tmp_path / "missing.ipynb")
    source = small_notebook(tmp_path / "01-demo.ipynb", "pass")
    with pytest.raises(InvalidParameterError, match="parameters must be a mapping of name to value, got list"):
        runner.execute(source, parameters=[("X", 1)])


def test_parameters_from_the_command_line_are_yaml_values():
    assert runner.parse_parameter("N_CUSTOMERS=1500") == ("N_CUSTOMERS", 1500)
    assert runner.parse_parameter("EXPORT_MONTH='2025-05-01'") == ("EXPORT_MONTH", "2025-05-01")
    with pytest.raises(InvalidParameterError, match="parameter must look like NAME=VALUE, got 'oops'"):
        runner.parse_parameter("oops")


@pytest.mark.slow
def test_chapter_1_runs_with_non_default_parameters(tmp_path):
    """The book's first chapter, run through papermill with other parameters than its defaults."""
    before = digest(CHAPTER_1)
    out = tmp_path / "01-level-0-manual.ipynb"
    runner.execute(
        CHAPTER_1,
        out,
        parameters={"WORKSPACE_ROOT": str(tmp_path / "build"), "N_CUSTOMERS": 3000, "SEED": 7,
                    "MODEL_SEED": 1},
    )
    nb = nbformat.read(out, as_version=4)
    text = "\n".join(
        o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs
    )
    assert "3,000 customers" in text
    checks = runner.read_checks(nb)
    assert len(checks) >= 10 and all(passed for passed, _ in checks), checks
    assert (tmp_path / "build" / "01-level-0-manual" / "prod_server" / "churn_model.pkl").exists()
    assert digest(CHAPTER_1) == before  # the committed chapter is not touched


# --------------------------------------------------------------------------- robustness


def checks_notebook(path: Path) -> Path:
    """A chapter whose checks depend on the seed: seed 2 makes one claim fail."""
    nb = new_notebook(
        cells=[
            new_markdown_cell("# Demo {#sec-demo}"),
            new_code_cell("WORKSPACE_ROOT = '../build'\nSEED = 42\nMODEL_SEED = 0",
                          metadata={"tags": ["parameters"]}),
            new_code_cell(
                "checks = {'the seed is not 2': SEED != 2, 'the seeds agree': SEED == MODEL_SEED or SEED == 42}\n"
                "for claim, holds in checks.items():\n"
                "    print(('PASS' if holds else 'FAIL'), claim)\n"
                "assert all(checks.values())"
            ),
        ],
        metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
    )
    nbformat.write(nb, path)
    return path


def test_read_checks_counts_pass_and_fail_lines_only():
    nb = new_notebook(cells=[new_code_cell("x")])
    nb.cells[0].outputs = [nbformat.v4.new_output("stream", name="stdout",
                                                  text="PASS one\nFAIL two\nPASSING no\nPASS\n")]
    assert runner.read_checks(nb) == [(True, "one"), (False, "two")]


@pytest.mark.slow
def test_robustness_reads_the_checks_of_each_seed_and_leaves_the_chapter_untouched(tmp_path):
    chapter = checks_notebook(tmp_path / "01-demo.ipynb")
    before = digest(chapter)
    results = runner.robustness([chapter], [1, 2], tmp_path / "ws", tmp_path / "report.json")
    assert [(r.seed, r.passed, r.failed, r.ok) for r in results] == [(1, 2, 0, True), (2, 1, 1, False)]
    assert results[1].failures == ("the seed is not 2",)
    assert digest(chapter) == before
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["seeds"] == [1, 2] and report["results"][1]["failed"] == 1
    # a later run of another chapter with the same seeds keeps this chapter's rows
    other = checks_notebook(tmp_path / "02-demo.ipynb")
    runner.robustness([other], [1, 2], tmp_path / "ws", tmp_path / "report.json")
    rows = json.loads((tmp_path / "report.json").read_text())["results"]
    assert [(r["chapter"], r["seed"]) for r in rows] == [
        ("01-demo.ipynb", 1), ("01-demo.ipynb", 2), ("02-demo.ipynb", 1), ("02-demo.ipynb", 2)]


@pytest.mark.slow
def test_a_chapter_that_errors_or_prints_no_check_is_not_ok(tmp_path):
    chapter = small_notebook(tmp_path / "01-demo.ipynb", "raise RuntimeError('broken')")
    result = runner.check_chapter(chapter, 1, tmp_path / "ws")
    assert not result.ok and "RuntimeError: broken" in result.error
    quiet = small_notebook(tmp_path / "02-demo.ipynb", "print('hello')")
    assert runner.check_chapter(quiet, 1, tmp_path / "ws").error == "the chapter printed no PASS/FAIL check"
    with pytest.raises(InvalidParameterError, match=r"seed must be an int between 0 and 2\*\*32 - 1, got -1"):
        runner.check_chapter(quiet, -1, tmp_path / "ws")
    with pytest.raises(InvalidParameterError, match="seeds must be a non-empty list of ints"):
        runner.robustness([quiet], [], tmp_path / "ws")


@pytest.mark.slow
def test_an_assert_that_no_failed_check_explains_is_an_error(tmp_path):
    """An exercise after the checks whose claim fails for a seed is not a passing chapter."""
    chapter = checks_notebook(tmp_path / "01-demo.ipynb")
    nb = nbformat.read(chapter, as_version=4)
    nb.cells.append(new_code_cell("solution = SEED * 2\nassert solution != 6, 'the claim fails for seed 3'"))
    nbformat.write(nb, chapter)
    holds, breaks, both = (runner.check_chapter(chapter, seed, tmp_path / "ws") for seed in (1, 3, 2))
    assert holds.ok and holds.error is None
    assert (breaks.passed, breaks.failed, breaks.ok) == (2, 0, False)
    assert breaks.error.endswith("AssertionError: the claim fails for seed 3")
    # seed 2 fails a check: the checks cell's own assert stops the notebook, as before
    assert (both.failed, both.error, both.ok) == (1, None, False)


# --------------------------------------------------------------------------- bad input, checked first


def test_parameter_names_reads_the_parameters_cell(tmp_path):
    chapter = small_notebook(tmp_path / "01-demo.ipynb", "print(X)")
    assert runner.parameter_names(chapter) == ["X", "SEED", "MODEL_SEED", "WORKSPACE_ROOT"]
    assert runner.parameter_names(CHAPTER_1)[:3] == ["WORKSPACE_ROOT", "N_CUSTOMERS", "SEED"]


def test_execute_refuses_unknown_or_unusable_parameters_before_starting_a_kernel(tmp_path):
    chapter = small_notebook(tmp_path / "01-demo.ipynb", "open('ran.txt', 'w').write('x')")
    before = digest(chapter)
    with pytest.raises(InvalidParameterError, match=r"01-demo.ipynb has no parameter 'SEEDS'; accepted: \['X', 'SEED'"):
        runner.execute(chapter, parameters={"SEEDS": 3})
    with pytest.raises(InvalidParameterError, match="parameter X must be finite, got nan"):
        runner.execute(chapter, parameters={"X": float("nan")})
    with pytest.raises(InvalidParameterError, match="parameter X must be a str, number, bool, None, list or dict, got set"):
        runner.execute(chapter, parameters={"X": {1}})
    with pytest.raises(InvalidParameterError, match="output must be a notebook file path ending in .ipynb"):
        runner.execute(chapter, output=tmp_path / "out.txt")
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(InvalidParameterError, match="no notebook at .*give the path of an .ipynb file"):
        runner.execute(tmp_path / "notes.txt")
    with pytest.raises(InvalidParameterError, match="path must be a path"):
        runner.execute(None)
    assert digest(chapter) == before and not (tmp_path / "ran.txt").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["01-demo.ipynb", "notes.txt"]


def test_run_all_checks_every_chapter_before_running_the_first(tmp_path):
    first = small_notebook(tmp_path / "01-demo.ipynb", "open('ran.txt', 'w').write('x')")
    with pytest.raises(InvalidParameterError, match="no notebook at"):
        runner.run_all([first, tmp_path / "02-missing.ipynb"])
    with pytest.raises(InvalidParameterError, match="has no parameter 'Y'"):
        runner.run_all([first], {"Y": 1})
    with pytest.raises(InvalidParameterError, match="chapters must not repeat"):
        runner.run_all([first, first])
    with pytest.raises(InvalidParameterError, match="chapters must be a list of notebook paths"):
        runner.run_all(str(first))
    assert not (tmp_path / "ran.txt").exists()


def test_robustness_checks_seeds_chapters_and_report_first(tmp_path):
    chapter = small_notebook(tmp_path / "01-demo.ipynb", "open('ran.txt', 'w').write('x')")
    bare = tmp_path / "02-bare.ipynb"
    nbformat.write(new_notebook(cells=[new_code_cell("X = 1", metadata={"tags": ["parameters"]})]), bare)
    ws = tmp_path / "ws"
    for seeds, message in [([1, 1], "seeds must not repeat"), ([True], "got True"),
                           ("12", "non-empty list of ints"), ([-3], "got -3")]:
        with pytest.raises(InvalidParameterError, match=message):
            runner.robustness([chapter], seeds, ws)
    with pytest.raises(InvalidParameterError, match="report must be a file path"):
        runner.robustness([chapter], [1], ws, report=tmp_path)
    with pytest.raises(InvalidParameterError, match="02-bare.ipynb has no parameter 'SEED'"):
        runner.robustness([chapter, bare], [1], ws)
    with pytest.raises(InvalidParameterError, match="workspace_root must be a path"):
        runner.check_chapter(chapter, 1, None)
    assert not (tmp_path / "ran.txt").exists() and not ws.exists()


def test_notebook_readers_refuse_what_is_not_a_notebook():
    with pytest.raises(InvalidParameterError, match="expected a notebook .*got str"):
        runner.read_checks("01-level-0-manual.ipynb")
    with pytest.raises(InvalidParameterError, match="expected a notebook .*got list"):
        runner.normalise([])
    with pytest.raises(InvalidParameterError, match="directory must be a path"):
        runner.list_chapters(3)


@pytest.mark.slow
def test_run_all_two_at_a_time_writes_every_chapter_and_stops_starting_after_a_failure(tmp_path):
    chapters = [small_notebook(tmp_path / f"0{n}-demo.ipynb", f"print({n} * X)") for n in (1, 2, 3)]
    runs = runner.run_all(chapters, {"X": 7}, jobs=2)
    assert [r.chapter for r in runs] == [c.name for c in chapters]
    for n, chapter in zip((1, 2, 3), chapters, strict=True):
        outputs = nbformat.read(chapter, as_version=4).cells[-1].outputs
        assert outputs[0]["text"] == f"{7 * n}\n"
    broken = small_notebook(tmp_path / "04-demo.ipynb", "raise RuntimeError('broken')")
    later = small_notebook(tmp_path / "05-demo.ipynb", "open('ran.txt', 'w').write('x')")
    before = digest(broken)
    with pytest.raises(NotebookExecutionError, match="04-demo.ipynb failed in cell .*RuntimeError: broken"):
        runner.run_all([broken, later], jobs=1)
    assert digest(broken) == before and not (tmp_path / "ran.txt").exists()
    with pytest.raises(NotebookExecutionError, match="04-demo.ipynb failed"):
        runner.run_all([broken, chapters[0]], jobs=2)
    assert digest(broken) == before
    with pytest.raises(InvalidParameterError, match="jobs must be"):
        runner.run_all(chapters, jobs=0)
