"""Tests of companion.tracking: model logging, runs, sweeps, queries, cost, the server."""

from __future__ import annotations

import importlib.metadata
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from companion import tracking
from companion.core.env import quiet
from companion.core.mlflow_store import using_store
from companion.data import generate
from companion.errors import (
    InvalidParameterError,
    LineageError,
    ServerError,
    TrackingError,
    UnknownNameError,
)
from companion.evaluation import auc_interval
from companion.training import FEATURES, snapshot_features, time_split, train

# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def frames() -> tuple[pd.DataFrame, pd.DataFrame]:
    dataset = generate(n_customers=800, months=4, scenarios=(), seed=3)
    frame = snapshot_features(dataset, dataset.snapshots)
    return time_split(frame, dataset.snapshots[:3], dataset.snapshots[3])


@pytest.fixture(scope="module")
def sqlite_uri(tmp_path_factory):
    """One SQLite store for the module (creating its schema takes seconds)."""
    return f"sqlite:///{tmp_path_factory.mktemp('store') / 'mlflow.db'}"


@pytest.fixture()
def sqlite_store(sqlite_uri, tmp_path, request):
    """Point MLflow at the module's SQLite store and a fresh experiment for this test only.

    Returns (tracking_uri, experiment_id). MLflow's URIs are restored by ``using_store``.
    """
    import mlflow

    name = "".join(c if c.isalnum() or c in "-_[]" else "_" for c in request.node.name)[:200]
    experiment_id = tracking.ensure_experiment_at(
        sqlite_uri, name, artifact_location=(tmp_path / "artifacts").as_uri()
    )
    with quiet("mlflow", "alembic"), using_store(sqlite_uri):
        yield sqlite_uri, experiment_id
        while mlflow.active_run() is not None:
            mlflow.end_run()
        # no tracking function moved MLflow's process-wide URIs during the test
        assert (mlflow.get_tracking_uri(), mlflow.get_registry_uri()) == (sqlite_uri, sqlite_uri)


# --------------------------------------------------------------------------- pure helpers


def test_pinned_requirements_pin_the_installed_versions():
    pins = tracking.pinned_requirements()
    assert [p.split("==")[0] for p in pins] == list(tracking.MODEL_REQUIREMENTS)
    assert f"scikit-learn=={importlib.metadata.version('scikit-learn')}" in pins
    assert f"mlflow=={importlib.metadata.version('mlflow')}" in pins


def test_pinned_requirements_name_a_missing_package():
    with pytest.raises(InvalidParameterError, match="no-such-package-xyz"):
        tracking.pinned_requirements(["pandas", "no-such-package-xyz"])


def test_estimate_cost_follows_the_formula():
    assert tracking.estimate_cost(3600.0, 0.05) == pytest.approx(0.05)
    assert tracking.estimate_cost(90.0, 2.0) == pytest.approx(0.05)
    assert tracking.estimate_cost(0, 1.0) == 0.0


@pytest.mark.parametrize(
    "cpu, price",
    [(-1.0, 0.05), (1.0, -0.01), ("1", 0.05), (1.0, True), (float("nan"), 0.05),
     (float("inf"), 0.05), (1.0, float("nan")), (1.0, float("-inf")), (None, 0.05)],
)
def test_estimate_cost_rejects_bad_numbers(cpu, price):
    with pytest.raises(InvalidParameterError, match="must be a finite number"):
        tracking.estimate_cost(cpu, price)


@given(
    cpu=st.floats(min_value=0, max_value=1e9, allow_nan=False, allow_infinity=False),
    price=st.floats(min_value=0, max_value=1e3, allow_nan=False, allow_infinity=False),
)
def test_estimate_cost_is_finite_and_linear_for_every_valid_input(cpu, price):
    cost = tracking.estimate_cost(cpu, price)
    assert np.isfinite(cost) and cost >= 0
    assert cost == pytest.approx(cpu * price / 3600.0)
    assert tracking.estimate_cost(np.float32(1.0), np.int64(36)) == pytest.approx(0.01)


@given(value=st.one_of(st.floats(allow_nan=True, allow_infinity=True).filter(
    lambda v: not (np.isfinite(v) and v >= 0)), st.text(max_size=3), st.none(), st.booleans()))
def test_estimate_cost_refuses_every_non_finite_or_negative_value(value):
    with pytest.raises(InvalidParameterError, match="cpu_seconds must be a finite number"):
        tracking.estimate_cost(value, 0.05)
    with pytest.raises(InvalidParameterError, match="price_per_cpu_hour must be a finite"):
        tracking.estimate_cost(1.0, value)


def test_stopwatch_measures_wall_and_cpu_time():
    with tracking.Stopwatch() as watch:
        time.sleep(0.05)
        sum(i * i for i in range(200_000))
    assert watch.wall_seconds >= 0.05
    assert 0 < watch.cpu_seconds < watch.wall_seconds + 1.0


def test_sweep_grid_covers_both_families():
    grid = tracking.sweep_grid((0.1, 1.0), (0.05, 0.1), (4, 16), gbm_budget={})
    assert grid[:2] == [("logistic", {"C": 0.1}), ("logistic", {"C": 1.0})]
    assert grid[2:] == [
        ("gbm", {"learning_rate": 0.05, "max_leaf_nodes": 4}),
        ("gbm", {"learning_rate": 0.1, "max_leaf_nodes": 4}),
        ("gbm", {"learning_rate": 0.05, "max_leaf_nodes": 16}),
        ("gbm", {"learning_rate": 0.1, "max_leaf_nodes": 16}),
    ]
    assert len(tracking.sweep_grid()) == 8


def test_sweep_grid_gives_every_gbm_run_the_same_early_stopping_budget():
    grid = tracking.sweep_grid()
    gbm = [params for kind, params in grid if kind == "gbm"]
    assert len(gbm) == 6
    for params in gbm:
        assert {k: params[k] for k in tracking.EARLY_STOPPING} == tracking.EARLY_STOPPING
    assert all("early_stopping" not in params for kind, params in grid if kind == "logistic")
    with pytest.raises(InvalidParameterError, match=r"must not set \['learning_rate'\]"):
        tracking.sweep_grid(gbm_budget={"learning_rate": 0.1})


