"""The project repository: code, data and runs of a Level 1 churn project, versioned.

- :func:`create_project` makes a git + DVC repository with a local DVC remote
  (:func:`companion.versioning.init_data_repo`: fixed identity, fixed dates, the remote kept
  inside the folder given) and commits the project's code from
  :data:`~companion.cicd.templates.PROJECT_FILES`, its ``params.yaml`` and a
  ``requirements.lock`` pinned from the installed versions.
- :func:`commit_export` puts a monthly export under DVC (``dvc add``), records its date in
  ``params.yaml``, commits and tags it ``data-YYYY-MM`` and pushes it to the remote.
- :func:`save_model` and :func:`log_training` are what the project's ``train.py`` calls: the
  model and its metrics written atomically, and the run tracked in MLflow (parameters,
  metrics, the model, the git commit and the DVC hash of the data as tags), through
  :func:`companion.core.mlflow_store.using_store`, so MLflow's process-wide URIs are never
  changed.
"""

from __future__ import annotations

import copy
import importlib.metadata
import json
import logging
import os
import pickle
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from companion.cicd.datatests import EXPORT_SCHEMA
from companion.cicd.templates import LOCKED_PACKAGES, PROJECT_FILES
from companion.core.checks import check_frame, check_int, check_path
from companion.core.files import atomic_write, atomic_write_bytes, atomic_write_text
from companion.core.mlflow_store import using_store
from companion.errors import InvalidParameterError, TrackingError
from companion.training import MODEL_KINDS
from companion.versioning.repo import (
    DATA_TAG_PREFIX,
    DataRepo,
    check_repo,
    git_date,
    init_data_repo,
)

logger = logging.getLogger(__name__)

__all__ = [
    "DEFAULT_PARAMS",
    "commit_export",
    "create_project",
    "data_version",
    "log_training",
    "read_project_params",
    "save_model",
]

DEFAULT_PARAMS: dict[str, dict[str, Any]] = {
    "data": {"path": "data/churn_export.parquet", "as_of": None},
    "train": {"kind": "gbm", "seed": 0},
    "tracking": {"experiment": "lumen-churn"},
    "tests": {"min_auc": 0.65, "freshness_days": 31, "tolerance": 0.01, "max_share": 0.02},
}
"""The project's ``params.yaml``: where the data is, how to train, what the tests demand."""


def _params(overrides: Any) -> dict[str, dict[str, Any]]:
    params = copy.deepcopy(DEFAULT_PARAMS)
    if overrides is None:
        return params
    if not isinstance(overrides, Mapping):
        raise InvalidParameterError(f"params must be a mapping of sections, got {overrides!r}")
    for section, values in overrides.items():
        if section not in params or not isinstance(values, Mapping):
            raise InvalidParameterError(
                f"params section {section!r} is not known or not a mapping; accepted: "
                f"{sorted(params)}, each a mapping"
            )
        unknown = sorted(set(values) - set(params[section]))
        if unknown:
            raise InvalidParameterError(
                f"params.{section} has unknown key(s) {unknown}; accepted: "
                f"{sorted(params[section])}"
            )
        params[section].update(values)
    if params["train"]["kind"] not in MODEL_KINDS:
        raise InvalidParameterError(
            f"params.train.kind {params['train']['kind']!r} is not known; accepted: {MODEL_KINDS}"
        )
    check_int("params.train.seed", params["train"]["seed"], minimum=0)
    return params


def _write_params(folder: Path, params: Mapping[str, Any]) -> None:
    import yaml

    atomic_write_text(folder / "params.yaml", yaml.safe_dump(dict(params), sort_keys=False))


