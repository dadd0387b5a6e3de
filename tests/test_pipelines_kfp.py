"""Kubeflow Pipelines from the step definitions: generated components, the compiled YAML, the
recurring run, and real runs under kfp.local's subprocess runner (slow)."""

from __future__ import annotations

import importlib
import json
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

from companion.errors import InvalidParameterError, PipelineError, UnknownNameError
from companion.pipelines import kubeflow, kubeflow_run, kubeflow_schedule

# Toy steps live in a module written at test time: the tasks import it through python_path,
# never through an inherited PYTHONPATH. It has no `from __future__ import annotations` on
# purpose (the step spec reads real annotations either way).
TOY = '''
"""Three toy steps: an external folder in, a file, a file and a folder out."""
import json
from pathlib import Path
from typing import Annotated

import companion
from companion.pipelines.spec import Input, Output, Pipeline, step


@step
def count(src: Annotated[Path, Input(external=True, folder=True)],
          numbers: Annotated[Path, Output("numbers.txt")], *, upto: int = 5, fail: bool = False):
    """Write upto numbers starting at the export's offset."""
    print("companion imported from", Path(companion.__file__).parent)
    if fail:
        raise ValueError("the export of this month is broken")
    offset = int((src / "offset.txt").read_text())
    numbers.write_text(" ".join(str(offset + i) for i in range(upto)))


@step(retries=2)
def total(src: Annotated[Path, Input(external=True, folder=True)],
          numbers: Annotated[Path, Input()],
          result: Annotated[Path, Output("total.json")], *, scale: float = 1.0,
          tags: list[str] = ["a", "b"]):
    """Sum the numbers; fails once when the export says the source is flaky."""
    flag = src / "flaky"
    if flag.exists() and not (src / "flaky.done").exists():
        (src / "flaky.done").write_text("1")
        raise RuntimeError("the source timed out")
    values = [int(x) for x in numbers.read_text().split()]
    result.write_text(json.dumps({"total": sum(values) * scale, "tags": tags}))


@step
def report(numbers: Annotated[Path, Input()], result: Annotated[Path, Input()],
           summary: Annotated[Path, Output("summary", folder=True)], *, title: str):
    """Write a folder: the title and the line count."""
    summary.mkdir(parents=True, exist_ok=True)
    (summary / "title.txt").write_text(title)
    (summary / "lines.txt").write_text(str(len(numbers.read_text().split())) + " "
                                       + json.loads(result.read_text())["tags"][0])


TOY = Pipeline("toy-kfp", [count, total, report])
'''


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    folder = tmp_path_factory.mktemp("toy_steps")
    (folder / "kfp_toy_steps.py").write_text(textwrap.dedent(TOY))
    sys.path.insert(0, str(folder))
    try:
        module = importlib.import_module("kfp_toy_steps")
        yield module, folder
    finally:
        sys.path.remove(str(folder))
        sys.modules.pop("kfp_toy_steps", None)


def _export(folder: Path, offset: int, flaky: bool = False) -> Path:
    folder.mkdir(parents=True)
    (folder / "offset.txt").write_text(str(offset))
    if flaky:
        (folder / "flaky").write_text("1")
    return folder


def test_components_match_the_definitions(toy, tmp_path):
    module, _ = toy
    components = kubeflow.load_components(module.TOY, tmp_path)
    source = (tmp_path / "kfp_components_toy_kfp.py").read_text()
    assert "from __future__" not in source
    for item in module.TOY.steps:
        spec = components[item.name].component_spec
        assert spec.name == item.name
        assert set(spec.inputs) == {p.name for p in item.inputs} | {p.name for p in item.params}
        assert set(spec.outputs) == {p.name for p in item.outputs}
        for param in item.params:
            assert spec.inputs[param.name].type == {
                "int": "Integer", "float": "Float", "bool": "Boolean", "str": "String",
                "list[str]": "typing.List[str]"}[param.type]
            assert spec.inputs[param.name].default == (None if param.required else param.default)
        command = " ".join(spec.implementation.container.command)
        assert "pip install" not in command  # install_kfp_package=False
        assert f"importlib.import_module('kfp_toy_steps'), {item.name!r}" in command
    assert components["total"].component_spec.inputs["numbers"].type == "system.Dataset@0.0.1"
    # files are read inside their producer's artifact folder, under their declared names
    assert "Path(numbers.path) / 'numbers.txt'" in kubeflow.component_source(
        module.TOY.step("total"), module.TOY)


