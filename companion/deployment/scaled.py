"""Batch scoring at scale: the base resampled to any size, pyfunc in chunks, scores compared.

The scale-out question of batch scoring is whether the same model gives the same scores on
every engine, and how fast each is. This module holds the pieces the scaling appendix and
``benchmarks/bench_scaling.py`` share:

- :func:`resample_rows`: a month's base resampled (with a fixed seed) to any number of rows,
  each with its own key, so 10 M rows can be scored from a simulation of thousands;
- :func:`pyfunc_scores`: the MLflow pyfunc model (``mlflow.pyfunc.load_model``) scoring a frame
  chunk by chunk in pandas, the path :func:`~companion.deployment.spark.spark_score_frame` runs
  inside Spark's Python workers;
- :func:`score_differences`: the largest absolute difference between two engines' scores of
  the same keys (0.0: identical bit for bit).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from companion.core.checks import check_frame, check_int, check_text
from companion.core.env import quiet
from companion.core.mlflow_store import using_store
from companion.errors import InvalidParameterError, UnknownNameError

__all__ = ["pyfunc_scores", "resample_rows", "score_differences"]


def resample_rows(base: pd.DataFrame, rows: int, *, seed: int, key: str = "customer_id",
                  start: int = 0) -> pd.DataFrame:
    """Return ``rows`` rows drawn from ``base`` with replacement, keyed ``start, start+1, ...``.

    Args:
        base: the rows to draw from (e.g. one month's features), with column ``key``.
        rows: how many rows to return.
        seed: the seed of the draw (same seed, same rows).
        key: the key column, overwritten with unique consecutive ids.
        start: the first id (to write a large frame in chunks with unique ids).

    Returns:
        The drawn rows, index reset, ``key`` set to ``start, start + 1, ...``.

    Raises:
        InvalidParameterError: ``base`` has no ``key`` or no rows, or a bad count or seed.

    Example:
        >>> base = pd.DataFrame({"customer_id": [7, 9], "x": [1.0, 2.0]})
        >>> resample_rows(base, 3, seed=0)["customer_id"].tolist()
        [0, 1, 2]
    """
    check_frame("base", base, [key])
    if len(base) == 0:
        raise InvalidParameterError("base has no rows to draw from")
    rows = check_int("rows", rows, minimum=1)
    check_int("seed", seed, minimum=0)
    check_int("start", start, minimum=0)
    drawn = np.random.default_rng([seed, start]).integers(0, len(base), rows)
    frame = base.iloc[drawn].reset_index(drop=True)
    frame[key] = np.arange(start, start + rows, dtype="int64")
    return frame


def pyfunc_scores(
    model_uri: str,
    tracking_uri: str,
    frame: pd.DataFrame,
    *,
    key: str = "customer_id",
    chunk_rows: int = 1_000_000,
) -> pd.DataFrame:
    """Score ``frame`` with the MLflow pyfunc model, chunk by chunk; return ``key, score``.

    The model is read with ``mlflow.pyfunc.load_model`` from the store at ``tracking_uri``
    (MLflow's global URIs untouched); its ``predict`` returns ``[p(stay), p(churn)]`` per row
    and the score is the churn probability, as Spark's UDF takes it. Categorical columns are
    passed as strings, as the model's signature (and a Parquet file read by Spark) has them.

    Args:
        model_uri: ``models:/<name>@<alias>`` or ``models:/<name>/<version>``.
        tracking_uri: the MLflow store holding the registry.
        frame: the rows: ``key`` and the model's input columns.
        key: the key column returned beside the score.
        chunk_rows: rows per ``predict`` call (bounds memory).

    Returns:
        ``key, score`` in the order of ``frame``.

    Raises:
        InvalidParameterError: a bad URI, or ``frame`` misses ``key`` or a model column.
        UnknownNameError: the model is not in the registry.
    """
    from companion.deployment.service import check_model_uris

    check_model_uris(model_uri, tracking_uri)
    check_text("key", key)
    check_frame("frame", frame, [key])
    chunk_rows = check_int("chunk_rows", chunk_rows, minimum=1)
    import mlflow.pyfunc
    from mlflow.exceptions import MlflowException

    with using_store(tracking_uri), quiet("mlflow"):
        try:
            model = mlflow.pyfunc.load_model(model_uri)
        except MlflowException as exc:
            raise UnknownNameError(f"{model_uri!r} is not in the registry: {exc.message}") from None
    columns = list(model.metadata.get_input_schema().input_names())
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise InvalidParameterError(f"frame is missing model column(s) {missing}")
    scores = np.empty(len(frame), dtype="float64")
    for begin in range(0, len(frame), chunk_rows):
        chunk = frame.iloc[begin:begin + chunk_rows][columns]
        categorical = [c for c in columns if isinstance(chunk[c].dtype, pd.CategoricalDtype)]
        if categorical:  # the signature wants strings; Parquet and Spark give strings too
            chunk = chunk.astype({c: "object" for c in categorical})
        scores[begin:begin + len(chunk)] = np.asarray(model.predict(chunk))[:, 1]
    return pd.DataFrame({key: frame[key].to_numpy(), "score": scores})


def score_differences(left: pd.DataFrame, right: pd.DataFrame, *,
                      key: str = "customer_id") -> float:
    """Return the largest absolute difference between two engines' scores of the same keys.

    Both frames hold ``key`` (unique) and ``score``; their order may differ.

    Args:
        left, right: ``key, score`` frames of two engines.
        key: the key column.

    Returns:
        The largest absolute difference (0.0: identical bit for bit).

    Raises:
        InvalidParameterError: a frame misses a column, repeats a key, or the key sets differ.

    Example:
        >>> a = pd.DataFrame({"customer_id": [1, 2], "score": [0.1, 0.2]})
        >>> score_differences(a, a.iloc[::-1])
        0.0
    """
    for name, frame in [("left", left), ("right", right)]:
        check_frame(name, frame, [key, "score"])
        if not frame[key].is_unique:
            raise InvalidParameterError(f"{name} repeats keys; score each {key} once")
    a = left.set_index(key)["score"].sort_index()
    b = right.set_index(key)["score"].sort_index()
    if len(a) != len(b) or not a.index.equals(b.index):
        raise InvalidParameterError(
            f"the engines scored different keys ({len(a)} and {len(b)} rows); compare the "
            "scores of the same rows"
        )
    if len(a) == 0:
        return 0.0
    return float(np.max(np.abs(a.to_numpy(dtype="float64") - b.to_numpy(dtype="float64"))))
