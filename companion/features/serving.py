"""Reading features back from Feast: training sets offline, current values online.

- :func:`materialize` loads a window of history into the online store;
- :func:`historical_features` builds a training set with Feast's point-in-time join, and
  refuses (:class:`~companion.errors.RowsDroppedError`) when the offline store dropped rows;
- :func:`online_features` reads the current values of customers for a feature service;
- :func:`service_features` names the features a service serves, in order.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from companion.core.checks import check_date, check_frame, datetime_column
from companion.errors import InvalidParameterError, RowsDroppedError, UnknownNameError
from companion.features.repo import quiet_feast
from companion.features.versions import ENTITY_KEY, EVENT_TIMESTAMP

if TYPE_CHECKING:
    from feast import FeatureStore

logger = logging.getLogger(__name__)


def materialize(store: FeatureStore, start: Any, end: Any) -> int:
    """Load the latest feature values in ``[start, end]`` into the online store, quietly.

    Uses ``materialize(start, end)``: ``materialize_incremental`` would start at ``now - ttl``
    on its first call and skip all of the simulated history. Returns the number of feature
    views materialised.
    """
    _check_store(store)
    start, end = check_date("start", start, aware="utc"), check_date("end", end, aware="utc")
    if start >= end:
        raise InvalidParameterError(f"start {start} must come before end {end}")
    views = [v for v in store.list_feature_views() if v.online]
    with quiet_feast():
        store.materialize(start_date=_utc(start), end_date=_utc(end))
    return len(views)


def historical_features(
    store: FeatureStore,
    entities: pd.DataFrame,
    service: str,
    *,
    timestamp: str = EVENT_TIMESTAMP,
) -> pd.DataFrame:
    """Build a training set with Feast's point-in-time join, one row per entity row.

    ``entities`` needs ``customer_id`` and ``timestamp`` (e.g. the label snapshot); other
    columns (the label) are passed through. Rows come back in the entity order with naive UTC
    timestamps. Feast's file offline store silently drops entity rows whose feature rows are
    all older than the TTL: if any row is missing this raises :class:`RowsDroppedError` instead
    of returning a smaller training set.
    """
    _check_store(store)
    if not isinstance(timestamp, str):
        raise InvalidParameterError(f"timestamp must be a column name, got {timestamp!r}")
    check_frame("entities", entities, [ENTITY_KEY, timestamp])
    feature_service = _feature_service(store, service)
    _check_ids(entities[ENTITY_KEY], "entities column 'customer_id'")
    times = datetime_column("entities", entities, timestamp)
    if np.isnat(times).any():
        raise InvalidParameterError(f"entities column {timestamp!r} has missing timestamps")
    reserved = {"entity_row", *service_features(store, service)}
    if timestamp != EVENT_TIMESTAMP:
        reserved.add(EVENT_TIMESTAMP)
    clash = sorted(reserved & set(entities.columns))
    if clash:
        raise InvalidParameterError(
            f"entities already have column(s) {clash}, which the join adds; drop or rename them"
        )
    frame = entities.reset_index(drop=True).rename(columns={timestamp: EVENT_TIMESTAMP})
    frame["entity_row"] = np.arange(len(frame))
    with quiet_feast():
        result = store.get_historical_features(entity_df=frame, features=feature_service).to_df()
    if len(result) != len(frame):
        raise RowsDroppedError(
            f"the {store.config.offline_store.type!r} offline store returned {len(result)} rows "
            f"for {len(frame)} entity rows: {len(frame) - len(result)} were dropped (their "
            f"features are older than the TTL); use offline_store='duckdb', which keeps them "
            "with empty features"
        )
    result[EVENT_TIMESTAMP] = pd.to_datetime(result[EVENT_TIMESTAMP], utc=True).dt.tz_convert(
        None).astype("datetime64[ns]")
    result = result.sort_values("entity_row").drop(columns="entity_row").reset_index(drop=True)
    result = result.rename(columns={EVENT_TIMESTAMP: timestamp})
    order = [c for c in frame.columns if c not in ("entity_row", EVENT_TIMESTAMP)]
    return result[[*order[:1], timestamp, *order[1:], *service_features(store, service)]]


def online_features(store: FeatureStore, customer_ids: Sequence[int], service: str) -> pd.DataFrame:
    """Read the online store's current features of ``customer_ids`` for a feature service.

    ``customer_ids`` are whole numbers, each once; the rows come back in their order. A
    customer the store has never seen gets empty features.
    """
    _check_store(store)
    feature_service = _feature_service(store, service)
    ids = _check_ids(customer_ids, "customer_ids")
    if not ids:
        raise InvalidParameterError("customer_ids is empty; pass at least one customer id")
    duplicated = sorted(pd.Series(ids)[pd.Series(ids).duplicated()].unique().tolist())
    if duplicated:
        raise InvalidParameterError(
            f"customer_ids repeat {duplicated[:5]}; pass each customer once"
        )
    with quiet_feast():
        frame = store.get_online_features(
            features=feature_service, entity_rows=[{ENTITY_KEY: i} for i in ids]
        ).to_df()
    return frame[[ENTITY_KEY, *service_features(store, service)]]


def service_features(store: FeatureStore, service: str) -> list[str]:
    """Return the feature names a feature service serves, in its order."""
    _check_store(store)
    feature_service = _feature_service(store, service)
    return [f.name for projection in feature_service.feature_view_projections
            for f in projection.features]


def _feature_service(store: FeatureStore, service: str) -> Any:
    from feast.errors import FeatureServiceNotFoundException

    if not isinstance(service, str):
        raise InvalidParameterError(f"feature service must be a name, got {service!r}")
    try:
        with quiet_feast():
            return store.get_feature_service(service)
    except FeatureServiceNotFoundException as exc:
        known = sorted(s.name for s in store.list_feature_services())
        raise UnknownNameError(
            f"feature service {service!r} is not in the registry; known: {', '.join(known)}"
        ) from exc


def _check_store(store: Any) -> None:
    from feast import FeatureStore

    if not isinstance(store, FeatureStore):
        raise InvalidParameterError(
            f"expected a Feast FeatureStore (feature_store() or apply_feature_repo()), "
            f"got {type(store).__name__}"
        )


def _check_ids(values: Any, name: str) -> list[int]:
    if isinstance(values, (str, bytes, Mapping)) or not isinstance(
            values, (Sequence, np.ndarray, pd.Series, pd.Index)):
        raise InvalidParameterError(f"{name} must be a list of customer ids, got {values!r}")
    ids = []
    for value in list(values):
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
            raise InvalidParameterError(
                f"{name} must hold whole-number customer ids, got {value!r} "
                f"of type {type(value).__name__}"
            )
        ids.append(int(value))
    return ids


def _utc(timestamp: pd.Timestamp) -> Any:
    if timestamp.tzinfo is None:
        timestamp = timestamp.tz_localize("UTC")
    return timestamp.to_pydatetime()
