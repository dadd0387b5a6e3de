"""Queries over logged runs: the sweep's table, the best run, a model rebuilt from its record,
and the cost of an experiment.

They read the caller's current MLflow store with ``mlflow.search_runs``, the same queries any
colleague can run against the tracking server; none changes which store that is.
"""

from __future__ import annotations

import ast
import logging
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import pandas as pd

from companion.core.checks import check_choice, check_frame, check_int
from companion.errors import InvalidParameterError, LineageError, TrackingError
from companion.tracking.checks import (
    check_experiment_ids,
    check_kinds,
    check_metric,
    check_params,
    check_training_frames,
)
from companion.tracking.models import log_sklearn_model
from companion.training import MODEL_KINDS, evaluate, train

if TYPE_CHECKING:  # pragma: no cover - imports for type hints only
    from mlflow.entities import Run
    from sklearn.pipeline import Pipeline

logger = logging.getLogger(__name__)


RUN_TABLE_PARAMS = ("kind", "C", "learning_rate", "max_leaf_nodes")
RUN_TABLE_METRICS = ("val_roc_auc", "val_roc_auc_low", "val_roc_auc_high", "n_iter")


def runs_table(experiment_ids: Sequence[str], decimals: int = 3) -> pd.DataFrame:
    """Return the sweep's child runs as a table with nothing volatile in it.

    Columns: run name, the parameters of :data:`RUN_TABLE_PARAMS` and the metrics of
    :data:`RUN_TABLE_METRICS` (the validation ROC AUC with its 95% interval, rounded to
    ``decimals``, and the iterations fitted), sorted by run name. Run ids, times and costs
    (which vary from one execution to the next) are left out.
    """
    import mlflow

    experiment_ids = check_experiment_ids(experiment_ids)
    check_int("decimals", decimals, minimum=0)
    runs = mlflow.search_runs(
        experiment_ids=experiment_ids, filter_string="tags.`sweep.role` = 'child'",
        output_format="pandas",
    )
    if runs.empty:
        return pd.DataFrame(columns=["run", *RUN_TABLE_PARAMS, *RUN_TABLE_METRICS])
    table = pd.DataFrame({"run": runs["tags.mlflow.runName"]})
    for name in RUN_TABLE_PARAMS:
        column = runs.get(f"params.{name}")
        table[name] = column.fillna("") if column is not None else ""
    for name in RUN_TABLE_METRICS:
        column = runs[f"metrics.{name}"]
        table[name] = column.astype(int) if name == "n_iter" else column.round(decimals)
    order = table["run"].str.extract(r"^(\w+)-(\d+)$")
    table = table.assign(_kind=order[0], _n=order[1].astype(float)).sort_values(["_kind", "_n"])
    return table.drop(columns=["_kind", "_n"]).reset_index(drop=True)


def best_run(
    experiment_ids: Sequence[str], metric: str = "val_roc_auc", kind: str | None = None
) -> Run:
    """Return the child run with the highest ``metric`` (of one model ``kind`` if given).

    The choice is a query, ``search_runs(order_by=[f"metrics.{metric} DESC"], max_results=1)``,
    the same one any colleague can run against the tracking server.
    """
    import mlflow

    check_metric(metric)
    experiment_ids = check_experiment_ids(experiment_ids)
    query = "tags.`sweep.role` = 'child'"
    if kind is not None:
        check_choice("model kind", kind, MODEL_KINDS)
        query += f" and params.kind = '{kind}'"
    runs = mlflow.search_runs(
        experiment_ids=experiment_ids, filter_string=query,
        order_by=[f"metrics.{metric} DESC"], max_results=1, output_format="list",
    )
    if not runs:
        raise TrackingError(
            f"no sweep run in experiment(s) {list(experiment_ids)} matches {query!r}"
        )
    return runs[0]


def estimator_params(run: Any) -> dict[str, Any]:
    """Return the estimator parameters a sweep run logged, with their types restored.

    MLflow stores parameters as strings; numbers come back as ``int`` or ``float``, ``True``,
    ``False`` and ``None`` as themselves. The bookkeeping parameters (``kind``, ``seed``,
    snapshots, price, threads) are left out.
    """
    bookkeeping = {
        "kind", "seed", "train_snapshots", "val_snapshot", "price_per_cpu_hour", "threads",
    }
    return {
        key: _literal(text) for key, text in _run_params(run).items() if key not in bookkeeping
    }


def _literal(text: str) -> Any:
    """The Python value MLflow wrote as ``str(value)``: a number, a bool, None, or the text.

    :func:`ast.literal_eval` reads Python's own literals; anything else (``'lbfgs'``) is a
    string parameter and stays one.
    """
    try:
        value = ast.literal_eval(text)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return text
    return value if value is None or isinstance(value, (bool, int, float)) else text


