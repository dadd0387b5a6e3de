"""The point-in-time join on three engines at scale: Feast's DuckDB store, DuckDB, pandas.

The same join as :func:`~companion.features.joins.point_in_time_join` (for each entity row,
the latest feature row of the same key at or before its timestamp), computed by the engines a
team moves to when the data grows:

- :func:`feast_duckdb_join`: Feast's ``get_historical_features`` with the DuckDB offline store,
  over a feature view that reads one Parquet file (a throwaway repo in a folder you give);
- :func:`duckdb_asof_join`: DuckDB's own ``ASOF LEFT JOIN``, in process, on the frames;
- :func:`pandas_asof_join`: pandas ``merge_asof`` (``direction="backward"``).

Each returns the entity rows in their original order with the feature columns added (empty
where no feature row is eligible), so their results compare with ``DataFrame.equals``. The
feature rows must have one row per key and timestamp (the weekly activity table does): with
ties the engines may pick different rows, and :func:`check_join_inputs` refuses them.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import numpy as np
import pandas as pd

from companion.core.checks import check_columns, check_frame, check_path, datetime_column
from companion.errors import InvalidParameterError

__all__ = ["check_join_inputs", "duckdb_asof_join", "feast_duckdb_join", "join_differences",
           "pandas_asof_join"]

_ROW = "_entity_row"


def check_join_inputs(
    entities: pd.DataFrame,
    features: pd.DataFrame,
    columns: Sequence[str],
    *,
    key: str = "customer_id",
    timestamp: str = "event_timestamp",
) -> list[str]:
    """Check the frames of a join and return the feature columns.

    Args:
        entities, features, columns, key, timestamp: as for :func:`pandas_asof_join`.

    Returns:
        The feature columns, as a list.

    Raises:
        InvalidParameterError: a frame misses a column, a timestamp is missing, the entities
            already hold a feature column, or two feature rows share a key and timestamp.
    """
    columns = check_columns("columns", columns)
    check_frame("entities", entities, [key, timestamp])
    check_frame("features", features, [key, timestamp, *columns])
    clash = sorted(set(columns) & set(entities.columns))
    if clash:
        raise InvalidParameterError(f"entities already have column(s) {clash}; drop them first")
    if _ROW in entities.columns:
        raise InvalidParameterError(f"entities must not have a column named {_ROW!r}")
    for name, frame in [("entities", entities), ("features", features)]:
        if np.isnat(datetime_column(name, frame, timestamp)).any():
            raise InvalidParameterError(f"{name} column {timestamp!r} has missing timestamps")
    duplicated = int(features.duplicated([key, timestamp]).sum())
    if duplicated:
        raise InvalidParameterError(
            f"features have {duplicated} row(s) sharing a {key} and {timestamp}; the engines "
            "would pick different ones: keep one row per key and timestamp"
        )
    return columns


def _naive(values: pd.Series) -> pd.Series:
    times = pd.to_datetime(values)
    if getattr(times.dt, "tz", None) is not None:
        times = times.dt.tz_convert("UTC").dt.tz_localize(None)
    return times.astype("datetime64[ns]")


def pandas_asof_join(
    entities: pd.DataFrame,
    features: pd.DataFrame,
    columns: Sequence[str],
    *,
    key: str = "customer_id",
    timestamp: str = "event_timestamp",
) -> pd.DataFrame:
    """Join with pandas ``merge_asof``: the latest feature row at or before each entity row.

    Args:
        entities: the rows to enrich: ``key`` and ``timestamp`` (other columns kept).
        features: the feature rows: ``key``, ``timestamp`` and ``columns``, one per key and
            timestamp.
        columns: the feature columns to attach.
        key: the entity key column of both frames.
        timestamp: the timestamp column of both frames.

    Returns:
        ``entities`` in their order, index reset, with ``columns`` added (empty where no
        feature row is eligible).

    Raises:
        InvalidParameterError: see :func:`check_join_inputs`.

    Example:
        >>> e = pd.DataFrame({"customer_id": [1], "event_timestamp": [pd.Timestamp("2025-01-10")]})
        >>> f = pd.DataFrame({"customer_id": [1, 1], "x": [1.0, 2.0],
        ...     "event_timestamp": [pd.Timestamp("2025-01-08"), pd.Timestamp("2025-01-15")]})
        >>> pandas_asof_join(e, f, ["x"])["x"].tolist()
        [1.0]
    """
    columns = check_join_inputs(entities, features, columns, key=key, timestamp=timestamp)
    left = entities.reset_index(drop=True).copy()
    left[_ROW] = np.arange(len(left))
    left[timestamp] = _naive(left[timestamp])
    right = features[[key, timestamp, *columns]].copy()
    right[timestamp] = _naive(right[timestamp])
    joined = pd.merge_asof(left.sort_values(timestamp, kind="mergesort"),
                           right.sort_values(timestamp, kind="mergesort"),
                           on=timestamp, by=key, direction="backward")
    return _in_entity_order(joined, entities, columns)


def _in_entity_order(joined: pd.DataFrame, entities: pd.DataFrame,
                     columns: list[str]) -> pd.DataFrame:
    joined = joined.sort_values(_ROW, kind="mergesort").reset_index(drop=True)
    result = entities.reset_index(drop=True).copy()
    for column in columns:
        result[column] = joined[column].to_numpy()
    return result


def duckdb_asof_join(
    entities: pd.DataFrame,
    features: pd.DataFrame,
    columns: Sequence[str],
    *,
    key: str = "customer_id",
    timestamp: str = "event_timestamp",
    threads: int | None = None,
) -> pd.DataFrame:
    """Join with DuckDB's ``ASOF LEFT JOIN`` (in process, on the pandas frames).

    Args:
        entities: the rows to enrich: ``key`` and ``timestamp`` (other columns kept).
        features: the feature rows: ``key``, ``timestamp`` and ``columns``, one per key and
            timestamp.
        columns: the feature columns to attach.
        key: the entity key column of both frames.
        timestamp: the timestamp column of both frames.
        threads: DuckDB's worker threads (None: DuckDB's default, the machine's cores).

    Returns:
        ``entities`` in their order, index reset, with ``columns`` added (empty where no
        feature row is eligible).

    Raises:
        InvalidParameterError: see :func:`check_join_inputs`.
    """
    columns = check_join_inputs(entities, features, columns, key=key, timestamp=timestamp)
    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int)
                                or threads < 1):
        raise InvalidParameterError(f"threads must be a positive int or None, got {threads!r}")
    import duckdb

    left = pd.DataFrame({_ROW: np.arange(len(entities)), key: entities[key].to_numpy(),
                         timestamp: _naive(entities[timestamp]).to_numpy()})
    right = features[[key, timestamp, *columns]].copy()
    right[timestamp] = _naive(right[timestamp])
    picked = ", ".join(f'f."{c}"' for c in columns)
    query = (f'SELECT e."{_ROW}", {picked} FROM left_rows e ASOF LEFT JOIN right_rows f '
             f'ON e."{key}" = f."{key}" AND e."{timestamp}" >= f."{timestamp}"')
    with duckdb.connect() as connection:
        if threads is not None:
            connection.execute(f"SET threads TO {threads}")
        connection.register("left_rows", left)
        connection.register("right_rows", right)
        joined = connection.execute(query).df()
    return _in_entity_order(joined, entities, columns)


def feast_duckdb_join(
    folder: str | os.PathLike[str],
    entities: pd.DataFrame,
    features: pd.DataFrame,
    columns: Sequence[str],
    *,
    key: str = "customer_id",
    timestamp: str = "event_timestamp",
) -> pd.DataFrame:
    """Join with Feast's ``get_historical_features`` on the DuckDB offline store.

    Writes ``features`` as ``<folder>/data/features.parquet``, applies a feature repo in
    ``folder`` (an entity on ``key``, a ``FileSource`` on that file, a feature view ``rows``
    with no TTL, a SQLite online store never materialised) and asks Feast for ``rows:<column>``
    of every entity row.

    Args:
        folder: the throwaway repo's folder (created; a file is refused).
        entities, features, columns, key, timestamp: as for :func:`pandas_asof_join`.

    Returns:
        ``entities`` in their order, index reset, with ``columns`` added (empty where no
        feature row is eligible: the DuckDB store keeps every entity row).

    Raises:
        InvalidParameterError: bad frames, or ``folder`` is a file.
    """
    columns = check_join_inputs(entities, features, columns, key=key, timestamp=timestamp)
    target = check_path("folder", folder).resolve()
    if target.exists() and not target.is_dir():
        raise InvalidParameterError(f"folder {str(target)!r} is a file; pass a folder")
    from feast import Entity, FeatureStore, FeatureView, Field, FileSource, ValueType
    from feast.repo_config import RepoConfig
    from feast.types import Float64, Int64

    from companion.features.repo import quiet_feast

    source_path = target / "data" / "features.parquet"
    source_path.parent.mkdir(parents=True, exist_ok=True)
    table = features[[key, timestamp, *columns]].copy()
    table[timestamp] = _naive(table[timestamp]).dt.tz_localize("UTC")
    from companion.core.files import atomic_write

    atomic_write(source_path, lambda tmp: table.to_parquet(tmp, index=False))
    kinds: dict[str, Any] = {}
    for column in columns:
        kinds[column] = Int64 if pd.api.types.is_integer_dtype(table[column]) else Float64
    entity = Entity(name=key, join_keys=[key], value_type=ValueType.INT64)
    view = FeatureView(
        name="rows", entities=[entity], ttl=timedelta(0),  # 0: no age limit
        schema=[Field(name=c, dtype=kinds[c]) for c in columns],
        source=FileSource(path=str(source_path), timestamp_field=timestamp),
    )
    config = RepoConfig(project="scaled_join", provider="local",
                        registry=str(target / "registry.db"),
                        online_store={"type": "sqlite", "path": str(target / "online.db")},
                        offline_store={"type": "duckdb"}, entity_key_serialization_version=3,
                        repo_path=str(target))
    frame = pd.DataFrame({key: entities[key].to_numpy(),
                          "event_timestamp": _naive(entities[timestamp]).dt.tz_localize("UTC"),
                          _ROW: np.arange(len(entities))})
    with quiet_feast():
        store = FeatureStore(config=config)
        store.apply([entity, view])
        joined = store.get_historical_features(
            entity_df=frame, features=[f"rows:{c}" for c in columns]).to_df()
    if len(joined) != len(entities):
        raise InvalidParameterError(f"Feast returned {len(joined)} rows for {len(entities)}")
    return _in_entity_order(joined, entities, columns)



def join_differences(left: pd.DataFrame, right: pd.DataFrame, columns: Sequence[str]) -> int:
    """Count the feature cells where two joins of the same entity rows disagree.

    Values compare as float64 (engines return integer features as int or float) and two empty
    cells agree. The frames must have the same length and order (the engines' entity order).

    Args:
        left, right: two joins of the same entity rows.
        columns: the feature columns to compare.

    Returns:
        The number of differing cells (0: the joins agree).

    Raises:
        InvalidParameterError: the frames differ in length or miss a column.
    """
    columns = check_columns("columns", columns)
    check_frame("left", left, columns)
    check_frame("right", right, columns)
    if len(left) != len(right):
        raise InvalidParameterError(f"the joins have {len(left)} and {len(right)} rows; "
                                    "compare joins of the same entity rows")
    differing = 0
    for column in columns:
        a = pd.to_numeric(left[column]).to_numpy(dtype="float64", na_value=np.nan)
        b = pd.to_numeric(right[column]).to_numpy(dtype="float64", na_value=np.nan)
        differing += int((~((a == b) | (np.isnan(a) & np.isnan(b)))).sum())
    return differing
