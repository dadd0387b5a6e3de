"""A workflow's steps executed here, in order: what CI would do, on this machine.

:func:`run_workflow` reads a GitHub Actions workflow (:func:`~companion.cicd.load_workflow`)
and runs one job's ``run:`` steps in a repository, each as its own ``bash`` process, in
order, stopping at the first that fails, as GitHub's runner does. Steps that set up the
machine are not run: ``uses:`` actions (checkout, setup-python, upload-artifact) and the
install step (``id: install``) are *provided by this environment*: the code is already
checked out, the virtual environment already installed from the lock. The result says so
for each of them, plainly. After a failure no step runs, ``uses:`` steps included.

Every step gets the environment of this process with the workflow's ``env`` (workflow, job,
step) on top, the caller's ``env`` over both (it supplies the workflow's
``${{ secrets.* }}``), the virtual environment's ``bin`` first on ``PATH``, the offline
variables of :mod:`companion.core.env`, and git pinned to no user or system configuration
(``GIT_CONFIG_GLOBAL=/dev/null``, ``GIT_CONFIG_NOSYSTEM=1``). Outputs are captured, never
printed; times are not recorded.
"""

from __future__ import annotations

import logging
import os
import re
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from companion.cicd.workflow import load_workflow
from companion.core.checks import check_int, check_path
from companion.core.env import offline_env
from companion.errors import InvalidParameterError, UnknownNameError

logger = logging.getLogger(__name__)

__all__ = ["NOT_RUN", "PROVIDED", "StepResult", "WorkflowRun", "run_workflow"]

PROVIDED = "provided by this environment, not run here"
"""The status of a step that sets up the machine (``uses:`` or the install step)."""
NOT_RUN = "not run: an earlier step failed"
"""The status of every step after a failed one (GitHub skips them too)."""
PROVIDED_IDS = ("install",)
_UNSUPPORTED_STEP = ("if", "shell", "continue-on-error", "timeout-minutes")
_UNSUPPORTED_JOB = ("strategy", "container", "services", "if")
_EXPRESSION = re.compile(r"\$\{\{.*?\}\}")
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_DROPPED = ("FORCE_COLOR", "CLICOLOR_FORCE", "MPLBACKEND")
"""Variables of a notebook's kernel a step must not inherit (colours, the inline backend)."""


@dataclass(frozen=True)
class StepResult:
    """One step of a workflow run.

    Attributes:
        name: the step's name.
        status: ``"passed"``, ``"failed"``, :data:`NOT_RUN` or :data:`PROVIDED`.
        exit_code: the process's exit status (None if it was not run).
        output: what the step printed (stdout then stderr), for reading, never for timing.
    """

    name: str
    status: str
    exit_code: int | None = None
    output: str = ""

    def failures(self) -> list[str]:
        """Return pytest's ``FAILED``/``ERROR`` summary lines of the step's output."""
        lines = (_ANSI.sub("", line).strip() for line in self.output.splitlines())
        return [line for line in lines if line.startswith(("FAILED ", "ERROR "))]

    def __str__(self) -> str:
        code = "" if self.exit_code is None else f" (exit {self.exit_code})"
        return f"{self.name}: {self.status}{code}"


@dataclass(frozen=True)
class WorkflowRun:
    """The steps of one job, in the order the workflow lists them."""

    job: str
    steps: tuple[StepResult, ...]

    @property
    def passed(self) -> bool:
        """No step failed (steps provided by the environment count as done)."""
        return not any(s.status == "failed" for s in self.steps)

    @property
    def stopped_at(self) -> str | None:
        """The name of the step that failed, or None."""
        return next((s.name for s in self.steps if s.status == "failed"), None)

    def executed(self) -> list[str]:
        """Names of the steps run here as processes, in order."""
        return [s.name for s in self.steps if s.exit_code is not None]

    def table(self) -> str:
        """One line per step: its name and what happened to it."""
        width = max(len(s.name) for s in self.steps)
        return "\n".join(
            f"{s.name:<{width}}  {s.status}"
            + ("" if s.exit_code is None else f" (exit {s.exit_code})")
            for s in self.steps
        )


def _check_env(env: Any) -> dict[str, str]:
    if env is None:
        return {}
    if not isinstance(env, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in env.items()
    ):
        raise InvalidParameterError(
            f"env must be a mapping of variable names to strings, got {env!r}"
        )
    return dict(env)


def _job(workflow: Mapping[str, Any], job: str | None) -> tuple[str, Mapping[str, Any]]:
    jobs = workflow.get("jobs")
    if not isinstance(jobs, Mapping) or not jobs:
        raise InvalidParameterError("the workflow has no jobs; accepted: a workflow with jobs")
    if job is None:
        if len(jobs) != 1:
            raise InvalidParameterError(
                f"the workflow has {len(jobs)} jobs; name one: {sorted(jobs)}"
            )
        job = next(iter(jobs))
    if job not in jobs:
        raise UnknownNameError(f"job {job!r} is not in the workflow; accepted: {sorted(jobs)}")
    spec = jobs[job]
    if not isinstance(spec, Mapping) or not isinstance(spec.get("steps"), list):
        raise InvalidParameterError(f"job {job!r} has no list of steps")
    unsupported = [key for key in _UNSUPPORTED_JOB if key in spec]
    if unsupported:
        raise InvalidParameterError(
            f"job {job!r} uses {unsupported}, which this runner does not evaluate; accepted: "
            "a job of plain steps"
        )
    return job, spec


