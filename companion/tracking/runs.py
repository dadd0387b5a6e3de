"""One training run logged to MLflow: parameters, tags, dataset inputs, metrics, cost, model.

:func:`log_training_run` trains one model, evaluates it on a later snapshot and logs it to the
caller's current MLflow store, like MLflow's own fluent calls (it never changes which store
that is). :func:`frame_dataset` builds the dataset input of a frame with a fast schema. The
checked settings of a run (:class:`RunPlan`, :class:`RunCommon`) and the function that logs
one (:func:`log_run`) are shared with :mod:`companion.tracking.sweeps`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pandas as pd

from companion.core.checks import check_bool, check_choice, check_int, check_number
from companion.core.env import MLFLOW_INTEGER_HINT, quiet
from companion.errors import InvalidParameterError
from companion.evaluation import auc_interval
from companion.tracking.checks import (
    check_experiment,
    check_name,
    check_params,
    check_tags,
    check_training_frames,
    delete_runs,
    with_code_tags,
)
from companion.tracking.cost import (
    DEFAULT_PRICE_PER_CPU_HOUR,
    Stopwatch,
    estimate_cost,
    fitted_iterations,
)
from companion.tracking.models import log_sklearn_model
from companion.tracking.provenance import code_version
from companion.training import FEATURES, MODEL_KINDS, TARGET, evaluate, train

if TYPE_CHECKING:  # pragma: no cover - imports for type hints only
    from mlflow.data.pandas_dataset import PandasDataset

logger = logging.getLogger(__name__)


def log_training_run(
    train_frame: pd.DataFrame,
    val_frame: pd.DataFrame,
    kind: str,
    params: Mapping[str, Any] | None = None,
    *,
    experiment_id: str | None = None,
    run_name: str | None = None,
    nested: bool = False,
    tags: Mapping[str, str] | None = None,
    dataset_source: str | None = None,
    price_per_cpu_hour: float = DEFAULT_PRICE_PER_CPU_HOUR,
    log_model: bool = True,
    seed: int = 0,
    threads: int | None = 1,
) -> dict[str, Any]:
    """Train one model, validate it on a later snapshot and log everything to one MLflow run.

    The run gets the parameters (``kind``, the estimator's ``params``, ``seed``, the training
    and validation snapshots), the ``tags``, the training and validation frames as dataset
    inputs, the validation metrics (``val_roc_auc`` with its 95% DeLong interval
    ``val_roc_auc_low`` and ``val_roc_auc_high``, ``val_average_precision``, ``val_brier``),
    the iterations the fit ran (``n_iter``, see :func:`fitted_iterations`) and the work
    ``row_iterations`` (training rows x ``n_iter``), the measured ``wall_seconds``,
    ``cpu_seconds`` and ``cost_usd`` of training plus validation, and, with ``log_model``, the
    model (:func:`log_sklearn_model`).

    Training runs on ``threads`` threads (1 by default, None for the libraries' default): on
    a shared machine, OpenMP threads that wait for each other burn CPU time for nothing, and
    one thread per run makes CPU seconds, and so the cost, a property of the run rather than
    of the machine's load. A sweep scales out by running several runs at once instead.

    The run is tagged with the code version, ``code.sha256`` over every companion module a
    training run executes (:func:`code_version`), whatever ``tags`` say.

    Every argument is checked before the run is opened: frames without both classes, a
    validation month that is not later than the training months, parameters the estimator
    refuses, non-finite numbers, an unknown experiment raise a companion error and leave no
    run behind. A run whose training fails anyway is deleted.

    Returns:
        ``run_id``, ``kind``, ``params``, the metrics, the costs and the fitted ``model``.
    """
    plan = RunPlan.checked(
        train_frame, val_frame, kind, params, run_name=run_name, nested=nested,
        price_per_cpu_hour=price_per_cpu_hour, log_model=log_model, seed=seed, threads=threads,
    )
    common = RunCommon.checked(experiment_id, tags, dataset_source, reserved=("sweep.role",))
    return log_run(train_frame, val_frame, plan, common)


@dataclass(frozen=True)
class RunPlan:
    """The checked settings of one run (everything but the frames and where it is logged)."""

    kind: str
    params: dict[str, Any]
    run_name: str | None
    nested: bool
    price_per_cpu_hour: float
    log_model: bool
    seed: int
    threads: int | None
    train_snapshots: tuple[str, ...]
    val_snapshots: tuple[str, ...]

    @classmethod
    def checked(cls, train_frame: Any, val_frame: Any, kind: Any, params: Any, *,
                run_name: Any, nested: Any, price_per_cpu_hour: Any, log_model: Any,
                seed: Any, threads: Any) -> RunPlan:
        check_choice("model kind", kind, MODEL_KINDS)
        params = check_params(kind, params)
        check_int("seed", seed, minimum=0)
        if threads is not None:
            check_int("threads", threads, minimum=1)
        train_snapshots, val_snapshots = check_training_frames(train_frame, val_frame)
        return cls(
            kind=kind, params=params, run_name=check_name("run_name", run_name, optional=True),
            nested=check_bool("nested", nested),
            price_per_cpu_hour=check_number("price_per_cpu_hour", price_per_cpu_hour, minimum=0),
            log_model=check_bool("log_model", log_model), seed=seed, threads=threads,
            train_snapshots=tuple(train_snapshots), val_snapshots=tuple(val_snapshots),
        )


@dataclass(frozen=True)
class RunCommon:
    """Checked settings shared by the runs of a call: experiment, tags (with the code version)
    and the data source."""

    experiment_id: str | None
    tags: dict[str, str]
    dataset_source: str | None

    @classmethod
    def checked(cls, experiment_id: Any, tags: Any, dataset_source: Any,
                reserved: Sequence[str] = ()) -> RunCommon:
        tags = with_code_tags(check_tags(tags, reserved), code_version())
        if dataset_source is not None and (
            not isinstance(dataset_source, str) or not dataset_source.strip()
        ):
            raise InvalidParameterError(
                f"dataset_source must be None or a URI such as 'file:///path/data', got "
                f"{dataset_source!r}"
            )
        return cls(check_experiment(experiment_id), tags, dataset_source)


def log_run(
    train_frame: pd.DataFrame, val_frame: pd.DataFrame, plan: RunPlan, common: RunCommon,
    extra_tags: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Open, fill and close one run from checked settings; delete it if anything fails."""
    import mlflow
    from threadpoolctl import threadpool_limits

    run_id = None
    try:
        with mlflow.start_run(experiment_id=common.experiment_id, run_name=plan.run_name,
                              nested=plan.nested) as run:
            run_id = run.info.run_id
            mlflow.log_params(
                {"kind": plan.kind, **plan.params, "seed": plan.seed,
                 "train_snapshots": ",".join(plan.train_snapshots),
                 "val_snapshot": ",".join(plan.val_snapshots)}
            )
            mlflow.set_tags({**common.tags, **(extra_tags or {})})
            for frame, context in ((train_frame, "training"), (val_frame, "validation")):
                mlflow.log_input(
                    frame_dataset(frame, source=common.dataset_source, name=f"churn-{context}"),
                    context=context,
                )
            with Stopwatch() as watch, threadpool_limits(limits=plan.threads):
                model = train(train_frame, plan.kind, seed=plan.seed, **plan.params)
                metrics = evaluate(model, val_frame)
            cost = estimate_cost(watch.cpu_seconds, plan.price_per_cpu_hour)
            auc = auc_interval(val_frame[TARGET], model.predict_proba(val_frame[FEATURES])[:, 1])
            n_iter = fitted_iterations(model)
            logged = {
                "val_roc_auc": metrics["roc_auc"],
                "val_roc_auc_low": auc.low,
                "val_roc_auc_high": auc.high,
                "n_iter": float(n_iter),
                "row_iterations": float(n_iter * len(train_frame)),
                "val_average_precision": metrics["average_precision"],
                "val_brier": metrics["brier"],
                "wall_seconds": watch.wall_seconds,
                "cpu_seconds": watch.cpu_seconds,
                "cost_usd": cost,
            }
            mlflow.log_metrics(logged)
            logger.debug("run %s (%s): val_roc_auc %.4f", run_id, plan.kind, logged["val_roc_auc"])
            mlflow.log_params({"price_per_cpu_hour": plan.price_per_cpu_hour,
                               "threads": plan.threads})
            if plan.log_model:
                log_sklearn_model(model, train_frame)
    except BaseException:
        if run_id is not None:
            delete_runs([run_id])
        raise
    return {"run_id": run_id, "kind": plan.kind, "params": plan.params, **logged,
            "model": model}


def frame_dataset(
    frame: pd.DataFrame, source: str | None = None, name: str | None = None
) -> PandasDataset:
    """Return an MLflow dataset of ``frame`` for ``mlflow.log_input``, with a fast schema.

    ``mlflow.data.from_pandas(frame, source=..., targets=..., name=...)`` is the library's
    call; it infers the schema value by value, 2-3 s per 50,000 rows with category columns.
    Column types are the frame's dtypes, so this takes them from the first rows and whether a
    column may hold missing values from all of them (vectorised); the digest still covers
    every row. The result is a :class:`mlflow.data.pandas_dataset.PandasDataset` whose
    ``schema`` is that one (MLflow's ``from_pandas`` has no schema argument).
    """
    from mlflow.data.pandas_dataset import PandasDataset, from_pandas

    if not isinstance(frame, pd.DataFrame) or frame.empty or TARGET not in frame.columns:
        raise InvalidParameterError(
            f"frame must be a non-empty DataFrame with a {TARGET!r} column, got "
            f"{type(frame).__name__}"
        )
    if source is not None and (not isinstance(source, str) or not source.strip()):
        raise InvalidParameterError(f"source must be None or a URI string, got {source!r}")
    check_name("dataset name", name, optional=True)
    schema = _frame_schema(frame)

    class _Dataset(PandasDataset):
        @property
        def schema(self) -> Any:  # noqa: D401 - MLflow's property, computed once above
            return schema

    # from_pandas resolves the source (a URI, or the code that runs when None); an empty
    # frame makes that free. The dataset itself is built on the whole frame.
    # MLflow annotates source as str | DatasetSource but resolves None (the running code).
    resolved = from_pandas(frame.iloc[:0], source=source).source  # type: ignore[arg-type]
    return _Dataset(df=frame, source=resolved, targets=TARGET, name=name)


def _frame_schema(frame: pd.DataFrame, rows: int = 1000) -> Any:
    """Return the MLflow schema of ``frame``: types from its first ``rows`` rows, whether each
    column is required (has no missing value) from all of them."""
    from mlflow.models import infer_signature
    from mlflow.types import ColSpec, Schema

    # MLflow hints that integer columns (ids, the label) cannot hold missing values: advice
    # for model signatures, not for datasets.
    with quiet("mlflow", level=logging.WARNING, ignore=(MLFLOW_INTEGER_HINT,)):
        head = infer_signature(frame.head(rows)).inputs
    missing = frame.isna().any()
    return Schema([
        ColSpec(type=spec.type, name=spec.name, required=not bool(missing[spec.name]))
        for spec in head.inputs
    ])
