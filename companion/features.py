"""The feature store: Lumen's churn features in a Feast repo, joined point in time.

A feature store keeps one definition of each feature and serves it twice: offline, as training
sets built with *point-in-time* joins (each label sees only feature values that existed at its
timestamp), and online, as the latest values of each customer for scoring. This module builds
that store with Feast on the local machine (a Parquet source, the DuckDB offline store, a SQLite
online store), and holds the plain pandas joins the chapter compares it with:

- :func:`point_in_time_join`, the join a feature store performs, written out in pandas;
- :func:`latest_value_join`, the naive join that leaks the future into training sets.

Feast feature views read precomputed columns, so :func:`activity_feature_table` turns weekly
activity into one row per customer and week holding the rolling 4- and 8-week aggregates.

Example:
    >>> import pandas as pd
    >>> labels = pd.DataFrame({"customer_id": [1], "event_timestamp": [pd.Timestamp("2025-01-10")]})
    >>> rows = pd.DataFrame({"customer_id": [1, 1], "value": [1.0, 2.0],
    ...     "event_timestamp": [pd.Timestamp("2025-01-08"), pd.Timestamp("2025-01-15")]})
    >>> point_in_time_join(labels, rows, ["value"])["value"].tolist()
    [1.0]
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import math
import os
import shutil
import tempfile
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from scipy import stats
from sklearn.base import clone
from sklearn.compose import ColumnTransformer
from sklearn.metrics import average_precision_score, roc_auc_score
from sklearn.pipeline import Pipeline

from companion.core.checks import check_choice, check_int
from companion.data import ChurnDataset
from companion.errors import InvalidParameterError, RowsDroppedError, UnknownNameError
from companion.evaluation import LEVEL, Estimate, auc_interval
from companion.training import CATEGORICAL_FEATURES, TARGET, make_model

if TYPE_CHECKING:
    from feast import FeatureStore

    from companion.workspace import Workspace

PROJECT = "lumen"
"""The Feast project that holds Lumen's features."""

ENTITY_KEY = "customer_id"
EVENT_TIMESTAMP = "event_timestamp"
CREATED_TIMESTAMP = "created_timestamp"
OFFLINE_STORES = ("duckdb", "file")

ACTIVITY_TTL = timedelta(days=14)
"""How old an activity row may be and still count: two weekly rows."""

V1_ACTIVITY_FEATURES = [
    "sessions_4w",
    "minutes_4w",
    "days_active_4w",
    "support_tickets_4w",
    "payment_failures_4w",
    "weeks_seen_4w",
    "tenure_days",
]
"""Version 1: four-week sums, the same names and windows as :mod:`companion.training`."""

V2_ACTIVITY_FEATURES = [
    "sessions_4w",
    "minutes_4w",
    "days_active_4w",
    "support_tickets_8w",
    "payment_failures_8w",
    "weeks_seen_4w",
    "tenure_days",
    "minutes_change_4w",
]
"""Version 2: tickets and payment failures over eight weeks (a changed window), and a new
feature, the change in minutes watched against the four weeks before."""

PROFILE_FEATURES = ["monthly_fee", *CATEGORICAL_FEATURES]
"""Slowly changing customer attributes, read from the customers table."""

FEATURE_VERSIONS = {
    "v1": {"view": "customer_activity_v1", "service": "churn_model_v1",
           "activity": V1_ACTIVITY_FEATURES},
    "v2": {"view": "customer_activity_v2", "service": "churn_model_v2",
           "activity": V2_ACTIVITY_FEATURES},
}
"""Each feature version: its activity feature view, the feature service a model reads, and
the activity features it holds. Both versions stay in the registry side by side."""

RECORD_KEYS = ("model", "feature_version", "feature_service", "feature_view", "features")
"""The keys a model record sets itself; details passed to :func:`record_model_version` may
not overwrite them."""

PROFILE_VIEW = "customer_profile"
ACTIVITY_SOURCE_FILE = "customer_activity_weekly.parquet"
PROFILE_SOURCE_FILE = "customer_profile.parquet"
_WINDOWS = {"4w": "28D", "8w": "56D"}
_SUMMED = {
    "sessions": "sessions",
    "minutes": "minutes_watched",
    "days_active": "days_active",
    "support_tickets": "support_tickets",
    "payment_failures": "payment_failures",
}


# --------------------------------------------------------------------------- feature tables