def _plan(spec: Mapping[str, Any]) -> list[tuple[str, str | None, dict[str, str]]]:
    """Name, script (None if provided) and step env of every step; refused before any runs."""
    plan = []
    for index, step in enumerate(spec["steps"], start=1):
        if not isinstance(step, Mapping) or ("run" in step) == ("uses" in step):
            raise InvalidParameterError(
                f"step {index} must have exactly one of 'run' and 'uses', got {step!r}"
            )
        unsupported = [key for key in _UNSUPPORTED_STEP if key in step]
        if unsupported:
            raise InvalidParameterError(
                f"step {index} uses {unsupported}, which this runner does not evaluate"
            )
        name = str(step.get("name") or step.get("uses") or step["run"].splitlines()[0])
        provided = "uses" in step or step.get("id") in PROVIDED_IDS
        plan.append((name, None if provided else str(step["run"]),
                     {str(k): str(v) for k, v in (step.get("env") or {}).items()}))
    return plan


def _environment(workflow: Mapping[str, Any], spec: Mapping[str, Any],
                 overrides: Mapping[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("MLFLOW_TRACKING") and k not in _DROPPED}
    for level in (workflow.get("env") or {}, spec.get("env") or {}):
        env.update({str(k): str(v) for k, v in level.items()})
    env.update(overrides)
    env.update(offline_env())
    env.update({
        "PATH": os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")]),
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_CONFIG_NOSYSTEM": "1",
        "PYTHONDONTWRITEBYTECODE": "1",
        "CI": "true",
        "COLUMNS": "120",
        "NO_COLOR": "1",
        "PY_COLORS": "0",
    })
    return env


def run_workflow(
    repo_dir: str | os.PathLike[str],
    workflow: str | Path | None = None,
    job: str | None = None,
    env: Mapping[str, str] | None = None,
    timeout: int = 600,
) -> WorkflowRun:
    """Run the ``run:`` steps of ``job`` in ``repo_dir`` in order; stop at the first failure.

    Args:
        repo_dir: the repository's folder (the steps' working directory).
        workflow: the workflow's YAML text or file (default: the only file of
            ``repo_dir/.github/workflows``).
        job: the job to run (default: the only one).
        env: variables of this environment, over the workflow's own (e.g. the value of a
            ``${{ secrets.* }}`` the workflow reads).
        timeout: seconds each step may take before it counts as failed.

    Raises:
        InvalidParameterError: a bad argument, a step this runner cannot evaluate, or an
            ``${{ ... }}`` expression left without a value from ``env``; all checked
            before any step runs.
    """
    folder = check_path("repo_dir", repo_dir)
    if not folder.is_dir():
        raise InvalidParameterError(f"repo_dir {str(folder)!r} is not a folder")
    overrides = _check_env(env)
    check_int("timeout", timeout, minimum=1)
    if workflow is None:
        found = sorted((folder / ".github" / "workflows").glob("*.yml"))
        if len(found) != 1:
            raise InvalidParameterError(
                f"expected one workflow in .github/workflows, found {len(found)}; pass workflow="
            )
        workflow = found[0]
    data = load_workflow(workflow)
    name, spec = _job(data, job)
    plan = _plan(spec)
    environment = _environment(data, spec, overrides)
    unresolved = sorted({k for k, v in environment.items() if _EXPRESSION.search(v)}
                        | {k for _, _, e in plan for k, v in e.items()
                           if _EXPRESSION.search(v) and k not in overrides})
    if unresolved:
        raise InvalidParameterError(
            f"the workflow's expressions ({unresolved}) need values; accepted: "
            f"env={{{', '.join(repr(k) + ': ...' for k in unresolved)}}}"
        )
    results: list[StepResult] = []
    failed = False
    for step_name, script, step_env in plan:
        if failed:
            results.append(StepResult(step_name, NOT_RUN))
            continue
        if script is None:
            results.append(StepResult(step_name, PROVIDED))
            continue
        try:
            done = subprocess.run(  # noqa: S603
                ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", script],  # noqa: S607
                cwd=folder, env={**environment, **step_env, **overrides},
                capture_output=True, text=True, timeout=timeout, check=False,
            )
            code, output = done.returncode, done.stdout + done.stderr
        except subprocess.TimeoutExpired as error:
            code, output = 124, f"timed out after {timeout} s: {error}"
        failed = code != 0
        logger.info("step %r exited %d", step_name, code)
        results.append(StepResult(step_name, "failed" if failed else "passed", code, output))
    return WorkflowRun(name, tuple(results))
