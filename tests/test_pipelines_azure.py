"""Azure ML from the step definitions: command components, the pipeline job dumped with relative
code and loaded back, the schedule, and the inputs refused. Nothing is submitted."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import pytest
import yaml

from companion.errors import InvalidParameterError
from companion.pipelines import azureml, azureml_schedule
from companion.pipelines.spec import Input, Output, Pipeline, step


@step
def ingest(export: Annotated[Path, Input(external=True, folder=True)],
           raw: Annotated[Path, Output("raw", folder=True)], *, month: str):
    """Copy the month's export."""


@step(retries=2)
def fit(raw: Annotated[Path, Input(folder=True)], model: Annotated[Path, Output("model.pkl")],
        *, seed: int = 42, rate: float = 0.1, kinds: list[str] = ["gbm"], fast: bool = True):  # noqa: B006
    """Fit a model."""


@step
def score(raw: Annotated[Path, Input(folder=True)], model: Annotated[Path, Input()],
          metrics: Annotated[Path, Output("metrics.json")]):
    """Score the model."""


TOY = Pipeline("toy-azure", [ingest, fit, score])


@pytest.fixture(scope="module")
def dumped(tmp_path_factory):
    folder = tmp_path_factory.mktemp("azure")
    job = azureml.dump_pipeline_job(
        TOY, folder, params={"month": "2025-10-01", "kinds": ["gbm", "logistic"]},
        inputs={"export": "azureml://datastores/workspaceblobstore/paths/exports/2025-10-01/"})
    return job


def test_command_line_per_step():
    assert azureml.step_command(fit.step) == (
        "python -m companion.pipelines step fit --path raw=${{inputs.raw}} "
        "--path model=${{outputs.model}} --param seed=${{inputs.seed}} "
        "--param rate=${{inputs.rate}} --param kinds=${{inputs.kinds}} "
        "--param fast=${{inputs.fast}}")


def test_components_match_the_definitions(tmp_path):
    components = azureml.command_components(TOY, tmp_path)
    fitted = components["fit"]
    assert fitted.name == "fit" and fitted.command == azureml.step_command(fit.step)
    assert {k: (v.type, v.default) for k, v in fitted.component.inputs.items()} == {
        "raw": ("uri_folder", None), "seed": ("integer", 42), "rate": ("number", 0.1),
        "kinds": ("string", "gbm"), "fast": ("boolean", True)}
    assert {k: v.type for k, v in fitted.outputs.items()} == {"model": "uri_file"}
    assert {k: v.type for k, v in components["ingest"].outputs.items()} == {"raw": "uri_folder"}
    assert Path(fitted.code) == azureml.code_folder()
    assert (azureml.code_folder() / "companion" / "__init__.py").is_file()
    conda = yaml.safe_load((tmp_path / "conda.yml").read_text())
    pins = conda["dependencies"][2]["pip"]
    assert any(p.startswith("pandas==") for p in pins) and any(p.startswith("mlflow==") for p in pins)


def test_job_round_trips_with_relative_code(dumped):
    assert dumped.path.name == "toy-azure.yml" and dumped.validation == "Succeeded"
    assert dumped.steps == ["ingest", "fit", "score"]
    assert dumped.bindings["fit"]["raw"] == "${{parent.jobs.ingest.outputs.raw}}"
    assert dumped.bindings["score"] == {"raw": "${{parent.jobs.ingest.outputs.raw}}",
                                        "model": "${{parent.jobs.fit.outputs.model}}"}
    assert dumped.bindings["ingest"] == {"export": "${{parent.inputs.export}}",
                                         "month": "${{parent.inputs.month}}"}
    document = yaml.safe_load(dumped.path.read_text())
    for node in document["jobs"].values():
        code = node["component"]["code"]
        assert not Path(code).is_absolute()
        assert (dumped.path.parent / code).resolve() == azureml.code_folder()
    assert "code: /" not in dumped.path.read_text()  # no absolute code path anywhere
    assert document["inputs"]["month"] == "2025-10-01"
    assert document["inputs"]["kinds"] == "gbm,logistic"
    assert document["inputs"]["export"]["type"] == "uri_folder"
    assert document["settings"]["default_compute"] == "azureml:cpu-cluster"
    assert not list(dumped.path.parent.glob(".*.yml"))  # the scratch dump is gone

    from azure.ai.ml import load_job

    from companion.core.env import quiet

    with quiet("azure", capture_output=True):
        loaded = load_job(dumped.path)
    # the SDK keeps the code folder as written: relative to the job's own file
    assert (dumped.path.parent / loaded.jobs["fit"].component.code).resolve() == azureml.code_folder()


def test_schedule_round_trips(dumped):
    schedule = azureml_schedule.dump_schedule(dumped, name="toy-monthly", cron="0 6 2 * *",
                                              start="2025-11-01")
    assert (schedule.expression, schedule.time_zone, schedule.start_time) == (
        "0 6 2 * *", "UTC", "2025-11-01T00:00:00")
    assert schedule.steps == dumped.steps and schedule.job == "./toy-azure.yml"
    document = yaml.safe_load(schedule.path.read_text())
    assert document["create_job"] == "./toy-azure.yml"
    assert document["trigger"] == {"expression": "0 6 2 * *", "start_time": "2025-11-01T00:00:00",
                                   "time_zone": "UTC", "type": "cron"}


@pytest.mark.parametrize("cron", ["61 * * * *", "monthly", "0 0 6 2 * *"])
def test_schedule_refuses_bad_cron(dumped, cron):
    with pytest.raises(InvalidParameterError, match="not a valid five-field cron"):
        azureml_schedule.dump_schedule(dumped, name="bad", cron=cron, start="2025-11-01")
    assert not (dumped.path.parent / "bad.yml").exists()


def test_refuses_inputs_outside_and_code_without_companion(tmp_path):
    with pytest.raises(InvalidParameterError, match="must be a cloud URI"):
        azureml.dump_pipeline_job(TOY, tmp_path / "out", params={"month": "2025-10-01"},
                                  inputs={"export": str(tmp_path / "export")})
    with pytest.raises(InvalidParameterError, match=r"are not external inputs"):
        azureml.dump_pipeline_job(TOY, tmp_path / "out", params={"month": "2025-10-01"},
                                  inputs={"raw": "azureml://datastores/x/paths/y/"})
    with pytest.raises(InvalidParameterError, match="does not hold the companion package"):
        azureml.dump_pipeline_job(TOY, tmp_path / "out", params={"month": "2025-10-01"},
                                  code=tmp_path)
    with pytest.raises(InvalidParameterError, match="needs parameter 'month'"):
        azureml.dump_pipeline_job(TOY, tmp_path / "out")
    assert not (tmp_path / "out").exists()
