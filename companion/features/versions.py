"""The feature versions: which features each version holds, and the names Feast knows them by.

Version 1 holds the four-week sums of :mod:`companion.training`; version 2 changes a window
and adds a feature. Both stay registered side by side: a model records the feature service
it was trained on (:data:`FEATURE_VERSIONS`), so it is always served the features it read.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from companion.core.checks import check_choice
from companion.training import CATEGORICAL_FEATURES

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

FEATURE_VERSIONS: dict[str, dict[str, Any]] = {
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


def version_columns(version: str) -> list[str]:
    """Return the model input columns of a feature version."""
    spec = FEATURE_VERSIONS[check_choice("feature version", version, FEATURE_VERSIONS)]
    return [*spec["activity"], *PROFILE_FEATURES]


def _feature_order(name: str) -> int:
    ordered = [*V1_ACTIVITY_FEATURES, *V2_ACTIVITY_FEATURES]
    return ordered.index(name)