def activity_feature_table(
    dataset: ChurnDataset, until: pd.Timestamp | str | None = None
) -> pd.DataFrame:
    """Return one row per customer and week with the rolling aggregates feature views read.

    A row stamped ``event_timestamp`` summarises the weeks ending in ``(t - window, t]``: the
    same windows :func:`companion.training.snapshot_features` uses, precomputed for every week
    because a Feast feature view reads columns, it does not aggregate. ``created_timestamp``
    (when the weekly row reached the warehouse) is kept: Feast breaks ties with it and the
    companion's join uses it to skip rows that had not arrived yet. A window whose values are
    all missing sums to NaN.

    Args:
        dataset: the simulated dataset.
        until: keep only weeks stamped at or before this time (the windows only look back, so
            the rows kept are exactly those of the full table); None keeps every week.
    """
    _check_dataset(dataset)
    activity = dataset.activity
    if until is not None:
        activity = activity[activity[EVENT_TIMESTAMP] <= _timestamp("until", until)]
    activity = activity.sort_values([ENTITY_KEY, EVENT_TIMESTAMP], kind="mergesort")
    activity = activity.reset_index(drop=True)
    table = activity[[ENTITY_KEY, EVENT_TIMESTAMP, CREATED_TIMESTAMP]].copy()
    codes = pd.factorize(activity[ENTITY_KEY], sort=False)[0].astype("int64")
    times = activity[EVENT_TIMESTAMP].to_numpy(dtype="datetime64[ns]").astype("int64")
    # Rows are sorted by (customer, time): a window is a contiguous run of rows, found by
    # binary search on (customer, time) and summed as a difference of running sums.
    lags = [pd.Timedelta(w).value for w in _WINDOWS.values()]
    grid = np.unique(np.concatenate([times, *[times - lag for lag in lags]]))
    stride = len(grid) + 1

    def position(stamps: np.ndarray) -> np.ndarray:  # exact, ordered by (customer, time)
        return codes * stride + np.searchsorted(grid, stamps)

    here = position(times)
    values = {name: activity[column].to_numpy(dtype="float64")
              for name, column in _SUMMED.items()}
    values["weeks_seen"] = np.ones(len(activity))
    for suffix, window in _WINDOWS.items():
        lag = pd.Timedelta(window).value
        first = np.searchsorted(here, position(times - lag), side="right")
        for name, array in values.items():
            known = ~np.isnan(array)
            total = np.concatenate([[0.0], np.cumsum(np.where(known, array, 0.0))])
            count = np.concatenate([[0], np.cumsum(known)])
            index = np.arange(len(array))
            summed = total[index + 1] - total[first]
            summed[(count[index + 1] - count[first]) == 0] = np.nan
            table[f"{name}_{suffix}"] = summed
    table["minutes_change_4w"] = 2 * table["minutes_4w"] - table["minutes_8w"]
    signup = activity[ENTITY_KEY].map(dataset.customers.set_index(ENTITY_KEY)["signup_date"])
    table["tenure_days"] = (activity[EVENT_TIMESTAMP] - signup).dt.days.astype("float64")
    keep = sorted(set(V1_ACTIVITY_FEATURES) | set(V2_ACTIVITY_FEATURES), key=_feature_order)
    return table[[ENTITY_KEY, EVENT_TIMESTAMP, CREATED_TIMESTAMP, *keep]]


def profile_feature_table(dataset: ChurnDataset) -> pd.DataFrame:
    """Return the customers' profile as a feature table: a row at sign-up, one per price change.

    The first row of a customer is stamped at the sign-up date with the plan's price then; each
    later change in the price list (the price rise of the concept scenario) adds a row stamped
    at its effective date, so a point-in-time join reads the fee in force at the label time.
    """
    _check_dataset(dataset)
    customers = dataset.customers
    base = pd.DataFrame(
        {
            ENTITY_KEY: customers[ENTITY_KEY].astype("int64"),
            EVENT_TIMESTAMP: customers["signup_date"],
            "monthly_fee": customers["monthly_fee"].astype("float64"),
        }
    )
    for column in CATEGORICAL_FEATURES:
        base[column] = customers[column].astype(str)
    frames = [base]
    for change in dataset.prices.sort_values("effective_from").itertuples(index=False):
        hit = (base["plan"] == str(change.plan)) & (base[EVENT_TIMESTAMP] < change.effective_from)
        if hit.any():
            rows = base[hit].copy()
            rows[EVENT_TIMESTAMP] = change.effective_from
            rows["monthly_fee"] = float(change.monthly_fee)
            frames.append(rows)
    table = pd.concat(frames, ignore_index=True)
    table = table.sort_values([EVENT_TIMESTAMP, ENTITY_KEY], kind="mergesort")
    return table.reset_index(drop=True)


