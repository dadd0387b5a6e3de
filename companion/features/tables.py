"""The feature tables Feast reads: weekly rolling activity aggregates and the customer profile.

Feast feature views read precomputed columns, so :func:`activity_feature_table` turns weekly
activity into one row per customer and week holding the rolling 4- and 8-week aggregates, and
:func:`profile_feature_table` gives each customer a row at sign-up and one per price change.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from companion.core.checks import check_date
from companion.data import ChurnDataset, check_dataset
from companion.features.versions import (
    _SUMMED,
    _WINDOWS,
    CREATED_TIMESTAMP,
    ENTITY_KEY,
    EVENT_TIMESTAMP,
    V1_ACTIVITY_FEATURES,
    V2_ACTIVITY_FEATURES,
    _feature_order,
)
from companion.training import CATEGORICAL_FEATURES


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
    check_dataset(dataset)
    activity = dataset.activity
    if until is not None:
        activity = activity[activity[EVENT_TIMESTAMP] <= check_date("until", until, aware="utc")]
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
    check_dataset(dataset)
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


def history_start(dataset: ChurnDataset) -> pd.Timestamp:
    """Return a day before the oldest feature row of any source (sign-ups reach years back).

    Materialising from here loads every customer's profile, not only those who signed up
    after activity starts.
    """
    check_dataset(dataset)
    oldest = min(dataset.customers["signup_date"].min(), dataset.activity[EVENT_TIMESTAMP].min())
    return pd.Timestamp(oldest).normalize() - pd.Timedelta(days=1)