def test_early_stopping_makes_a_slow_rate_fit_more_trees(frames):
    train_df, _ = frames
    budget = {**tracking.EARLY_STOPPING, "validation_fraction": 0.3, "n_iter_no_change": 5}
    slow = train(train_df, "gbm", learning_rate=0.05, max_leaf_nodes=4, **budget)
    fast = train(train_df, "gbm", learning_rate=0.5, max_leaf_nodes=4, **budget)
    assert tracking.fitted_iterations(slow) > tracking.fitted_iterations(fast) >= 1
    assert tracking.fitted_iterations(slow) < budget["max_iter"]
    logistic = train(train_df, "logistic")
    assert tracking.fitted_iterations(logistic) == int(logistic[-1].n_iter_.max()) >= 1
    with pytest.raises(InvalidParameterError, match="expected a fitted model with n_iter_"):
        from companion.training import make_model

        tracking.fitted_iterations(make_model("gbm"))


def test_work_cost_prices_rows_times_iterations():
    priced = tracking.work_cost(2e6, cpu_seconds_per_million=0.5, price_per_cpu_hour=3.6)
    assert priced == {"row_iterations": 2e6, "cpu_seconds": 1.0, "cost_usd": pytest.approx(0.001)}
    default = tracking.work_cost(1e6)
    assert default["cpu_seconds"] == tracking.DEFAULT_CPU_SECONDS_PER_MILLION_ROW_ITERATIONS
    with pytest.raises(InvalidParameterError, match="row_iterations must be a finite number >= 0"):
        tracking.work_cost(-1)
    with pytest.raises(InvalidParameterError, match="row_iterations must be a finite number"):
        tracking.work_cost(float("inf"))
    with pytest.raises(InvalidParameterError, match="price_per_cpu_hour must be"):
        tracking.work_cost(1.0, 0.1, float("nan"))
    with pytest.raises(InvalidParameterError, match="cpu_seconds_per_million must be"):
        tracking.work_cost(1.0, float("nan"))
    with pytest.raises(InvalidParameterError, match="price_per_cpu_hour must be"):
        tracking.work_cost(1.0, 0.1, -0.05)


def test_significant_keeps_four_significant_digits():
    assert tracking.significant(0.00008084123) == "8.084e-05"
    assert tracking.significant(5.82049) == "5.820"
    assert tracking.significant(720.0) == "720.0"
    assert tracking.significant(123.66, 2) == "1.2e+02"
    assert tracking.significant(0.0) == "0"
    for bad in (float("nan"), float("inf"), "1", None):
        with pytest.raises(InvalidParameterError, match="value must be a finite number"):
            tracking.significant(bad)
    with pytest.raises(InvalidParameterError, match="digits must be >= 1"):
        tracking.significant(1.0, 0)


def test_stopwatch_refuses_bad_starting_values():
    assert tracking.Stopwatch().wall_seconds == 0.0
    with pytest.raises(InvalidParameterError, match="wall_seconds must be a finite number"):
        tracking.Stopwatch(float("nan"))
    with pytest.raises(InvalidParameterError, match="cpu_seconds must be a finite number"):
        tracking.Stopwatch(0.0, -1.0)


def _separable(n: int = 400, noise: float = 1.0, seed: int = 0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    return y, y + rng.normal(0, noise, n)


def test_prefer_simpler_keeps_the_simpler_model_unless_the_interval_clears_the_margin():
    y, strong = _separable(noise=0.5)
    weak = strong + np.random.default_rng(1).normal(0, 3.0, len(y))
    choice = tracking.prefer_simpler(y, ("logistic", weak), ("gbm", strong))
    assert choice.chosen == "gbm" and choice.difference.low > 0
    assert "lies above" in choice.reason
    kept = tracking.prefer_simpler(y, ("logistic", strong), ("gbm", weak))
    assert kept.chosen == "logistic" and kept.difference.value < 0
    assert "simpler logistic is kept" in kept.reason
    # the same evidence, a margin the interval does not clear: keep the simpler model
    high_bar = tracking.prefer_simpler(y, ("logistic", weak), ("gbm", strong),
                                       margin=choice.difference.low + 0.001)
    assert high_bar.chosen == "logistic" and high_bar.margin > 0


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"margin": -0.01}, "margin \\(in ROC AUC\\) must be a finite number >= 0"),
        ({"margin": float("nan")}, "margin \\(in ROC AUC\\) must be a finite number"),
        ({"margin": float("inf")}, "margin \\(in ROC AUC\\) must be a finite number"),
        ({"simpler": ("", [0.1] * 4)}, "simpler must be a \\(name, scores\\) pair"),
        ({"y": [0, 0, 0, 0]}, "single class"),
        ({"simpler": ["a", [0.1] * 4]}, "simpler must be a \\(name, scores\\) pair"),
        ({"other": ("a", [0.2, 0.1, 0.4, 0.3])}, "need different names, both are 'a'"),
    ],
)
def test_prefer_simpler_rejects_bad_input(kwargs, message):
    args = {"y": [0, 1, 0, 1], "simpler": ("a", [0.1, 0.2, 0.3, 0.4]),
            "other": ("b", [0.2, 0.1, 0.4, 0.3]), **kwargs}
    with pytest.raises(InvalidParameterError, match=message):
        tracking.prefer_simpler(**args)


def test_oracle_scores_align_the_true_probabilities_with_the_rows():
    dataset = generate(n_customers=300, months=3, scenarios=(), seed=5)
    frame = snapshot_features(dataset, dataset.snapshots[1:]).iloc[::-1]
    scores = tracking.oracle_scores(dataset, frame)
    assert list(scores.index) == list(frame.index)
    truth = dataset.truth.set_index(["customer_id", "snapshot_timestamp"])["churn_probability"]
    row = frame.iloc[7]
    assert scores.iloc[7] == truth.loc[(row["customer_id"], row["snapshot_timestamp"])]
    with pytest.raises(InvalidParameterError, match="have no true probability"):
        tracking.oracle_scores(dataset, frame.assign(customer_id=-1))
    with pytest.raises(InvalidParameterError, match="must have customer_id and snapshot"):
        tracking.oracle_scores(dataset, frame.drop(columns=["customer_id"]))
    with pytest.raises(InvalidParameterError, match="dataset must be a simulated ChurnDataset"):
        tracking.oracle_scores(frame, frame)
    with pytest.raises(InvalidParameterError, match="frame must have customer_id"):
        tracking.oracle_scores(dataset, "rows")


