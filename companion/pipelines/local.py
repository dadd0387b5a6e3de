"""The in-process runner: a pipeline's steps called one after the other in this Python.

:func:`run_local` resolves the parameters, then calls each step with the paths of its inputs
(earlier outputs in ``run_dir``, or the external inputs given) and of its outputs. A step writes
its outputs into a staging folder inside ``run_dir``; they are moved into place only when the
step returns, so a step that fails leaves nothing. A step that raises is called again as many
times as its declared ``retries`` allow (every attempt is recorded); one that still fails stops
the run with :class:`~companion.errors.PipelineError` naming it and its cause, and no later step
runs. Outputs a previous run left for the steps about to run are removed first, so nothing
downstream of a failure remains. ``run.json`` in ``run_dir`` records every step's status,
attempts and seconds.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from companion.core.checks import check_number, check_path
from companion.core.files import atomic_write_text
from companion.errors import InvalidParameterError, PipelineError, UnknownNameError
from companion.pipelines.spec import Pipeline, Step

logger = logging.getLogger(__name__)

__all__ = ["RUN_RECORD", "RunResult", "StepResult", "run_local"]

RUN_RECORD = "run.json"
"""The file in ``run_dir`` that records a run's steps."""


@dataclass
class StepResult:
    """One step of a run: ``status`` is ``succeeded``, ``failed`` or ``not run``."""

    name: str
    status: str = "not run"
    attempts: int = 0
    seconds: float = 0.0
    outputs: dict[str, Path] = field(default_factory=dict)
    error: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "status": self.status, "attempts": self.attempts,
                "seconds": round(self.seconds, 3), "error": self.error,
                "outputs": sorted(self.outputs)}


@dataclass
class RunResult:
    """What a run did: its parameters and each step's result, in pipeline order."""

    pipeline: str
    run_dir: Path
    params: dict[str, Any]
    steps: list[StepResult]

    @property
    def succeeded(self) -> bool:
        return all(s.status == "succeeded" for s in self.steps)

    def step(self, name: str) -> StepResult:
        for item in self.steps:
            if item.name == name:
                return item
        names = [s.name for s in self.steps]
        raise UnknownNameError(f"no step {name!r} in this run; steps: {names}")

    @property
    def outputs(self) -> dict[str, Path]:
        """Every output written, by name."""
        return {k: v for s in self.steps for k, v in s.outputs.items()}

    @property
    def seconds(self) -> dict[str, float]:
        """Seconds per step that ran (all attempts)."""
        return {s.name: s.seconds for s in self.steps if s.attempts}

    def table(self) -> Any:
        """The steps as a pandas DataFrame: name, status, attempts, seconds, error."""
        import pandas as pd

        rows = [s.to_dict() for s in self.steps]
        return pd.DataFrame(rows, columns=["name", "status", "attempts", "seconds", "error"])

    def to_dict(self) -> dict[str, Any]:
        return {"pipeline": self.pipeline, "params": self.params,
                "succeeded": self.succeeded, "steps": [s.to_dict() for s in self.steps]}


def _check_pipeline(pipeline: Any) -> Pipeline:
    if not isinstance(pipeline, Pipeline):
        raise InvalidParameterError(
            f"pipeline must be a Pipeline, got {type(pipeline).__name__}"
        )
    return pipeline


def check_inputs(pipeline: Pipeline, inputs: Mapping[str, Any] | None) -> dict[str, Path]:
    """Return the external inputs as paths; refuse unknown names, missing ones, absent files."""
    given = dict(inputs or {})
    wanted = {p.name: p for p in pipeline.external_inputs()}
    unknown = sorted(set(given) - set(wanted))
    missing = sorted(set(wanted) - set(given))
    if unknown or missing:
        raise InvalidParameterError(
            f"inputs must name exactly the external inputs {sorted(wanted)}; "
            f"unknown: {unknown}, missing: {missing}"
        )
    paths = {name: check_path(f"inputs[{name!r}]", value) for name, value in given.items()}
    for name, path in paths.items():
        if not path.exists():
            raise InvalidParameterError(f"input {name!r} does not exist: {path}")
    return paths


def _selected(pipeline: Pipeline, only: Sequence[str] | None) -> list[Step]:
    if only is None:
        return list(pipeline.steps)
    if isinstance(only, str) or not isinstance(only, Sequence) or not only:
        raise InvalidParameterError(f"only must be a non-empty list of step names, got {only!r}")
    names = [pipeline.step(name).name for name in only]
    return [s for s in pipeline.steps if s.name in names]


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