def _run_params(run: Any) -> Mapping[str, str]:
    """Return the parameters of a run logged by :func:`log_training_run`, or raise."""
    params = getattr(getattr(run, "data", None), "params", None)
    if not isinstance(params, Mapping) or "kind" not in params:
        raise InvalidParameterError(
            f"expected an MLflow run logged by log_training_run (with a 'kind' parameter), "
            f"got {type(run).__name__}"
        )
    return params


def rebuild_model(run: Any, train_frame: pd.DataFrame) -> Pipeline:
    """Train again the model a sweep run describes, from nothing but what the run logged.

    The kind, the estimator parameters (:func:`estimator_params`), the seed and the number of
    threads come from the run; ``train_frame`` must be the frame it trained on (the run's
    ``train_snapshots`` parameter and dataset input say which).
    """
    from threadpoolctl import threadpool_limits

    params = _run_params(run)
    try:
        seed = int(params.get("seed", "0"))
        threads_text = params.get("threads", "None")
        threads = None if threads_text == "None" else int(threads_text)
    except ValueError as exc:
        raise InvalidParameterError(
            f"run logged seed={params.get('seed')!r}, threads={params.get('threads')!r}; "
            "accepted: integers (as log_training_run logs them)"
        ) from exc
    kind = check_choice("model kind", params["kind"], MODEL_KINDS)
    estimator = check_params(kind, estimator_params(run))
    check_frame("train_frame", train_frame)
    with threadpool_limits(limits=threads):
        return train(train_frame, kind, seed=seed, **estimator)


def log_best_models(
    experiment_ids: Sequence[str],
    train_frame: pd.DataFrame,
    val_frame: pd.DataFrame,
    kinds: Sequence[str] = MODEL_KINDS,
    metric: str = "val_roc_auc",
) -> dict[str, dict[str, Any]]:
    """Rebuild the best run of each model kind from its logged parameters and log its model.

    For each kind, the best run is found by :func:`best_run`, the model is trained again from
    the parameters that run logged, its validation ROC AUC is recomputed, and the model is
    logged into that same run (:func:`log_sklearn_model`). A rebuilt model that does not
    reproduce the logged ROC AUC raises: the run's record would not be enough to rebuild it.

    Returns:
        For each kind: ``run`` (the MLflow run), ``model`` (the fitted pipeline),
        ``model_info`` and ``val_roc_auc`` (the recomputed value).
    """
    import mlflow

    experiment_ids = check_experiment_ids(experiment_ids)
    kinds = check_kinds(kinds)
    check_metric(metric)
    check_training_frames(train_frame, val_frame)
    # Find, rebuild and check every kind's model first: nothing is logged unless all rebuild.
    best: dict[str, dict[str, Any]] = {}
    for kind in kinds:
        run = best_run(experiment_ids, metric=metric, kind=kind)
        model = rebuild_model(run, train_frame)
        recomputed = evaluate(model, val_frame)["roc_auc"]
        logged = run.data.metrics[metric] if metric == "val_roc_auc" else None
        if logged is not None and abs(recomputed - logged) > 1e-9:
            raise LineageError(
                f"run {run.info.run_name!r} logged {metric}={logged:.6f} but its parameters "
                f"rebuild a model scoring {recomputed:.6f}: the frames differ from the run's"
            )
        best[kind] = {"run": run, "model": model, "val_roc_auc": recomputed}
    for entry in best.values():
        with mlflow.start_run(run_id=entry["run"].info.run_id):
            entry["model_info"] = log_sklearn_model(entry["model"], train_frame)
    return best


def experiment_cost(experiment_ids: Sequence[str]) -> dict[str, float]:
    """Sum the work, wall seconds, CPU seconds and cost of every run of ``experiment_ids`` that
    logged a cost (sweep children and single runs; a sweep's parent only logs their total).

    ``row_iterations`` (training rows x iterations, see :func:`work_cost`) is deterministic;
    the seconds and the cost were measured and vary from one execution to the next.
    """
    import mlflow

    experiment_ids = check_experiment_ids(experiment_ids)
    runs = mlflow.search_runs(
        experiment_ids=experiment_ids, filter_string="metrics.cost_usd >= 0",
        output_format="pandas",
    )
    work = runs.get("metrics.row_iterations")
    return {
        "runs": int(len(runs)),
        "row_iterations": float(work.sum()) if work is not None and len(runs) else 0.0,
        "wall_seconds": float(runs["metrics.wall_seconds"].sum()) if len(runs) else 0.0,
        "cpu_seconds": float(runs["metrics.cpu_seconds"].sum()) if len(runs) else 0.0,
        "cost_usd": float(runs["metrics.cost_usd"].sum()) if len(runs) else 0.0,
    }

