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

The package holds, one concern a module:

- :mod:`~companion.features.versions`: the feature versions and the names Feast knows;
- :mod:`~companion.features.tables`: the feature tables the sources hold;
- :mod:`~companion.features.joins`: the point-in-time and naive joins in pandas;
- :mod:`~companion.features.asof`: the same join on Feast's DuckDB store, DuckDB and pandas;
- :mod:`~companion.features.scaled`: Feast with a Spark offline and a Redis online store;
- :mod:`~companion.features.repo`: the Feast repo, its definitions, applying them;
- :mod:`~companion.features.serving`: materialising, training sets and online reads;
- :mod:`~companion.features.models`: a churn model per feature version;
- :mod:`~companion.features.records`: which feature service a model was trained on;
- :mod:`~companion.features.prerequisite`: the workspace prerequisite ``"features"``.

Example:
    >>> import pandas as pd
    >>> labels = pd.DataFrame({"customer_id": [1], "event_timestamp": [pd.Timestamp("2025-01-10")]})
    >>> rows = pd.DataFrame({"customer_id": [1, 1], "value": [1.0, 2.0],
    ...     "event_timestamp": [pd.Timestamp("2025-01-08"), pd.Timestamp("2025-01-15")]})
    >>> point_in_time_join(labels, rows, ["value"])["value"].tolist()
    [1.0]
"""

from __future__ import annotations

from companion.errors import RowsDroppedError
from companion.features.asof import (
    duckdb_asof_join,
    feast_duckdb_join,
    join_differences,
    pandas_asof_join,
)
from companion.features.joins import latest_value_join, point_in_time_join, training_set
from companion.features.models import (
    auc_gap,
    make_version_model,
    model_frame,
    score_version,
    train_version,
)
from companion.features.prerequisite import build_features
from companion.features.records import read_model_record, record_model_version
from companion.features.repo import (
    FEAST_LOGGERS,
    FeatureRepo,
    apply_feature_repo,
    compare_definitions,
    definition_signature,
    feature_definitions,
    feature_store,
    quiet_feast,
    repo_config,
)
from companion.features.scaled import ScaledStore, scaled_store_config
from companion.features.serving import (
    historical_features,
    materialize,
    online_features,
    service_features,
)
from companion.features.tables import activity_feature_table, history_start, profile_feature_table
from companion.features.versions import (
    ACTIVITY_SOURCE_FILE,
    ACTIVITY_TTL,
    CREATED_TIMESTAMP,
    ENTITY_KEY,
    EVENT_TIMESTAMP,
    FEATURE_VERSIONS,
    OFFLINE_STORES,
    PROFILE_FEATURES,
    PROFILE_SOURCE_FILE,
    PROFILE_VIEW,
    PROJECT,
    RECORD_KEYS,
    V1_ACTIVITY_FEATURES,
    V2_ACTIVITY_FEATURES,
    version_columns,
)

__all__ = [
    "ACTIVITY_SOURCE_FILE",
    "ACTIVITY_TTL",
    "CREATED_TIMESTAMP",
    "ENTITY_KEY",
    "EVENT_TIMESTAMP",
    "FEAST_LOGGERS",
    "FEATURE_VERSIONS",
    "OFFLINE_STORES",
    "PROFILE_FEATURES",
    "PROFILE_SOURCE_FILE",
    "PROFILE_VIEW",
    "PROJECT",
    "RECORD_KEYS",
    "V1_ACTIVITY_FEATURES",
    "V2_ACTIVITY_FEATURES",
    "FeatureRepo",
    "RowsDroppedError",
    "ScaledStore",
    "activity_feature_table",
    "apply_feature_repo",
    "auc_gap",
    "build_features",
    "compare_definitions",
    "definition_signature",
    "duckdb_asof_join",
    "feast_duckdb_join",
    "feature_definitions",
    "feature_store",
    "historical_features",
    "history_start",
    "join_differences",
    "latest_value_join",
    "make_version_model",
    "materialize",
    "model_frame",
    "online_features",
    "pandas_asof_join",
    "point_in_time_join",
    "profile_feature_table",
    "quiet_feast",
    "read_model_record",
    "record_model_version",
    "repo_config",
    "scaled_store_config",
    "score_version",
    "service_features",
    "train_version",
    "training_set",
    "version_columns",
]