def test_choice_refuses_inconsistent_fields():
    difference = tracking.prefer_simpler(
        [0, 1, 0, 1], ("a", [0.1, 0.2, 0.3, 0.4]), ("b", [0.2, 0.1, 0.4, 0.3])).difference
    with pytest.raises(InvalidParameterError, match="must be one of two different models"):
        tracking.Choice("c", "a", "b", difference, 0.0, "why")
    with pytest.raises(InvalidParameterError, match="difference must be an Estimate"):
        tracking.Choice("a", "a", "b", 0.01, 0.0, "why")
    with pytest.raises(InvalidParameterError, match="margin must be a finite number"):
        tracking.Choice("a", "a", "b", difference, float("nan"), "why")


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_dataset_schema_from_the_first_rows_matches_the_full_inference(frames):
    import mlflow.data

    train_df, _ = frames
    full = mlflow.data.from_pandas(train_df, source="file:///data", name="t").schema
    assert tracking.runs._frame_schema(train_df, rows=50) == full
    # a column whose only missing value comes after the first rows is still optional
    late_gap = train_df.copy()
    late_gap.iloc[-1, late_gap.columns.get_loc("tenure_days")] = np.nan
    full = mlflow.data.from_pandas(late_gap, source="file:///data", name="t").schema
    assert tracking.runs._frame_schema(late_gap, rows=50) == full
    assert not full.input_dict()["tenure_days"].required
    dataset = tracking.frame_dataset(late_gap, source="file:///data", name="t")
    assert isinstance(dataset, mlflow.data.pandas_dataset.PandasDataset)
    assert dataset.schema == full and dataset.targets == "churned_30d"
    assert dataset.digest == mlflow.data.from_pandas(late_gap, source="file:///data").digest
    with pytest.raises(InvalidParameterError, match="frame must be a non-empty DataFrame"):
        tracking.frame_dataset(late_gap.iloc[:0])
    with pytest.raises(InvalidParameterError, match="dataset name must be"):
        tracking.frame_dataset(late_gap, name="it's")


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"logistic_c": ()}, "logistic_c must be positive"),
        ({"logistic_c": (0.0,)}, "logistic_c must be positive"),
        ({"gbm_learning_rates": (-0.1,)}, "gbm_learning_rates must be positive"),
        ({"gbm_leaf_counts": (1,)}, "gbm_leaf_counts must be ints >= 2"),
        ({"gbm_leaf_counts": (4.5,)}, "gbm_leaf_counts must be ints >= 2"),
        ({"gbm_learning_rates": (float("nan"),)}, "gbm_learning_rates must be positive finite"),
        ({"logistic_c": (float("inf"),)}, "logistic_c must be positive finite"),
        ({"logistic_c": 1.0}, "logistic_c must be a list of numbers"),
        ({"logistic_c": (1.0, 1.0)}, "logistic_c lists a value twice"),
        ({"gbm_leaf_counts": (4, 4)}, "gbm_leaf_counts lists a value twice"),
        ({"gbm_budget": {"max_iter": float("nan")}}, "gbm_budget\\['max_iter'\\] must be a finite"),
        ({"gbm_budget": {"max_iterations": 10}}, "gbm model does not accept gbm_budget"),
        ({"gbm_budget": {"max_iter": -5}}, "gbm model does not accept gbm_budget"),
        ({"gbm_budget": [("max_iter", 5)]}, "gbm_budget must be None or a mapping"),
    ],
)
def test_sweep_grid_rejects_bad_values(kwargs, message):
    with pytest.raises(InvalidParameterError, match=message):
        tracking.sweep_grid(**kwargs)


def test_azureml_tracking_uri_is_built_from_its_parts():
    uri = tracking.azureml_tracking_uri(
        "12345678-1234-1234-1234-123456789abc", "lumen-ml", "lumen-churn", region="eastus2"
    )
    assert uri == (
        "azureml://eastus2.api.azureml.ms/mlflow/v1.0/subscriptions/"
        "12345678-1234-1234-1234-123456789abc/resourceGroups/lumen-ml/providers/"
        "Microsoft.MachineLearningServices/workspaces/lumen-churn"
    )


@pytest.mark.parametrize(
    "args, message",
    [
        (("not-a-guid", "rg", "ws"), "subscription_id must be a GUID"),
        (("00000000-0000-0000-0000-000000000000", "", "ws"), "resource_group must be"),
        (("00000000-0000-0000-0000-000000000000", "rg", "w s"), "workspace must be"),
        (("00000000-0000-0000-0000-000000000000", "rg", "ws", "West Europe"), "region must be"),
        (("{00000000-0000-0000-0000-000000000000}", "rg", "ws"), "subscription_id must be a GUID"),
        (("00000000000000000000000000000000", "rg", "ws"), "subscription_id must be a GUID"),
        ((None, "rg", "ws"), "subscription_id must be a GUID"),
        (("00000000-0000-0000-0000-000000000000", None, "ws"), "resource_group must be"),
    ],
)
def test_azureml_tracking_uri_rejects_bad_names(args, message):
    with pytest.raises(InvalidParameterError, match=message):
        tracking.azureml_tracking_uri(*args)


def test_code_version_digests_files_without_git(tmp_path):
    source = tmp_path / "train.py"
    source.write_text("print('v1')\n")
    first = tracking.code_version(repo_dir=tmp_path, files=[source])
    assert set(first) == {"code.sha256", "code.files"}  # not a git repository: no commit
    assert first["code.files"] == "train.py" and len(first["code.sha256"]) == 64
    assert tracking.code_version(files=[str(source)]) == first
    source.write_bytes(b"print('v1')\r\n")  # the same code checked out on Windows
    assert tracking.code_version(files=[source]) == first
    source.write_text("print('v2')\n")
    assert tracking.code_version(files=[source])["code.sha256"] != first["code.sha256"]


def test_code_version_covers_every_companion_module_a_training_run_executes(tmp_path):
    from companion.core.provenance import PACKAGE_DIR, source_name

    names = [source_name(p) for p in tracking.training_modules()]
    assert {"training.py", "errors.py", "tracking/__init__.py", "tracking/runs.py",
            "tracking/provenance.py", "core/checks.py"} <= set(names)
    assert any(n.startswith("data") for n in names)
    assert any(n.startswith("evaluation") for n in names)
    assert "workspace.py" not in names  # tracking no longer imports the workspace
    default = tracking.code_version()
    assert default["code.files"] == ",".join(names)
    assert default == tracking.code_version(files=tracking.training_modules())
    # the digest is the code's bytes: a copy of the package elsewhere gives the same one
    copies = []
    for path in tracking.training_modules():
        copy = tmp_path / "companion" / path.relative_to(PACKAGE_DIR)
        copy.parent.mkdir(parents=True, exist_ok=True)
        copy.write_bytes(path.read_bytes())
        copies.append(copy)
    assert tracking.code_version(files=copies) == default
    copies[0].write_bytes(copies[0].read_bytes() + b"# changed\n")  # one file changes...
    assert tracking.code_version(files=copies)["code.sha256"] != default["code.sha256"]


