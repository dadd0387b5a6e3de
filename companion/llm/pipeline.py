"""The retrieval configuration run as a pipeline and tracked as an MLflow run.

Two steps, declared with :func:`companion.pipelines.step` like Lumen's training pipeline
(their signatures say what they read, write and take), and :data:`RAG_PIPELINE` wiring them:

- ``chunk_corpus``: the corpus version cut into chunks (``chunks.json``);
- ``evaluate_retrieval``: the retriever built over the chunks and scored on the labelled
  question set (``scores.csv``, one row per question; ``metrics.json``).

:func:`run_config` runs them for one :class:`~companion.llm.config.RagConfig` with
:func:`companion.pipelines.run_local` (in the workspace's ``llm/runs/<version>/``), then logs
one MLflow run in the workspace's store: the configuration's values as parameters and its
version as a tag, recall@k, MRR and the false-refusal rate with their 95% intervals as metrics,
and the configuration record, metrics and per-question scores as artifacts. MLflow is reached
through an explicit client; its process-wide URIs are never changed.
:func:`tracked_runs` reads the runs back as a table; :func:`load_run_config` rebuilds a
configuration from a run's artifact (checking its version).
"""


import json
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Annotated, Any

import pandas as pd

from companion.core.checks import check_int, check_text
from companion.core.env import quiet
from companion.core.files import atomic_write_text
from companion.core.types import WorkspaceLike, check_workspace
from companion.errors import InvalidParameterError, UnknownNameError
from companion.evaluation import Estimate
from companion.llm.chunking import Chunk, chunk_articles, corpus
from companion.llm.config import RagConfig
from companion.llm.quality import mean_interval, score_questions
from companion.llm.questions import question_set
from companion.llm.retrieval import make_retriever
from companion.pipelines import Input, Output, Pipeline, run_local, step

__all__ = ["EXPERIMENT", "RAG_PIPELINE", "TrackedRun", "chunk_corpus", "evaluate_retrieval",
           "load_run_config", "run_config", "tracked_runs"]

EXPERIMENT = "lumen-assistant"
"""The MLflow experiment that holds the assistant's configuration runs."""


def _write_json(path: Path, value: Any) -> None:
    atomic_write_text(path, json.dumps(value, indent=2, sort_keys=True) + "\n")


@step
def chunk_corpus(
    chunks: Annotated[Path, Output("chunks.json")],
    *,
    corpus_version: str = "2025-09",
    chunking: str = "paragraph",
    chunk_size: int = 60,
    chunk_overlap: int = 15,
    with_title: bool = True,
) -> None:
    """Cut the corpus version into chunks and write them as JSON."""
    found = chunk_articles(corpus(corpus_version), chunking, size=chunk_size,
                           overlap=chunk_overlap, with_title=with_title)
    _write_json(chunks, [asdict(c) for c in found])


@step
def evaluate_retrieval(
    chunks: Annotated[Path, Input()],
    scores: Annotated[Path, Output("scores.csv")],
    metrics: Annotated[Path, Output("metrics.json")],
    *,
    corpus_version: str = "2025-09",
    retriever: str = "bm25",
    top_k: int = 5,
    min_score: float = 3.0,
    questions: int = 240,
    question_seed: int = 0,
    bootstrap_seed: int = 0,
) -> None:
    """Score the retriever on the labelled questions; write per-question scores and metrics."""
    loaded = [Chunk(**c) for c in json.loads(Path(chunks).read_text(encoding="utf-8"))]
    asked = question_set(questions, question_seed, corpus_version=corpus_version)
    frame = score_questions(make_retriever(retriever, loaded), asked, k=top_k)
    frame = frame.assign(false_refusal=(frame["top_score"] < min_score).astype(float))
    atomic_write_text(scores, frame.to_csv(index=False, float_format="%.6f"))
    values = {}
    for metric, name in (("recall", "recall_at_k"), ("reciprocal_rank", "mrr"),
                         ("false_refusal", "false_refusal_rate")):
        estimate = mean_interval(frame, metric, seed=bootstrap_seed)
        values.update({name: round(estimate.value, 6), f"{name}_low": round(estimate.low, 6),
                       f"{name}_high": round(estimate.high, 6)})
    _write_json(metrics, {"questions": len(frame), "chunks": len(loaded), **values})


RAG_PIPELINE = Pipeline("lumen-rag", [chunk_corpus, evaluate_retrieval])
"""chunk_corpus -> evaluate_retrieval."""


@dataclass(frozen=True)
class TrackedRun:
    """A configuration's pipeline run and its MLflow run.

    Attributes:
        config: the configuration.
        run_id: the MLflow run's id (volatile: never printed by the book).
        scores: one row per question (``recall``, ``reciprocal_rank``, ``false_refusal``, ...).
        metrics: each metric as an :class:`~companion.evaluation.Estimate`.
        run_dir: the pipeline run's folder.
    """

    config: RagConfig
    run_id: str
    scores: pd.DataFrame
    metrics: dict[str, Estimate]
    run_dir: Path


def _pipeline_params(config: RagConfig, questions: int, question_seed: int,
                     bootstrap_seed: int) -> dict[str, Any]:
    return {"corpus_version": config.corpus_version, "chunking": config.chunking,
            "chunk_size": config.chunk_size, "chunk_overlap": config.chunk_overlap,
            "with_title": config.with_title, "retriever": config.retriever,
            "top_k": config.top_k, "min_score": config.min_score, "questions": questions,
            "question_seed": question_seed, "bootstrap_seed": bootstrap_seed}


