"""Run a pipeline with Kubeflow Pipelines' local subprocess runner, offline, and read back what
each task did.

:func:`run_kfp_local` builds the ``@dsl.pipeline`` of :mod:`companion.pipelines.kubeflow` and
calls it under ``kfp.local.init(runner=kfp.local.SubprocessRunner(use_venv=False))``: every
task is a separate Python process running the generated adapter, which imports the step's
module from the *installed* companion. The tasks run with

- ``PYTHONPATH`` cleared (or set to the folders given as ``python_path``, for step modules that
  are not installed, such as a test's toy steps): a step never imports the companion through a
  path the notebook's process happened to inherit;
- ``PIP_NO_INDEX=1``: the components are built with ``install_kfp_package=False``, so no task
  runs ``pip install``; were one to, pip could not reach an index;
- the book's offline environment (:data:`companion.core.env.OFFLINE_ENV`).

kfp's local runner prints its own logs and every task's output: they are captured (the
chapter's output stays quiet) and parsed for each task's status, attempts and wall time; the
adapter prints the time the step function itself took. Artifacts land in
``<folder>/runs/<pipeline>-<timestamp>/<task>/<output>/<filename>``.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from companion.core.checks import check_path
from companion.core.env import offline_env, quiet
from companion.errors import InvalidParameterError, PipelineError
from companion.pipelines.kubeflow import DEFAULT_IMAGE, build_pipeline, uri_param
from companion.pipelines.spec import Pipeline

__all__ = ["KfpRun", "KfpTask", "parse_kfp_log", "run_kfp_local", "task_env"]

logger = logging.getLogger(__name__)

_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_EVENT = re.compile(
    r"^(\d\d:\d\d:\d\d\.\d+) - \w+ - (?:Executing task '([^']+)'|"
    r"Task '([^']+)' finished with status (\w+))"
)
_MARK = re.compile(r"companion-step (\{.*\})\s*$")
_CAUSE = re.compile(r"^\s*(?:[\w.]+\.)?(\w+(?:Error|Exception)): (.+)$")


@dataclass(frozen=True)
class KfpTask:
    """One task of a local KFP run, as kfp's log tells it."""

    step: str
    task: str
    status: str  # SUCCESS, FAILURE, or NOT RUN
    attempts: int
    seconds: float  # wall time of the task's processes, retries included
    step_seconds: float | None  # inside the step function (the adapter's own clock)


@dataclass(frozen=True)
class KfpRun:
    """A finished local KFP run: its folder, each task, and where each output is."""

    pipeline: str
    run_dir: Path
    tasks: list[KfpTask]
    outputs: dict[str, Path]  # output name -> the file (or folder) the step wrote
    seconds: float  # wall time of the whole run
    log: str = field(repr=False)

    def task(self, step: str) -> KfpTask:
        """The task of ``step``."""
        for item in self.tasks:
            if item.step == step:
                return item
        raise InvalidParameterError(f"run of {self.pipeline!r} has no step {step!r}")


def _clock(stamp: str) -> float:
    moment = dt.datetime.strptime(stamp, "%H:%M:%S.%f")
    return moment.hour * 3600 + moment.minute * 60 + moment.second + moment.microsecond / 1e6


def parse_kfp_log(log: str, tasks: Mapping[str, str]) -> list[KfpTask]:
    """Each step's status, attempts and seconds from kfp local's log (``tasks``: step -> task).

    Wall times come from the log's time-of-day stamps (a run that passes midnight is handled);
    the step's own seconds from the line the adapter prints.
    """
    started: dict[str, float] = {}
    ended: dict[str, float] = {}
    attempts: dict[str, int] = {}
    status: dict[str, str] = {}
    inner: dict[str, float] = {}
    last = 0.0
    offset = 0.0
    for raw in log.splitlines():
        line = _ANSI.sub("", raw)
        mark = _MARK.search(line)
        if mark:
            found = json.loads(mark.group(1))
            inner[found["step"]] = float(found["seconds"])
            continue
        event = _EVENT.match(line)
        if not event:
            continue
        clock = _clock(event.group(1)) + offset
        if clock < last:  # the day turned
            offset += 86400.0
            clock += 86400.0
        last = clock
        if event.group(2):
            started.setdefault(event.group(2), clock)
            attempts[event.group(2)] = attempts.get(event.group(2), 0) + 1
        else:
            ended[event.group(3)] = clock
            status[event.group(3)] = event.group(4)
    return [
        KfpTask(step, task, status.get(task, "NOT RUN"), attempts.get(task, 0),
                round(ended.get(task, started.get(task, 0.0)) - started.get(task, 0.0), 3),
                inner.get(step) if status.get(task) == "SUCCESS" else None)
        for step, task in tasks.items()
    ]