def test_code_version_adds_the_commit_of_a_git_repository(tmp_path):
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com"}
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True, env=env)
    (tmp_path / "f.txt").write_text("x")
    subprocess.run(["git", "-C", str(tmp_path), "add", "f.txt"], check=True, env=env)
    subprocess.run(["git", "-C", str(tmp_path), "commit", "-qm", "c"], check=True, env=env)
    head = subprocess.run(["git", "-C", str(tmp_path), "rev-parse", "HEAD"], check=True,
                          capture_output=True, text=True).stdout.strip()
    assert tracking.code_version(repo_dir=tmp_path) == {**tracking.code_version(),
                                                        "code.git_commit": head}


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"files": ["nope.py"]}, "nope.py"),
        ({"files": []}, "cannot digest code files"),
        ({"files": "train.py"}, "files must be a list of paths"),
        ({"files": [3]}, "files must hold paths"),
        ({"repo_dir": "no/such/folder"}, "repo_dir must be None or an existing folder"),
        ({"repo_dir": 5}, "repo_dir must be None or an existing folder"),
    ],
)
def test_code_version_refuses_bad_input(kwargs, message):
    with pytest.raises(InvalidParameterError, match=message):
        tracking.code_version(**kwargs)


def test_code_version_refuses_a_file_listed_twice(tmp_path):
    source = tmp_path / "train.py"
    source.write_text("x = 1\n")
    with pytest.raises(InvalidParameterError, match="lists a file twice"):
        tracking.code_version(files=[source, tmp_path / "." / "train.py"])


def test_model_input_turns_categories_into_strings(frames):
    train_df, _ = frames
    assert isinstance(train_df["plan"].dtype, pd.CategoricalDtype)
    features = tracking.model_input(train_df)
    assert list(features.columns) == FEATURES
    assert features["plan"].dtype == object and features["plan"].iloc[0] == str(train_df["plan"].iloc[0])
    assert isinstance(train_df["plan"].dtype, pd.CategoricalDtype)  # the input is not changed
    with pytest.raises(InvalidParameterError, match=r"missing column\(s\) \['plan'\]"):
        tracking.model_input(train_df.drop(columns=["plan"]))
    with pytest.raises(InvalidParameterError, match="expected a pandas DataFrame, got dict"):
        tracking.model_input({"plan": ["basic"]})
    with pytest.raises(InvalidParameterError, match="frame has no rows"):
        tracking.model_input(train_df.iloc[:0])


@pytest.mark.parametrize(
    "packages, message",
    [("pandas", "packages must be a list"), (["pandas", "pandas"], "lists a name twice"),
     ([None], "package names must be non-empty strings"), (3, "packages must be a list")],
)
def test_pinned_requirements_refuse_bad_lists(packages, message):
    with pytest.raises(InvalidParameterError, match=message):
        tracking.pinned_requirements(packages)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"host": "0.0.0.0"}, "not a loopback address"),
        ({"port": 80}, "port must be >= 1024"),
        ({"port": 70000}, "port must be <= 65535"),
        ({"port": "5000"}, "port must be an int"),
        ({"startup_timeout": 0}, "startup_timeout must be a finite number > 0"),
        ({"startup_timeout": float("inf")}, "startup_timeout must be a finite number"),
        ({"startup_timeout": float("nan")}, "startup_timeout must be a finite number"),
        ({"port": True}, "port must be an int"),
    ],
)
def test_tracking_server_rejects_bad_settings(tmp_path, kwargs, message):
    with pytest.raises(InvalidParameterError, match=message):
        tracking.TrackingServer(tmp_path, **kwargs)
    assert not any(tmp_path.iterdir())  # nothing created


def test_tracking_server_refuses_a_directory_that_is_not_one(tmp_path):
    with pytest.raises(InvalidParameterError, match="directory must be a path"):
        tracking.TrackingServer(None)
    (tmp_path / "file").write_text("x")
    with pytest.raises(InvalidParameterError, match="exists and is not a folder"):
        tracking.TrackingServer(tmp_path / "file")
    server = tracking.TrackingServer(tmp_path / "srv")
    with pytest.raises(InvalidParameterError, match="grace_seconds must be a finite number"):
        server.stop(float("nan"))
    with pytest.raises(InvalidParameterError, match="lines must be >= 1"):
        server.log_tail(0)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]


def test_tracking_server_has_no_url_before_start(tmp_path):
    server = tracking.TrackingServer(tmp_path / "srv")
    with pytest.raises(ServerError, match="call start"):
        server.url  # noqa: B018
    assert not server.running and server.leftover_processes() == []
    server.stop()  # stopping a server that never started is harmless


def test_free_port_can_be_bound():
    import socket

    port = tracking.free_port()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", port))
    assert 1024 <= port <= 65535
    for bad in ("0.0.0.0", "example.com", None):
        with pytest.raises(InvalidParameterError, match="is not a loopback address"):
            tracking.free_port(bad)


def test_importing_tracking_changes_nothing_global():
    script = textwrap.dedent(
        """
        import logging, os
        import mlflow
        before = dict(os.environ)
        levels = {n: logging.getLogger(n).level for n in ("mlflow", "alembic")}
        uri = mlflow.get_tracking_uri()
        import companion.tracking
        assert dict(os.environ) == before
        assert {n: logging.getLogger(n).level for n in levels} == levels
        assert mlflow.get_tracking_uri() == uri
        assert not hasattr(companion.tracking, "quiet_mlflow")
        print("ok")
        """
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            cwd=Path(__file__).resolve().parent.parent, check=False)
    assert result.stdout.strip() == "ok", result.stderr[-2000:]


# --------------------------------------------------------------------------- logging to SQLite