# --------------------------------------------------------------------------- joins in pandas


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
    columns = _check_names("columns", columns)
    if not isinstance(arrived_only, bool):
        raise InvalidParameterError(f"arrived_only must be True or False, got {arrived_only!r}")
    if arrived_only and not created_timestamp:
        raise InvalidParameterError(
            "arrived_only=True needs created_timestamp: the column saying when each feature "
            "row arrived"
        )
    _check_columns("entities", entities, [key, entity_timestamp])
    _check_columns("features", features, [key, feature_timestamp, *columns]
                   + ([created_timestamp] if created_timestamp else []))
    added = [*columns, "feature_time"] + (["feature_created"] if created_timestamp else [])
    clash = [c for c in added if c in entities.columns]
    if clash:
        raise InvalidParameterError(
            f"entities already have column(s) {clash}; drop or rename them before the join"
        )
    if ttl is not None and (not isinstance(ttl, timedelta) or ttl <= timedelta(0)):
        raise InvalidParameterError(f"ttl must be a positive timedelta or None, got {ttl!r}")
    entity_times = _datetimes("entities", entities, entity_timestamp)
    feature_times = _datetimes("features", features, feature_timestamp)
    for name, times, column in [("entities", entity_times, entity_timestamp),
                                ("features", feature_times, feature_timestamp)]:
        if np.isnat(times).any():
            raise InvalidParameterError(f"{name} column {column!r} has missing timestamps")
    created_times = (_datetimes("features", features, created_timestamp)
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
    columns = _check_names("columns", columns)
    _check_columns("entities", entities, [key])
    _check_columns("features", features, [key, feature_timestamp, *columns])
    clash = [c for c in [*columns, "feature_time"] if c in entities.columns]
    if clash:
        raise InvalidParameterError(
            f"entities already have column(s) {clash}; drop or rename them before the join"
        )
    stamps = _datetimes("features", features, feature_timestamp)
    rows = features
    if as_of is not None:
        rows = rows[stamps <= _timestamp("as_of", as_of).to_datetime64()]
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
    _check_columns("entities", entities, [ENTITY_KEY, EVENT_TIMESTAMP])
    joined = point_in_time_join(
        entities, activity, spec["activity"], ttl=ACTIVITY_TTL,
        created_timestamp=CREATED_TIMESTAMP, arrived_only=arrived_only,
    ).drop(columns=["feature_time", "feature_created"])
    joined = point_in_time_join(joined, profile, PROFILE_FEATURES).drop(columns="feature_time")
    return joined


# --------------------------------------------------------------------------- the Feast repo


@dataclass(frozen=True)
class FeatureRepo:
    """Where a Feast repo lives and what it was built from.

    Attributes:
        path: the repo folder; the registry, the online store and the source files
            (``data/``) live inside it.
    """

    path: Path

    def __post_init__(self) -> None:
        if isinstance(self.path, bool) or not isinstance(self.path, (str, os.PathLike)) \
                or not str(self.path):
            raise InvalidParameterError(
                f"a feature repo's path must be a folder path (str or Path), got {self.path!r}"
            )
        object.__setattr__(self, "path", Path(self.path))

    @property
    def registry(self) -> Path:
        """The Feast registry file."""
        return self.path / "registry.db"

    @property
    def online_store(self) -> Path:
        """The SQLite online store."""
        return self.path / "online_store.db"

    @property
    def activity_source(self) -> Path:
        """The weekly activity feature table (Parquet) the activity views read."""
        return self.path / "data" / ACTIVITY_SOURCE_FILE

    @property
    def profile_source(self) -> Path:
        """The customer profile feature table (Parquet)."""
        return self.path / "data" / PROFILE_SOURCE_FILE


def repo_config(repo: FeatureRepo | str | os.PathLike[str], offline_store: str = "duckdb") -> Any:
    """Return the Feast ``RepoConfig`` of ``repo``: local provider, SQLite online store.

    Args:
        repo: the repo folder (or a :class:`FeatureRepo`).
        offline_store: ``"duckdb"`` (keeps entity rows past the TTL, with nulls) or ``"file"``
            (Feast's pandas/dask store, which drops them).
    """
    from feast.repo_config import RepoConfig

    check_choice("offline store", offline_store, OFFLINE_STORES)
    repo = _as_repo(repo)
    return RepoConfig(
        project=PROJECT,
        provider="local",
        registry=str(repo.registry),
        online_store={"type": "sqlite", "path": str(repo.online_store)},
        offline_store={"type": offline_store},
        entity_key_serialization_version=3,
        repo_path=str(repo.path),
    )


def feature_store(
    repo: FeatureRepo | str | os.PathLike[str], offline_store: str = "duckdb"
) -> FeatureStore:
    """Open the Feast ``FeatureStore`` of ``repo`` with the given offline store."""
    from feast import FeatureStore

    config = repo_config(repo, offline_store)
    with quiet_feast():
        return FeatureStore(config=config)


def feature_definitions(repo: FeatureRepo | str | os.PathLike[str]) -> dict[str, Any]:
    """Return Lumen's Feast objects by name: entity, sources, feature views, feature services.

    ``customer_activity_v1`` and ``customer_activity_v2`` read the same weekly source with a
    TTL of :data:`ACTIVITY_TTL`; ``customer_profile`` never expires. Each feature service
    (``churn_model_v1``, ``churn_model_v2``) names the exact features one model version reads.
    """
    from feast import Entity, FeatureService, FeatureView, Field, FileSource, ValueType
    from feast.types import Float64, String

    repo = _as_repo(repo)
    customer = Entity(
        name="customer", join_keys=[ENTITY_KEY], value_type=ValueType.INT64,
        description="A Lumen subscriber.",
    )
    activity = FileSource(
        name="customer_activity_weekly", path=str(repo.activity_source),
        timestamp_field=EVENT_TIMESTAMP, created_timestamp_column=CREATED_TIMESTAMP,
    )
    profile = FileSource(
        name="customer_profile_source", path=str(repo.profile_source),
        timestamp_field=EVENT_TIMESTAMP,
    )
    objects: dict[str, Any] = {"customer": customer, activity.name: activity, profile.name: profile}
    profile_view = FeatureView(
        name=PROFILE_VIEW, entities=[customer], ttl=timedelta(0), source=profile, online=True,
        schema=[Field(name="monthly_fee", dtype=Float64)]
        + [Field(name=c, dtype=String) for c in CATEGORICAL_FEATURES],
        description="Plan, fee and profile; a row at sign-up and at each price change.",
    )
    objects[PROFILE_VIEW] = profile_view
    for version, spec in FEATURE_VERSIONS.items():
        view = FeatureView(
            name=spec["view"], entities=[customer], ttl=ACTIVITY_TTL, source=activity,
            online=True, schema=[Field(name=c, dtype=Float64) for c in spec["activity"]],
            tags={"version": version}, description=f"Weekly activity aggregates, {version}.",
        )
        objects[view.name] = view
        objects[spec["service"]] = FeatureService(
            name=spec["service"], features=[view, profile_view], tags={"version": version},
            description=f"The features churn model {version} reads.",
        )
    return objects


def definition_signature(definition: Any) -> dict[str, Any]:
    """Return what a Feast definition declares, as plain values that compare with ``==``.

    For an ``Entity``: its join key and value type; a ``FileSource``: its file, timestamp
    and created-timestamp columns; a ``FeatureView``: its entities, source, TTL (seconds),
    features with their types, and whether it is online; a ``FeatureService``: the features
    of each view it serves. Two definitions with equal signatures register the same thing.
    """
    from feast import Entity, FeatureService, FeatureView, FileSource

    if isinstance(definition, Entity):
        return {"kind": "entity", "name": definition.name,
                "join_key": definition.join_key,
                "value_type": str(definition.value_type)}
    if isinstance(definition, FileSource):
        return {"kind": "source", "name": definition.name, "path": str(definition.path),
                "timestamp": definition.timestamp_field,
                "created": definition.created_timestamp_column or None}
    if isinstance(definition, FeatureView):
        ttl = definition.ttl or timedelta(0)
        return {"kind": "feature view", "name": definition.name,
                "entities": sorted(definition.entities),
                "source": definition.batch_source.name,
                "ttl_seconds": int(ttl.total_seconds()),
                "features": [(f.name, str(f.dtype)) for f in definition.features],
                "online": bool(definition.online)}
    if isinstance(definition, FeatureService):
        return {"kind": "feature service", "name": definition.name,
                "features": [(p.name, [f.name for f in p.features])
                             for p in definition.feature_view_projections]}
    raise InvalidParameterError(
        "definition must be a Feast Entity, FileSource, FeatureView or FeatureService, "
        f"got {type(definition).__name__}"
    )


def compare_definitions(
    mine: Sequence[Any], repo: FeatureRepo | str | os.PathLike[str]
) -> pd.DataFrame:
    """Compare Feast definitions written by hand with :func:`feature_definitions`'s.

    Returns one row per definition in ``mine``: its kind, TTL in days (views), number of
    features, and how many declared fields differ from the companion's definition of the same
    name (0: it registers exactly the same thing).
    """
    if isinstance(mine, (str, bytes)) or not isinstance(mine, Sequence) or not mine:
        raise InvalidParameterError(
            f"mine must be a non-empty list of Feast definitions, got {mine!r}"
        )
    signatures = [definition_signature(d) for d in mine]
    names = [s["name"] for s in signatures]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise InvalidParameterError(f"definitions repeat the name(s) {repeated}")
    reference = feature_definitions(repo)
    unknown = [n for n in names if n not in reference]
    if unknown:
        raise UnknownNameError(
            f"definition(s) {unknown} are not among the companion's; known: "
            f"{', '.join(sorted(reference))}"
        )
    rows = []
    for signature in signatures:
        theirs = definition_signature(reference[signature["name"]])
        differ = sum(signature.get(k) != theirs.get(k) for k in set(signature) | set(theirs))
        rows.append({"definition": signature["name"], "kind": signature["kind"],
                     "ttl (days)": (signature["ttl_seconds"] // 86400
                                    if "ttl_seconds" in signature else None),
                     "features": (sum(len(f) for _, f in signature["features"])
                                  if signature["kind"] == "feature service"
                                  else len(signature.get("features", []))),
                     "fields differing": int(differ)})
    table = pd.DataFrame(rows).set_index("definition")
    table["ttl (days)"] = table["ttl (days)"].astype("Int64")
    return table


def apply_feature_repo(
    repo_dir: str | os.PathLike[str],
    dataset: ChurnDataset,
    until: pd.Timestamp | str | None = None,
) -> tuple[FeatureRepo, FeatureStore]:
    """Write the feature tables into ``repo_dir/data`` and apply the definitions to Feast.

    ``until`` limits the weekly activity source to the weeks stamped up to then (a chapter
    that only serves its first months need not load the rest); the profile source is always
    whole. The source files are written to a temporary name, then moved into place, so a
    failure leaves no half-written source behind. Returns the repo and its (DuckDB) store.
    """
    _check_dataset(dataset)
    repo = _as_repo(repo_dir)
    if repo.path.exists() and not repo.path.is_dir():
        raise InvalidParameterError(
            f"repo_dir {str(repo_dir)!r} is a file; a feature repo needs a folder"
        )
    weekly = activity_feature_table(dataset, until=until)
    profile = profile_feature_table(dataset)
    created = [p for p in (repo.path, repo.path / "data") if not p.exists()]
    try:
        (repo.path / "data").mkdir(parents=True, exist_ok=True)
        _write_parquet(weekly, repo.activity_source)
        _write_parquet(profile, repo.profile_source)
        store = feature_store(repo)
        with quiet_feast():
            store.apply(list(feature_definitions(repo).values()))
    except BaseException:
        if created:  # the folders this call made go; a repo that was there stays
            shutil.rmtree(created[0], ignore_errors=True)
        raise
    return repo, store


def materialize(store: FeatureStore, start: Any, end: Any) -> int:
    """Load the latest feature values in ``[start, end]`` into the online store, quietly.

    Uses ``materialize(start, end)``: ``materialize_incremental`` would start at ``now - ttl``
    on its first call and skip all of the simulated history. Returns the number of feature
    views materialised.
    """
    _check_store(store)
    start, end = _timestamp("start", start), _timestamp("end", end)
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
    _check_columns("entities", entities, [ENTITY_KEY, timestamp])
    feature_service = _feature_service(store, service)
    _check_ids(entities[ENTITY_KEY], "entities column 'customer_id'")
    times = _datetimes("entities", entities, timestamp)
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


def model_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """Return a copy with empty activity features filled the way the reference does.

    No activity row within the TTL means no recent activity: sums and weeks seen become 0,
    exactly as :func:`companion.training.snapshot_features` fills customers with no activity
    in the window. Profile features are left alone.
    """
    _check_columns("frame", frame, [])
    frame = frame.copy()
    activity = [c for c in set(V1_ACTIVITY_FEATURES) | set(V2_ACTIVITY_FEATURES)
                if c in frame.columns and c != "tenure_days"]
    frame[sorted(activity)] = frame[sorted(activity)].fillna(0.0)
    return frame


# --------------------------------------------------------------------------- models per version


def make_version_model(version: str, seed: int = 0) -> Pipeline:
    """Return the churn model (:func:`companion.training.make_model`, ``gbm``) for a version.

    The estimator is the same; only the numeric columns it reads follow the feature version.
    """
    spec = FEATURE_VERSIONS[check_choice("feature version", version, FEATURE_VERSIONS)]
    check_int("seed", seed, minimum=0)
    model = clone(make_model("gbm", seed))
    preprocess: ColumnTransformer = model.named_steps["features"]
    transformers = [
        (name, step, [*spec["activity"], "monthly_fee"] if name == "numeric" else columns)
        for name, step, columns in preprocess.transformers
    ]
    model.set_params(features__transformers=transformers)
    return model


def version_columns(version: str) -> list[str]:
    """Return the model input columns of a feature version."""
    spec = FEATURE_VERSIONS[check_choice("feature version", version, FEATURE_VERSIONS)]
    return [*spec["activity"], *PROFILE_FEATURES]


def train_version(frame: pd.DataFrame, version: str, seed: int = 0) -> Pipeline:
    """Fit the churn model of feature ``version`` on a training set from Feast."""
    columns = version_columns(version)
    check_int("seed", seed, minimum=0)
    _check_columns("training set", frame, [*columns, TARGET])
    _check_target("training set", frame)
    model = make_version_model(version, seed)
    model.fit(model_frame(frame)[columns], frame[TARGET])
    return model


def score_version(model: Pipeline, frame: pd.DataFrame, version: str) -> dict[str, float]:
    """Return ROC AUC, average precision, churn rate and rows of ``model`` on ``frame``."""
    columns = version_columns(version)
    if not callable(getattr(model, "predict_proba", None)):
        raise InvalidParameterError(
            f"model must be a fitted classifier with predict_proba (train_version), "
            f"got {type(model).__name__}"
        )
    _check_columns("frame", frame, [*columns, TARGET])
    _check_target("frame", frame)
    scores = model.predict_proba(model_frame(frame)[columns])[:, 1]
    y = frame[TARGET].to_numpy()
    return {
        "roc_auc": float(roc_auc_score(y, scores)),
        "average_precision": float(average_precision_score(y, scores)),
        "churn_rate": float(y.mean()),
        "rows": int(len(y)),
    }


def auc_gap(
    y_first: Any, scores_first: Any, y_second: Any, scores_second: Any
) -> Estimate:
    """Return AUC on a first set of rows minus AUC on a second, with a 95% interval.

    For two *different* sets of rows (an offline held-out set and a later month), where no
    paired interval exists: each AUC gets DeLong's variance and the two are added, as for
    independent samples. When the sets share customers their AUCs move together and the true
    interval is a little narrower, so this one errs on the wide side.

    Example:
        >>> gap = auc_gap([0, 1, 0, 1], [0.1, 0.9, 0.2, 0.8], [0, 1, 0, 1], [0.1, 0.9, 0.2, 0.8])
        >>> gap.value
        0.0
    """
    first = auc_interval(y_first, scores_first)
    second = auc_interval(y_second, scores_second)
    z = float(stats.norm.ppf(0.5 + LEVEL / 2))
    se = math.hypot(first.half_width / z, second.half_width / z)
    value = first.value - second.value
    p_value = 1.0 if se == 0 else float(2 * stats.norm.sf(abs(value) / se))
    return Estimate(value, value - z * se, value + z * se, LEVEL, "DeLong unpaired", p_value)


def record_model_version(
    directory: str | os.PathLike[str], name: str, version: str, details: dict[str, Any]
) -> Path:
    """Write ``directory/name.json``: which feature service and features a model was trained on.

    The record is what lets anyone serve the model later with the right features: the
    service name is looked up in the Feast registry, never guessed. ``details`` (training
    months, row counts, ...) are added beside the record's own keys (:data:`RECORD_KEYS`),
    never over them: a detail named like one of them is refused, as are non-text keys and
    values JSON cannot hold exactly (NaN, infinity).
    """
    spec = FEATURE_VERSIONS[check_choice("feature version", version, FEATURE_VERSIONS)]
    if not isinstance(name, str) or not name or not all(
            c.isascii() and (c.isalnum() or c in "-_") for c in name):
        raise InvalidParameterError(
            f"model name must be non-empty ASCII letters, digits, '-' or '_', got {name!r}"
        )
    if isinstance(directory, bool) or not isinstance(directory, (str, os.PathLike)) \
            or not str(directory):
        raise InvalidParameterError(f"directory must be a folder path, got {directory!r}")
    directory = Path(directory)
    if directory.exists() and not directory.is_dir():
        raise InvalidParameterError(f"directory {str(directory)!r} is a file, not a folder")
    if not isinstance(details, Mapping):
        raise InvalidParameterError(
            f"details must be a dict of extra fields, got {type(details).__name__}"
        )
    bad_keys = [k for k in details if not isinstance(k, str) or not k]
    if bad_keys:
        raise InvalidParameterError(f"details keys must be non-empty strings, got {bad_keys!r}")
    taken = sorted(set(details) & set(RECORD_KEYS))
    if taken:
        raise InvalidParameterError(
            f"details may not overwrite the record's own key(s) {taken}; the record sets "
            f"{list(RECORD_KEYS)} itself: rename the detail"
        )
    record = {
        "model": name,
        "feature_version": version,
        "feature_service": spec["service"],
        "feature_view": spec["view"],
        "features": version_columns(version),
        **details,
    }
    try:
        text = json.dumps(record, indent=2, sort_keys=True, default=str, allow_nan=False) + "\n"
    except ValueError as exc:
        raise InvalidParameterError(
            f"details hold a value JSON cannot store exactly (NaN or infinity): {details!r}"
        ) from exc
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}.json"
    _write_atomic(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))
    return path


