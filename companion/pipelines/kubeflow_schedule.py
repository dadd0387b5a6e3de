"""A Kubeflow Pipelines recurring run (a cron schedule on a cluster), built and checked offline.

:func:`recurring_run` builds the request body ``kfp.Client.create_recurring_run`` would send to
a cluster's API server, a ``kfp_server_api.V2beta1RecurringRun``: the compiled pipeline spec,
the run's parameters, and a cron trigger. Nothing is sent. On a cluster, the same schedule is
created with::

    kfp.Client(host="https://<kfp-endpoint>").create_recurring_run(
        experiment_id=client.create_experiment("lumen").experiment_id,
        job_name="lumen-training-monthly",
        cron_expression="0 0 6 2 * *",          # KFP's cron has a seconds field first
        pipeline_package_path="lumen-training.yaml",
        params={"export_uri": "gs://<bucket>/exports/latest", ...},
        max_concurrency=1, no_catchup=True)

KFP's cron (Go's robfig/cron) has six fields, seconds first; the book writes the usual five
(``"0 6 2 * *"``: 06:00 on the 2nd of every month), checked by croniter, and prepends ``0``.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from companion.core.checks import check_date, check_identifier, check_int, check_path, check_text
from companion.errors import InvalidParameterError, PipelineError
from companion.pipelines.spec import Pipeline

__all__ = ["RecurringRun", "check_cron", "next_times", "recurring_run"]

logger = logging.getLogger(__name__)


def check_cron(expression: Any) -> str:
    """Return a standard five-field cron ``expression`` if croniter parses it; raise otherwise.

    Example:
        >>> check_cron("0 6 2 * *")
        '0 6 2 * *'
    """
    from croniter import croniter

    check_text("cron expression", expression)
    if len(expression.split()) != 5 or not croniter.is_valid(expression):
        raise InvalidParameterError(
            f"cron expression {expression!r} is not a valid five-field cron expression "
            "(minute hour day-of-month month day-of-week, e.g. '0 6 2 * *')"
        )
    return str(expression)


def next_times(expression: str, start: dt.datetime, count: int) -> list[dt.datetime]:
    """The ``count`` times after ``start`` at which the cron ``expression`` fires."""
    from croniter import croniter

    times = croniter(check_cron(expression), start)
    return [times.get_next(dt.datetime) for _ in range(count)]


@dataclass(frozen=True)
class RecurringRun:
    """A recurring run's request body, and what was checked about it."""

    body: Any = field(repr=False)  # kfp_server_api.V2beta1RecurringRun
    cron: str  # KFP's six-field form
    next_runs: list[dt.datetime]  # the first firings after the start time
    params: dict[str, Any]

    def as_dict(self) -> dict[str, Any]:
        """The body as the JSON the API server receives (``to_dict`` of the model)."""
        return dict(self.body.to_dict())


def recurring_run(
    pipeline: Pipeline,
    compiled: str | Path,
    *,
    cron: str,
    name: str,
    start: str,
    params: Mapping[str, Any] | None = None,
    experiment_id: str = "<experiment-id>",
    max_concurrency: int = 1,
) -> RecurringRun:
    """Build and check the recurring run of the compiled ``pipeline`` (not submitted).

    Args:
        pipeline: the definitions the YAML was compiled from (parameters are checked on them).
        compiled: the YAML from :func:`companion.pipelines.kubeflow.compile_pipeline`.
        cron: a five-field cron expression (``"0 6 2 * *"``).
        name: the recurring run's display name.
        start: the first day it may fire (``YYYY-MM-DD``, UTC).
        params: the run's parameters (the external inputs' ``<name>_uri`` among them); the
            compiled defaults fill the rest.
        experiment_id: the experiment on the cluster (a placeholder offline).
        max_concurrency: runs allowed at once (1: a month never overlaps the next).

    Raises:
        InvalidParameterError: a bad cron expression, an unknown parameter, a missing file.
        PipelineError: the body does not round-trip to what was asked.
    """
    import kfp_server_api as api

    if not isinstance(pipeline, Pipeline):
        raise InvalidParameterError(f"pipeline must be a Pipeline, got {pipeline!r}")
    expression = check_cron(cron)
    check_identifier("name", name, r"[a-z][a-z0-9-]{0,62}", "lowercase letters, digits and '-'")
    first = check_date("start", start).to_pydatetime().replace(tzinfo=dt.UTC)
    check_int("max_concurrency", max_concurrency, minimum=1, maximum=10)
    check_text("experiment_id", experiment_id)
    path = check_path("compiled", compiled)
    if not path.is_file():
        raise InvalidParameterError(f"no compiled pipeline at {path.name!r}")
    spec = yaml.safe_load(path.read_text(encoding="utf-8"))
    declared = spec["root"].get("inputDefinitions", {}).get("parameters", {})
    given = dict(params or {})
    unknown = sorted(set(given) - set(declared))
    if unknown or spec["pipelineInfo"]["name"] != pipeline.name:
        raise InvalidParameterError(
            f"compiled pipeline {spec['pipelineInfo']['name']!r} (expected {pipeline.name!r}) "
            f"has no parameter(s) {unknown}; accepted: {sorted(declared)}"
        )
    missing = sorted(k for k, v in declared.items() if not v.get("isOptional") and k not in given)
    if missing:
        raise InvalidParameterError(f"the recurring run needs parameter(s) {missing}")
    pipeline.resolve_params({k: v for k, v in given.items() if k in pipeline.params()})
    kfp_cron = "0 " + expression
    body = api.V2beta1RecurringRun(
        display_name=name,
        description=f"{pipeline.name} on cron {expression!r} (UTC)",
        experiment_id=experiment_id,
        mode=api.RecurringRunMode.ENABLE,
        pipeline_spec=spec,
        runtime_config=api.V2beta1RuntimeConfig(parameters=given),
        trigger=api.V2beta1Trigger(cron_schedule=api.V2beta1CronSchedule(
            start_time=first, cron=kfp_cron)),
        max_concurrency=str(max_concurrency),
        no_catchup=True,
    )
    back = body.to_dict()
    seconds, *rest = back["trigger"]["cron_schedule"]["cron"].split()
    if (seconds != "0" or " ".join(rest) != expression
            or back["pipeline_spec"]["pipelineInfo"]["name"] != pipeline.name
            or back["runtime_config"]["parameters"] != given
            or set(back["pipeline_spec"]["root"]["dag"]["tasks"]) < {
                s.name.replace("_", "-") for s in pipeline.steps}):
        raise PipelineError(f"recurring run {name!r} does not round-trip: {back['trigger']}")
    runs = next_times(expression, first, 3)
    logger.info("recurring run %s: cron %s, first at %s", name, kfp_cron, runs[0])
    return RecurringRun(body, kfp_cron, runs, given)