@pytest.mark.slow
def test_log_sklearn_model_logs_signature_example_and_pins(frames, sqlite_store):
    import mlflow

    train_df, val_df = frames
    _, experiment_id = sqlite_store
    model = train(train_df, "gbm", max_iter=20)
    with mlflow.start_run(experiment_id=experiment_id):
        info = tracking.log_sklearn_model(model, train_df, registered_model_name="churn-test")
    assert [c.name for c in info.signature.inputs.inputs] == FEATURES
    assert info.signature.outputs.inputs[0].shape == (-1, 2)
    assert info.registered_model_version == 1
    requirements = Path(mlflow.pyfunc.get_model_dependencies(info.model_uri)).read_text().split()
    assert requirements == tracking.pinned_requirements()
    loaded = mlflow.pyfunc.load_model(info.model_uri)
    scores = loaded.predict(tracking.model_input(val_df))
    np.testing.assert_allclose(scores, model.predict_proba(val_df[FEATURES]))
    example = mlflow.models.Model.load(info.model_uri).load_input_example(
        mlflow.artifacts.download_artifacts(info.model_uri)
    )
    assert len(example) == 3 and list(example.columns) == FEATURES


@pytest.mark.slow
def test_log_sklearn_model_refuses_bad_input(frames, sqlite_store, tmp_path):
    import mlflow

    train_df, _ = frames
    model = train(train_df, "logistic")
    with pytest.raises(TrackingError, match="needs an active MLflow run"):
        tracking.log_sklearn_model(model, train_df)
    with mlflow.start_run(experiment_id=sqlite_store[1]) as run:
        with pytest.raises(InvalidParameterError, match=r"missing column\(s\)"):
            tracking.log_sklearn_model(model, train_df.drop(columns=["tenure_days"]))
        with pytest.raises(InvalidParameterError, match="model name must be"):
            tracking.log_sklearn_model(model, train_df, name="a/b")
        with pytest.raises(InvalidParameterError, match="cannot score"):
            from companion.training import make_model

            tracking.log_sklearn_model(make_model("logistic"), train_df)
        with pytest.raises(InvalidParameterError, match="registered_model_name must be"):
            tracking.log_sklearn_model(model, train_df, registered_model_name="churn'model")
        with pytest.raises(InvalidParameterError, match="expected a fitted classifier"):
            tracking.log_sklearn_model("model", train_df)
    assert mlflow.MlflowClient().list_artifacts(run.info.run_id) == []  # nothing half-logged


@pytest.mark.slow
def test_sweep_runs_table_best_run_cost_and_rebuilt_models(frames, sqlite_store):
    import mlflow

    train_df, val_df = frames
    _, experiment_id = sqlite_store
    grid = tracking.sweep_grid((0.1, 1.0), (0.1,), (4, 8))
    assert grid[2][1]["early_stopping"] is True
    sweep = tracking.run_sweep(
        train_df, val_df, grid, experiment_id=experiment_id, tags={"data.content_hash": "abc"},
        price_per_cpu_hour=3.6, log_models=False,
    )
    assert list(sweep["kind"]) == ["logistic", "logistic", "gbm", "gbm"]
    assert list(sweep["run"]) == ["logistic-1", "logistic-2", "gbm-1", "gbm-2"]
    for row in sweep.itertuples():
        assert row.val_roc_auc_low < row.val_roc_auc < row.val_roc_auc_high
        assert row.n_iter == tracking.fitted_iterations(row.model) >= 1
        assert row.row_iterations == row.n_iter * len(train_df)
        scores = row.model.predict_proba(val_df[FEATURES])[:, 1]
        expected = auc_interval(val_df["churned_30d"], scores)
        assert (row.val_roc_auc_low, row.val_roc_auc_high) == (expected.low, expected.high)
    # 3.6 USD per CPU-hour is 0.001 USD per CPU-second
    np.testing.assert_allclose(sweep["cost_usd"], sweep["cpu_seconds"] / 1000, rtol=1e-12)
    assert (sweep[["wall_seconds", "cpu_seconds"]] > 0).all().all()

    table = tracking.runs_table([experiment_id])
    assert list(table["run"]) == ["gbm-1", "gbm-2", "logistic-1", "logistic-2"]
    assert list(table["C"]) == ["", "", "0.1", "1.0"]
    assert list(table["max_leaf_nodes"]) == ["4", "8", "", ""]
    expected = sweep.set_index("run_id")["val_roc_auc"].round(3).sort_values().tolist()
    assert sorted(table["val_roc_auc"]) == expected
    assert list(table.columns[-4:]) == ["val_roc_auc", "val_roc_auc_low", "val_roc_auc_high",
                                        "n_iter"]
    assert sorted(table["n_iter"]) == sorted(int(n) for n in sweep["n_iter"])

    best = tracking.best_run([experiment_id])
    assert best.data.metrics["val_roc_auc"] == pytest.approx(sweep["val_roc_auc"].max())
    best_logistic = tracking.best_run([experiment_id], kind="logistic")
    assert best_logistic.data.params["kind"] == "logistic"
    with pytest.raises(UnknownNameError, match="'forest' is not known"):
        tracking.best_run([experiment_id], kind="forest")
    with pytest.raises(InvalidParameterError, match="metric must be a non-empty string of"):
        tracking.best_run([experiment_id], metric="val_roc_auc DESC; x")

    parent = mlflow.get_run(sweep["parent_run_id"].iloc[0])
    assert parent.data.metrics["sweep_cost_usd"] == pytest.approx(sweep["cost_usd"].sum())
    assert parent.data.metrics["sweep_row_iterations"] == sweep["row_iterations"].sum()
    assert parent.data.params["grid_size"] == "4"
    child = mlflow.get_run(sweep["run_id"].iloc[0])
    assert child.data.tags["mlflow.parentRunId"] == parent.info.run_id
    assert child.data.tags["data.content_hash"] == "abc"
    assert child.data.params["threads"] == "1"
    contexts = sorted(
        {t.key: t.value for t in d.tags}["mlflow.data.context"] for d in child.inputs.dataset_inputs
    )
    assert contexts == ["training", "validation"]

    cost = tracking.experiment_cost([experiment_id])
    assert cost["runs"] == 4  # the children; the parent logs only their total
    assert cost["cost_usd"] == pytest.approx(sweep["cost_usd"].sum())
    assert cost["row_iterations"] == sweep["row_iterations"].sum()
    single = tracking.log_training_run(train_df, val_df, "logistic", experiment_id=experiment_id,
                                       log_model=False)
    cost = tracking.experiment_cost([experiment_id])
    assert cost["runs"] == 5
    assert cost["cost_usd"] == pytest.approx(sweep["cost_usd"].sum() + single["cost_usd"])
    assert len(tracking.runs_table([experiment_id])) == 4  # a single run is not a sweep child

    assert tracking.estimator_params(best_logistic) == {"C": float(best_logistic.data.params["C"])}
    best_gbm = tracking.best_run([experiment_id], kind="gbm")
    assert tracking.estimator_params(best_gbm)["early_stopping"] is True
    rebuilt = tracking.rebuild_model(best_gbm, train_df)
    assert tracking.fitted_iterations(rebuilt) == best_gbm.data.metrics["n_iter"]
    with pytest.raises(InvalidParameterError, match="expected an MLflow run"):
        tracking.rebuild_model(object(), train_df)
    champions = tracking.log_best_models([experiment_id], train_df, val_df)
    assert set(champions) == {"logistic", "gbm"}
    for entry in champions.values():
        logged = entry["run"].data.metrics["val_roc_auc"]
        assert entry["val_roc_auc"] == pytest.approx(logged, abs=1e-12)
        reloaded = mlflow.sklearn.load_model(f"runs:/{entry['run'].info.run_id}/model")
        np.testing.assert_allclose(
            reloaded.predict_proba(val_df[FEATURES]), entry["model"].predict_proba(val_df[FEATURES])
        )


