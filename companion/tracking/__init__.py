"""Experiment tracking with MLflow: a local tracking server, runs, sweeps and their cost.

The chapter on experiment tracking (and the ones after it) log to MLflow through this package:

* :class:`TrackingServer` (:mod:`~companion.tracking.server`) starts a real ``mlflow server``
  on a free loopback port, with its own SQLite store and proxied artifacts in the workspace,
  and stops it (and every process it started) at the end.
* :func:`log_sklearn_model` (:mod:`~companion.tracking.models`) logs a fitted
  :mod:`companion.training` pipeline with a signature, an input example and pinned pip
  requirements (fast: nothing is inferred).
* :func:`ensure_experiment` and :func:`ensure_experiment_at`
  (:mod:`~companion.tracking.experiments`) find or create an experiment in a named store.
* :func:`log_training_run` (:mod:`~companion.tracking.runs`) trains one model, evaluates it on
  a later snapshot and logs parameters, tags (code version, data digest), the dataset inputs,
  the validation ROC AUC with its 95% DeLong interval, the iterations fitted, wall time, CPU
  time and an estimated cost; :func:`run_sweep` (:mod:`~companion.tracking.sweeps`) does it
  for a grid under one parent run.
* :func:`runs_table`, :func:`best_run`, :func:`rebuild_model`, :func:`log_best_models` and
  :func:`experiment_cost` (:mod:`~companion.tracking.queries`) read the runs back.
* :func:`prefer_simpler` (:mod:`~companion.tracking.choice`) picks between two models by a
  stated rule; :func:`work_cost` (:mod:`~companion.tracking.cost`) prices an experiment from a
  deterministic amount of work (rows x iterations).
* :func:`code_version` (:mod:`~companion.tracking.provenance`) is the ``code.sha256`` every
  run carries; :func:`azureml_tracking_uri` (:mod:`~companion.tracking.azure`) the URI of an
  Azure ML workspace.

Nothing happens at import, and no function changes MLflow's process-wide tracking or registry
URI: functions that mirror MLflow's fluent API log to the caller's current store, as MLflow
does; the others name their store.

Example:
    >>> round(estimate_cost(cpu_seconds=1800.0, price_per_cpu_hour=0.10), 4)
    0.05
"""

from __future__ import annotations

from companion.core.process import LOOPBACK_HOSTS, free_port
from companion.tracking.azure import azureml_tracking_uri
from companion.tracking.choice import Choice, oracle_scores, prefer_simpler
from companion.tracking.cost import (
    DEFAULT_CPU_SECONDS_PER_MILLION_ROW_ITERATIONS,
    DEFAULT_PRICE_PER_CPU_HOUR,
    Stopwatch,
    estimate_cost,
    fitted_iterations,
    significant,
    work_cost,
)
from companion.tracking.experiments import ensure_experiment, ensure_experiment_at
from companion.tracking.models import (
    MODEL_REQUIREMENTS,
    log_sklearn_model,
    model_input,
    pinned_requirements,
)
from companion.tracking.provenance import CODE_ROOTS, code_version, training_modules
from companion.tracking.queries import (
    RUN_TABLE_METRICS,
    RUN_TABLE_PARAMS,
    best_run,
    estimator_params,
    experiment_cost,
    log_best_models,
    rebuild_model,
    runs_table,
)
from companion.tracking.runs import frame_dataset, log_training_run
from companion.tracking.server import SERVER_ENV, TrackingServer
from companion.tracking.sweeps import EARLY_STOPPING, run_sweep, sweep_grid

__all__ = [
    "CODE_ROOTS",
    "DEFAULT_CPU_SECONDS_PER_MILLION_ROW_ITERATIONS",
    "DEFAULT_PRICE_PER_CPU_HOUR",
    "EARLY_STOPPING",
    "LOOPBACK_HOSTS",
    "MODEL_REQUIREMENTS",
    "RUN_TABLE_METRICS",
    "RUN_TABLE_PARAMS",
    "SERVER_ENV",
    "Choice",
    "Stopwatch",
    "TrackingServer",
    "azureml_tracking_uri",
    "best_run",
    "code_version",
    "ensure_experiment",
    "ensure_experiment_at",
    "estimate_cost",
    "estimator_params",
    "experiment_cost",
    "fitted_iterations",
    "frame_dataset",
    "free_port",
    "log_best_models",
    "log_sklearn_model",
    "log_training_run",
    "model_input",
    "oracle_scores",
    "pinned_requirements",
    "prefer_simpler",
    "rebuild_model",
    "run_sweep",
    "runs_table",
    "significant",
    "sweep_grid",
    "training_modules",
    "work_cost",
]
