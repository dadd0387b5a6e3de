"""Lineage in MLflow: a training run that names its data, its code and its commit.

:func:`train_and_log` trains on an export read back by revision and logs, to an explicit
MLflow store, the training frame as a dataset input, the data's tag, commit and content hash,
the code commit (:func:`code_commit`) and the code version; :func:`trace_run` answers from
that store alone which data and which code produced a run. Neither touches MLflow's
process-wide tracking or registry URI: both talk to the store through an ``MlflowClient``.
"""

from __future__ import annotations

import json
import logging
import re
from typing import TYPE_CHECKING, Any

import pandas as pd

from companion.core.checks import check_frame, check_int
from companion.core.env import MLFLOW_INTEGER_HINT, quiet
from companion.core.types import WorkspaceLike
from companion.data import SimulationConfig
from companion.errors import InvalidParameterError, LineageError, UnknownNameError, WorkspaceError
from companion.versioning.pipeline import code_version
from companion.versioning.readback import read_manifest, read_tables
from companion.versioning.repo import DATA_TAG_PREFIX, PARAMS_PATH, RAW_DIR, DataRepo, check_repo
from companion.versioning.stages import fit_and_score, training_frame

if TYPE_CHECKING:  # pragma: no cover - annotations only
    from mlflow.tracking import MlflowClient

logger = logging.getLogger(__name__)

__all__ = [
    "CODE_FILES",
    "code_commit",
    "dataset_digest",
    "describe_commit",
    "trace_run",
    "train_and_log",
]


def _client(store: Any) -> MlflowClient:
    """An ``MlflowClient`` on ``store``: a tracking URI, or a workspace's MLflow store."""
    from mlflow.tracking import MlflowClient

    if isinstance(store, WorkspaceLike):
        store = store.require("mlflow")
    if not isinstance(store, str) or not store.strip():
        raise InvalidParameterError(
            f"store must be a tracking URI such as 'sqlite:///mlflow.db' or a workspace, got "
            f"{type(store).__name__}; accepted: ws (its MLflow store) or ws.tracking_uri"
        )
    return MlflowClient(tracking_uri=store, registry_uri=store)


def train_and_log(
    repo: DataRepo,
    rev: str,
    experiment_id: str,
    kind: str = "gbm",
    seed: int = 0,
    *,
    store: WorkspaceLike | str,
) -> str:
    """Train on the export at ``rev`` and log the run with its data lineage; return the run id.

    The export is read back from DVC by revision and checked against its manifest; the run,
    logged to ``store`` (a workspace, whose MLflow store is ``store.require("mlflow")``, or a
    tracking URI), records the training frame as an MLflow dataset input (with its digest),
    the manifest's content hash, the DVC tag and commit of the data, the code commit (see
    :func:`code_commit`), the code version (``code.sha256``: the SHA-256 of the module files
    that build the features and train the model, :func:`code_version`), and the metrics of
    :func:`fit_and_score`: the ROC AUC on the export's last labelled month with its 95%
    interval (``roc_auc_low``, ``roc_auc_high``). Everything is checked and the model trained
    before the run is created, so a bad call leaves no run behind.

    Raises:
        WorkspaceError: the repo has uncommitted changes, so HEAD would not describe the code.
        UnknownNameError: ``experiment_id`` names no experiment, or ``rev`` no revision.
        InvalidParameterError: an unknown model kind or a bad seed.
    """
    import mlflow
    from mlflow.entities import DatasetInput, InputTag, Metric, Param, RunTag
    from mlflow.exceptions import MlflowException

    from companion.training import make_model

    check_repo(repo)
    make_model(kind, seed)
    if not isinstance(experiment_id, str) or not experiment_id.isdigit():
        raise InvalidParameterError(
            f"experiment_id must be an MLflow experiment id (a string of digits), got "
            f"{experiment_id!r}; accepted: ensure_experiment(ws, name)"
        )
    client = _client(store)
    try:
        experiment = client.get_experiment(experiment_id)
    except MlflowException:
        experiment = None
    if experiment is None or experiment.lifecycle_stage != "active":
        raise UnknownNameError(
            f"no active MLflow experiment with id {experiment_id!r} in the current tracking "
            "store; accepted: the id returned by ensure_experiment(ws, name)"
        )
    if repo.git("status", "--porcelain"):
        raise WorkspaceError(
            "the data repo has uncommitted changes; accepted: a clean working tree, so that "
            "its HEAD commit records the code and parameters of this run (commit first)"
        )
    commit = repo.resolve(rev)
    manifest = read_manifest(repo, rev)
    config = SimulationConfig.from_mapping(manifest["parameters"]["simulation"])
    frame = training_frame(read_tables(repo, rev), config)
    model, metrics = fit_and_score(frame, kind, seed)
    tags = [
        t for t in repo.git("tag", "--points-at", commit).split() if t.startswith(DATA_TAG_PREFIX)
    ]
    with quiet("mlflow", level=logging.WARNING, ignore=(UserWarning,)):  # "a local path ..."
        dataset = mlflow.data.from_pandas(  # type: ignore[attr-defined]
            frame, source=str(repo.path / RAW_DIR), name=f"lumen-churn-export@{rev}"
        )
        entity = dataset._to_mlflow_entity()  # what mlflow.log_input sends
    test_month = str(pd.Timestamp(frame["snapshot_timestamp"].max()).date())
    params = {"kind": kind, "seed": seed, "as_of": manifest["parameters"]["as_of"],
              "test_month": test_month}
    run_tags = {
        "data.git_commit": commit,
        "data.dvc_tag": tags[0] if tags else rev,
        "data.content_hash": manifest["content_hash"],
        "code.git_commit": code_commit(repo),
        **code_version(),
    }
    run = client.create_run(experiment_id)
    run_id = run.info.run_id
    try:
        client.log_inputs(run_id, [DatasetInput(entity, [InputTag("mlflow.data.context",
                                                                  "training")])])
        now = run.info.start_time
        client.log_batch(
            run_id,
            metrics=[Metric(k, float(v), now, 0) for k, v in metrics.items()],
            params=[Param(k, str(v)) for k, v in params.items()],
            tags=[RunTag(k, v) for k, v in run_tags.items()],
        )
    except BaseException:
        client.set_terminated(run_id, "FAILED")
        raise
    client.set_terminated(run_id)
    logger.info("run %s trained on %s logged with its lineage", run_id, rev)
    return run_id


