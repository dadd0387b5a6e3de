"""An Azure ML schedule (``JobSchedule`` with a ``CronTrigger``), dumped and checked offline.

:func:`dump_schedule` writes ``<folder>/<name>.yml`` whose ``create_job`` is the pipeline job's
YAML beside it (a relative reference, as the Azure ML CLI writes it), loads it back with
``load_schedule`` (which loads that job too) and checks the trigger and the job. The SDK's
``CronTrigger`` accepts any string: the expression is checked with croniter first. Not
submitted; with a workspace, ``MLClient(...).schedules.begin_create_or_update(schedule)``
creates it (see :mod:`companion.pipelines.azureml`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from companion.core.checks import check_date, check_identifier
from companion.core.env import quiet
from companion.core.files import atomic_write_text
from companion.errors import InvalidParameterError, PipelineError
from companion.pipelines.azureml import AzureJob
from companion.pipelines.kubeflow_schedule import check_cron

__all__ = ["AzureSchedule", "dump_schedule"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class AzureSchedule:
    """A schedule dumped to YAML and loaded back."""

    path: Path
    name: str
    expression: str
    time_zone: str
    start_time: str
    job: str  # the job file it creates, relative to the schedule's file
    steps: list[str]  # the nodes of the job it creates, as loaded back


def dump_schedule(job: AzureJob, *, name: str, cron: str, start: str,
                  time_zone: str = "UTC") -> AzureSchedule:
    """Write and check the schedule that runs ``job`` on ``cron`` from ``start``.

    Args:
        job: the pipeline job from :func:`companion.pipelines.azureml.dump_pipeline_job`.
        name: the schedule's name (lowercase letters, digits, '-').
        cron: a five-field cron expression (``"0 6 2 * *"``: 06:00 on the 2nd of each month).
        start: the first day it may fire (``YYYY-MM-DD``).
        time_zone: the trigger's time zone (Azure ML's names, e.g. ``"UTC"``).
    """
    if not isinstance(job, AzureJob) or not job.path.is_file():
        raise InvalidParameterError(f"job must be a dumped AzureJob, got {job!r}")
    check_identifier("name", name, r"[a-z][a-z0-9-]{0,62}", "lowercase letters, digits and '-'")
    expression = check_cron(cron)
    first = check_date("start", start).strftime("%Y-%m-%dT%H:%M:%S")
    check_identifier("time_zone", time_zone, r"[A-Za-z][A-Za-z0-9 _/+-]{0,63}",
                     "a time zone name such as 'UTC'")
    target = job.path.parent / f"{name}.yml"
    if target == job.path:
        raise InvalidParameterError(f"schedule {name!r} would overwrite its job {job.path.name!r}")
    with quiet("azure", capture_output=True):
        from azure.ai.ml import load_job
        from azure.ai.ml.entities import CronTrigger, JobSchedule
        from azure.ai.ml.entities._load_functions import load_schedule

        schedule = JobSchedule(
            name=name,
            trigger=CronTrigger(expression=expression, start_time=first, time_zone=time_zone),
            create_job=load_job(job.path),
            description=f"runs {job.path.stem} on {expression!r} ({time_zone})",
        )
        document: dict[str, Any] = schedule._to_dict()
        document["create_job"] = f"./{job.path.name}"  # a reference, not a copy of the job
        atomic_write_text(target, yaml.safe_dump(document, sort_keys=False))
        loaded: Any = load_schedule(target)
    trigger = loaded.trigger
    steps = list(loaded.create_job.jobs)
    problems = []
    if (trigger.expression, trigger.time_zone) != (expression, time_zone):
        problems.append(f"trigger {trigger.expression!r} in {trigger.time_zone!r}")
    started = trigger.start_time
    if (started.strftime("%Y-%m-%dT%H:%M:%S") if hasattr(started, "strftime")
            else str(started)) != first:
        problems.append(f"start {trigger.start_time!r}")
    if steps != job.steps:
        problems.append(f"job nodes {steps}")
    if problems:
        raise PipelineError(f"schedule {name!r} does not load back as written: "
                            + "; ".join(problems))
    logger.info("Azure ML schedule %s: %s from %s", name, expression, first)
    return AzureSchedule(target, name, expression, time_zone, first, f"./{job.path.name}", steps)