def _cause(log: str) -> str:
    causes = [m.group(1) + ": " + m.group(2) for line in log.splitlines()
              if (m := _CAUSE.match(_ANSI.sub("", line)))]
    return causes[-1] if causes else "see the run's log"


def task_env(python_path: Sequence[Path] = ()) -> dict[str, str]:
    """The environment every local task gets on top of the runner's: offline, no pip index,
    ``PYTHONPATH`` only the folders given (empty by default)."""
    return {**offline_env(), "PIP_NO_INDEX": "1", "PIP_DISABLE_PIP_VERSION_CHECK": "1",
            "PYTHONPATH": os.pathsep.join(str(p) for p in python_path)}


def _check_inputs(pipeline: Pipeline, inputs: Mapping[str, Any] | None) -> dict[str, Path]:
    inputs = dict(inputs or {})
    expected = {p.name for p in pipeline.external_inputs()}
    if set(inputs) != expected:
        raise InvalidParameterError(
            f"pipeline {pipeline.name!r} reads external inputs {sorted(expected)}; "
            f"given: {sorted(inputs)}"
        )
    checked = {}
    for name, value in inputs.items():
        path = check_path(f"input {name}", value).resolve()
        if not path.exists():
            raise InvalidParameterError(f"input {name!r}: {path.name!r} does not exist")
        checked[name] = path
    return checked


def run_kfp_local(
    pipeline: Pipeline,
    folder: str | Path,
    *,
    params: Mapping[str, Any] | None = None,
    inputs: Mapping[str, str | Path] | None = None,
    python_path: Sequence[str | Path] = (),
    image: str = DEFAULT_IMAGE,
) -> KfpRun:
    """Run ``pipeline`` with ``kfp.local``'s subprocess runner, offline, in ``folder``.

    Args:
        pipeline: the step definitions.
        folder: where the generated components (``components/``) and the runs (``runs/``) go.
        params: pipeline parameters (defaults for the rest).
        inputs: a path for each external input (e.g. ``{"export": <month's export folder>}``).
        python_path: folders the tasks may import step modules from (the companion itself is
            imported from the installed package: ``PYTHONPATH`` is otherwise empty).
        image: the tasks' base image (only checked by the local runner).

    Returns:
        Each task's status, attempts and seconds, and the path of every output.

    Raises:
        PipelineError: a task still failed after its retries: names the step and its error;
            the steps after it did not run.
    """
    if not isinstance(pipeline, Pipeline):
        raise InvalidParameterError(f"pipeline must be a Pipeline, got {pipeline!r}")
    folder = check_path("folder", folder).resolve()
    resolved = pipeline.resolve_params(params)
    paths = _check_inputs(pipeline, inputs)
    extra = [check_path("python_path", p).resolve() for p in python_path]
    missing = [p.name for p in extra if not p.is_dir()]
    if missing:
        raise InvalidParameterError(f"python_path folders {missing} do not exist")
    built = build_pipeline(pipeline, folder / "components", image=image, env=task_env(extra))
    root = folder / "runs"
    root.mkdir(parents=True, exist_ok=True)
    before = set(root.glob(f"{pipeline.name}-*"))
    arguments = {uri_param(name): str(path) for name, path in paths.items()} | resolved

    from kfp import local
    from kfp.local import config

    saved = config.LocalExecutionConfig.instance
    started = time.perf_counter()
    try:
        local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(root),
                   workspace_root=str(folder / ".kfp-workspace"), raise_on_error=False)
        with quiet("kfp", capture_output=True, ignore=(RuntimeWarning,)) as sink:
            built.graph(**arguments)
    finally:
        config.LocalExecutionConfig.instance = saved
    seconds = time.perf_counter() - started
    log = sink.getvalue()
    tasks = parse_kfp_log(log, built.tasks)
    new = sorted(set(root.glob(f"{pipeline.name}-*")) - before)
    failed = [t for t in tasks if t.status != "SUCCESS"]
    if failed or len(new) != 1:
        first = failed[0].step if failed else "?"
        raise PipelineError(
            f"pipeline {pipeline.name!r} stopped at step {first!r} under kfp local: "
            f"{_cause(log)}; statuses: {[(t.step, t.status) for t in tasks]}"
        )
    run_dir = new[0]
    outputs = {
        port.name: run_dir / built.tasks[item.name] / port.name / port.filename
        for item in pipeline.steps for port in item.outputs
    }
    logger.info("kfp local ran %s in %.1f s", pipeline.name, seconds)
    return KfpRun(pipeline.name, run_dir, tasks, outputs, round(seconds, 3), log)