def trace_run(run_id: str, *, store: WorkspaceLike | str) -> dict[str, Any]:
    """Answer from the MLflow ``store`` alone: which data and which commit produced ``run_id``.

    Raises:
        UnknownNameError: the store holds no run ``run_id``.
        LineageError: the run records no data lineage (it was not logged by
            :func:`train_and_log`).
    """
    from mlflow.exceptions import MlflowException

    if not isinstance(run_id, str) or not re.fullmatch(r"[0-9a-f]{32}", run_id):
        raise InvalidParameterError(
            f"run_id must be an MLflow run id (32 hex digits), got {run_id!r}; accepted: the "
            "id train_and_log returned"
        )
    client = _client(store)
    try:
        run = client.get_run(run_id)
    except MlflowException:
        raise UnknownNameError(
            f"no MLflow run {run_id!r} in the current tracking store; accepted: a run id "
            "logged by train_and_log"
        ) from None
    recorded = run.inputs.dataset_inputs if run.inputs is not None else []
    inputs = [i for i in recorded
              if any(t.key == "mlflow.data.context" and t.value == "training" for t in i.tags)]
    if "data.git_commit" not in run.data.tags or not inputs:
        raise LineageError(
            f"run {run_id} records no data lineage (no training input or data.git_commit tag); "
            "accepted: a run logged by train_and_log"
        )
    dataset = inputs[0].dataset
    return {
        "dataset": dataset.name,
        "digest": dataset.digest,
        "rows": json.loads(dataset.profile or "{}").get("num_rows"),
        "dvc_tag": run.data.tags["data.dvc_tag"],
        "data_commit": run.data.tags["data.git_commit"],
        "content_hash": run.data.tags["data.content_hash"],
        "code_commit": run.data.tags["code.git_commit"],
        "code_sha256": run.data.tags.get("code.sha256"),
        "code_files": run.data.tags.get("code.files", ""),
        "kind": run.data.params["kind"],
        "seed": int(run.data.params["seed"]),
        "test_month": run.data.params.get("test_month"),
        "roc_auc": run.data.metrics["roc_auc"],
        "roc_auc_low": run.data.metrics.get("roc_auc_low"),
        "roc_auc_high": run.data.metrics.get("roc_auc_high"),
    }


CODE_FILES = ("dvc.yaml", PARAMS_PATH)
"""The files that define how a model is trained: the pipeline and its parameters."""


def code_commit(repo: DataRepo, rev: str = "HEAD") -> str:
    """Return the last commit up to ``rev`` that changed the pipeline or its parameters.

    That commit pins the code and parameters a model is trained with. It is deliberately
    not HEAD: the commit after ``dvc repro`` records ``dvc.lock``, which holds the hash of the
    model file, and a pickled model's bytes differ from one CPU to another; its hash would
    make the lineage differ from machine to machine for the same code and data.
    """
    check_repo(repo)
    commit = repo.resolve(rev)
    found = repo.git("log", "-1", "--format=%H", commit, "--", *CODE_FILES)
    return found or commit


def describe_commit(repo: DataRepo, rev: str, hash_digits: int = 7) -> str:
    """Return ``hash date subject (refs)`` of a commit, for printing (``hash_digits=0``: none)."""
    check_repo(repo)
    try:
        check_int("hash_digits", hash_digits, minimum=0, maximum=40)
    except InvalidParameterError:
        raise InvalidParameterError(
            f"hash_digits must be an integer 0 to 40, got {hash_digits!r}"
        ) from None
    commit = repo.resolve(rev)
    text = repo.git("log", "-1", "--format=%ad %s%d", "--date=short", commit)
    return f"{commit[:hash_digits]} {text}" if hash_digits else text


def dataset_digest(frame: pd.DataFrame) -> str:
    """Return the digest MLflow computes for ``frame`` as a dataset input."""
    import mlflow

    check_frame("frame", frame)
    with quiet("mlflow", level=logging.WARNING, ignore=(MLFLOW_INTEGER_HINT,)):
        digest: str = mlflow.data.from_pandas(frame).digest  # type: ignore[attr-defined]
    return digest