@pytest.mark.slow
def test_log_best_models_detects_a_record_that_does_not_rebuild(frames, sqlite_store):
    train_df, val_df = frames
    _, experiment_id = sqlite_store
    tracking.run_sweep(train_df, val_df, [("logistic", {"C": 1.0})],
                       experiment_id=experiment_id, log_models=False)
    with pytest.raises(LineageError, match="rebuild a model scoring"):
        tracking.log_best_models([experiment_id], train_df.iloc[::2], val_df, kinds=("logistic",))


def _all_runs(experiment_id):
    """Every run of the experiment, deleted ones included."""
    import mlflow
    from mlflow.entities import ViewType

    return mlflow.search_runs([experiment_id], run_view_type=ViewType.ALL, output_format="list")


def _one_class(frame):
    return frame.assign(churned_30d=0)


BAD_RUNS = [
    ({"kind": "forest"}, UnknownNameError, "'forest' is not known"),
    ({"val_frame": "val"}, InvalidParameterError, r"val_frame must be a pandas DataFrame from snapshot_features\(\), got str"),
    ({"train_frame": None}, InvalidParameterError, "train_frame must be a pandas DataFrame"),
    ({"val_frame": "empty"}, InvalidParameterError, "val_frame has no rows"),
    ({"val_frame": "one-class"}, InvalidParameterError, "val_frame has a single class"),
    ({"train_frame": "one-class"}, InvalidParameterError, "train_frame has a single class"),
    ({"val_frame": "no-plan"}, InvalidParameterError, r"val_frame is missing column\(s\) \['plan'\]"),
    ({"val_frame": "nan-label"}, InvalidParameterError, "must be 0 or 1 with no missing value"),
    ({"val_frame": "earlier"}, InvalidParameterError, "must all come after the training snapshots"),
    ({"params": {"C": float("nan")}}, InvalidParameterError, r"params\['C'\] must be a finite"),
    ({"params": {"C": -1.0}}, InvalidParameterError, "logistic model does not accept params"),
    ({"params": {"no_such": 1}}, InvalidParameterError, "logistic model does not accept params"),
    ({"params": {"random_state": 3}}, InvalidParameterError, "must not set random_state"),
    ({"params": [("C", 1.0)]}, InvalidParameterError, "params must be a mapping"),
    ({"price_per_cpu_hour": float("nan")}, InvalidParameterError, "price_per_cpu_hour must be"),
    ({"price_per_cpu_hour": -1}, InvalidParameterError, "price_per_cpu_hour must be"),
    ({"threads": 0}, InvalidParameterError, "threads must be >= 1"),
    ({"seed": -1}, InvalidParameterError, "seed must be >= 0"),
    ({"seed": 1.5}, InvalidParameterError, "seed must be an int"),
    ({"log_model": "yes"}, InvalidParameterError, "log_model must be True or False"),
    ({"nested": None}, InvalidParameterError, "nested must be True or False"),
    ({"run_name": "it's"}, InvalidParameterError, "run_name must be a non-empty string of"),
    ({"run_name": ""}, InvalidParameterError, "run_name must be a non-empty string of"),
    ({"run_name": " "}, InvalidParameterError, "run_name must be a non-empty string of"),
    ({"run_name": "a\nb"}, InvalidParameterError, "run_name must be a non-empty string of"),
    ({"tags": {"owner": None}}, InvalidParameterError, "tag 'owner' must be a string, got None"),
    ({"tags": {"owner": 3}}, InvalidParameterError, "tag 'owner' must be a string"),
    ({"tags": {"mlflow.user": "x"}}, InvalidParameterError, "tag 'mlflow.user' is set by"),
    ({"tags": {"sweep.role": "child"}}, InvalidParameterError, "tag 'sweep.role' is set by"),
    ({"tags": {"code.sha256": "0" * 64}}, InvalidParameterError, "contradicts the code"),
    ({"tags": ["a"]}, InvalidParameterError, "tags must be a mapping"),
    ({"dataset_source": 5}, InvalidParameterError, "dataset_source must be None or a URI"),
    ({"experiment_id": "999999"}, UnknownNameError, "experiment '999999' does not exist"),
    ({"experiment_id": 1}, InvalidParameterError, "experiment_id must be an MLflow experiment"),
]


def _bad_call(frames, change, experiment_id):
    train_df, val_df = frames
    special = {
        "val": "val", "empty": val_df.iloc[:0], "one-class": None, "no-plan":
        val_df.drop(columns=["plan"]), "nan-label": val_df.assign(churned_30d=np.nan),
        "earlier": train_df,
    }
    args = {"train_frame": train_df, "val_frame": val_df, "kind": "logistic", "params": None,
            "experiment_id": experiment_id, "log_model": False, **change}
    for key in ("train_frame", "val_frame"):
        if isinstance(args[key], str) and args[key] in special:
            value = special[args[key]]
            args[key] = _one_class(frames[0 if key == "train_frame" else 1]) if (
                args[key] == "one-class") else value
    return args


@pytest.mark.parametrize("change, error, message", BAD_RUNS)
def test_log_training_run_refuses_bad_input_and_leaves_no_run(frames, sqlite_store, change,
                                                              error, message):
    _, experiment_id = sqlite_store
    args = _bad_call(frames, change, experiment_id)
    with pytest.raises(error, match=message):
        tracking.log_training_run(args.pop("train_frame"), args.pop("val_frame"),
                                  args.pop("kind"), args.pop("params"), **args)
    assert _all_runs(experiment_id) == []  # not even a FAILED or deleted run


