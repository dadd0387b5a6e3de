"""The DVC runner: a ``dvc.yaml`` generated from a pipeline's steps, reproduced by DVC.

:func:`write_dvc_pipeline` writes one stage per step into a DVC repo: its command runs the step
(``python -m companion.pipelines step NAME --path ... --param name=${name}``, see
:mod:`companion.pipelines.cli`), its dependencies are its inputs (the external export folder
too) and the source files of the step's module and of every companion module it imports
(:func:`companion.core.provenance.module_files`), its outputs are its outputs (under ``out/``),
its parameters are read from ``params.yaml``. :func:`reproduce_dvc` runs ``dvc repro`` through
DVC's Python API and returns the stages that ran with their seconds: a second call runs
nothing, and a changed parameter (:func:`set_dvc_params`) reruns the stages that take it and
those downstream whose inputs changed.

The repo is made with ``dvc init --no-scm`` (:func:`init_dvc_repo`): DVC records what it ran in
``dvc.lock`` and its cache, which is all a rerun decision needs; git would only add commits of
run outputs nobody reads. DVC's per-repo state is kept inside the repo
(``core.site_cache_dir``), never in ``/var/tmp``. ``list[str]`` parameters are stored in
``params.yaml`` comma-separated (DVC interpolates scalars only into a command).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from companion.core.checks import check_path
from companion.core.env import scoped_env
from companion.core.files import atomic_write_text
from companion.core.provenance import PACKAGE_DIR, module_files
from companion.errors import DvcError, InvalidParameterError, UnknownNameError
from companion.pipelines.cli import DEFAULT_PIPELINE, STAGE_ERROR_ENV, STEP_TIMES_ENV
from companion.pipelines.local import check_inputs
from companion.pipelines.spec import Pipeline, Step
from companion.versioning.repo import quiet_dvc

logger = logging.getLogger(__name__)

__all__ = ["OUT_DIR", "DvcRun", "init_dvc_repo", "read_dvc_params", "reproduce_dvc",
           "run_dvc", "set_dvc_params", "write_dvc_pipeline"]

OUT_DIR = "out"
"""Folder of the repo that holds the stages' outputs."""
SITE_CACHE = ".dvc/tmp/site_cache"
_ERROR_FILE = ".dvc/tmp/stage-error.txt"
_TIMES_FILE = ".dvc/tmp/stage-times.jsonl"


@dataclass(frozen=True)
class DvcRun:
    """One ``dvc repro``: the stages that ran, in order, and each one's seconds."""

    ran: list[str]
    seconds: dict[str, float]
    total_seconds: float


def init_dvc_repo(repo_dir: str | os.PathLike[str]) -> Path:
    """``dvc init --no-scm`` in ``repo_dir`` (created if missing); an existing repo is kept."""
    from dvc.repo import Repo

    path = check_path("repo_dir", repo_dir).resolve()
    if (path / ".dvc").is_dir():
        return path
    path.mkdir(parents=True, exist_ok=True)
    site_cache = path / SITE_CACHE
    with contextlib.chdir(path), quiet_dvc(), scoped_env(DVC_SITE_CACHE_DIR=str(site_cache)):
        repo = Repo.init(".", no_scm=True)
        try:
            with repo.config.edit("local") as conf:
                conf["core"]["site_cache_dir"] = str(site_cache)
            with repo.config.edit() as conf:
                conf["core"]["analytics"] = False
        finally:
            repo.close()
    return path


def _reference(pipeline: Pipeline) -> str:
    """``module:attribute`` where the pipeline object lives (the CLI imports it from there)."""
    module = sys.modules.get(pipeline.steps[0].module)
    for name, value in vars(module or {}).items():
        if value is pipeline:
            return f"{pipeline.steps[0].module}:{name}"
    raise InvalidParameterError(
        f"pipeline {pipeline.name!r} must be a module-level name of {pipeline.steps[0].module} "
        "so a stage's process can import it"
    )


def _relative(path: Path, start: Path) -> str:
    try:
        return Path(os.path.relpath(path, start)).as_posix()
    except ValueError:  # another drive
        return path.as_posix()


def _param_text(kind: str, value: Any) -> Any:
    return ",".join(value) if kind == "list[str]" else value


def _stage(item: Step, reference: str, repo: Path, outputs: Mapping[str, str],
           external: Mapping[str, str]) -> dict[str, Any]:
    ports = {**{p.name: external[p.name] if p.external else outputs[p.name] for p in item.inputs},
             **{p.name: outputs[p.name] for p in item.outputs}}
    words = ["python -m companion.pipelines step", item.name]
    if reference != DEFAULT_PIPELINE:
        words.append(f"--pipeline {reference}")
    words += [f'--path "{name}={path}"' for name, path in ports.items()]
    words += [f'--param "{p.name}=${{{p.name}}}"' for p in item.params]
    code = [_relative(f, repo) for f in module_files(item.module, everywhere=True)]
    stage: dict[str, Any] = {
        "cmd": " ".join(words),
        "deps": [*(ports[p.name] for p in item.inputs), *code],
        "outs": [outputs[p.name] for p in item.outputs],
    }
    if item.params:
        stage["params"] = [p.name for p in item.params]
    return stage


