"""Training and evaluating the churn model: features at a snapshot, a model, its scores.

The features are computed the plain pandas way, from the activity of the four weeks that end
at each snapshot, so they never look past the snapshot. Later chapters build the same
features with a feature store; this module is the reference they are compared with.

Example:
    >>> from companion.data import generate
    >>> ds = generate(n_customers=300, months=3, scenarios=())
    >>> frame = snapshot_features(ds, ds.snapshots[:2])
    >>> list(frame.columns[:3])
    ['customer_id', 'snapshot_timestamp', 'sessions_4w']
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from companion.core.checks import (
    check_choice,
    check_columns,
    check_frame,
    check_int,
    check_timestamps,
)
from companion.data import ChurnDataset, check_dataset, monthly_fee_at
from companion.errors import InvalidParameterError

WINDOW_WEEKS = 4
ACTIVITY_AGGREGATES = {
    "sessions_4w": ("sessions", "sum"),
    "minutes_4w": ("minutes_watched", "sum"),
    "days_active_4w": ("days_active", "sum"),
    "support_tickets_4w": ("support_tickets", "sum"),
    "payment_failures_4w": ("payment_failures", "sum"),
    "weeks_seen_4w": ("sessions", "size"),
}
NUMERIC_FEATURES = [*ACTIVITY_AGGREGATES, "tenure_days", "monthly_fee"]
CATEGORICAL_FEATURES = ["plan", "region", "acquisition_channel", "age_band"]
FEATURES = NUMERIC_FEATURES + CATEGORICAL_FEATURES
TARGET = "churned_30d"
MODEL_KINDS = ("logistic", "gbm")
MAX_SEED = 2**32 - 1


def snapshot_features(
    dataset: ChurnDataset,
    snapshots: Iterable[pd.Timestamp | str] | None = None,
    window_weeks: int = WINDOW_WEEKS,
) -> pd.DataFrame:
    """Return one row per labelled customer and snapshot: features, then the label.

    Activity counts if its ``event_timestamp`` lies in ``(snapshot - window, snapshot]``:
    no activity after the snapshot is ever used. Rows count by when the activity happened, not
    by when they reached the warehouse: a week recorded late is counted, as in a warehouse that
    is complete (the point-in-time joins of :mod:`companion.features` can instead keep only the
    rows that had arrived by the snapshot, as a pipeline reading that month's export sees
    them). Customers with no activity in the window get zeros and ``weeks_seen_4w == 0``.
    ``monthly_fee`` is the plan's price in force at the snapshot (from ``dataset.prices``).

    Args:
        dataset: the simulated dataset.
        snapshots: which monthly snapshots to build (all of them if None).
        window_weeks: length of the activity window, in weeks.
    """
    check_dataset(dataset)
    check_int("window_weeks", window_weeks, minimum=1)
    known = pd.DatetimeIndex(dataset.snapshots)
    wanted = known if snapshots is None else check_timestamps("snapshots", snapshots)
    unknown = wanted.difference(known)
    if len(unknown):
        raise InvalidParameterError(
            f"snapshot(s) {[str(s.date()) for s in unknown]} are not in the dataset; accepted: "
            f"{[str(s.date()) for s in known]}"
        )
    window = pd.Timedelta(weeks=window_weeks)
    activity = dataset.activity
    frames = []
    for snapshot in wanted:
        in_window = activity[
            (activity["event_timestamp"] > snapshot - window)
            & (activity["event_timestamp"] <= snapshot)
        ]
        aggregates = in_window.groupby("customer_id").agg(**ACTIVITY_AGGREGATES)
        labels = dataset.labels[dataset.labels["snapshot_timestamp"] == snapshot]
        frame = labels.merge(aggregates, left_on="customer_id", right_index=True, how="left")
        frames.append(frame)
    frame = pd.concat(frames, ignore_index=True)
    for column in ACTIVITY_AGGREGATES:
        frame[column] = frame[column].fillna(0).astype("float64")
    frame = frame.merge(dataset.customers, on="customer_id", how="left")
    # The fee in force at the snapshot, not at sign-up: a price rise reaches existing customers.
    frame["monthly_fee"] = monthly_fee_at(
        dataset.prices, frame["plan"], frame["snapshot_timestamp"]
    )
    frame["tenure_days"] = (frame["snapshot_timestamp"] - frame["signup_date"]).dt.days.astype(
        "float64"
    )
    columns = ["customer_id", "snapshot_timestamp", *FEATURES, TARGET]
    return frame[columns]


def make_model(kind: str = "gbm", seed: int = 0) -> Pipeline:
    """Return an unfitted scikit-learn pipeline for the churn model.

    ``logistic``: imputation, scaling, one-hot encoding and a logistic regression.
    ``gbm``: one-hot encoding and a histogram gradient-boosting classifier.
    """
    check_choice("model kind", kind, MODEL_KINDS)
    check_int("seed", seed, minimum=0)
    if seed > MAX_SEED:
        raise InvalidParameterError(f"seed must be <= {MAX_SEED} (2**32 - 1), got {seed}")
    categorical = OneHotEncoder(handle_unknown="ignore", sparse_output=False)
    if kind == "logistic":
        numeric = Pipeline(
            [("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler())]
        )
        estimator = LogisticRegression(max_iter=1000, C=1.0, random_state=seed)
    else:
        numeric = "passthrough"
        estimator = HistGradientBoostingClassifier(
            max_iter=150,
            learning_rate=0.04,
            max_leaf_nodes=8,
            min_samples_leaf=100,
            random_state=seed,
        )
    preprocess = ColumnTransformer(
        [("numeric", numeric, NUMERIC_FEATURES), ("categorical", categorical, CATEGORICAL_FEATURES)]
    )
    return Pipeline([("features", preprocess), ("model", estimator)])


def train(frame: pd.DataFrame, kind: str = "gbm", seed: int = 0, **params: Any) -> Pipeline:
    """Fit the churn model of ``kind`` on ``frame`` (from :func:`snapshot_features`).

    Extra ``params`` are set on the estimator step (e.g. ``C=0.5`` or ``max_iter=200``).
    """
    check_training_frame(frame, two_classes=True)
    model = make_model(kind, seed)
    for key, value in params.items():
        if isinstance(value, float) and not math.isfinite(value):
            raise InvalidParameterError(
                f"{kind} model parameter {key}={value!r} must be a finite number"
            )
    if params:
        try:
            model.set_params(**{f"model__{key}": value for key, value in params.items()})
        except ValueError as exc:
            raise InvalidParameterError(f"{kind} model does not accept {params}: {exc}") from exc
    try:
        model.fit(frame[FEATURES], frame[TARGET])
    except (ValueError, TypeError) as exc:  # sklearn's parameter and input validation
        raise InvalidParameterError(
            f"{kind} model could not be fitted with parameters {params}: {exc}"
        ) from exc
    return model


def evaluate(
    model: Any, frame: pd.DataFrame, features: Sequence[str] = FEATURES
) -> dict[str, float]:
    """Score a fitted model on ``frame``: ROC AUC, average precision, Brier score, base rate.

    ``model`` is anything with scikit-learn's ``predict_proba``; ``frame`` comes from
    :func:`snapshot_features` and must hold both churners and stayers. ``features`` are the
    columns the model reads (another feature set, e.g. a feature store's version, passes its
    own).
    """
    if not callable(getattr(model, "predict_proba", None)):
        raise InvalidParameterError(
            f"model must be fitted and have predict_proba, got {type(model).__name__}"
        )
    columns = check_columns("features", features)
    check_training_frame(frame, columns, two_classes=True)
    scores = np.asarray(model.predict_proba(frame[columns]), dtype="float64")[:, 1]
    if not np.isfinite(scores).all():
        raise InvalidParameterError("the model returned NaN or infinite scores on this frame")
    y = frame[TARGET].to_numpy().astype(int)
    return {
        "roc_auc": float(roc_auc_score(y, scores)),
        "average_precision": float(average_precision_score(y, scores)),
        "brier": float(brier_score_loss(y, scores)),
        "churn_rate": float(y.mean()),
        "rows": int(len(y)),
    }


def time_split(
    frame: pd.DataFrame, train_snapshots: Sequence[pd.Timestamp | str], test_snapshot: Any
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split ``frame`` into the given training snapshots and one later test snapshot."""
    check_frame("frame", frame)
    if "snapshot_timestamp" not in frame.columns:
        raise InvalidParameterError(
            "frame has no snapshot_timestamp column; build it with snapshot_features()"
        )
    train_ts = check_timestamps("train_snapshots", train_snapshots)
    test_ts = check_timestamps("test_snapshot", [test_snapshot])[0]
    if len(train_ts) and train_ts.max() >= test_ts:
        raise InvalidParameterError(
            f"test snapshot {test_ts.date()} must come after every training snapshot "
            f"(latest {train_ts.max().date()})"
        )
    train_rows = frame[frame["snapshot_timestamp"].isin(train_ts)]
    test_rows = frame[frame["snapshot_timestamp"] == test_ts]
    if train_rows.empty or test_rows.empty:
        raise InvalidParameterError(
            f"no rows for training snapshots {[str(t.date()) for t in train_ts]} or test "
            f"snapshot {test_ts.date()}; the frame has "
            f"{sorted(str(t.date()) for t in frame['snapshot_timestamp'].unique())}"
        )
    return train_rows, test_rows