@pytest.mark.parametrize("change, error, message", [
    entry for entry in BAD_RUNS
    if not {"kind", "params", "threads", "run_name", "nested", "log_model"} & set(entry[0])
])
def test_run_sweep_refuses_bad_input_and_leaves_no_run(frames, sqlite_store, change, error,
                                                       message):
    _, experiment_id = sqlite_store
    args = _bad_call(frames, change, experiment_id)
    args.pop("kind"), args.pop("params")
    args["log_models"] = args.pop("log_model")
    grid = [("logistic", {"C": 1.0}), ("logistic", {"C": 0.5})]
    with pytest.raises(error, match=message):
        tracking.run_sweep(args.pop("train_frame"), args.pop("val_frame"), grid, **args)
    assert _all_runs(experiment_id) == []


@pytest.mark.parametrize(
    "grid, error, message",
    [
        ([], InvalidParameterError, "grid is empty"),
        (["logistic"], InvalidParameterError, "grid entries must be"),
        ("logistic", InvalidParameterError, "grid must be a list of"),
        ({"logistic": {}}, InvalidParameterError, "grid must be a list of"),
        ([("forest", {})], UnknownNameError, "'forest' is not known"),
        # a bad entry after good ones: nothing is started for the good ones either
        ([("logistic", {"C": 1.0}), ("gbm", {"learning_rate": float("nan")})],
         InvalidParameterError, r"params\['learning_rate'\] must be a finite"),
        ([("logistic", {"C": 1.0}), ("gbm", {"max_leaf_nodes": 1})],
         InvalidParameterError, "gbm model does not accept params"),
        ([("logistic", {"C": 1.0}), ("logistic", {"C": 1.0})],
         InvalidParameterError, "twice"),
    ],
)
def test_run_sweep_checks_the_whole_grid_before_any_run(frames, sqlite_store, grid, error,
                                                        message):
    train_df, val_df = frames
    _, experiment_id = sqlite_store
    with pytest.raises(error, match=message):
        tracking.run_sweep(train_df, val_df, grid, experiment_id=experiment_id,
                           log_models=False)
    assert _all_runs(experiment_id) == []
    with pytest.raises(InvalidParameterError, match="parent_name must be"):
        tracking.run_sweep(train_df, val_df, [("logistic", {})], parent_name="a'b",
                           experiment_id=experiment_id)
    assert _all_runs(experiment_id) == []