@quiet("mlflow")
def run_config(
    workspace: WorkspaceLike,
    config: RagConfig,
    *,
    questions: int = 240,
    question_seed: int = 0,
    bootstrap_seed: int = 0,
    experiment: str = EXPERIMENT,
) -> TrackedRun:
    """Run :data:`RAG_PIPELINE` for ``config`` and log it as an MLflow run in the workspace.

    Args:
        workspace: the chapter's workspace (its MLflow store and folder).
        config: the configuration.
        questions: size of the labelled question set (20 to 5,000).
        question_seed: seed of the question set.
        bootstrap_seed: seed of the intervals.
        experiment: the MLflow experiment.

    Returns:
        The :class:`TrackedRun`.
    """
    check_workspace(workspace)
    if not isinstance(config, RagConfig):
        raise InvalidParameterError(f"config must be a RagConfig, got {type(config).__name__}")
    check_int("questions", questions, minimum=20, maximum=5000)
    check_int("question_seed", question_seed, minimum=0)
    check_int("bootstrap_seed", bootstrap_seed, minimum=0)
    check_text("experiment", experiment)
    from mlflow.tracking import MlflowClient

    from companion.tracking import ensure_experiment

    params = _pipeline_params(config, questions, question_seed, bootstrap_seed)
    run_dir = workspace.path / "llm" / "runs" / config.version
    run_local(RAG_PIPELINE, run_dir, params)
    scores = pd.read_csv(run_dir / "scores.csv")
    values = json.loads((run_dir / "metrics.json").read_text(encoding="utf-8"))
    metrics = {name: Estimate(values[name], values[f"{name}_low"], values[f"{name}_high"],
                              method="bootstrap by seed question")
               for name in ("recall_at_k", "mrr", "false_refusal_rate")}
    experiment_id = ensure_experiment(workspace, experiment)
    client = MlflowClient(workspace.require("mlflow"))
    run = client.create_run(experiment_id, run_name=config.name, tags={
        "config.version": config.version, "config.name": config.name,
        "pipeline": RAG_PIPELINE.name})
    run_id = run.info.run_id
    try:
        for key, value in {**config.parameters(), "config_version": config.version,
                           "questions": questions, "question_seed": question_seed}.items():
            client.log_param(run_id, key, value)
        for key, value in values.items():
            client.log_metric(run_id, key, float(value))
        with tempfile.TemporaryDirectory(prefix="rag-config-") as scratch:
            record = Path(scratch) / "config.json"
            _write_json(record, config.to_dict())
            client.log_artifact(run_id, str(record))
        for name in ("metrics.json", "scores.csv"):
            client.log_artifact(run_id, str(run_dir / name))
        client.set_terminated(run_id, "FINISHED")
    except Exception:
        client.set_terminated(run_id, "FAILED")
        raise
    return TrackedRun(config, run_id, scores, metrics, run_dir)


@quiet("mlflow")
def tracked_runs(workspace: WorkspaceLike, experiment: str = EXPERIMENT,
                 digits: int = 3) -> pd.DataFrame:
    """The experiment's finished runs as a table, oldest first (no run ids).

    Columns: the configuration's name and version, retriever, chunking, titles, top_k,
    corpus and prompt versions, then recall@k, MRR and false refusals with their intervals.
    """
    check_workspace(workspace)
    check_int("digits", digits, minimum=0, maximum=6)
    from mlflow.tracking import MlflowClient

    client = MlflowClient(workspace.require("mlflow"))
    found = client.get_experiment_by_name(experiment)
    if found is None:
        raise UnknownNameError(f"no experiment {experiment!r} in the workspace's store")
    runs = client.search_runs([found.experiment_id], "attributes.status = 'FINISHED'",
                              order_by=["attributes.start_time ASC"])
    rows = []
    for run in runs:
        p, m = run.data.params, run.data.metrics

        def shown(name: str) -> str:
            return (f"{m[name]:.{digits}f} [{m[name + '_low']:.{digits}f}, "  # noqa: B023
                    f"{m[name + '_high']:.{digits}f}]")  # noqa: B023

        rows.append({"config": run.data.tags.get("config.name", ""),
                     "version": p["config_version"], "retriever": p["retriever"],
                     "chunking": p["chunking"] + ("+title" if p["with_title"] == "True" else ""),
                     "top_k": int(p["top_k"]), "corpus": p["corpus_version"],
                     "prompt": int(p["prompt_version"]), "recall@k": shown("recall_at_k"),
                     "MRR": shown("mrr"), "false refusals": shown("false_refusal_rate")})
    return pd.DataFrame(rows)


@quiet("mlflow")
def load_run_config(workspace: WorkspaceLike, run_id: str) -> RagConfig:
    """Rebuild the configuration a run logged (its ``config.json``), checking its version."""
    check_workspace(workspace)
    check_text("run_id", run_id)
    from mlflow.tracking import MlflowClient

    client = MlflowClient(workspace.require("mlflow"))
    with tempfile.TemporaryDirectory(prefix="rag-config-") as scratch:
        path = client.download_artifacts(run_id, "config.json", scratch)
        config = RagConfig.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))
    if client.get_run(run_id).data.tags.get("config.version") != config.version:
        raise InvalidParameterError(
            f"run {run_id}: its config.json makes version {config.version}, its tag says "
            f"{client.get_run(run_id).data.tags.get('config.version')}"
        )
    return config