def test_compiled_yaml_has_the_graph_params_and_retries(toy, tmp_path):
    module, _ = toy
    path = kubeflow.compile_pipeline(module.TOY, tmp_path)
    found = kubeflow.check_compiled(path, module.TOY)
    assert found.tasks == ["count", "total", "report"]
    assert found.edges == module.TOY.edges() == [
        ("count", "total", "numbers"), ("count", "report", "numbers"),
        ("total", "report", "result")]
    assert found.params == {"src_uri": "STRING", "upto": "NUMBER_INTEGER", "fail": "BOOLEAN",
                            "scale": "NUMBER_DOUBLE", "tags": "LIST", "title": "STRING"}
    assert found.retries == {"count": 0, "total": 2, "report": 0}
    assert found.pip_installs == 0
    spec = yaml.safe_load(path.read_text())
    assert spec["root"]["dag"]["tasks"]["importer"]["inputs"]["parameters"]["uri"] == {
        "componentInputParameter": "src_uri"}
    assert "PYTHONPATH" not in path.read_text()  # the cluster's YAML carries no local env


def test_check_compiled_names_what_differs(toy, tmp_path):
    module, _ = toy
    path = kubeflow.compile_pipeline(module.TOY, tmp_path)
    spec = yaml.safe_load(path.read_text())
    del spec["root"]["dag"]["tasks"]["total"]["retryPolicy"]
    path.write_text(yaml.safe_dump(spec))
    with pytest.raises(PipelineError, match=r"retries \{'count': 0, 'total': 0"):
        kubeflow.check_compiled(path, module.TOY)


def test_recurring_run_body_round_trips(toy, tmp_path):
    module, _ = toy
    path = kubeflow.compile_pipeline(module.TOY, tmp_path)
    run = kubeflow_schedule.recurring_run(
        module.TOY, path, cron="0 6 2 * *", name="toy-monthly", start="2025-01-01",
        params={"src_uri": "gs://bucket/exports/latest", "title": "monthly"})
    body = run.as_dict()
    assert run.cron == body["trigger"]["cron_schedule"]["cron"] == "0 0 6 2 * *"
    assert [t.strftime("%Y-%m-%d %H:%M") for t in run.next_runs] == [
        "2025-01-02 06:00", "2025-02-02 06:00", "2025-03-02 06:00"]
    assert body["runtime_config"]["parameters"] == {"src_uri": "gs://bucket/exports/latest",
                                                    "title": "monthly"}
    assert body["mode"] == "ENABLE" and body["max_concurrency"] == "1"
    assert body["pipeline_spec"]["pipelineInfo"]["name"] == "toy-kfp"


@pytest.mark.parametrize("cron", ["61 * * * *", "every month", "0 0 6 2 * *", ""])
def test_recurring_run_refuses_bad_cron(toy, tmp_path, cron):
    module, _ = toy
    path = kubeflow.compile_pipeline(module.TOY, tmp_path)
    with pytest.raises(InvalidParameterError, match="cron expression"):
        kubeflow_schedule.recurring_run(module.TOY, path, cron=cron, name="x", start="2025-01-01",
                                        params={"src_uri": "gs://b/x", "title": "t"})


def test_recurring_run_refuses_unknown_and_missing_params(toy, tmp_path):
    module, _ = toy
    path = kubeflow.compile_pipeline(module.TOY, tmp_path)
    with pytest.raises(InvalidParameterError, match=r"no parameter\(s\) \['month'\]"):
        kubeflow_schedule.recurring_run(module.TOY, path, cron="0 6 2 * *", name="x",
                                        start="2025-01-01", params={"month": "2025-01"})
    with pytest.raises(InvalidParameterError, match=r"needs parameter\(s\) \['src_uri', 'title'\]"):
        kubeflow_schedule.recurring_run(module.TOY, path, cron="0 6 2 * *", name="x",
                                        start="2025-01-01")


def test_parse_kfp_log_reads_status_attempts_and_seconds():
    log = "\n".join([
        "23:59:58.000 - INFO - Executing task \x1b[96m'count'\x1b[0m",
        "    companion-step {\"step\": \"count\", \"seconds\": 0.25}",
        "00:00:01.500 - INFO - Task \x1b[96m'count'\x1b[0m finished with status \x1b[92mSUCCESS\x1b[0m",
        "00:00:02.000 - INFO - Executing task 'total'",
        "00:00:03.000 - ERROR - Task 'total' finished with status FAILURE",
        "00:00:03.000 - INFO - Executing task 'total'",
        "    companion-step {\"step\": \"total\", \"seconds\": 0.5}",
        "00:00:04.250 - INFO - Task 'total' finished with status SUCCESS",
    ])
    tasks = kubeflow_run.parse_kfp_log(log, {"count": "count", "total": "total", "report": "report"})
    assert [(t.step, t.status, t.attempts, t.seconds, t.step_seconds) for t in tasks] == [
        ("count", "SUCCESS", 1, 3.5, 0.25), ("total", "SUCCESS", 2, 2.25, 0.5),
        ("report", "NOT RUN", 0, 0.0, None)]