@pytest.mark.slow
def test_a_sweep_that_fails_midway_deletes_its_parent_and_children(frames, sqlite_store,
                                                                   monkeypatch):
    import mlflow

    train_df, val_df = frames
    _, experiment_id = sqlite_store
    calls = []
    real_train = tracking.runs.train

    def flaky_train(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise MemoryError("the machine ran out of memory in the third run")
        return real_train(*args, **kwargs)

    monkeypatch.setattr(tracking.runs, "train", flaky_train)
    grid = [("logistic", {"C": c}) for c in (0.1, 1.0, 10.0)]
    with pytest.raises(MemoryError):
        tracking.run_sweep(train_df, val_df, grid, experiment_id=experiment_id,
                           log_models=False)
    runs = _all_runs(experiment_id)
    assert len(runs) == 4  # the parent and three children were started...
    assert {r.info.lifecycle_stage for r in runs} == {"deleted"}  # ...and none is left
    assert mlflow.search_runs([experiment_id], output_format="list") == []
    assert mlflow.active_run() is None


@pytest.mark.slow
def test_every_run_carries_the_code_version(frames, sqlite_store):
    import mlflow

    train_df, val_df = frames
    _, experiment_id = sqlite_store
    code = tracking.code_version()
    single = tracking.log_training_run(train_df, val_df, "logistic", experiment_id=experiment_id,
                                       log_model=False, tags={"team": "churn", **code})
    sweep = tracking.run_sweep(train_df, val_df, [("logistic", {"C": 1.0})],
                               experiment_id=experiment_id, log_models=False)
    run_ids = [single["run_id"], *sweep["run_id"], sweep["parent_run_id"].iloc[0]]
    for run_id in run_ids:
        tags = mlflow.get_run(run_id).data.tags
        assert tags["code.sha256"] == code["code.sha256"]
        assert tags["code.files"] == code["code.files"]
    assert mlflow.get_run(single["run_id"]).data.tags["team"] == "churn"


def test_queries_refuse_bad_experiment_ids_and_names(frames, sqlite_store):
    train_df, val_df = frames
    uri, experiment_id = sqlite_store
    for call in (tracking.runs_table, tracking.best_run, tracking.experiment_cost):
        with pytest.raises(InvalidParameterError, match="experiment_ids must be a list"):
            call(experiment_id)  # a bare string would be read as one id per character
        with pytest.raises(InvalidParameterError, match="one or more distinct experiment ids"):
            call([])
        with pytest.raises(InvalidParameterError, match="one or more distinct experiment ids"):
            call([experiment_id, experiment_id])
        with pytest.raises(UnknownNameError, match="'424242' does not exist"):
            call(["424242"])
    with pytest.raises(InvalidParameterError, match="decimals must be >= 0"):
        tracking.runs_table([experiment_id], decimals=-1)
    with pytest.raises(TrackingError, match="no sweep run in experiment"):
        tracking.best_run([experiment_id])
    with pytest.raises(InvalidParameterError, match="kinds must be a list of model kinds"):
        tracking.log_best_models([experiment_id], train_df, val_df, kinds="gbm")
    with pytest.raises(InvalidParameterError, match="distinct model kinds"):
        tracking.log_best_models([experiment_id], train_df, val_df, kinds=["gbm", "gbm"])
    with pytest.raises(InvalidParameterError, match="val_frame has a single class"):
        tracking.log_best_models([experiment_id], train_df, _one_class(val_df))
    with pytest.raises(InvalidParameterError, match="expected an MLflow run"):
        tracking.estimator_params({"kind": "gbm"})
    for bad in ("", "it's", None, "a`b"):
        with pytest.raises(InvalidParameterError, match="experiment name must be"):
            tracking.ensure_experiment_at(uri, bad)
    with pytest.raises(InvalidParameterError, match="tracking_uri must be an MLflow tracking"):
        tracking.ensure_experiment_at("mlflow.db", "x")
    with pytest.raises(InvalidParameterError, match="artifact_location must be None or a URI"):
        tracking.ensure_experiment_at(uri, "x", artifact_location="artifacts")
    assert _all_runs(experiment_id) == []


@pytest.mark.slow
def test_log_best_models_logs_nothing_unless_every_kind_rebuilds(frames, sqlite_store):
    import mlflow

    train_df, val_df = frames
    _, experiment_id = sqlite_store
    tracking.run_sweep(train_df, val_df, [("logistic", {"C": 1.0})],
                       experiment_id=experiment_id, log_models=False)
    with pytest.raises(TrackingError, match="no sweep run in experiment"):  # no gbm run
        tracking.log_best_models([experiment_id], train_df, val_df)
    child = tracking.best_run([experiment_id], kind="logistic")
    assert mlflow.MlflowClient().list_artifacts(child.info.run_id) == []  # no model logged


# --------------------------------------------------------------------------- the real server


@pytest.mark.slow
def test_tracking_server_serves_runs_and_artifacts_then_leaves_nothing(tmp_path, frames):
    import mlflow

    train_df, val_df = frames
    previous = mlflow.get_tracking_uri()
    with quiet("mlflow", "alembic"), tracking.TrackingServer(tmp_path / "srv") as server:
        assert server.running and server.url.startswith("http://127.0.0.1:")
        assert len(server.leftover_processes()) >= 1
        assert mlflow.get_tracking_uri() == previous  # starting a server changes nothing global
        with using_store(server.url):
            experiment_id = tracking.ensure_experiment_at(server.url, "served")
            assert tracking.ensure_experiment_at(server.url, "served") == experiment_id
            result = tracking.log_training_run(
                train_df, val_df, "logistic", {"C": 1.0}, experiment_id=experiment_id
            )
            run = mlflow.get_run(result["run_id"])
            assert run.data.metrics["val_roc_auc"] == pytest.approx(result["val_roc_auc"])
            model = mlflow.pyfunc.load_model(f"runs:/{result['run_id']}/model")
            assert model.predict(tracking.model_input(val_df)).shape == (len(val_df), 2)
        with pytest.raises(ServerError, match="already running"):
            server.start()
    assert not server.running and server.leftover_processes() == []
    assert (tmp_path / "srv" / "server.db").exists()
    stored = list((tmp_path / "srv" / "server-artifacts").rglob("MLmodel"))
    assert len(stored) == 1  # the model went through the server to its artifact store


@pytest.mark.slow
def test_tracking_server_that_cannot_start_reports_its_log(tmp_path):
    class BrokenServer(tracking.TrackingServer):
        @property
        def backend_store_uri(self) -> str:  # a store mlflow refuses: it exits at start-up
            return "nosuchscheme://nowhere"

    server = BrokenServer(tmp_path / "srv", startup_timeout=60)
    with pytest.raises(ServerError, match="mlflow server exited with code"):
        server.start()
    assert not server.running and server.leftover_processes() == []
    assert server.log_path.exists()


# --------------------------------------------------------------------------- refactored pieces


class _FakeWorkspace:
    """The least a stage needs of a workspace (companion.core.types.WorkspaceLike)."""

    def __init__(self, root: Path, tracking_uri: str) -> None:
        self.name, self.path, self.config = "fake", root, None
        self.data_dir = self.feast_dir = self.dvc_dir = self.reports_dir = root
        self.artifact_root = root / "artifacts"
        self.tracking_uri = tracking_uri
        self.required: list[str] = []

    def relative(self, path):
        return str(path)

    def require(self, *names):
        self.required.extend(names)
        return self.tracking_uri


def test_ensure_experiment_uses_the_workspace_store_and_changes_nothing_global(tmp_path,
                                                                               sqlite_uri):
    import mlflow

    before = mlflow.get_tracking_uri()
    ws = _FakeWorkspace(tmp_path, sqlite_uri)
    experiment_id = tracking.ensure_experiment(ws, "churn local")
    assert tracking.ensure_experiment(ws, "churn local") == experiment_id
    assert ws.required == ["mlflow", "mlflow"]
    assert mlflow.get_tracking_uri() == before
    experiment = mlflow.MlflowClient(sqlite_uri).get_experiment(experiment_id)
    assert experiment.artifact_location == (tmp_path / "artifacts" / "churn-local").as_uri()


@pytest.mark.parametrize("name", ["../outside", "a'b", "", "a/b", 5, " lead", "a..b"])
def test_ensure_experiment_refuses_names_before_building_anything(tmp_path, name):
    ws = _FakeWorkspace(tmp_path, "sqlite:///unused.db")
    with pytest.raises(InvalidParameterError, match="experiment name must be"):
        tracking.ensure_experiment(ws, name)
    assert ws.required == []
    with pytest.raises(InvalidParameterError, match="workspace must be a workspace .*got str"):
        tracking.ensure_experiment("ws", "churn")


def _old_estimator_param(text):
    """How estimator_params read a parameter before it used ast.literal_eval."""
    literals = {"True": True, "False": False, "None": None}
    if text in literals:
        return literals[text]
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            continue
    return text


class _Run:
    def __init__(self, params):
        self.data = type("Data", (), {"params": params})()


@pytest.mark.parametrize("text", ["1", "0.1", "1.0", "1e-05", "2000", "True", "False", "None",
                                  "lbfgs", "log_loss", "balanced", "-3", "0.2", "auto", ""])
def test_estimator_params_reads_values_as_before(text):
    value = tracking.estimator_params(_Run({"kind": "gbm", "seed": "0", "x": text}))["x"]
    old = _old_estimator_param(text)
    assert value == old and type(value) is type(old)


def test_estimator_params_restore_what_the_estimator_was_given():
    from companion.training import make_model

    params = {**tracking.EARLY_STOPPING, "learning_rate": 0.1, "max_leaf_nodes": 4, "loss": "log_loss",
              "l2_regularization": 0.0, "class_weight": None}
    logged = {"kind": "gbm", "seed": "0", "threads": "1", **{k: str(v) for k, v in params.items()}}
    restored = tracking.estimator_params(_Run(logged))
    assert restored == params
    assert make_model("gbm")[-1].set_params(**restored).get_params()["early_stopping"] is True


@pytest.mark.parametrize("name, ok", [("run-1", True), ("a b", True), ("é", True),
                                      ("x" * 250, True), ("x" * 251, False), ("a`b", False),
                                      ('a"b', False), ("a\\b", False), ("\t", False),
                                      (None, False), (3, False)])
def test_mlflow_names_are_printable_and_unquoted(name, ok):
    from companion.tracking.checks import check_name

    if ok:
        assert check_name("run_name", name) == name
    else:
        with pytest.raises(InvalidParameterError, match="run_name must be a non-empty string"):
            check_name("run_name", name)
