"""Pipeline orchestration: one set of step definitions, run in one process, by DVC, by Kubeflow
Pipelines' local runner, and dumped as an Azure ML pipeline job.

- :mod:`companion.pipelines.spec`: :func:`step`, :class:`Pipeline`, and the ``Input``/``Output``
  markers that make a typed function a step.
- :mod:`companion.pipelines.exports`: monthly export folders (:func:`write_export`) and the
  data-quality checks an export must pass.
- :mod:`companion.pipelines.steps`: Lumen's six steps and :data:`LUMEN`, the pipeline.
- :mod:`companion.pipelines.local`: :func:`run_local`, the in-process runner with retries.
- :mod:`companion.pipelines.dvc`: ``dvc.yaml`` generated from the steps, ``dvc repro``.
- :mod:`companion.pipelines.triggers`: cron times and the data-arrival trigger.
- :mod:`companion.pipelines.cli`: ``python -m companion.pipelines step NAME ...``.
- :mod:`companion.pipelines.kubeflow`: KFP components and ``@dsl.pipeline`` generated from the
  steps, compiled to the YAML a cluster runs and checked (:func:`compile_pipeline`,
  :func:`check_compiled`); :mod:`~companion.pipelines.kubeflow_run`: :func:`run_kfp_local`,
  the pipeline under ``kfp.local``'s subprocess runner, offline;
  :mod:`~companion.pipelines.kubeflow_schedule`: :func:`recurring_run`, a cron recurring run's
  request body, built and checked offline.
- :mod:`companion.pipelines.cluster`: :func:`compile_for_cluster`, the KFP YAML with resources,
  retries and object-store paths; :func:`azure_compute_cluster`, the Azure ML compute cluster.
- :mod:`companion.pipelines.azureml`: Azure ML command components and the pipeline job, dumped
  with relative code and validated (:func:`dump_pipeline_job`);
  :mod:`~companion.pipelines.azureml_schedule`: :func:`dump_schedule`, its ``JobSchedule``.

Nothing heavy happens at import: DVC, MLflow, croniter, kfp and azure-ai-ml are imported when
called.
"""

import importlib
from typing import TYPE_CHECKING, Any

from companion.pipelines.exports import export_as_of, quality_checks, read_export, write_export
from companion.pipelines.local import RunResult, StepResult, run_local
from companion.pipelines.spec import PARAM_TYPES, Input, Output, Param, Pipeline, Port, Step, step
from companion.pipelines.steps import LUMEN, predictions_sha256

# The runners for DVC, Kubeflow Pipelines and Azure ML, and the triggers, load on first use:
# importing the steps (which every runner's step process does) stays light, and a pipeline
# stage's code dependencies are the steps' modules, not every runner's.
_LAZY = {
    "AzureJob": "azureml", "dump_pipeline_job": "azureml",
    "AzureCompute": "cluster", "ClusterPipeline": "cluster", "azure_compute_cluster": "cluster",
    "compile_for_cluster": "cluster",
    "AzureSchedule": "azureml_schedule", "dump_schedule": "azureml_schedule",
    "DvcRun": "dvc", "init_dvc_repo": "dvc", "read_dvc_params": "dvc", "reproduce_dvc": "dvc",
    "run_dvc": "dvc", "set_dvc_params": "dvc", "write_dvc_pipeline": "dvc",
    "CompiledCheck": "kubeflow", "check_compiled": "kubeflow", "compile_pipeline": "kubeflow",
    "KfpRun": "kubeflow_run", "KfpTask": "kubeflow_run", "run_kfp_local": "kubeflow_run",
    "RecurringRun": "kubeflow_schedule", "recurring_run": "kubeflow_schedule",
    "ArrivalRun": "triggers", "ArrivalTrigger": "triggers", "cron_times": "triggers",
    "export_folder": "triggers", "run_on_arrival": "triggers",
}

if TYPE_CHECKING:  # pragma: no cover - the same names, for type checkers and readers
    from companion.pipelines.azureml import AzureJob, dump_pipeline_job
    from companion.pipelines.azureml_schedule import AzureSchedule, dump_schedule
    from companion.pipelines.cluster import (
        AzureCompute,
        ClusterPipeline,
        azure_compute_cluster,
        compile_for_cluster,
    )
    from companion.pipelines.dvc import (
        DvcRun,
        init_dvc_repo,
        read_dvc_params,
        reproduce_dvc,
        run_dvc,
        set_dvc_params,
        write_dvc_pipeline,
    )
    from companion.pipelines.kubeflow import CompiledCheck, check_compiled, compile_pipeline
    from companion.pipelines.kubeflow_run import KfpRun, KfpTask, run_kfp_local
    from companion.pipelines.kubeflow_schedule import RecurringRun, recurring_run
    from companion.pipelines.triggers import (
        ArrivalRun,
        ArrivalTrigger,
        cron_times,
        export_folder,
        run_on_arrival,
    )


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'companion.pipelines' has no attribute {name!r}")
    return getattr(importlib.import_module(f"companion.pipelines.{module}"), name)


__all__ = [
    "LUMEN",
    "PARAM_TYPES",
    "ArrivalRun",
    "ArrivalTrigger",
    "AzureCompute",
    "AzureJob",
    "AzureSchedule",
    "ClusterPipeline",
    "CompiledCheck",
    "DvcRun",
    "Input",
    "KfpRun",
    "KfpTask",
    "Output",
    "Param",
    "Pipeline",
    "Port",
    "RecurringRun",
    "RunResult",
    "Step",
    "StepResult",
    "azure_compute_cluster",
    "check_compiled",
    "compile_for_cluster",
    "compile_pipeline",
    "cron_times",
    "dump_pipeline_job",
    "dump_schedule",
    "export_as_of",
    "export_folder",
    "init_dvc_repo",
    "predictions_sha256",
    "quality_checks",
    "read_dvc_params",
    "read_export",
    "recurring_run",
    "reproduce_dvc",
    "run_dvc",
    "run_kfp_local",
    "run_local",
    "run_on_arrival",
    "set_dvc_params",
    "step",
    "write_dvc_pipeline",
    "write_export",
]
