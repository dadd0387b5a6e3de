"""The dataset as tables: :class:`ChurnDataset`, its content hash, and lookups on its tables.

A :class:`ChurnDataset` holds the three model-facing tables, the price list and the truth
behind them; :func:`content_hash` fingerprints any set of tables (the pinned hash of the
default dataset is computed with it); :func:`check_dataset` is the one check every stage uses
for a dataset argument; :func:`monthly_fee_at` reads the price in force at a time.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from companion.core.checks import check_frame
from companion.data.config import PLANS, SimulationConfig
from companion.errors import InvalidParameterError

TABLE_FILES = {
    "customers": "customers.parquet",
    "activity": "activity.parquet",
    "labels": "labels.parquet",
    "prices": "prices.parquet",
    "truth": "truth.parquet",
    "onsets": "onsets.parquet",
}
"""The Parquet file of each table, by table name."""

@dataclass(frozen=True)
class ChurnDataset:
    """One simulated dataset: three model-facing tables and the truth behind them.

    Attributes:
        config: the parameters that produced it.
        customers: one row per customer: ``customer_id, signup_date, plan, region,
            acquisition_channel, age_band, monthly_fee`` (the plan's price at sign-up).
        activity: one row per customer per week while subscribed: ``customer_id,
            event_timestamp`` (end of the week), ``created_timestamp`` (when the row reached
            the warehouse), ``sessions, minutes_watched, days_active, support_tickets,
            payment_failures``.
        labels: one row per active customer per monthly snapshot: ``customer_id,
            snapshot_timestamp, churned_30d`` (cancels within 30 days after the snapshot).
        prices: the price list: ``plan, effective_from, monthly_fee``, one row per plan and
            price change (the price rise of the concept scenario adds two rows).
        truth: never a model input: ``customer_id, snapshot_timestamp, churn_probability``.
        onsets: never a model input: ``scenario, onset, affects, description``.
    """

    config: SimulationConfig
    customers: pd.DataFrame
    activity: pd.DataFrame
    labels: pd.DataFrame
    prices: pd.DataFrame
    truth: pd.DataFrame
    onsets: pd.DataFrame

    def __post_init__(self) -> None:
        if not isinstance(self.config, SimulationConfig):
            raise InvalidParameterError(
                f"config must be a SimulationConfig, got {type(self.config).__name__}"
            )
        for name in TABLE_FILES:
            check_frame(name, getattr(self, name))

    def tables(self) -> dict[str, pd.DataFrame]:
        """Return the tables a model may read, by name (the truth is left out on purpose)."""
        return {
            "customers": self.customers,
            "activity": self.activity,
            "labels": self.labels,
            "prices": self.prices,
        }

    def all_tables(self) -> dict[str, pd.DataFrame]:
        """Return every table, the truth included, by name."""
        return {**self.tables(), "truth": self.truth, "onsets": self.onsets}

    @property
    def snapshots(self) -> list[pd.Timestamp]:
        """The monthly snapshot timestamps."""
        return self.config.snapshots

    def content_hash(self) -> str:
        """Return a SHA-256 over every table's values, column names and dtypes."""
        return content_hash(self.all_tables())


def monthly_fee_at(
    prices: pd.DataFrame, plans: pd.Series | np.ndarray, when: pd.Series | np.ndarray
) -> np.ndarray:
    """Return the fee in force for each ``(plan, timestamp)`` pair, from the price list.

    Example:
        >>> from companion.data import generate
        >>> ds = generate(n_customers=50, months=10, scenarios=("concept",))
        >>> monthly_fee_at(ds.prices, ["premium", "premium"], ["2025-08-01", "2025-09-01"])
        array([17.99, 21.99])
    """
    check_frame(
        "prices (the price list, dataset.prices)",
        prices,
        ["plan", "effective_from", "monthly_fee"],
        hint="it needs plan, effective_from, monthly_fee",
    )
    plans = np.asarray(plans, dtype=object)
    when_values = np.asarray(when)
    if plans.ndim != 1 or when_values.ndim != 1 or plans.shape != when_values.shape:
        raise InvalidParameterError(
            f"plans and when must be 1-D and of one length, got shapes {plans.shape} and "
            f"{when_values.shape}"
        )
    plans = pd.Series(plans).astype(str)
    try:
        when = pd.to_datetime(pd.Series(when_values)).astype("datetime64[ns]")
    except (ValueError, TypeError) as exc:
        raise InvalidParameterError(
            f"when must hold timestamps without a time zone, like '2025-09-01': {exc}"
        ) from exc
    unknown = sorted(set(plans) - set(prices["plan"].astype(str)))
    if unknown:
        raise InvalidParameterError(f"unknown plan(s) {unknown}; accepted: {list(PLANS)}")
    if when.isna().any():
        raise InvalidParameterError("timestamps must not be missing")
    fees = np.full(len(plans), np.nan)
    for plan, rows in prices.groupby(prices["plan"].astype(str), observed=True):
        rows = rows.sort_values("effective_from")
        mask = (plans == plan).to_numpy()
        position = np.searchsorted(
            rows["effective_from"].to_numpy(), when[mask].to_numpy(), side="right"
        )
        if (position == 0).any():
            raise InvalidParameterError(
                f"a timestamp precedes the first price of plan {plan!r} "
                f"({rows['effective_from'].iloc[0].date()})"
            )
        fees[mask] = rows["monthly_fee"].to_numpy()[position - 1]
    return fees

def content_hash(tables: Mapping[str, pd.DataFrame]) -> str:
    """Return a SHA-256 over tables' names, columns, dtypes and values, in name order.

    Example:
        >>> content_hash({"t": pd.DataFrame({"a": [1, 2]})})[:12]
        '887f215dbf66'
    """
    if not isinstance(tables, Mapping):
        raise InvalidParameterError(
            f"tables must be a mapping of name to DataFrame, got {type(tables).__name__}"
        )
    for name, frame in tables.items():
        if not isinstance(name, str) or not isinstance(frame, pd.DataFrame):
            raise InvalidParameterError(
                f"tables must map str names to DataFrames, got {name!r}: {type(frame).__name__}"
            )
    digest = hashlib.sha256()
    for name in sorted(tables):
        frame = tables[name]
        digest.update(name.encode())
        for column in frame.columns:
            digest.update(f"{column}:{frame[column].dtype}".encode())
        digest.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    return digest.hexdigest()


def check_dataset(dataset: object, name: str = "dataset") -> ChurnDataset:
    """Return ``dataset`` if it is a :class:`ChurnDataset`; raise naming what it is otherwise.

    Example:
        >>> from companion.data import generate
        >>> check_dataset(generate(n_customers=20, months=1, scenarios=())).config.n_customers
        20
    """
    if not isinstance(dataset, ChurnDataset):
        simple = dataset is None or isinstance(dataset, (str, int, float, os.PathLike))
        shown = f"{dataset!r} " if simple and len(repr(dataset)) <= 60 else "a value "
        raise InvalidParameterError(
            f"{name} must be a ChurnDataset (from generate()), got {shown}"
            f"of type {type(dataset).__name__}"
        )
    return dataset