def test_run_refuses_bad_inputs_before_writing(toy, tmp_path):
    module, folder = toy
    target = tmp_path / "kfp"
    with pytest.raises(InvalidParameterError, match=r"external inputs \['src'\]; given: \[\]"):
        kubeflow_run.run_kfp_local(module.TOY, target, params={"title": "t"})
    with pytest.raises(InvalidParameterError, match="'missing' does not exist"):
        kubeflow_run.run_kfp_local(module.TOY, target, params={"title": "t"},
                                   inputs={"src": tmp_path / "missing"})
    with pytest.raises(UnknownNameError, match=r"no parameter\(s\) \['month'\]"):
        kubeflow_run.run_kfp_local(module.TOY, target, params={"title": "t", "month": "x"},
                                   inputs={"src": folder})
    with pytest.raises(InvalidParameterError, match=r"python_path folders \['nowhere'\]"):
        kubeflow_run.run_kfp_local(module.TOY, target, params={"title": "t"},
                                   inputs={"src": folder}, python_path=[tmp_path / "nowhere"])
    assert not target.exists()


def _direct(module, export: Path, folder: Path, **params) -> dict[str, str]:
    """The same steps called in this process, for comparison."""
    folder.mkdir()
    paths = {"src": export, "numbers": folder / "numbers.txt", "result": folder / "total.json",
             "summary": folder / "summary"}
    resolved = module.TOY.resolve_params(params)
    for item in module.TOY.steps:
        item.call(paths, resolved)
    return {"numbers": paths["numbers"].read_text(), "result": paths["result"].read_text(),
            "summary": (paths["summary"] / "lines.txt").read_text()}


@pytest.mark.slow
def test_runs_under_kfp_local_like_direct_calls(toy, tmp_path, monkeypatch):
    module, folder = toy
    # A PYTHONPATH that would shadow the companion, and a working folder without it: the tasks
    # must import the installed companion, and the toy steps only through python_path.
    shadow = tmp_path / "shadow" / "companion"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("raise ImportError('the shadowed companion')\n")
    monkeypatch.setenv("PYTHONPATH", str(shadow.parent))
    monkeypatch.chdir(tmp_path)
    export = _export(tmp_path / "export", offset=10, flaky=True)
    params = {"upto": 4, "scale": 0.5, "tags": ["z"], "title": "march"}
    run = kubeflow_run.run_kfp_local(module.TOY, tmp_path / "kfp", params=params,
                                     inputs={"src": export}, python_path=[folder])
    assert [(t.step, t.status, t.attempts) for t in run.tasks] == [
        ("count", "SUCCESS", 1), ("total", "SUCCESS", 2), ("report", "SUCCESS", 1)]
    assert all(t.seconds > 0 and t.step_seconds is not None for t in run.tasks)
    assert run.run_dir.parent == tmp_path / "kfp" / "runs"
    assert run.run_dir.name.startswith("toy-kfp-")
    assert run.outputs["numbers"] == run.run_dir / "count" / "numbers" / "numbers.txt"
    got = {"numbers": run.outputs["numbers"].read_text(),
           "result": run.outputs["result"].read_text(),
           "summary": (run.outputs["summary"] / "lines.txt").read_text()}
    (export / "flaky").unlink()
    expected = _direct(module, export, tmp_path / "direct", **params)
    assert got == expected
    assert json.loads(got["result"]) == {"total": 23.0, "tags": ["z"]}
    assert "the source timed out" in run.log  # the first attempt failed, the retry passed
    real = Path(kubeflow_run.__file__).resolve().parents[1]
    assert f"companion imported from {real}" in run.log
    assert "pip install" not in run.log and "Successfully installed" not in run.log
    assert "the shadowed companion" not in run.log


@pytest.mark.slow
def test_failing_step_stops_the_run(toy, tmp_path):
    module, folder = toy
    export = _export(tmp_path / "export", offset=1)
    with pytest.raises(PipelineError, match=r"stopped at step 'count'.*ValueError: the export of "
                                            r"this month is broken"):
        kubeflow_run.run_kfp_local(module.TOY, tmp_path / "kfp", inputs={"src": export},
                                   params={"fail": True, "title": "t"}, python_path=[folder])
    (run_dir,) = (tmp_path / "kfp" / "runs").glob("toy-kfp-*")
    assert not (run_dir / "total").exists() and not (run_dir / "report").exists()