def read_project_params(repo_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """Return the project's ``params.yaml``."""
    import yaml

    path = check_path("repo_dir", repo_dir) / "params.yaml"
    if not path.is_file():
        raise InvalidParameterError(f"no params.yaml in {str(path.parent)!r}; create_project first")
    return dict(yaml.safe_load(path.read_text(encoding="utf-8")))


def _lock_text() -> str:
    pins = []
    for package in LOCKED_PACKAGES:
        pins.append(f"{package}=={importlib.metadata.version(package)}")
    return ("# What train.py and the tests need, pinned at the versions the book installs.\n"
            + "\n".join(pins)
            + "\n# and the companion package, installed from the book's repository\n")


def create_project(
    path: str | os.PathLike[str],
    remote_dir: str | os.PathLike[str],
    params: Mapping[str, Any] | None = None,
    date: str = "2025-04-01",
) -> DataRepo:
    """Create the project repository at ``path`` with its DVC remote at ``remote_dir``.

    Two commits: DVC initialised (midnight of ``date``), then the project's code, its
    ``params.yaml`` (:data:`DEFAULT_PARAMS` updated section by section with ``params``) and
    its ``requirements.lock`` (09:00 of ``date``). Every argument is checked first; an
    existing repository at ``path`` is refused.
    """
    settings = _params(params)
    commit_date = git_date(date, hours=9)
    repo = init_data_repo(path, remote_dir, date=date)
    for relative, text in PROJECT_FILES.items():
        target = repo.path / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(target, text)
    _write_params(repo.path, settings)
    atomic_write_text(repo.path / "requirements.lock", _lock_text())
    repo.commit("The churn project: train.py, data and model tests, params", commit_date)
    logger.info("project created at %s", repo.path)
    return repo


def commit_export(repo: DataRepo, frame: pd.DataFrame, as_of: str, hours: int = 10) -> str:
    """Version ``frame`` as the project's export taken on ``as_of``; return the commit.

    The export is written as Parquet (its dtypes are part of the data's contract) to the
    path of ``params.yaml``, tracked with ``dvc add``, ``data.as_of`` updated, and the commit
    (``hours`` after midnight of ``as_of``) tagged ``data-YYYY-MM`` and pushed to the remote.
    """
    check_repo(repo)
    check_frame("frame", frame, list(EXPORT_SCHEMA), non_empty=True)
    check_int("hours", hours, minimum=0, maximum=23)
    date = git_date(as_of, hours=hours)
    tag = f"{DATA_TAG_PREFIX}{date[:7]}"
    if tag in repo.tags():
        raise InvalidParameterError(
            f"tag {tag!r} already exists; accepted: an export of another month "
            f"(existing: {repo.tags()})"
        )
    params = read_project_params(repo.path)
    target = repo.path / params["data"]["path"]
    target.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(target, lambda tmp: frame.to_parquet(tmp, index=False))
    params["data"]["as_of"] = date[:10]
    _write_params(repo.path, params)
    with repo.dvc() as dvc:
        dvc.add(params["data"]["path"])
    commit = repo.commit(f"Export as of {date[:10]}", date, tag=tag)
    from companion.versioning.remote import push

    push(repo)
    return commit


def data_version(repo_dir: str | os.PathLike[str], data_path: str) -> str:
    """Return the DVC hash (md5) of ``data_path`` recorded in its ``.dvc`` pointer."""
    import yaml

    pointer = check_path("repo_dir", repo_dir) / f"{data_path}.dvc"
    if not pointer.is_file():
        raise InvalidParameterError(
            f"{data_path} is not tracked by DVC (no {pointer.name}); accepted: a path added "
            "with `dvc add`"
        )
    outs = yaml.safe_load(pointer.read_text(encoding="utf-8")).get("outs") or [{}]
    return str(outs[0]["md5"])


def save_model(model: Any, metrics: Mapping[str, Any], folder: str | os.PathLike[str]) -> Path:
    """Write ``model.pkl`` and ``metrics.json`` to ``folder`` atomically; return the folder."""
    if not callable(getattr(model, "predict_proba", None)):
        raise InvalidParameterError(
            f"model must be a fitted classifier with predict_proba, got {type(model).__name__}"
        )
    if not isinstance(metrics, Mapping):
        raise InvalidParameterError(f"metrics must be a mapping, got {type(metrics).__name__}")
    out = check_path("folder", folder)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(out / "model.pkl", pickle.dumps(model))
    atomic_write_text(out / "metrics.json", json.dumps(dict(metrics), indent=2) + "\n")
    return out


def _artifact_location(tracking_uri: str, experiment: str) -> str | None:
    prefix = "sqlite:///"
    if not tracking_uri.startswith(prefix):
        return None  # a tracking server stores the artifacts itself
    return (Path(tracking_uri[len(prefix):]).resolve().parent / "mlartifacts" / experiment).as_uri()


def log_training(
    model: Any,
    frame: pd.DataFrame,
    metrics: Mapping[str, float],
    params: Mapping[str, Any],
    tracking_uri: str,
    repo_dir: str | os.PathLike[str] = ".",
) -> str:
    """Log a training run of the project in ``repo_dir`` to ``tracking_uri``; return its id.

    The run holds the training parameters and ``data.as_of``, the metrics, the model
    (:func:`companion.tracking.log_sklearn_model`), and as tags the git commit of the code
    (``git.commit``) and the DVC hash of the data (``data.md5``). A SQLite store keeps the
    artifacts in ``mlartifacts/`` beside its file.
    """
    import mlflow

    from companion.core.env import quiet
    from companion.tracking import ensure_experiment_at, log_sklearn_model

    check_frame("frame", frame, list(EXPORT_SCHEMA), non_empty=True)
    if not isinstance(params, Mapping) or not {"data", "train", "tracking"} <= set(params):
        raise InvalidParameterError(
            "params must be the project's params.yaml (sections data, train, tracking)"
        )
    if not isinstance(tracking_uri, str) or "://" not in tracking_uri:
        raise InvalidParameterError(
            "tracking_uri must be an MLflow URI such as 'sqlite:///mlflow.db', got "
            f"{tracking_uri!r}"
        )
    repo = DataRepo(check_path("repo_dir", repo_dir).resolve())
    tags = {
        "git.commit": repo.head(),
        "git.dirty": str(bool(repo.git("status", "--porcelain"))).lower(),
        "data.md5": data_version(repo.path, params["data"]["path"]),
        "data.as_of": str(params["data"]["as_of"]),
    }
    experiment = params["tracking"]["experiment"]
    experiment_id = ensure_experiment_at(
        tracking_uri, experiment, _artifact_location(tracking_uri, experiment)
    )
    with quiet("mlflow"), using_store(tracking_uri):
        with mlflow.start_run(experiment_id=experiment_id, run_name="train") as run:
            mlflow.log_params({**params["train"], "data.as_of": params["data"]["as_of"]})
            mlflow.log_metrics({k: float(v) for k, v in metrics.items()})
            mlflow.set_tags(tags)
            log_sklearn_model(model, frame)
        if run is None:  # pragma: no cover - start_run always returns a run
            raise TrackingError("MLflow returned no run")
        return str(run.info.run_id)