def check_training_frame(
    frame: Any,
    columns: Sequence[str] = FEATURES,
    *,
    name: str = "frame",
    two_classes: bool = False,
    hint: str = "build it with snapshot_features()",
) -> pd.DataFrame:
    """Return ``frame`` if it holds ``columns`` and a 0/1 target (both classes if asked).

    The one check of a labelled frame before a model is fitted or scored on it, here and in
    the stages that train on other feature sets (a feature store's feature versions).
    ``hint`` ends the message of a missing column: where a frame with them comes from.

    Example:
        >>> check_training_frame(pd.DataFrame({"x": [1.0, 2.0], TARGET: [0, 1]}), ["x"]).shape
        (2, 2)
    """
    if not isinstance(frame, pd.DataFrame):
        raise InvalidParameterError(f"expected a pandas DataFrame, got {type(frame).__name__}")
    check_frame(name, frame, [*columns, TARGET], non_empty=True, hint=hint)
    labels = frame[TARGET]
    bad = sorted(map(str, set(pd.unique(labels[~labels.isin([0, 1])]))))
    if bad:
        raise InvalidParameterError(
            f"{TARGET} must hold 0 or 1 only (no missing values), got {bad[:5]}"
        )
    if two_classes and labels.nunique() < 2:
        raise InvalidParameterError(
            f"{name}'s {len(frame)} rows hold a single class ({TARGET} = {labels.iloc[0]}); "
            "training and evaluation need churners and stayers"
        )
    return frame
