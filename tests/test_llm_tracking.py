"""companion.llm with a store: configuration runs tracked in MLflow, prompt versions, aliases."""

from __future__ import annotations

import json

import pytest

from companion import llm
from companion.errors import InvalidParameterError, UnknownNameError
from companion.registry import Registry
from companion.workspace import Workspace

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    return Workspace.create("llm", root=tmp_path_factory.mktemp("ws"))


def test_a_configuration_runs_as_the_pipeline_and_is_one_tracked_run(workspace):
    config = llm.RagConfig(name="small", corpus_version="2025-08", top_k=3)
    run = llm.run_config(workspace, config, questions=40, question_seed=1)
    assert run.run_dir == workspace.path / "llm" / "runs" / config.version
    record = json.loads((run.run_dir / "run.json").read_text())
    assert [s["name"] for s in record["steps"]] == ["chunk_corpus", "evaluate_retrieval"]
    assert record["params"]["top_k"] == 3 and record["params"]["questions"] == 40
    assert len(run.scores) == 40
    assert run.metrics["recall_at_k"].value == pytest.approx(run.scores["recall"].mean())
    assert run.metrics["mrr"].value == pytest.approx(run.scores["reciprocal_rank"].mean())
    assert llm.load_run_config(workspace, run.run_id) == config
    table = llm.tracked_runs(workspace)
    assert table.iloc[-1][["config", "version", "retriever", "top_k", "prompt"]].tolist() == [
        "small", config.version, "bm25", 3, 1]
    assert table.iloc[-1]["recall@k"].startswith(f"{run.metrics['recall_at_k'].value:.3f} [")
    from mlflow.tracking import MlflowClient

    logged = MlflowClient(workspace.require("mlflow")).get_run(run.run_id)
    assert logged.data.params["config_version"] == config.version
    assert logged.data.tags["config.version"] == config.version
    assert {"recall_at_k_low", "mrr_high", "false_refusal_rate"} <= set(logged.data.metrics)


def test_tracking_refuses_bad_input_before_any_run(workspace):
    with pytest.raises(InvalidParameterError):
        llm.run_config(workspace, "config")
    with pytest.raises(InvalidParameterError):
        llm.run_config(workspace, llm.RagConfig(), questions=5)
    with pytest.raises(UnknownNameError, match="no experiment"):
        llm.tracked_runs(workspace, experiment="absent")


def test_prompt_versions_are_registered_once_with_aliases(workspace):
    reg = Registry(workspace)
    numbers = llm.register_assistant_prompts(reg)
    assert numbers == {1: 1, 2: 2}
    assert llm.register_assistant_prompts(reg) == numbers
    production = reg.load_prompt(llm.ASSISTANT_PROMPT, alias="production")
    assert int(production.version) == 2
    assert production.template == llm.PROMPT_TEMPLATES[2]
    assert int(reg.load_prompt(llm.ASSISTANT_PROMPT, alias="previous").version) == 1
    assert sorted(production.variables) == ["context", "question"]
    with pytest.raises(InvalidParameterError):
        llm.register_assistant_prompts("registry")
