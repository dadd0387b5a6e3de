"""The latest-versions run: tools/latest_report.py's parsing and diff, `make latest`, its workflow.

All offline and fast: the report is built from small texts written here; the workflow is
validated with check-jsonschema's bundled GitHub-workflow schema (companion.cicd).
"""

from __future__ import annotations

import importlib.util
import json
import re
import sys
from pathlib import Path

import pytest

from companion import cicd

ROOT = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("latest_report", ROOT / "tools" / "latest_report.py")
assert _spec is not None and _spec.loader is not None
lr = importlib.util.module_from_spec(_spec)
sys.modules["latest_report"] = lr
_spec.loader.exec_module(lr)

LOCK = """\
# Every package of the book's environment, pinned.
mlflow==3.17.2
numpy==2.3.1
Jinja2==3.1.6
scikit_learn==1.9.1
urllib3==2.8.0  # held back by kfp
-e file:///somewhere
"""
FREEZE = """\
jinja2==3.1.6
mlflow==3.17.3
numpy==2.4.0rc1
scikit-learn==1.9.1.post1
urllib3==2.8.0
tzdata==2026.1
mypkg @ file:///tmp/mypkg
"""
JUNIT = """<?xml version="1.0" encoding="utf-8"?>
<testsuites><testsuite name="pytest" tests="6">
  <testcase classname="tests.test_data" name="test_ok" time="0.1"/>
  <testcase classname="tests.test_data.TestShapes" name="test_rows[5000]" time="0.2">
    <failure message="AssertionError: assert 4999 == 5000&#10;  + where 4999 = len(df)">tb</failure>
  </testcase>
  <testcase classname="tests.test_tracking" name="test_run" time="0.0">
    <error message="">
E   ImportError: cannot import name 'MlflowClient'
more lines</error>
  </testcase>
  <testcase classname="tests.test_tracking" name="test_skip" time="0.0">
    <skipped message="no java"/>
  </testcase>
  <testcase classname="" name="tests.test_features" time="0.0">
    <error message="collection failure">ModuleNotFoundError: feast</error>
  </testcase>
  <testcase classname="companion.data.simulate" name="companion.data.simulate.simulate" time="0.0">
    <failure message="">002 Expected:
    5000
Got:
    4999</failure>
  </testcase>
</testsuite></testsuites>
"""


# ----------------------------------------------------------------------------- parsing


def test_pins_are_read_by_canonical_name_skipping_comments_options_and_urls():
    assert lr.parse_pins(LOCK) == {
        "mlflow": "3.17.2", "numpy": "2.3.1", "jinja2": "3.1.6",
        "scikit-learn": "1.9.1", "urllib3": "2.8.0",
    }
    assert lr.parse_pins("Foo.Bar[extra]==1.0\n") == {"foo-bar": "1.0"}


def test_the_real_lock_is_read_whole():
    text = (ROOT / "requirements.lock").read_text()
    pins = lr.parse_pins(text)
    assert len(pins) == sum(1 for line in text.splitlines() if "==" in line) > 300
    assert pins["mlflow"].startswith("3.17.")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("numpy>=2\n", r"lock line 1 is not 'name==version': 'numpy>=2'"),
        ("a==1\nA==2\n", r"line 2 pins a to 2, already pinned to 1"),
    ],
)
def test_a_bad_pin_file_is_refused_naming_the_line(text, message):
    with pytest.raises(lr.ReportError, match=message):
        lr.parse_pins(text, "lock")


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("3.17.2", "3.17.10", "newer"), ("2.0", "1.26.4", "older"), ("1.0", "1.0.0", "same"),
        ("2.4.0rc1", "2.4.0", "newer"), ("1.9.1", "1.9.1.post1", "newer"),
        ("1.0.dev3", "1.0a1", "newer"), ("1.0+cpu", "1.0", "same"), ("abc", "abd", "differs"),
    ],
)
def test_versions_are_compared_as_releases(old, new, expected):
    assert lr.direction(old, new) == expected