def write_dvc_pipeline(
    pipeline: Pipeline,
    repo_dir: str | os.PathLike[str],
    params: Mapping[str, Any] | None = None,
    inputs: Mapping[str, Any] | None = None,
) -> Path:
    """Write ``dvc.yaml`` (one stage per step) and ``params.yaml`` into the DVC repo; return
    the ``dvc.yaml`` path. External inputs inside the repo are named by a relative path."""
    import yaml

    if not isinstance(pipeline, Pipeline):
        raise InvalidParameterError(f"pipeline must be a Pipeline, got {type(pipeline).__name__}")
    resolved = pipeline.resolve_params(params)
    paths = check_inputs(pipeline, inputs)
    reference = _reference(pipeline)
    repo = init_dvc_repo(repo_dir)
    external = {}
    for name, path in paths.items():
        path = path.resolve()
        inside = repo == path or repo in path.parents
        external[name] = _relative(path, repo) if inside else path.as_posix()
    outputs = {name: f"{OUT_DIR}/{port.filename}" for name, port in pipeline.outputs().items()}
    stages = {s.name: _stage(s, reference, repo, outputs, external) for s in pipeline.steps}
    kinds = pipeline.params()
    values = {name: _param_text(kinds[name].type, value) for name, value in resolved.items()}
    atomic_write_text(repo / "params.yaml", yaml.safe_dump(values, sort_keys=True))
    target = repo / "dvc.yaml"
    atomic_write_text(target, yaml.safe_dump({"stages": stages}, sort_keys=False))
    return target


def read_dvc_params(repo_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """The repo's ``params.yaml``."""
    import yaml

    path = check_path("repo_dir", repo_dir) / "params.yaml"
    if not path.is_file():
        raise InvalidParameterError(f"no params.yaml in {repo_dir}; write the pipeline first")
    loaded: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    return loaded


def set_dvc_params(pipeline: Pipeline, repo_dir: str | os.PathLike[str],
                   updates: Mapping[str, Any]) -> dict[str, Any]:
    """Change parameters in ``params.yaml`` (checked against the pipeline); return them all."""
    import yaml

    current = read_dvc_params(repo_dir)
    kinds = pipeline.params()
    unknown = sorted(set(updates) - set(kinds))
    if unknown:
        raise UnknownNameError(f"no parameter(s) {unknown}; accepted: {sorted(kinds)}")
    given = {k: (v.split(",") if kinds[k].type == "list[str]" and isinstance(v, str) else v)
             for k, v in current.items() if k in kinds}
    resolved = pipeline.resolve_params({**given, **updates})
    values = {name: _param_text(kinds[name].type, value) for name, value in resolved.items()}
    atomic_write_text(Path(repo_dir) / "params.yaml", yaml.safe_dump(values, sort_keys=True))
    return values


def reproduce_dvc(repo_dir: str | os.PathLike[str]) -> DvcRun:
    """Run ``dvc repro`` in the repo; return the stages that ran and their seconds.

    Stages run with this Python first on ``PATH`` and this companion package first on
    ``PYTHONPATH``. Raises :class:`DvcError` holding the failing step's own error.
    """
    from dvc.exceptions import DvcException
    from dvc.repo import Repo

    repo = check_path("repo_dir", repo_dir).resolve()
    if not (repo / "dvc.yaml").is_file():
        raise InvalidParameterError(f"no dvc.yaml in {repo_dir}; call write_dvc_pipeline first")
    errors, times = repo / _ERROR_FILE, repo / _TIMES_FILE
    for path in (errors, times):
        path.unlink(missing_ok=True)
    run_env = {
        "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]),
        "PYTHONPATH": os.pathsep.join(
            p for p in (str(PACKAGE_DIR.parent), os.environ.get("PYTHONPATH", "")) if p),
        "DVC_NO_ANALYTICS": "1",
        STAGE_ERROR_ENV: str(errors),
        STEP_TIMES_ENV: str(times),
    }
    start = time.perf_counter()
    try:
        with contextlib.chdir(repo), quiet_dvc():
            dvc = Repo(".")
            try:
                ran = [stage.addressing for stage in dvc.reproduce(run_env=run_env)]
            finally:
                dvc.close()
    except DvcException as error:
        reason = errors.read_text(encoding="utf-8").strip() if errors.exists() else ""
        raise DvcError("dvc repro failed: " + " | ".join(
            part for part in (reason, f"ERROR: {error}") if part)) from error
    total = time.perf_counter() - start
    seconds: dict[str, float] = {}
    if times.exists():
        for line in times.read_text(encoding="utf-8").splitlines():
            record = json.loads(line)
            seconds[record["step"]] = record["seconds"]
    logger.info("dvc repro ran %s", ran or "nothing")
    return DvcRun(ran, seconds, total)


def run_dvc(
    pipeline: Pipeline,
    repo_dir: str | os.PathLike[str],
    params: Mapping[str, Any] | None = None,
    inputs: Mapping[str, Any] | None = None,
) -> DvcRun:
    """Write the pipeline into a DVC repo at ``repo_dir`` (made if missing) and reproduce it."""
    write_dvc_pipeline(pipeline, repo_dir, params, inputs)
    return reproduce_dvc(repo_dir)