def _attempt(item: Step, paths: dict[str, Path], run_dir: Path,
             params: Mapping[str, Any]) -> dict[str, Path]:
    """Call the step once with its outputs in a staging folder; move them in on success."""
    staging = Path(tempfile.mkdtemp(prefix=f".staging-{item.name}-", dir=run_dir))
    try:
        staged = {p.name: staging / p.filename for p in item.outputs}
        item.call({**paths, **staged}, params)
        absent = [name for name, path in staged.items() if not path.exists()]
        if absent:
            raise PipelineError(f"step {item.name!r} returned without writing {absent}")
        final = {}
        for port in item.outputs:
            target = run_dir / port.filename
            _remove(target)
            os.replace(staged[port.name], target)
            final[port.name] = target
        return final
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def run_local(
    pipeline: Pipeline,
    run_dir: str | os.PathLike[str],
    params: Mapping[str, Any] | None = None,
    inputs: Mapping[str, Any] | None = None,
    only: Sequence[str] | None = None,
    *,
    retry_delay: float = 0.0,
) -> RunResult:
    """Run ``pipeline``'s steps in this process, in order; return what each did.

    Args:
        pipeline: the steps.
        run_dir: the folder outputs are written to (each under its declared file name).
        params: the pipeline's parameters (defaults fill the rest).
        inputs: a path for each external input, e.g. ``{"export": folder}``.
        only: run just these steps; their inputs from other steps must be in ``run_dir``.
        retry_delay: seconds to wait before calling a failed step again.

    Raises:
        PipelineError: a step still failed after its retries; its ``result`` attribute holds
            the :class:`RunResult` (that step ``failed``, later ones ``not run``).
    """
    pipeline = _check_pipeline(pipeline)
    resolved = pipeline.resolve_params(params)
    external = check_inputs(pipeline, inputs)
    check_number("retry_delay", retry_delay, minimum=0.0, maximum=60.0)
    chosen = _selected(pipeline, only)
    run_dir = check_path("run_dir", run_dir)
    outputs = pipeline.outputs()
    running = {s.name for s in chosen}
    for item in chosen:  # what the chosen steps read from skipped steps must be there already
        for port in item.inputs:
            if port.external:
                continue
            producer = next(s for s in pipeline.steps if port.name in {o.name for o in s.outputs})
            there = (run_dir / outputs[port.name].filename).exists()
            if producer.name not in running and not there:
                raise InvalidParameterError(
                    f"step {item.name!r} reads {port.name!r}, which {producer.name!r} writes; "
                    f"run {producer.name!r} first or include it in only"
                )
    run_dir.mkdir(parents=True, exist_ok=True)
    for item in chosen:  # stale outputs of the steps about to run: never left beside new ones
        for port in item.outputs:
            _remove(run_dir / port.filename)
    result = RunResult(pipeline.name, run_dir, resolved, [StepResult(s.name) for s in chosen])
    paths: dict[str, Path] = {**external, **{name: run_dir / port.filename
                                             for name, port in outputs.items()}}
    try:
        for item, record in zip(chosen, result.steps, strict=True):
            _run_step(item, record, paths, run_dir, resolved, retry_delay)
    except PipelineError as failure:
        failure.result = result  # type: ignore[attr-defined]
        raise
    finally:
        atomic_write_text(run_dir / RUN_RECORD,
                          json.dumps(result.to_dict(), indent=2, sort_keys=True) + "\n")
    return result


def _run_step(item: Step, record: StepResult, paths: dict[str, Path], run_dir: Path,
              params: Mapping[str, Any], retry_delay: float) -> None:
    own = {p.name: params[p.name] for p in item.params}
    while True:
        record.attempts += 1
        start = time.perf_counter()
        try:
            record.outputs = _attempt(item, paths, run_dir, own)
        except Exception as error:  # noqa: BLE001 - any failure of a step is retried or reported
            record.seconds += time.perf_counter() - start
            record.error = f"{type(error).__name__}: {error}"
            if record.attempts <= item.retries:
                logger.warning("step %s failed (attempt %d), retrying: %s", item.name,
                               record.attempts, record.error)
                time.sleep(retry_delay)
                continue
            record.status = "failed"
            raise PipelineError(
                f"step {item.name!r} failed after {record.attempts} attempt(s): {record.error}; "
                "later steps did not run"
            ) from error
        record.seconds += time.perf_counter() - start
        record.status = "succeeded"
        record.error = ""
        logger.info("step %s succeeded in %.2f s", item.name, record.seconds)
        return