def test_the_diff_lists_changed_added_and_removed_packages_by_name():
    diff = lr.diff_versions(lr.parse_pins(LOCK), lr.parse_pins(FREEZE))
    assert diff == {
        "changed": [
            {"name": "mlflow", "lock": "3.17.2", "latest": "3.17.3", "direction": "newer"},
            {"name": "numpy", "lock": "2.3.1", "latest": "2.4.0rc1", "direction": "newer"},
            {"name": "scikit-learn", "lock": "1.9.1", "latest": "1.9.1.post1", "direction": "newer"},
        ],
        "added": [{"name": "tzdata", "latest": "2026.1"}],
        "removed": [],
    }
    assert lr.diff_versions({"a": "2"}, {"a": "1"})["changed"][0]["direction"] == "older"
    assert lr.diff_versions({"gone": "1"}, {})["removed"] == [{"name": "gone", "lock": "1"}]


def test_junit_counts_and_each_problem_with_its_first_line():
    tests = lr.parse_junit(JUNIT)
    assert {k: tests[k] for k in ("total", "passed", "failed", "errors", "skipped")} == {
        "total": 6, "passed": 1, "failed": 2, "errors": 2, "skipped": 1,
    }
    assert tests["problems"] == [
        {"test": "tests/test_data.py::TestShapes::test_rows[5000]", "kind": "failed",
         "first_line": "AssertionError: assert 4999 == 5000"},
        {"test": "tests/test_tracking.py::test_run", "kind": "error",
         "first_line": "E   ImportError: cannot import name 'MlflowClient'"},
        {"test": "tests.test_features", "kind": "error", "first_line": "collection failure"},
        {"test": "companion.data.simulate.simulate", "kind": "failed", "first_line": "002 Expected:"},
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [("not xml", "the JUnit report is not XML"), ("<html/>", r"root is <html>, not <testsuites>")],
)
def test_a_bad_junit_report_is_refused(text, message):
    with pytest.raises(lr.ReportError, match=message):
        lr.parse_junit(text)


# ----------------------------------------------------------------------------- the report


def test_the_report_fails_when_a_test_fails_and_says_which():
    report = lr.build_report(LOCK, FREEZE, JUNIT, command="pytest -m 'not slow'")
    assert report["status"] == "failed" and report["lock_packages"] == 5
    text = lr.summary(report)
    assert text.splitlines()[0] == "Latest-versions run: failed"
    assert "3 differ (3 newer, 0 older or other), 1 only in the latest environment, 0 only in the lock" in text
    assert "  mlflow 3.17.2 -> 3.17.3" in text and "  + tzdata 2026.1" in text
    assert "Tests (pytest -m 'not slow'): 1 passed, 2 failed, 2 errors, 1 skipped" in text
    assert "  FAILED tests/test_data.py::TestShapes::test_rows[5000]: AssertionError: assert 4999 == 5000" in text


def test_the_report_passes_only_when_every_test_passes():
    passing = '<testsuite><testcase classname="tests.test_a" name="test_x"/></testsuite>'
    assert lr.build_report(LOCK, LOCK, passing)["status"] == "passed"
    assert lr.build_report(LOCK, LOCK, passing)["versions"]["changed"] == []
    assert lr.build_report(LOCK, LOCK, None)["status"] == "no test results"


def test_an_install_that_failed_is_the_report():
    log = "Collecting x\nERROR: Cannot install mlflow==3.18.0 because these package versions have conflicting dependencies.\nERROR: ResolutionImpossible\n"
    report = lr.build_report(LOCK, None, None, install_log=log)
    assert report["status"] == "install failed" and report["versions"] is None
    assert report["install_error"].startswith("ERROR: Cannot install mlflow==3.18.0")
    assert "pip could not install the newest allowed versions: ERROR: Cannot install" in lr.summary(report)


