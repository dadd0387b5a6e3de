"""companion.cicd: data tests, model tests and the workflow's YAML and schema check."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest

from companion import cicd
from companion.data import SimulationConfig, generate
from companion.errors import InvalidParameterError, UnknownNameError
from companion.training import TARGET, snapshot_features, train


@pytest.fixture(scope="module")
def dataset():
    return generate(SimulationConfig(n_customers=1500, seed=3))


@pytest.fixture(scope="module")
def april(dataset):
    return snapshot_features(dataset, [s for s in dataset.snapshots if s <= pd.Timestamp("2025-04-01")])


@pytest.fixture(scope="module")
def december(dataset):
    return snapshot_features(dataset, [pd.Timestamp("2025-12-01")])


@pytest.fixture(scope="module")
def model(april):
    return train(april[april["snapshot_timestamp"] < "2025-04-01"], kind="logistic", seed=0)


@pytest.fixture(scope="module")
def held_out(april):
    return april[april["snapshot_timestamp"] == pd.Timestamp("2025-04-01")]


# ----------------------------------------------------------------------------- data tests


def test_the_export_of_snapshot_features_passes_every_data_test(april):
    results = cicd.data_checks(april, "2025-04-01")
    assert [r.name for r in results] == ["schema", "ranges", "freshness"]
    assert all(r.passed for r in results) and all(r.failures == () for r in results)
    assert str(results[2]) == "freshness passed: newest snapshot 2025-04-01 is 0 days before 2025-04-01 (at most 31)"


def test_the_schema_names_missing_extra_and_mistyped_columns(april):
    broken = april.drop(columns=["region"]).assign(extra=1, plan=april["plan"].astype(str))
    result = cicd.check_schema(broken)
    assert not result.passed
    assert result.failures == ("missing region", "unexpected extra", "plan is object, expected category")
    assert result.detail.startswith("3 of 15 columns wrong")


def test_minutes_in_seconds_break_the_range_of_minutes_only(december):
    result = cicd.check_ranges(december)
    assert not result.passed
    assert len(result.failures) == 1 and result.failures[0].startswith("minutes_4w: ")
    above = int((december["minutes_4w"] > 40_320).sum())
    assert above > 0 and f"{above:,} of {len(december):,} rows above 40,320" in result.failures[0]


def test_ranges_count_rows_below_above_and_missing():
    frame = pd.DataFrame({"x": [-1.0, 2.0, 50.0, None]})
    result = cicd.check_ranges(frame, {"x": (0, 10)})
    assert result.failures == (
        "x: 1 of 4 rows below 0 (min -1)",
        "x: 1 of 4 rows above 10 (max 50)",
        "x: 1 of 4 rows missing",
    )
    assert cicd.check_ranges(pd.DataFrame({"x": [0.0, 10.0]}), {"x": (0, 10)}).passed  # inclusive


def test_freshness_refuses_a_stale_export_and_one_from_the_future(april):
    stale = cicd.check_freshness(april, "2025-06-01", max_age_days=31)
    assert not stale.passed and "61 days before 2025-06-01" in stale.detail
    assert cicd.check_freshness(april, "2025-05-02", max_age_days=31).passed
    future = cicd.check_freshness(april, "2025-03-15")
    assert not future.passed and "after the export date" in future.detail


def test_data_checks_report_a_missing_column_instead_of_raising(april):
    results = cicd.data_checks(april.drop(columns=["snapshot_timestamp"]), "2025-04-01")
    assert [r.passed for r in results] == [False, True, False]


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda f: cicd.check_schema([1, 2]), "frame must be a pandas DataFrame"),
        (lambda f: cicd.check_schema(f, {}), "schema must be a non-empty mapping"),
        (lambda f: cicd.check_schema(f, {"a": int}), "schema must map column names"),
        (lambda f: cicd.check_ranges(f, {"minutes_4w": (5, 1)}), "low <= high"),
        (lambda f: cicd.check_ranges(f, {"minutes_4w": (0, math.nan)}), "low <= high"),
        (lambda f: cicd.check_ranges(f, {"nope": (0, 1)}), "missing column(s) ['nope']"),
        (lambda f: cicd.check_ranges(f.iloc[:0]), "has no rows"),
        (lambda f: cicd.check_freshness(f, "not a date"), "as_of"),
        (lambda f: cicd.check_freshness(f, "2025-04-01", max_age_days=-1), "max_age_days must be >= 0"),
        (lambda f: cicd.data_checks(f, "2025-04-01", max_age_days=1.5), "max_age_days"),
    ],
)
def test_bad_arguments_of_the_data_tests_raise_clear_errors(april, call, message):
    with pytest.raises(InvalidParameterError, match=None) as error:
        call(april)
    assert message in str(error.value)


# ----------------------------------------------------------------------------- model tests


def test_the_auc_test_reads_the_lower_bound_not_the_point(model, held_out):
    passed = cicd.check_min_auc(model, held_out, 0.5)
    assert passed.passed and "lower bound vs 0.500" in passed.detail
    auc = float(passed.detail.split()[2])
    low = float(passed.detail.split("[")[1].split(",")[0])
    threshold = round((auc + low) / 2, 3)
    tight = cicd.check_min_auc(model, held_out, threshold)
    assert low < threshold < auc and not tight.passed
    assert tight.failures == (f"lower bound {low:.3f} < {threshold:.3f} (the point value alone would pass)",)


def test_invariance_and_direction_of_a_sound_model(model, held_out):
    same = cicd.check_invariance(model, held_out, "customer_id", lambda ids: ids + 10**6)
    assert same.passed and "largest score change 0," in same.detail
    up = cicd.check_direction(model, held_out, "payment_failures_4w", lambda n: n + 1)
    assert up.passed and up.detail.startswith("payment_failures_4w changed: mean score change +")
    down = cicd.check_direction(model, held_out, "payment_failures_4w", lambda n: n + 1,
                                expect="decrease")
    assert not down.passed and "does not decrease" in down.failures[0]


def test_a_model_that_reads_the_customer_id_fails_invariance(held_out):
    class ReadsTheId:
        def predict_proba(self, frame):
            p = (frame["customer_id"].to_numpy() % 7) / 10
            return pd.DataFrame({"stay": 1 - p, "churn": p}).to_numpy()

    result = cicd.check_invariance(ReadsTheId(), held_out, "customer_id", lambda ids: ids + 1)
    assert not result.passed and result.failures[0].startswith("customer_id: ")


def test_a_model_trained_on_flipped_labels_fails_auc_and_direction(april, held_out):
    flipped = train(april[april["snapshot_timestamp"] < "2025-04-01"].assign(
        **{TARGET: lambda t: 1 - t[TARGET]}), kind="logistic", seed=0)
    assert not cicd.check_min_auc(flipped, held_out, 0.6).passed
    assert not cicd.check_direction(flipped, held_out, "payment_failures_4w", lambda n: n + 1).passed


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda m, f: cicd.check_min_auc(object(), f, 0.6), "predict_proba"),
        (lambda m, f: cicd.check_min_auc(m, f, 1.5), "threshold must be a finite number <= 1.0"),
        (lambda m, f: cicd.check_min_auc(m, f.drop(columns=[TARGET]), 0.6), "missing column(s)"),
        (lambda m, f: cicd.check_invariance(m, f, "nope", lambda s: s), "column 'nope' is not in the frame"),
        (lambda m, f: cicd.check_invariance(m, f, "customer_id", 3), "change must be a function"),
        (lambda m, f: cicd.check_invariance(m, f, "customer_id", lambda s: s, tolerance=-1), "tolerance"),
        (lambda m, f: cicd.check_direction(m, f, "payment_failures_4w", lambda s: s, expect="up"), "expect must be"),
        (lambda m, f: cicd.check_direction(m, f, "payment_failures_4w", lambda s: s, max_share=2), "max_share"),
    ],
)
def test_bad_arguments_of_the_model_tests_raise_clear_errors(model, held_out, call, message):
    with pytest.raises(InvalidParameterError) as error:
        call(model, held_out)
    assert message in str(error.value)


# ----------------------------------------------------------------------------- workflow


def test_the_workflow_validates_and_is_read_as_yaml_1_2():
    text = cicd.workflow_yaml()
    check = cicd.validate_workflow(text)
    assert check.valid and check.errors == () and str(check).startswith("valid against vendor.github-workflows")
    data = cicd.load_workflow(text)
    assert "on" in data and True not in data
    steps = data["jobs"]["train"]["steps"]
    assert [s["name"] for s in steps] == [s["name"] for s in cicd.workflow_steps()]
    assert data["jobs"]["train"]["env"]["MLFLOW_TRACKING_URI"] == "${{ secrets.MLFLOW_TRACKING_URI }}"


@pytest.mark.parametrize(
    ("old", "new", "error"),
    [
        ("runs-on:", "runs_on:", "$.jobs.train: 'runs-on' is a required property"),
        ("branches: [main]", "branches: main-only: true", "workflow is not valid YAML"),
        ("timeout-minutes: 30", "timeout-minutes: soon", "$.jobs.train"),
    ],
)
def test_a_broken_workflow_is_refused_with_the_path_of_the_error(old, new, error):
    text = cicd.workflow_yaml()
    assert old in text
    check = cicd.validate_workflow(text.replace(old, new))
    assert not check.valid and any(e.startswith(error) for e in check.errors), check.errors
    assert str(check).startswith("refused by vendor.github-workflows")


def test_write_workflow_writes_into_github_workflows(tmp_path):
    path = cicd.write_workflow(tmp_path, cicd.workflow_yaml(name="ci"), name="ci")
    assert path == tmp_path / ".github" / "workflows" / "ci.yml"
    assert cicd.validate_workflow(path).valid


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda tmp: cicd.workflow_yaml(name="a b"), "name must be"),
        (lambda tmp: cicd.workflow_yaml(branch="-x"), "branch must be"),
        (lambda tmp: cicd.write_workflow(tmp / "missing", "x: 1"), "is not a folder"),
        (lambda tmp: cicd.write_workflow(tmp, ""), "text must be a non-empty string"),
        (lambda tmp: cicd.load_workflow(3), "workflow must be YAML text"),
        (lambda tmp: cicd.load_workflow("- a\n- b\n"), "a YAML mapping at the top"),
        (lambda tmp: cicd.validate_workflow(Path(tmp / "none.yml")), "no workflow file"),
    ],
)
def test_bad_arguments_of_the_workflow_functions_raise_clear_errors(tmp_path, call, message):
    with pytest.raises(InvalidParameterError) as error:
        call(tmp_path)
    assert message in str(error.value)
    assert not (tmp_path / ".github").exists()


def test_the_runner_refuses_what_it_cannot_evaluate_before_running_anything(tmp_path):
    marker = tmp_path / "ran"
    workflow = f"""
