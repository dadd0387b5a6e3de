"""Tests of the step specification, Lumen's steps, the in-process runner, triggers and the CLI."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import pandas as pd
import pytest

from companion.data import SimulationConfig, generate
from companion.errors import (
    DataQualityError,
    InvalidParameterError,
    PipelineError,
    UnknownNameError,
)
from companion.pipelines import (
    LUMEN,
    ArrivalTrigger,
    Input,
    Output,
    Pipeline,
    cron_times,
    export_folder,
    quality_checks,
    read_export,
    run_local,
    run_on_arrival,
    step,
    write_export,
)
from companion.pipelines.cli import main as cli_main
from companion.pipelines.cli import parse_pairs, parse_value

N = 3000
GOOD, BAD = "2025-10-01", "2025-11-01"


@pytest.fixture(scope="module")
def dataset():
    return generate(SimulationConfig(n_customers=N, seed=42))


@pytest.fixture(scope="module")
def landing(dataset, tmp_path_factory):
    folder = tmp_path_factory.mktemp("landing")
    for month in (GOOD, BAD):
        write_export(dataset, month, export_folder(folder, month))
    return folder


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return f"sqlite:///{tmp_path_factory.mktemp('mlflow') / 'mlflow.db'}"


def params(store, month=GOOD, **extra):
    return {"month": month, "tracking_uri": store, "min_roc_auc": 0.6, **extra}


# --------------------------------------------------------------------------- the specification


def test_spec_reads_lumen_signatures():
    assert [s.name for s in LUMEN.steps] == [
        "ingest", "validate", "features", "train", "evaluate", "register"]
    assert [p.name for p in LUMEN.external_inputs()] == ["export"]
    assert ("features", "train", "features") in LUMEN.edges()
    assert ("train", "evaluate", "model") in LUMEN.edges()
    assert LUMEN.step("ingest").retries == 1
    assert LUMEN.params()["kind"].default == "gbm"
    assert not LUMEN.params()["month"].required  # "" = the export's own month
    assert LUMEN.params()["tracking_uri"].required
    assert LUMEN.downstream_of_param("kind") == ["train", "evaluate", "register"]
    assert LUMEN.downstream_of_param("min_roc_auc") == ["register"]
    assert LUMEN.downstream_of_param("month") == LUMEN_ALL
    assert LUMEN.downstream_of_param("train_months") == ["features", "train", "evaluate",
                                                         "register"]
    with pytest.raises(UnknownNameError, match="no parameter 'nope'"):
        LUMEN.downstream_of_param("nope")


LUMEN_ALL = ["ingest", "validate", "features", "train", "evaluate", "register"]


def test_spec_refuses_bad_declarations():
    with pytest.raises(InvalidParameterError, match="declares no output"):
        @step
        def nothing(*, x: int = 1) -> None:
            """Writes nothing."""
    with pytest.raises(InvalidParameterError, match="accepted: str, int, float, bool"):
        @step
        def typed(out: Annotated[Path, Output("a.txt")], *, x: dict = None) -> None:  # type: ignore[assignment]
            """Bad type."""
    with pytest.raises(InvalidParameterError, match="must be Annotated"):
        @step
        def loose(out: Annotated[Path, Output("a.txt")], other: Path) -> None:
            """Unmarked path."""
    with pytest.raises(InvalidParameterError, match="plain file name"):
        @step
        def nested(out: Annotated[Path, Output("a/b.txt")]) -> None:
            """Nested output."""

    @step
    def reader(data: Annotated[Path, Input()], out: Annotated[Path, Output("b.txt")]) -> None:
        """Reads what nobody writes."""
    with pytest.raises(InvalidParameterError, match="which no earlier step writes"):
        Pipeline("broken", [reader])
    with pytest.raises(InvalidParameterError, match="month.*must be str"):
        LUMEN.resolve_params({"month": 3, "tracking_uri": "sqlite:///x.db"})
    with pytest.raises(InvalidParameterError, match="needs parameter 'tracking_uri'"):
        LUMEN.resolve_params({"month": GOOD})


# --------------------------------------------------------------------------- exports and checks


def test_export_lands_once_and_reads_back(dataset, landing):
    folder = export_folder(landing, GOOD)
    tables, manifest = read_export(folder, GOOD)
    assert manifest["month"] == GOOD and manifest["as_of"] == "2025-11-01"
    assert tables["activity"]["created_timestamp"].max() <= pd.Timestamp("2025-11-01")
    assert tables["labels"]["snapshot_timestamp"].max() == pd.Timestamp(GOOD)
    with pytest.raises(InvalidParameterError, match="already exists"):
        write_export(dataset, GOOD, folder)
    with pytest.raises(DataQualityError, match="holds month"):
        read_export(folder, BAD)


def test_altered_export_file_is_refused(dataset, tmp_path):
    folder = write_export(dataset, GOOD, tmp_path / "export")
    (folder / "labels.parquet").write_bytes(b"not parquet")
    with pytest.raises(DataQualityError, match="labels.parquet does not match"):
        read_export(folder)


@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5])
def test_quality_checks_pass_before_the_incident_and_fail_at_it(seed):
    ds = generate(SimulationConfig(n_customers=1500, seed=seed))
    from companion.pipelines.exports import export_as_of
    from companion.versioning import tables_as_of

    onset = ds.config.onset("quality")
    assert str(onset.date()) == BAD
    for month in ("2025-08-01", "2025-09-01", GOOD):
        checks = quality_checks(tables_as_of(ds, export_as_of(month)), month)
        assert all(c["passed"] for c in checks), checks
    checks = quality_checks(tables_as_of(ds, export_as_of(BAD)), BAD)
    failed = {c["check"] for c in checks if not c["passed"]}
    assert failed == {"ranges", "missing_values", "units"}


# --------------------------------------------------------------------------- the local runner


def test_local_run_registers_and_repeats_identically(landing, store, tmp_path):
    from mlflow.tracking import MlflowClient

    export = {"export": export_folder(landing, GOOD)}
    first = run_local(LUMEN, tmp_path / "a", params(store), export)
    second = run_local(LUMEN, tmp_path / "b", params(store), export)
    # what a schedule runs: no month given, each step reads it from the export's manifest
    scheduled = run_local(LUMEN, tmp_path / "c", params(store, month=""), export)
    assert first.succeeded and [s.attempts for s in first.steps] == [1] * 6
    one = json.loads(first.outputs["metrics"].read_text())
    two = json.loads(second.outputs["metrics"].read_text())
    assert one == two == json.loads(scheduled.outputs["metrics"].read_text())
    assert json.loads(scheduled.outputs["registration"].read_text())["month"] == GOOD
    assert one["holdout_month"] == GOOD and 0.7 < one["roc_auc"] < 0.95
    assert one["roc_auc_low"] < one["roc_auc"] < one["roc_auc_high"]
    registered = json.loads(first.outputs["registration"].read_text())
    version = MlflowClient(store, store).get_model_version("lumen-churn", registered["version"])
    assert version.tags["data.export_month"] == GOOD
    assert version.tags["metrics.predictions_sha256"] == one["predictions_sha256"]
    assert version.tags["pipeline.run"] == "lumen-training/2025-10"
    assert json.loads((tmp_path / "a" / "run.json").read_text())["succeeded"] is True


def test_incident_month_stops_before_training(landing, store, tmp_path):
    from mlflow.tracking import MlflowClient

    client = MlflowClient(store, store)
    before = len(client.search_model_versions("name='lumen-churn'"))
    with pytest.raises(PipelineError, match="step 'validate' failed.*missing_values") as caught:
        run_local(LUMEN, tmp_path / "run", params(store, BAD),
                  {"export": export_folder(landing, BAD)})
    result = caught.value.result  # type: ignore[attr-defined]
    assert [s.status for s in result.steps] == ["succeeded", "failed"] + ["not run"] * 4
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == ["raw", "run.json"]
    assert len(client.search_model_versions("name='lumen-churn'")) == before


def test_gate_refuses_and_registers_nothing(landing, store, tmp_path):
    with pytest.raises(PipelineError, match="step 'register'.*gate refused"):
        run_local(LUMEN, tmp_path / "run", params(store, min_roc_auc=0.99),
                  {"export": export_folder(landing, GOOD)})
    assert not (tmp_path / "run" / "registration.json").exists()
    assert (tmp_path / "run" / "metrics.json").exists()


CALLS: list[int] = []


@step(retries=2)
def flaky(pulled: Annotated[Path, Output("flaky.txt")], *, fail_times: int = 1) -> None:
    """Fails ``fail_times`` times, then writes."""
    CALLS.append(1)
    pulled.write_text("partial")
    if len(CALLS) <= fail_times:
        raise OSError("source unavailable")
    pulled.write_text("done")


@step
def after(pulled: Annotated[Path, Input()], copied: Annotated[Path, Output("after.txt")]) -> None:
    """Copies."""
    copied.write_text(Path(pulled).read_text() + "!")


FLAKY = Pipeline("flaky", [flaky, after])


@pytest.mark.parametrize("fail_times", [0, 2])
def test_flaky_step_is_retried(tmp_path, fail_times):
    CALLS.clear()
    result = run_local(FLAKY, tmp_path, {"fail_times": fail_times})
    assert result.step("flaky").attempts == fail_times + 1
    assert (tmp_path / "after.txt").read_text() == "done!"


def test_step_failing_after_retries_leaves_nothing(tmp_path):
    CALLS.clear()
    (tmp_path / "after.txt").write_text("stale")
    with pytest.raises(PipelineError, match="'flaky' failed after 3 attempt.*source unavail"):
        run_local(FLAKY, tmp_path, {"fail_times": 5})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.json"]
    record = json.loads((tmp_path / "run.json").read_text())
    assert [s["status"] for s in record["steps"]] == ["failed", "not run"]


def test_only_needs_upstream_outputs(tmp_path):
    with pytest.raises(InvalidParameterError, match="run 'flaky' first"):
        run_local(FLAKY, tmp_path, only=["after"])
    with pytest.raises(InvalidParameterError, match="missing: \\['export'\\]"):
        run_local(LUMEN, tmp_path, {"month": GOOD, "tracking_uri": "sqlite:///x.db"})


# --------------------------------------------------------------------------- triggers


def test_cron_times():
    times = cron_times("0 6 1 * *", "2025-01-01", "2025-07-01")
    assert [str(t) for t in times[:2]] == ["2025-01-01 06:00:00", "2025-02-01 06:00:00"]
    assert len(times) == 6
    assert len(cron_times("*/15 * * * *", "2025-01-01", "2025-01-02")) == 96
    with pytest.raises(InvalidParameterError, match="not a cron expression"):
        cron_times("every monday", "2025-01-01", "2025-02-01")


def test_arrival_runs_each_month_once_across_restarts(dataset, store, tmp_path):
    landing = tmp_path / "landing"
    write_export(dataset, "2025-09-01", export_folder(landing, "2025-09-01"))
    (landing / "2025-12").mkdir()  # still arriving: no manifest yet
    trigger = ArrivalTrigger(landing, tmp_path / "ledger.json")
    assert trigger.poll() == ["2025-09-01"]
    runs = run_on_arrival(LUMEN, trigger, tmp_path / "runs", {"tracking_uri": store,
                                                               "min_roc_auc": 0.6})
    assert [(r.month, r.status) for r in runs] == [("2025-09-01", "succeeded")]
    assert run_on_arrival(LUMEN, trigger, tmp_path / "runs", {"tracking_uri": store}) == []
    write_export(dataset, BAD, export_folder(landing, BAD))
    restarted = ArrivalTrigger(landing, tmp_path / "ledger.json")
    assert restarted.poll() == [BAD]
    runs = run_on_arrival(LUMEN, restarted, tmp_path / "runs", {"tracking_uri": store})
    assert [(r.month, r.status) for r in runs] == [(BAD, "failed")]
    assert "validate" in runs[0].error
    ledger = json.loads((tmp_path / "ledger.json").read_text())
    assert {m: e["status"] for m, e in ledger.items()} == {"2025-09-01": "succeeded",
                                                         BAD: "failed"}
    assert ArrivalTrigger(landing, tmp_path / "ledger.json").poll() == []


# --------------------------------------------------------------------------- the command line


def test_cli_parses_by_declared_type():
    kinds = LUMEN.params()
    assert parse_value(kinds["train_months"], "4") == 4
    assert parse_value(kinds["min_roc_auc"], "0.7") == 0.7
    from companion.pipelines.spec import Param

    assert parse_value(Param("flag", "bool"), "True") is True
    assert parse_value(Param("names", "list[str]"), "a,b") == ["a", "b"]
    with pytest.raises(InvalidParameterError, match="train_months='three': expected a int"):
        parse_value(kinds["train_months"], "three")
    with pytest.raises(InvalidParameterError, match="expected true or false"):
        parse_value(Param("flag", "bool"), "maybe")
    assert parse_pairs("--path", ["a=x=y"]) == {"a": "x=y"}
    with pytest.raises(InvalidParameterError, match="expected name=value"):
        parse_pairs("--param", ["month"])
    with pytest.raises(InvalidParameterError, match="given twice"):
        parse_pairs("--param", ["a=1", "a=2"])


def test_cli_runs_a_step_and_reports_errors(landing, tmp_path, capsys):
    raw = tmp_path / "raw"
    code = cli_main(["step", "ingest", "--path", f"export={export_folder(landing, GOOD)}",
                     "--path", f"raw={raw}", "--param", f"month={GOOD}"])
    assert code == 0 and (raw / "manifest.json").is_file()
    assert cli_main(["step", "ingest", "--path", f"raw={raw}", "--param", f"month={GOOD}"]) == 1
    assert "missing: ['export']" in capsys.readouterr().err
    assert cli_main(["step", "nope"]) == 1
    assert "has no step 'nope'" in capsys.readouterr().err
    assert cli_main(["step", "train", "--path", "features=f", "--path", "model=m",
                     "--param", "colour=red"]) == 1
    assert "no parameter(s) ['colour']" in capsys.readouterr().err