def test_main_writes_the_report_and_exits_with_its_status(tmp_path, capsys):
    (tmp_path / "lock").write_text(LOCK)
    (tmp_path / "freeze").write_text(FREEZE)
    (tmp_path / "junit.xml").write_text(JUNIT)
    out = tmp_path / "out"
    args = ["--lock", str(tmp_path / "lock"), "--out", str(out), "--freeze", str(tmp_path / "freeze"),
            "--junit", str(tmp_path / "junit.xml"), "--command", "pytest"]
    assert lr.main(args) == 1
    report = json.loads((out / "report.json").read_text())
    assert report["status"] == "failed" and report["tests"]["errors"] == 2
    assert (out / "summary.txt").read_text() == capsys.readouterr().out
    assert sorted(p.name for p in out.iterdir()) == ["report.json", "summary.txt"]
    (tmp_path / "junit.xml").write_text('<testsuite><testcase classname="t" name="a"/></testsuite>')
    assert lr.main(args) == 0
    missing = ["--lock", str(tmp_path / "lock"), "--out", str(out), "--freeze", str(tmp_path / "no")]
    assert lr.main(missing) == 1 and json.loads((out / "report.json").read_text())["status"] == "install failed"


def test_main_refuses_bad_input_and_writes_nothing(tmp_path, capsys):
    out = tmp_path / "out"
    assert lr.main(["--lock", str(tmp_path / "none"), "--out", str(out)]) == 2
    assert "--lock" in capsys.readouterr().err and not out.exists()
    (tmp_path / "lock").write_text("numpy>=2\n")
    assert lr.main(["--lock", str(tmp_path / "lock"), "--out", str(out)]) == 2
    assert "requirements.lock line 1 is not 'name==version'" in capsys.readouterr().err
    assert not out.exists()


# ----------------------------------------------------------------------------- make, CI, README


def _recipe(target: str) -> tuple[str, str]:
    makefile = (ROOT / "Makefile").read_text()
    match = re.search(rf"^{target}:([^\n]*)\n((?:\t[^\n]*\n)+)", makefile, re.MULTILINE)
    assert match, f"no target {target}"
    return match.group(1), match.group(2)


def test_make_latest_installs_the_ranges_not_the_lock_and_runs_the_fast_tests_outside_make_test():
    _, recipe = _recipe("latest")
    assert '-e ".[test,book]"' in recipe and "-r requirements.lock" not in recipe
    assert "$(LATEST_TEST)" in recipe and "--junitxml=$(LATEST_OUT)/junit.xml" in recipe
    assert "tools/latest_report.py --lock requirements.lock" in recipe
    makefile = (ROOT / "Makefile").read_text()
    assert 'LATEST_TEST := pytest tests companion --doctest-modules -m "not slow"' in makefile
    assert "LATEST      := .venv-latest" in makefile
    assert "latest" not in _recipe("test")[0]
    assert ".venv-latest/" in (ROOT / ".gitignore").read_text().splitlines()


def test_the_weekly_workflow_is_valid_and_uploads_the_report_even_when_tests_fail():
    path = ROOT / ".github" / "workflows" / "latest.yml"
    check = cicd.validate_workflow(path)
    assert check.valid, str(check)
    workflow = cicd.load_workflow(path)
    assert [s["cron"] for s in workflow["on"]["schedule"]] == ["17 5 * * 1"]
    steps = workflow["jobs"]["latest"]["steps"]
    assert [s.get("run") for s in steps].count("make latest") == 1
    upload = next(s for s in steps if s.get("uses", "").startswith("actions/upload-artifact"))
    assert upload["if"] == "always()" and upload["with"]["path"] == "build/latest/"


def test_the_readme_says_how_to_run_and_read_the_latest_versions_run():
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Latest versions", 1)[1].split("\n## ", 1)[0]
    for words in ("make latest", "build/latest/summary.txt", "report.json", ".github/workflows/latest.yml"):
        assert words in section
