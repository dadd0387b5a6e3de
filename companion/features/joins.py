"""Point-in-time joins written out in pandas: the join a feature store performs, and the leak.

- :func:`point_in_time_join`, the join a feature store performs (optionally on arrival time);
- :func:`latest_value_join`, the naive join that leaks the future into training sets;
- :func:`training_set`, a feature version's training set built with the companion's join.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

import numpy as np
import pandas as pd

from companion.core.checks import (
    check_bool,
    check_choice,
    check_columns,
    check_date,
    check_frame,
    datetime_column,
)
from companion.errors import InvalidParameterError
from companion.features.versions import (
    ACTIVITY_TTL,
    CREATED_TIMESTAMP,
    ENTITY_KEY,
    EVENT_TIMESTAMP,
    FEATURE_VERSIONS,
    PROFILE_FEATURES,
)


def point_in_time_join(
    entities: pd.DataFrame,
    features: pd.DataFrame,
    columns: Sequence[str],
    *,
    ttl: timedelta | None = None,
    key: str = ENTITY_KEY,
    entity_timestamp: str = EVENT_TIMESTAMP,
    feature_timestamp: str = EVENT_TIMESTAMP,
    created_timestamp: str | None = None,
    arrived_only: bool = False,
) -> pd.DataFrame:
    """Attach to each entity row the latest feature values known at its timestamp.

    For an entity row ``(key, t)`` the eligible feature rows are those of the same key with
    ``feature_timestamp <= t`` (and, with ``arrived_only``, ``created_timestamp <= t``: rows
    that had *arrived* by ``t``). The joined row is the eligible one with the greatest
    ``feature_timestamp``; ties are broken by the greatest ``created_timestamp``, a missing
    created timestamp counting as the oldest (it loses to any known one), then by the later
    row of ``features``. With a ``ttl`` the joined row must also be no older than ``t - ttl``
    (ends included). With no such row the feature columns are empty (NaN): no entity row is
    ever dropped.

    Without ``arrived_only`` this is the join Feast performs (on event time only). With it,
    the training set holds only what was known at ``t``: a weekly row stamped at ``t`` but
    loaded hours later is skipped for the one before it. A row with no created timestamp is
    taken to have arrived at its event timestamp (nothing later is known about it).

    Args:
        entities: the rows to enrich, e.g. labels with their snapshot timestamps.
        features: feature rows with ``key``, ``feature_timestamp`` and ``columns``.
        columns: the feature columns to attach.
        ttl: how old a feature row may be; None for no limit.
        key: the entity key column, present in both frames.
        entity_timestamp: the entity rows' timestamp column.
        feature_timestamp: the feature rows' timestamp column.
        created_timestamp: optional feature column: when each row arrived; breaks ties.
        arrived_only: keep only feature rows whose ``created_timestamp`` is at or before the
            entity timestamp (needs ``created_timestamp``).

    Returns:
        ``entities`` in their original order, with ``columns`` and ``feature_time`` (the
        joined row's timestamp) added, and ``feature_created`` (its created timestamp) when
        ``created_timestamp`` is given.
    """
    columns = check_columns("columns", columns)
    check_bool("arrived_only", arrived_only)
    if arrived_only and not created_timestamp:
        raise InvalidParameterError(
            "arrived_only=True needs created_timestamp: the column saying when each feature "
            "row arrived"
        )
    check_frame("entities", entities, [key, entity_timestamp])
    check_frame("features", features, [key, feature_timestamp, *columns]
                + ([created_timestamp] if created_timestamp else []))
    added = [*columns, "feature_time"] + (["feature_created"] if created_timestamp else [])
    clash = [c for c in added if c in entities.columns]
    if clash:
        raise InvalidParameterError(
            f"entities already have column(s) {clash}; drop or rename them before the join"
        )
    if ttl is not None and (not isinstance(ttl, timedelta) or ttl <= timedelta(0)):
        raise InvalidParameterError(f"ttl must be a positive timedelta or None, got {ttl!r}")
    entity_times = datetime_column("entities", entities, entity_timestamp)
    feature_times = datetime_column("features", features, feature_timestamp)
    for name, times, column in [("entities", entity_times, entity_timestamp),
                                ("features", feature_times, feature_timestamp)]:
        if np.isnat(times).any():
            raise InvalidParameterError(f"{name} column {column!r} has missing timestamps")
    created_times = (datetime_column("features", features, created_timestamp)
                     if created_timestamp else None)
    left = entities.reset_index(drop=True).copy()
    left["_row"] = np.arange(len(left))
    left["_t"] = entity_times

    # Rank the feature rows by preference: event time, then created time (missing first, so
    # it loses), then position. The best eligible row is the one of highest rank.
    right = pd.DataFrame({key: features[key].to_numpy(), "_ev": feature_times})
    if created_times is not None:
        right["_cr"] = created_times
    else:
        right["_cr"] = pd.NaT
    right["_pos"] = np.arange(len(right))
    ranked = right.sort_values(["_ev", "_cr", "_pos"], kind="mergesort", na_position="first")
    right["_rank"] = np.empty(len(right), dtype="int64")
    right.loc[ranked.index, "_rank"] = np.arange(len(right))
    # A row becomes eligible at its event time, or at its arrival if that is later.
    right["_t"] = right["_ev"]
    if arrived_only:
        right["_t"] = right[["_ev", "_cr"]].max(axis=1).astype("datetime64[ns]")
    # Eligible rows at t are those with _t <= t: a prefix in _t order. Its best row is the
    # running maximum of the rank within each key.
    right = right.sort_values([key, "_t", "_rank"], kind="mergesort")
    right["_best"] = right.groupby(key, sort=False)["_rank"].cummax()
    right = right.sort_values("_t", kind="mergesort")[[key, "_t", "_best"]]
    joined = pd.merge_asof(
        left.sort_values("_t", kind="mergesort"), right, on="_t", by=key,
        direction="backward", allow_exact_matches=True,
    )
    best = joined["_best"].to_numpy(dtype="float64")
    found = ~np.isnan(best)
    by_rank = ranked.index.to_numpy()  # by_rank[r]: the position in features of rank r
    rows = by_rank[best[found].astype("int64")]
    source = features.reset_index(drop=True)
    event = feature_times
    if ttl is not None:
        fresh = joined["_t"].to_numpy()[found] - event[rows] <= np.timedelta64(pd.Timedelta(ttl))
        found[found] = fresh
        rows = rows[fresh]
    taken = {c: source[c] for c in columns}
    taken["feature_time"] = pd.Series(event, dtype="datetime64[ns]")
    if created_times is not None:
        taken["feature_created"] = pd.Series(created_times)
    for name, values in taken.items():
        column = values.iloc[rows].reset_index(drop=True)
        column.index = np.flatnonzero(found)
        joined[name] = column.reindex(np.arange(len(joined))).to_numpy()
    joined = joined.sort_values("_row").drop(columns=["_row", "_t", "_best"])
    return joined.reset_index(drop=True)


def latest_value_join(
    entities: pd.DataFrame,
    features: pd.DataFrame,
    columns: Sequence[str],
    *,
    as_of: pd.Timestamp | str | None = None,
    key: str = ENTITY_KEY,
    feature_timestamp: str = EVENT_TIMESTAMP,
) -> pd.DataFrame:
    """Attach each customer's latest feature values, whatever the entity row's timestamp.

    This is the naive join: it reads the feature table as it stands when the training set is
    built (everything up to ``as_of``, or all of it), so a label from January can receive a
    value from April. Do not use it to build training sets; it is here to be measured.
    """
    columns = check_columns("columns", columns)
    check_frame("entities", entities, [key])
    check_frame("features", features, [key, feature_timestamp, *columns])
    clash = [c for c in [*columns, "feature_time"] if c in entities.columns]
    if clash:
        raise InvalidParameterError(
            f"entities already have column(s) {clash}; drop or rename them before the join"
        )
    stamps = datetime_column("features", features, feature_timestamp)
    rows = features
    if as_of is not None:
        rows = rows[stamps <= check_date("as_of", as_of, aware="utc").to_datetime64()]
    latest = rows.sort_values([key, feature_timestamp], kind="mergesort").groupby(key).tail(1)
    latest = latest[[key, feature_timestamp, *columns]].rename(
        columns={feature_timestamp: "feature_time"}
    )
    return entities.reset_index(drop=True).merge(latest, on=key, how="left")


def training_set(
    entities: pd.DataFrame,
    activity: pd.DataFrame,
    profile: pd.DataFrame,
    version: str,
    *,
    arrived_only: bool = True,
) -> pd.DataFrame:
    """Build a training set of feature ``version`` with the companion's point-in-time join.

    Activity features come from ``activity`` (:func:`activity_feature_table`) within
    :data:`ACTIVITY_TTL`, by default only from rows that had *arrived* by each entity's
    timestamp (what Lumen knew then; Feast joins on event time only); profile features come
    from ``profile`` (:func:`profile_feature_table`), the row in force at that time. The
    columns are those of :func:`historical_features` for the version's feature service:
    the entity columns, then the activity features, then the profile features.
    """
    spec = FEATURE_VERSIONS[check_choice("feature version", version, FEATURE_VERSIONS)]
    check_frame("entities", entities, [ENTITY_KEY, EVENT_TIMESTAMP])
    joined = point_in_time_join(
        entities, activity, spec["activity"], ttl=ACTIVITY_TTL,
        created_timestamp=CREATED_TIMESTAMP, arrived_only=arrived_only,
    ).drop(columns=["feature_time", "feature_created"])
    joined = point_in_time_join(joined, profile, PROFILE_FEATURES).drop(columns="feature_time")
    return joined
