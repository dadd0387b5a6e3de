"""Sweeps: a grid of model settings, and one nested MLflow run per setting under a parent.

:func:`sweep_grid` builds the (kind, params) pairs of two model families, every
gradient-boosting run with the same early-stopping budget (:data:`EARLY_STOPPING`);
:func:`run_sweep` logs them whole or not at all to the caller's current MLflow store.
"""

from __future__ import annotations

import logging
import math
import numbers
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import pandas as pd

from companion.core.checks import check_choice, is_real
from companion.errors import InvalidParameterError
from companion.tracking.checks import check_name, check_params, delete_runs
from companion.tracking.cost import DEFAULT_PRICE_PER_CPU_HOUR
from companion.tracking.runs import RunCommon, RunPlan, log_run
from companion.training import MODEL_KINDS

logger = logging.getLogger(__name__)

EARLY_STOPPING: dict[str, Any] = {
    "early_stopping": True,
    "validation_fraction": 0.2,
    "n_iter_no_change": 20,
    "max_iter": 2000,
}
"""The gradient-boosting runs' budget: as many trees as improve the loss on a held-out fifth
of the training rows, stopping after 20 rounds without improvement. Every learning rate gets
the trees it needs, so a comparison of learning rates is not a comparison of budgets."""


def sweep_grid(
    logistic_c: Sequence[float] = (0.01, 1.0),
    gbm_learning_rates: Sequence[float] = (0.05, 0.1, 0.2),
    gbm_leaf_counts: Sequence[int] = (4, 16),
    gbm_budget: Mapping[str, Any] | None = None,
) -> list[tuple[str, dict[str, Any]]]:
    """Return the (kind, params) pairs of a sweep over two model families.

    ``logistic`` runs vary the inverse regularisation strength ``C``; ``gbm`` runs vary the
    learning rate and the number of leaves per tree (every combination), each with the same
    ``gbm_budget`` (default :data:`EARLY_STOPPING`; pass ``{}`` for the estimator's defaults).

    Example:
        >>> len(sweep_grid())
        8
        >>> sweep_grid()[2][1]["early_stopping"]
        True
    """
    if gbm_budget is not None and not isinstance(gbm_budget, Mapping):
        raise InvalidParameterError(
            f"gbm_budget must be None or a mapping of HistGradientBoostingClassifier "
            f"parameters, got {type(gbm_budget).__name__}"
        )
    budget = dict(EARLY_STOPPING if gbm_budget is None else gbm_budget)
    clash = sorted(set(budget) & {"learning_rate", "max_leaf_nodes"})
    if clash:
        raise InvalidParameterError(
            f"gbm_budget must not set {clash}: the grid varies them; accepted: other "
            "HistGradientBoostingClassifier parameters such as max_iter or early_stopping"
        )
    check_params("gbm", budget, label="gbm_budget")
    for label, values in (
        ("logistic_c", logistic_c), ("gbm_learning_rates", gbm_learning_rates),
        ("gbm_leaf_counts", gbm_leaf_counts),
    ):
        if isinstance(values, (str, bytes)) or not isinstance(values, Iterable):
            raise InvalidParameterError(f"{label} must be a list of numbers, got {values!r}")
    logistic_c, gbm_learning_rates = list(logistic_c), list(gbm_learning_rates)
    gbm_leaf_counts = list(gbm_leaf_counts)
    for label, values in (("logistic_c", logistic_c), ("gbm_learning_rates", gbm_learning_rates)):
        if not values or any(
            not is_real(v) or not math.isfinite(float(v)) or v <= 0 for v in values
        ):
            raise InvalidParameterError(
                f"{label} must be positive finite numbers, got {values!r}"
            )
    if not gbm_leaf_counts or any(
        not is_real(v) or not isinstance(v, numbers.Integral) or v < 2
        for v in gbm_leaf_counts
    ):
        raise InvalidParameterError(f"gbm_leaf_counts must be ints >= 2, got {gbm_leaf_counts!r}")
    for label, values in (
        ("logistic_c", logistic_c), ("gbm_learning_rates", gbm_learning_rates),
        ("gbm_leaf_counts", gbm_leaf_counts),
    ):
        if len({float(v) for v in values}) != len(values):
            raise InvalidParameterError(
                f"{label} lists a value twice, got {values!r}; a repeated setting would "
                "train the same model twice"
            )
    grid: list[tuple[str, dict[str, Any]]] = [("logistic", {"C": float(c)}) for c in logistic_c]
    grid += [
        ("gbm", {"learning_rate": float(rate), "max_leaf_nodes": int(leaves), **budget})
        for leaves in gbm_leaf_counts
        for rate in gbm_learning_rates
    ]
    return grid


