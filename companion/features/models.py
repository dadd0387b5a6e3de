"""A churn model per feature version: fit, score, and the gap between two sets of rows.

The estimator is :mod:`companion.training`'s; only the columns it reads follow the feature
version, and scoring is :func:`companion.training.evaluate` over those columns.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pandas as pd
from sklearn.base import clone
from sklearn.compose import ColumnTransformer
from sklearn.pipeline import Pipeline

from companion.core.checks import check_choice, check_frame, check_int
from companion.evaluation import Estimate, auc_interval, unpaired_difference
from companion.features.versions import (
    FEATURE_VERSIONS,
    V1_ACTIVITY_FEATURES,
    V2_ACTIVITY_FEATURES,
    version_columns,
)
from companion.training import TARGET, check_training_frame, evaluate, make_model

_HINT = "build it with training_set() or historical_features()"


def model_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """Return a copy with empty activity features filled the way the reference does.

    No activity row within the TTL means no recent activity: sums and weeks seen become 0,
    exactly as :func:`companion.training.snapshot_features` fills customers with no activity
    in the window. Profile features are left alone.
    """
    check_frame("frame", frame, [])
    frame = frame.copy()
    activity = [c for c in set(V1_ACTIVITY_FEATURES) | set(V2_ACTIVITY_FEATURES)
                if c in frame.columns and c != "tenure_days"]
    frame[sorted(activity)] = frame[sorted(activity)].fillna(0.0)
    return frame


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


def train_version(frame: pd.DataFrame, version: str, seed: int = 0) -> Pipeline:
    """Fit the churn model of feature ``version`` on a training set from Feast."""
    columns = version_columns(version)
    check_int("seed", seed, minimum=0)
    check_training_frame(frame, columns, name="training set", two_classes=True, hint=_HINT)
    model = make_version_model(version, seed)
    model.fit(model_frame(frame)[columns], frame[TARGET])
    return model


def score_version(model: Pipeline, frame: pd.DataFrame, version: str) -> dict[str, float]:
    """Return ROC AUC, average precision, Brier score, churn rate and rows of ``model``.

    The scores are :func:`companion.training.evaluate`'s, over the version's columns of
    ``frame`` with empty activity features filled (:func:`model_frame`).
    """
    columns = version_columns(version)
    check_frame("frame", frame, [*columns, TARGET], hint=_HINT)
    return evaluate(model, model_frame(frame), columns)


def auc_gap(
    y_first: Any, scores_first: Any, y_second: Any, scores_second: Any
) -> Estimate:
    """Return AUC on a first set of rows minus AUC on a second, with a 95% interval.

    For two *different* sets of rows (an offline held-out set and a later month), where no
    paired interval exists: each AUC gets DeLong's variance and the two are added, as for
    independent samples (:func:`companion.evaluation.unpaired_difference`). When the sets share
    customers their AUCs move together and the true interval is a little narrower, so this one
    errs on the wide side.

    Example:
        >>> gap = auc_gap([0, 1, 0, 1], [0.1, 0.9, 0.2, 0.8], [0, 1, 0, 1], [0.1, 0.9, 0.2, 0.8])
        >>> gap.value
        0.0
    """
    first = auc_interval(y_first, scores_first)
    second = auc_interval(y_second, scores_second)
    return dataclasses.replace(unpaired_difference(first, second), method="DeLong unpaired")