def read_model_record(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a record written by :func:`record_model_version`."""
    if isinstance(path, bool) or not isinstance(path, (str, os.PathLike)) or not str(path):
        raise InvalidParameterError(f"path must be a file path, got {path!r}")
    path = Path(path)
    if not path.is_file():
        raise InvalidParameterError(
            f"no model record at {str(path)!r}; write it with record_model_version()"
        )
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidParameterError(f"{str(path)!r} is not a JSON model record: {exc}") from exc
    missing = [k for k in RECORD_KEYS if not isinstance(record, dict) or k not in record]
    if missing:
        raise InvalidParameterError(
            f"{str(path)!r} is not a model record: it lacks {missing}"
        )
    return record


# --------------------------------------------------------------------------- prerequisite


def build_features(workspace: Workspace) -> FeatureStore:
    """Apply Lumen's Feast repo in the workspace and materialise its whole history.

    The prerequisite ``"features"``: the dataset is simulated (``"data"``), the feature tables
    written into ``workspace.feast_dir``, the definitions applied, and every online view
    materialised from the oldest sign-up to the end of the simulated window.
    """
    from companion.workspace import Workspace

    if not isinstance(workspace, Workspace):
        raise InvalidParameterError(
            f"expected a Workspace (Workspace.create), got {type(workspace).__name__}"
        )
    dataset = workspace.require("data")
    _, store = apply_feature_repo(workspace.feast_dir, dataset)
    materialize(store, history_start(dataset), dataset.config.end_timestamp)
    return store


def history_start(dataset: ChurnDataset) -> pd.Timestamp:
    """Return a day before the oldest feature row of any source (sign-ups reach years back).

    Materialising from here loads every customer's profile, not only those who signed up
    after activity starts.
    """
    _check_dataset(dataset)
    oldest = min(dataset.customers["signup_date"].min(), dataset.activity[EVENT_TIMESTAMP].min())
    return pd.Timestamp(oldest).normalize() - pd.Timedelta(days=1)


# --------------------------------------------------------------------------- helpers


@contextlib.contextmanager
def quiet_feast() -> Iterator[None]:
    """Keep Feast's progress prints, logs and library warnings out of stdout and stderr."""
    loggers = [logging.getLogger(n) for n in ("feast", "ibis", "duckdb", "pyarrow")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    sink = io.StringIO()
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(sink), \
                contextlib.redirect_stderr(sink):
            warnings.simplefilter("ignore")
            yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


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


def _as_repo(repo: FeatureRepo | str | os.PathLike[str]) -> FeatureRepo:
    if isinstance(repo, FeatureRepo):
        return repo
    if isinstance(repo, bool) or not isinstance(repo, (str, os.PathLike)) or not str(repo):
        raise InvalidParameterError(
            f"repo must be a folder path (str or Path) or a FeatureRepo, got {repo!r}"
        )
    return FeatureRepo(Path(repo).resolve())


def _check_store(store: Any) -> None:
    from feast import FeatureStore

    if not isinstance(store, FeatureStore):
        raise InvalidParameterError(
            f"expected a Feast FeatureStore (feature_store() or apply_feature_repo()), "
            f"got {type(store).__name__}"
        )


def _check_names(name: str, values: Any) -> list[str]:
    if isinstance(values, (str, bytes)) or not isinstance(values, Sequence):
        raise InvalidParameterError(
            f"{name} must be a list of column names, got {values!r}"
        )
    values = list(values)
    bad = [v for v in values if not isinstance(v, str) or not v]
    if bad or not values:
        raise InvalidParameterError(
            f"{name} must be a non-empty list of column names, got {values!r}"
        )
    repeated = sorted({v for v in values if values.count(v) > 1})
    if repeated:
        raise InvalidParameterError(f"{name} repeat {repeated}; name each column once")
    return values


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


def _check_target(name: str, frame: pd.DataFrame) -> None:
    target = frame[TARGET]
    if target.isna().any() or not target.isin([0, 1]).all():
        raise InvalidParameterError(
            f"{name} column {TARGET!r} must hold only 0 and 1, got "
            f"{sorted(map(str, target.drop_duplicates().head(5)))}"
        )
    if target.nunique() < 2:
        raise InvalidParameterError(
            f"{name} has {len(frame)} rows with a single class; a churn model needs churners "
            "and stayers"
        )


def _datetimes(name: str, frame: pd.DataFrame, column: str) -> np.ndarray:
    """Return a frame's timestamp column as naive datetime64[ns] (aware ones in UTC)."""
    values = frame[column]
    try:
        with warnings.catch_warnings():  # "could not infer format" for text that is no date
            warnings.simplefilter("ignore")
            stamps = pd.to_datetime(values)
    except (TypeError, ValueError, OverflowError) as exc:
        raise InvalidParameterError(
            f"{name} column {column!r} must hold timestamps, got e.g. "
            f"{values.dropna().head(3).tolist()!r}"
        ) from exc
    if isinstance(stamps.dtype, pd.DatetimeTZDtype):
        stamps = stamps.dt.tz_convert("UTC").dt.tz_localize(None)
    return stamps.to_numpy(dtype="datetime64[ns]")


def _check_dataset(dataset: Any) -> None:
    if not isinstance(dataset, ChurnDataset):
        raise InvalidParameterError(
            f"expected a ChurnDataset (companion.data.generate), got {type(dataset).__name__}"
        )


def _check_columns(name: str, frame: Any, columns: Sequence[str]) -> None:
    if not isinstance(frame, pd.DataFrame):
        raise InvalidParameterError(
            f"{name} must be a pandas DataFrame, got {type(frame).__name__}"
        )
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise InvalidParameterError(
            f"{name} is missing column(s) {missing}; it has {list(frame.columns)}"
        )


def _feature_order(name: str) -> int:
    ordered = [*V1_ACTIVITY_FEATURES, *V2_ACTIVITY_FEATURES]
    return ordered.index(name)


def _timestamp(name: str, value: Any) -> pd.Timestamp:
    if isinstance(value, (bool, int, float, np.number)):
        raise InvalidParameterError(
            f"{name} must be a timestamp or a date string like '2025-06-01', got {value!r}"
        )
    try:
        stamp = pd.Timestamp(value)
    except (TypeError, ValueError, OverflowError) as exc:
        raise InvalidParameterError(
            f"{name} must be a timestamp or a date string like '2025-06-01', got {value!r}"
        ) from exc
    if pd.isna(stamp):
        raise InvalidParameterError(f"{name} must be a timestamp, got {value!r}")
    if stamp.tzinfo is not None:
        stamp = stamp.tz_convert("UTC").tz_localize(None)
    return stamp


def _utc(timestamp: pd.Timestamp) -> Any:
    if timestamp.tzinfo is None:
        timestamp = timestamp.tz_localize("UTC")
    return timestamp.to_pydatetime()


def _write_parquet(frame: pd.DataFrame, path: Path) -> None:
    _write_atomic(path, lambda tmp: frame.to_parquet(tmp, index=False))


def _write_atomic(path: Path, write: Any) -> None:
    handle, name = tempfile.mkstemp(prefix=f".{path.name}-", dir=path.parent)
    os.close(handle)
    tmp = Path(name)
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


__all__ = [
    "ACTIVITY_TTL", "FEATURE_VERSIONS", "RECORD_KEYS", "FeatureRepo", "RowsDroppedError",
    "activity_feature_table", "auc_gap", "compare_definitions", "definition_signature",
    "apply_feature_repo", "build_features", "history_start", "feature_definitions", "feature_store",
    "historical_features", "latest_value_join", "materialize", "model_frame", "online_features",
    "point_in_time_join", "profile_feature_table", "read_model_record", "record_model_version",
    "repo_config", "score_version", "service_features", "train_version", "training_set",
    "version_columns",
]