def run_sweep(
    train_frame: pd.DataFrame,
    val_frame: pd.DataFrame,
    grid: Sequence[tuple[str, Mapping[str, Any]]],
    *,
    experiment_id: str | None = None,
    parent_name: str = "sweep",
    tags: Mapping[str, str] | None = None,
    dataset_source: str | None = None,
    price_per_cpu_hour: float = DEFAULT_PRICE_PER_CPU_HOUR,
    log_models: bool = True,
    seed: int = 0,
) -> pd.DataFrame:
    """Log one nested run per (kind, params) of ``grid`` under a parent run; return the results.

    Every child trains with the same model ``seed``. The parent run records the grid size,
    the best validation ROC AUC and the sweep's total work (``row_iterations``), CPU seconds
    and cost. Child runs are named ``<kind>-<n>`` in grid order.

    The whole grid and every argument are checked before the parent run is opened; if a run
    fails anyway, the parent and every child logged so far are deleted: a sweep is logged
    whole or not at all. The parent and every child carry the code version ``code.sha256``.

    Returns:
        One row per child run: ``parent_run_id``, ``run`` (its name), ``run_id``, ``kind``,
        ``params``, the logged metrics and costs, and the fitted ``model``.
    """
    import mlflow

    if isinstance(grid, (str, bytes, Mapping)) or not isinstance(grid, Iterable):
        raise InvalidParameterError(
            f"grid must be a list of (kind, params) pairs from sweep_grid(), got {grid!r}"
        )
    grid = list(grid)
    if not grid:
        raise InvalidParameterError("grid is empty; build one with sweep_grid()")
    plans, seen, counters = [], set(), dict.fromkeys(MODEL_KINDS, 0)
    for entry in grid:
        if not (isinstance(entry, tuple) and len(entry) == 2 and isinstance(entry[1], Mapping)):
            raise InvalidParameterError(
                f"grid entries must be (kind, params) pairs, got {entry!r}"
            )
        kind, params = entry
        check_choice("model kind", kind, MODEL_KINDS)
        key = (kind, repr(sorted(dict(params).items(), key=lambda item: str(item[0]))))
        if key in seen:
            raise InvalidParameterError(
                f"grid holds ({kind!r}, {dict(params)}) twice; accepted: distinct settings"
            )
        seen.add(key)
        counters[kind] += 1
        plans.append(RunPlan.checked(
            train_frame, val_frame, kind, params, run_name=f"{kind}-{counters[kind]}",
            nested=True, price_per_cpu_hour=price_per_cpu_hour, log_model=log_models, seed=seed,
            threads=1,
        ))
    check_name("parent_name", parent_name)
    common = RunCommon.checked(experiment_id, tags, dataset_source, reserved=("sweep.role",))

    results: list[dict[str, Any]] = []
    parent_id = None
    try:
        with mlflow.start_run(experiment_id=common.experiment_id, run_name=parent_name) as parent:
            parent_id = parent.info.run_id
            mlflow.set_tags({**common.tags, "sweep.role": "parent"})
            logger.info("sweep %r: %d runs under parent run %s", parent_name, len(plans),
                        parent_id)
            for plan in plans:
                result = log_run(train_frame, val_frame, plan, common,
                                 extra_tags={"sweep.role": "child"})
                results.append({"run": plan.run_name, **result})
            table = pd.DataFrame(results)
            mlflow.log_params({"grid_size": len(grid), "price_per_cpu_hour": price_per_cpu_hour})
            mlflow.log_metrics(
                {
                    "best_val_roc_auc": float(table["val_roc_auc"].max()),
                    "sweep_row_iterations": float(table["row_iterations"].sum()),
                    "sweep_cpu_seconds": float(table["cpu_seconds"].sum()),
                    "sweep_cost_usd": float(table["cost_usd"].sum()),
                }
            )
    except BaseException:
        delete_runs([r["run_id"] for r in results] + ([parent_id] if parent_id else []))
        raise
    table.insert(0, "parent_run_id", parent_id)
    return table