on: push
jobs:
  a:
    runs-on: ubuntu-latest
    steps:
      - run: touch {marker}
      - if: always()
        run: echo no
"""
    with pytest.raises(InvalidParameterError, match=r"step 2 uses \['if'\]"):
        cicd.run_workflow(tmp_path, workflow)
    with pytest.raises(UnknownNameError, match="job 'b' is not in the workflow"):
        cicd.run_workflow(tmp_path, workflow, job="b")
    secret = workflow.replace("      - if: always()\n        run: echo no\n", "").replace(
        "    steps:", "    env:\n      TOKEN: ${{ secrets.TOKEN }}\n    steps:")
    with pytest.raises(InvalidParameterError, match=r"expressions \(\['TOKEN'\]\) need values"):
        cicd.run_workflow(tmp_path, secret)
    with pytest.raises(InvalidParameterError, match="env must be a mapping"):
        cicd.run_workflow(tmp_path, secret, env={"TOKEN": 1})
    assert not marker.exists()


def test_the_runner_stops_at_the_first_failure_and_reports_exit_codes(tmp_path):
    workflow = """
on: push
jobs:
  a:
    runs-on: ubuntu-latest
    env:
      WHO: ${{ secrets.WHO }}
    steps:
      - uses: actions/checkout@v4
      - name: install
        id: install
        run: exit 9
      - name: greet
        run: echo "hello $WHO" > greeting.txt
      - name: fail
        run: |
          echo "FAILED tests/x.py::test_y - AssertionError: no"
          exit 3
      - name: never
        run: touch never.txt
      - uses: actions/upload-artifact@v4
"""
    run = cicd.run_workflow(tmp_path, workflow, env={"WHO": "Lumen"})
    assert [(s.name, s.status, s.exit_code) for s in run.steps] == [
        ("actions/checkout@v4", cicd.PROVIDED, None),
        ("install", cicd.PROVIDED, None),
        ("greet", "passed", 0),
        ("fail", "failed", 3),
        ("never", cicd.NOT_RUN, None),
        ("actions/upload-artifact@v4", cicd.NOT_RUN, None),
    ]
    assert (tmp_path / "greeting.txt").read_text() == "hello Lumen\n"
    assert not (tmp_path / "never.txt").exists()
    assert not run.passed and run.stopped_at == "fail" and run.executed() == ["greet", "fail"]
    assert run.steps[3].failures() == ["FAILED tests/x.py::test_y - AssertionError: no"]
    assert run.table().splitlines()[3].split() == ["fail", "failed", "(exit", "3)"]
