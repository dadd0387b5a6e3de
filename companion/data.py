"""The sample dataset: a simulated subscription video service whose truth is known.

Customers sign up, watch, open support tickets, fail payments and churn. Because the data is
simulated, we know what no real business knows: each customer's true churn probability at every
monthly snapshot, and the exact day each drift scenario starts. That truth is kept apart from
the tables a model may read (``customers``, ``activity``, ``labels``) so a chapter can grade its
models and monitors against it without leaking it into training.

The generator is vectorised over customers (NumPy arrays of customers x weeks, in fixed blocks
of customers with their own random streams), seeded, and byte-for-byte deterministic: the same
:class:`SimulationConfig` gives the same tables on any machine.

Example:
    >>> ds = generate(SimulationConfig(n_customers=200, months=3, scenarios=()))
    >>> sorted(ds.tables())
    ['activity', 'customers', 'labels', 'prices']
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import os
import shutil
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from companion.core.checks import check_choice, check_int
from companion.errors import InvalidParameterError, UnknownNameError

SCENARIOS: tuple[str, ...] = ("covariate", "concept", "quality")
"""Drift scenarios the simulation knows, each with a known onset."""

PLANS = ("basic", "standard", "premium")
PLAN_FEES = (7.99, 12.99, 17.99)
RAISED_FEES = (7.99, 14.99, 21.99)
"""Plan prices from the concept-drift onset on: the price rise of standard and premium."""
REGIONS = ("north", "south", "east", "west")
CHANNELS = ("organic", "search", "social", "referral", "partner_bundle")
AGE_BANDS = ("18-24", "25-34", "35-44", "45-54", "55+")

HISTORY_WEEKS = 8
"""Weeks of activity generated before the first snapshot, so early snapshots have history."""

LABEL_WINDOW_DAYS = 30
BLOCK_SIZE = 100_000
"""Customers per block; each block has its own random stream, which bounds memory."""

_SCENARIO_DESCRIPTIONS = {
    "covariate": (
        "acquisition_channel, age_band, plan",
        "A partner bundle starts bringing many younger, lighter-watching customers on the "
        "basic plan: the population changes, the rules of churn do not.",
    ),
    "concept": (
        "churned_30d",
        "A price rise on the standard (12.99 -> 14.99) and premium (17.99 -> 21.99) plans: "
        "customers aged 45+ on those plans, loyal until then, start to churn. monthly_fee "
        "rises for everyone on those plans; who churns changes far more than the inputs.",
    ),
    "quality": (
        "minutes_watched",
        "A new TV app reports minutes_watched in seconds for about a third of customers, and "
        "8% of minutes_watched values arrive empty. Behaviour is unchanged; the data is wrong.",
    ),
}


@dataclass(frozen=True)
class SimulationConfig:
    """Parameters of one simulated dataset.

    Attributes:
        n_customers: customers in the population (existing ones plus those who sign up).
        start: date of the first monthly snapshot, ``YYYY-MM-DD``. Activity starts
            ``HISTORY_WEEKS`` weeks earlier.
        months: number of monthly snapshots (one per month from ``start``).
        seed: seed of every random draw.
        scenarios: which drift scenarios happen, a subset of :data:`SCENARIOS`.
        covariate_onset: snapshot index (months after ``start``) where covariate drift starts.
        concept_onset: snapshot index where concept drift (the price rise) starts.
        quality_onset: snapshot index where the data-quality incident starts.
    """

    n_customers: int = 20_000
    start: str = "2025-01-01"
    months: int = 12
    seed: int = 42
    scenarios: tuple[str, ...] = SCENARIOS
    covariate_onset: int = 5
    concept_onset: int = 8
    quality_onset: int = 10

    def __post_init__(self) -> None:
        check_int("n_customers", self.n_customers, minimum=1)
        check_int("months", self.months, minimum=1)
        check_int("seed", self.seed, minimum=0)
        if not isinstance(self.start, str):
            raise InvalidParameterError(
                f"start must be a date string like '2025-01-01', got {self.start!r} "
                f"of type {type(self.start).__name__}"
            )
        try:
            start = pd.Timestamp(self.start)
        except (ValueError, TypeError) as exc:
            raise InvalidParameterError(
                f"start must be a date like '2025-01-01', got {self.start!r}"
            ) from exc
        if start is pd.NaT or pd.isna(start):
            raise InvalidParameterError(
                f"start must be a date like '2025-01-01', got {self.start!r}"
            )
        if start.tz is not None:
            raise InvalidParameterError(
                f"start must be a date without a time zone, got {self.start!r}"
            )
        if start != start.normalize():
            raise InvalidParameterError(f"start must be a date without a time, got {self.start!r}")
        if isinstance(self.scenarios, str) or not isinstance(self.scenarios, (tuple, list)):
            raise InvalidParameterError(
                f"scenarios must be a tuple of names from {SCENARIOS}, got {self.scenarios!r}"
            )
        for name in self.scenarios:
            check_choice("scenario", name, SCENARIOS)
        if len(set(self.scenarios)) != len(self.scenarios):
            raise InvalidParameterError(f"scenarios must not repeat, got {self.scenarios!r}")
        # Keep a canonical order so that equal configs compare and hash equal.
        object.__setattr__(self, "scenarios", tuple(s for s in SCENARIOS if s in self.scenarios))
        for name in ("covariate_onset", "concept_onset", "quality_onset"):
            value = check_int(name, getattr(self, name), minimum=1)
            scenario = name.removesuffix("_onset")
            if scenario in self.scenarios and value >= self.months:
                raise InvalidParameterError(
                    f"{name} must be a snapshot index between 1 and months - 1 = "
                    f"{self.months - 1}, got {value}; drop {scenario!r} from scenarios "
                    f"or raise months"
                )

    @classmethod
    def between(cls, start: str, end: str, **params: Any) -> SimulationConfig:
        """Build a config whose monthly snapshots run from ``start`` up to, not including, ``end``.

        Example:
            >>> SimulationConfig.between("2025-01-01", "2025-07-01", scenarios=()).months
            6
        """
        clash = sorted({"start", "months"} & set(params))
        if clash:
            raise InvalidParameterError(
                f"between() sets {clash} itself from start and end; drop them from the "
                f"other parameters {sorted(params)}"
            )
        first, last = _parse_date("start", start), _parse_date("end", end)
        if last <= first:
            raise InvalidParameterError(
                f"end {end!r} must be after start {start!r}: the window needs at least one month"
            )
        months = (last.year - first.year) * 12 + (last.month - first.month)
        if months < 1:
            raise InvalidParameterError(
                f"end {end!r} must be at least one month after start {start!r}"
            )
        if isinstance(start, pd.Timestamp):
            start = str(first.date()) if first == first.normalize() else first.isoformat()
        known = [f.name for f in dataclasses.fields(cls)]
        unknown = sorted(set(params) - set(known))
        if unknown:
            raise InvalidParameterError(
                f"unknown simulation parameter(s) {unknown}; accepted: {known}"
            )
        return cls(start=start, months=months, **params)

    @property
    def start_timestamp(self) -> pd.Timestamp:
        """The first snapshot, as a timestamp."""
        return pd.Timestamp(self.start)

    @property
    def end_timestamp(self) -> pd.Timestamp:
        """The end of the simulated window (one month after the last snapshot)."""
        return self.start_timestamp + pd.DateOffset(months=self.months)

    @property
    def snapshots(self) -> list[pd.Timestamp]:
        """The monthly snapshot timestamps, first to last."""
        return [self.start_timestamp + pd.DateOffset(months=m) for m in range(self.months)]

    def onset(self, scenario: str) -> pd.Timestamp | None:
        """Return when ``scenario`` starts, or None if it is not in this dataset."""
        check_choice("scenario", scenario, SCENARIOS)
        if scenario not in self.scenarios:
            return None
        return self.snapshots[getattr(self, f"{scenario}_onset")]

    def to_dict(self) -> dict[str, Any]:
        """Return the parameters as plain JSON-friendly values."""
        values = dataclasses.asdict(self)
        values["scenarios"] = list(self.scenarios)
        return values

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> SimulationConfig:
        """Build a config from a mapping (e.g. ``params.yaml``), rejecting unknown keys."""
        if not isinstance(values, Mapping):
            raise InvalidParameterError(
                f"values must be a mapping of simulation parameters, got {values!r} "
                f"of type {type(values).__name__}"
            )
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(map(str, set(values) - known))
        if unknown:
            raise InvalidParameterError(
                f"unknown simulation parameter(s) {unknown}; accepted: {sorted(known)}"
            )
        values = dict(values)
        if isinstance(values.get("scenarios"), list):
            values["scenarios"] = tuple(values["scenarios"])
        return cls(**values)


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
            value = getattr(self, name)
            if not isinstance(value, pd.DataFrame):
                raise InvalidParameterError(
                    f"{name} must be a pandas DataFrame, got {type(value).__name__}"
                )

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


def generate(config: SimulationConfig | None = None, **overrides: Any) -> ChurnDataset:
    """Simulate the dataset described by ``config`` (defaults if None), with overrides.

    Example:
        >>> ds = generate(n_customers=100, months=2, scenarios=())
        >>> bool(ds.labels["churned_30d"].isin([0, 1]).all())
        True
    """
    if config is not None and not isinstance(config, SimulationConfig):
        raise InvalidParameterError(
            f"config must be a SimulationConfig or None, got {type(config).__name__}"
        )
    known = [f.name for f in dataclasses.fields(SimulationConfig)]
    unknown = sorted(set(overrides) - set(known))
    if unknown:
        raise InvalidParameterError(
            f"unknown simulation parameter(s) {unknown}; accepted: {known}"
        )
    if config is None:
        config = SimulationConfig(**overrides)
    elif overrides:
        config = dataclasses.replace(config, **overrides)
    grid = _TimeGrid.from_config(config)
    parts = [
        _simulate_block(config, grid, block, first, min(first + BLOCK_SIZE, config.n_customers))
        for block, first in enumerate(range(0, config.n_customers, BLOCK_SIZE))
    ]
    customers = pd.concat([p.pop("customers") for p in parts], ignore_index=True)
    labels = _interleave([p.pop("labels") for p in parts], len(grid.snapshots))
    truth = _interleave([p.pop("truth") for p in parts], len(grid.snapshots))
    activity = _interleave([p.pop("activity") for p in parts], len(grid.week_end))
    return ChurnDataset(
        config=config,
        customers=customers,
        activity=activity,
        labels=labels,
        prices=_prices_table(config, grid),
        truth=truth,
        onsets=_onsets_table(config),
    )


def monthly_fee_at(
    prices: pd.DataFrame, plans: pd.Series | np.ndarray, when: pd.Series | np.ndarray
) -> np.ndarray:
    """Return the fee in force for each ``(plan, timestamp)`` pair, from the price list.

    Example:
        >>> ds = generate(n_customers=50, months=10, scenarios=("concept",))
        >>> monthly_fee_at(ds.prices, ["premium", "premium"], ["2025-08-01", "2025-09-01"])
        array([17.99, 21.99])
    """
    if not isinstance(prices, pd.DataFrame):
        raise InvalidParameterError(
            f"prices must be the price list DataFrame (dataset.prices), got "
            f"{type(prices).__name__}"
        )
    missing = [c for c in ("plan", "effective_from", "monthly_fee") if c not in prices.columns]
    if missing:
        raise InvalidParameterError(
            f"prices is missing column(s) {missing}; it needs plan, effective_from, monthly_fee"
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


# --------------------------------------------------------------------------- simulation


@dataclass(frozen=True)
class _TimeGrid:
    week_end: np.ndarray  # datetime64[ns], end of each simulated week
    snapshots: np.ndarray  # datetime64[ns]
    end: np.datetime64

    @classmethod
    def from_config(cls, config: SimulationConfig) -> _TimeGrid:
        first = config.start_timestamp - pd.Timedelta(weeks=HISTORY_WEEKS)
        n_weeks = (config.end_timestamp - first).days // 7
        week_end = (first + pd.to_timedelta(7 * np.arange(1, n_weeks + 1), unit="D")).to_numpy()
        snapshots = pd.DatetimeIndex(config.snapshots).to_numpy()
        return cls(week_end=week_end, snapshots=snapshots, end=config.end_timestamp.to_datetime64())

    @property
    def first_week_start(self) -> np.datetime64:
        return self.week_end[0] - np.timedelta64(7, "D")


def _parse_date(name: str, value: object) -> pd.Timestamp:
    """Return ``value`` as a time-zone-naive timestamp, or raise naming it."""
    if not isinstance(value, (str, pd.Timestamp)) or isinstance(value, bool):
        raise InvalidParameterError(
            f"{name} must be a date like '2025-01-01', got {value!r} of type {type(value).__name__}"
        )
    try:
        stamp = pd.Timestamp(value)
    except (ValueError, TypeError) as exc:
        raise InvalidParameterError(
            f"{name} must be a date like '2025-01-01', got {value!r}"
        ) from exc
    if pd.isna(stamp):
        raise InvalidParameterError(f"{name} must be a date like '2025-01-01', got {value!r}")
    if stamp.tz is not None:
        raise InvalidParameterError(f"{name} must have no time zone, got {value!r}")
    return stamp


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _days(n: np.ndarray | int) -> np.ndarray:
    return np.asarray(n, dtype="int64").astype("timedelta64[D]")


def _simulate_block(
    config: SimulationConfig, grid: _TimeGrid, block: int, first: int, stop: int
) -> dict[str, Any]:
    rng = np.random.default_rng([config.seed, block])
    n = stop - first
    n_weeks = len(grid.week_end)
    covariate_on = "covariate" in config.scenarios
    covariate_onset = grid.snapshots[config.covariate_onset] if covariate_on else None

    # --- customers -------------------------------------------------------------------------
    # 70% were already subscribers before activity starts; 30% sign up during the window.
    existing = rng.random(n) < 0.7
    history_start = grid.first_week_start
    existing_offset = rng.integers(1, 3 * 365, size=n)  # days before activity starts
    last_signup = grid.end - np.timedelta64(14, "D")
    window_days = int((last_signup - history_start) / np.timedelta64(1, "D"))
    u = rng.random(n)
    if covariate_on:
        # After the onset, sign-ups quadruple: a partner bundle is being promoted.
        pre = int((covariate_onset - history_start) / np.timedelta64(1, "D"))
        post = window_days - pre
        share_post = 4 * post / (pre + 4 * post)
        new_offset = np.where(
            u < share_post, pre + (u / share_post) * post, (u - share_post) / (1 - share_post) * pre
        ).astype("int64")
    else:
        new_offset = (u * window_days).astype("int64")
    signup = np.where(
        existing, history_start - _days(existing_offset), history_start + _days(new_offset)
    ).astype("datetime64[ns]")

    partner_draw = rng.random(n)
    partner = (
        np.zeros(n, dtype=bool)
        if not covariate_on
        else (signup >= covariate_onset) & (partner_draw < 0.6)
    )
    channel = rng.choice(4, size=n, p=[0.45, 0.25, 0.2, 0.1])
    channel = np.where(partner, 4, channel)
    age_base = rng.choice(5, size=n, p=[0.14, 0.26, 0.24, 0.18, 0.18])
    age_partner = rng.choice(5, size=n, p=[0.40, 0.35, 0.15, 0.07, 0.03])
    age = np.where(partner, age_partner, age_base)
    plan_base = rng.choice(3, size=n, p=[0.45, 0.35, 0.20])
    plan_partner = rng.choice(3, size=n, p=[0.8, 0.2, 0.0])
    plan = np.where(partner, plan_partner, plan_base)
    region = rng.choice(4, size=n, p=[0.3, 0.25, 0.25, 0.2])
    fee = np.asarray(PLAN_FEES)[plan]
    if "concept" in config.scenarios:
        raised = signup >= grid.snapshots[config.concept_onset]
        fee = np.where(raised, np.asarray(RAISED_FEES)[plan], fee)

    # --- latent engagement: a customer level plus a weekly AR(1) wander --------------------
    age_effect = np.array([0.3, 0.2, 0.0, -0.2, -0.4])[age]
    plan_effect = np.array([-0.2, 0.0, 0.3])[plan]
    channel_effect = np.array([0.0, 0.0, -0.1, 0.2, -1.2])[channel]
    level = age_effect + plan_effect + channel_effect + rng.normal(0.0, 0.6, n)
    rho = 0.85
    shocks = rng.standard_normal((n, n_weeks), dtype=np.float32)
    shocks *= np.float32(0.5 * np.sqrt(1 - rho**2))
    wander = np.empty((n, n_weeks), dtype="float32")
    wander[:, 0] = rng.normal(0.0, 0.5, n)
    for w in range(1, n_weeks):
        wander[:, w] = rho * wander[:, w - 1] + shocks[:, w]
    del shocks
    engagement = wander + level[:, None].astype("float32")
    del wander
    payment_risk = rng.beta(1.0, 40.0, n) * np.array([1.8, 1.3, 1.0, 0.8, 0.7])[age]
    new_app = rng.random(n) < 0.35  # used by the data-quality incident

    # --- weekly behaviour drawn from engagement ------------------------------------------
    sessions = rng.poisson(np.exp(1.5 + 0.6 * engagement)).astype("int16")
    minutes_per_session = np.exp(3.0 + 0.25 * engagement)  # about 20 minutes a session
    # A sum of `sessions` Gamma(2) session lengths is one Gamma(2 * sessions) draw.
    minutes_true = (rng.gamma(2.0 * sessions, minutes_per_session / 2.0)).astype("float32")
    del minutes_per_session
    support_tickets = rng.poisson(0.04 * np.exp(-0.6 * engagement)).astype("int8")
    del engagement
    payment_failures = (
        rng.random((n, n_weeks), dtype=np.float32) < payment_risk[:, None].astype("float32")
    ).astype("int8")

    # --- churn, one monthly snapshot at a time ---------------------------------------------
    churned = np.zeros(n, dtype=bool)
    churn_date = np.full(n, grid.end + np.timedelta64(3650, "D"), dtype="datetime64[ns]")
    decision = np.full(n, np.datetime64("NaT"), dtype="datetime64[ns]")
    snapshot_rows, label_values, truth_values = [], [], []
    for m, snap in enumerate(grid.snapshots):
        active = (signup < snap) & ~churned
        recent = (grid.week_end > snap - np.timedelta64(28, "D")) & (grid.week_end <= snap)
        alive_recent = signup[:, None] < grid.week_end[recent][None, :]
        # Rates over the weeks the customer was subscribed, scaled to four weeks, so that a
        # customer who joined days ago is not mistaken for one who stopped watching. With no
        # full week yet, the risk is that of an average week (z = 0, no tickets, no failures).
        weeks_alive = alive_recent.sum(axis=1)
        scale = np.where(weeks_alive > 0, recent.sum() / np.maximum(weeks_alive, 1), 0.0)
        minutes_4w = (minutes_true[:, recent] * alive_recent).sum(axis=1) * scale
        tickets_4w = (support_tickets[:, recent] * alive_recent).sum(axis=1) * scale
        failures_4w = (payment_failures[:, recent] * alive_recent).sum(axis=1) * scale
        tenure_months = (snap - signup) / np.timedelta64(30, "D")
        z_minutes = np.where(weeks_alive > 0, (np.log1p(minutes_4w) - 5.7) / 0.8, 0.0)
        logit = (
            -4.45
            - 0.85 * z_minutes
            + 0.55 * tickets_4w
            + 0.9 * failures_4w
            + 0.35 * (plan == 0)
            - 0.35 * (age >= 3)
            + 0.9 * (tenure_months < 3)
            + 0.4 * (channel == 4)
        )
        if "concept" in config.scenarios and m >= config.concept_onset:
            # The price rise: older customers on the dearer plans, loyal until now, leave.
            logit = logit + 2.8 * ((plan >= 1) & (age >= 3)) + 0.2 * (plan >= 1)
        probability = _sigmoid(logit)
        leaves = active & (rng.random(n) < probability)
        gap = rng.integers(1, LABEL_WINDOW_DAYS + 1, size=n)
        churn_date = np.where(leaves, snap + _days(gap), churn_date)
        decision = np.where(leaves, snap, decision)
        churned |= leaves
        ids = np.flatnonzero(active)
        snapshot_rows.append((np.full(ids.size, m, dtype="int16"), ids))
        label_values.append(leaves[ids].astype("int8"))
        truth_values.append(np.round(probability[ids], 6))

    # --- activity rows: weeks between sign-up and cancellation -----------------------------
    alive = (signup[:, None] < grid.week_end[None, :]) & (
        grid.week_end[None, :] <= churn_date[:, None]
    )
    week_idx, cust_idx = np.nonzero(alive.T)  # week-major: rows come out in time order
    del alive
    flat = cust_idx * n_weeks + week_idx  # 1-D takes are much cheaper than 2-D fancy indexing
    s = sessions.ravel().take(flat)
    minutes = minutes_true.ravel().take(flat)
    event_ts = grid.week_end[week_idx]
    # Customers about to cancel stop watching first: after the decision, activity fades.
    fading = event_ts > decision[cust_idx]
    s = np.where(fading, (s * 0.35).astype("int16"), s)
    minutes = np.round(np.where(fading, minutes * np.float32(0.3), minutes).astype("float64"), 1)
    # Days with at least one session: between 1 and min(sessions, 7), more sessions more days.
    most = np.minimum(s, 7).astype("float32")
    days_draw = rng.random(flat.size, dtype=np.float32)
    days = np.where(s == 0, 0, np.minimum(1 + np.floor(np.sqrt(days_draw) * most), most))
    days = days.astype("int8")
    lag_seconds = 7200 + np.floor(rng.exponential(6 * 3600, size=week_idx.size)).astype("int64")
    created_ts = event_ts + lag_seconds.astype("timedelta64[s]")

    missing_rate = np.full(week_idx.size, 0.003)
    if "quality" in config.scenarios:
        incident = event_ts >= grid.snapshots[config.quality_onset]
        minutes = np.where(incident & new_app[cust_idx], np.round(minutes * 60.0, 1), minutes)
        missing_rate = np.where(incident, 0.08, missing_rate)
    minutes = np.where(rng.random(week_idx.size) < missing_rate, np.nan, minutes)

    activity = {
        "_time": week_idx.astype("int16"),
        "customer_id": (first + cust_idx + 1).astype("int64"),
        "event_timestamp": event_ts,
        "created_timestamp": created_ts.astype("datetime64[ns]"),
        "sessions": s.astype("int16"),
        "minutes_watched": minutes,
        "days_active": days,
        "support_tickets": support_tickets.ravel().take(flat),
        "payment_failures": payment_failures.ravel().take(flat),
    }
    snap_code = np.concatenate([code for code, _ in snapshot_rows])
    ids = np.concatenate([ids for _, ids in snapshot_rows])
    keys = {
        "_time": snap_code,
        "customer_id": (first + ids + 1).astype("int64"),
        "snapshot_timestamp": grid.snapshots[snap_code],
    }
    customers = pd.DataFrame(
        {
            "customer_id": np.arange(first + 1, stop + 1, dtype="int64"),
            "signup_date": signup,
            "plan": pd.Categorical.from_codes(plan, PLANS),
            "region": pd.Categorical.from_codes(region, REGIONS),
            "acquisition_channel": pd.Categorical.from_codes(channel, CHANNELS),
            "age_band": pd.Categorical.from_codes(age, AGE_BANDS, ordered=True),
            "monthly_fee": fee,
        }
    )
    return {
        "customers": customers,
        "activity": activity,
        "labels": {**keys, "churned_30d": np.concatenate(label_values)},
        "truth": {**keys, "churn_probability": np.concatenate(truth_values)},
    }


def _interleave(parts: list[dict[str, np.ndarray]], n_times: int) -> pd.DataFrame:
    """Build one frame sorted by time, then customer, from per-block columns.

    Each block's rows are sorted by their time code (``_time``: week or snapshot index) and
    blocks hold consecutive customer ids, so every row's place in the result is known from
    counts alone: rows of earlier times first, then, within a time, earlier blocks. Each block
    is written straight into its place and released, so memory holds the result plus what is
    left of the blocks, never a concatenated copy and a sorted copy at once.
    """
    if len(parts) == 1:
        part = {name: values for name, values in parts[0].items() if name != "_time"}
        return pd.DataFrame(part, copy=True)  # labels and truth share key arrays: copy them
    counts = np.stack([np.bincount(p["_time"], minlength=n_times) for p in parts])
    time_start = np.concatenate([[0], np.cumsum(counts.sum(axis=0))[:-1]])
    block_start = time_start[None, :] + np.cumsum(counts, axis=0) - counts
    total = int(counts.sum())
    columns = {
        name: np.empty(total, dtype=values.dtype)
        for name, values in parts[0].items()
        if name != "_time"
    }
    for b, part in enumerate(parts):
        codes = part.pop("_time")
        first_of_time = np.concatenate([[0], np.cumsum(counts[b])[:-1]])
        destination = block_start[b][codes] + (np.arange(codes.size) - first_of_time[codes])
        for name, column in columns.items():
            column[destination] = part.pop(name)
    return pd.DataFrame(columns, copy=False)


def _prices_table(config: SimulationConfig, grid: _TimeGrid) -> pd.DataFrame:
    """The price list: every plan's price from before the first sign-up, then any rise."""
    first = pd.Timestamp(grid.first_week_start) - pd.Timedelta(days=3 * 365)
    rows = [(plan, first, fee) for plan, fee in zip(PLANS, PLAN_FEES, strict=True)]
    if "concept" in config.scenarios:
        onset = config.onset("concept")
        rows += [
            (plan, onset, new)
            for plan, old, new in zip(PLANS, PLAN_FEES, RAISED_FEES, strict=True)
            if new != old
        ]
    frame = pd.DataFrame(rows, columns=["plan", "effective_from", "monthly_fee"])
    frame["plan"] = pd.Categorical(frame["plan"], categories=PLANS)
    frame["effective_from"] = pd.to_datetime(frame["effective_from"]).astype("datetime64[ns]")
    return frame


def _onsets_table(config: SimulationConfig) -> pd.DataFrame:
    rows = []
    for scenario in config.scenarios:
        affects, description = _SCENARIO_DESCRIPTIONS[scenario]
        rows.append(
            {
                "scenario": scenario,
                "onset": config.onset(scenario),
                "affects": affects,
                "description": description,
            }
        )
    frame = pd.DataFrame(rows, columns=["scenario", "onset", "affects", "description"])
    frame["onset"] = pd.to_datetime(frame["onset"])
    return frame


# --------------------------------------------------------------------------- hashing and files


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


TABLE_FILES = {
    "customers": "customers.parquet",
    "activity": "activity.parquet",
    "labels": "labels.parquet",
    "prices": "prices.parquet",
    "truth": "truth.parquet",
    "onsets": "onsets.parquet",
}


def check_dataset(dataset: object, name: str = "dataset") -> ChurnDataset:
    """Return ``dataset`` if it is a :class:`ChurnDataset`; raise naming what it is otherwise.

    Example:
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


def _check_directory(directory: object) -> Path:
    if isinstance(directory, bytes) or not isinstance(directory, (str, os.PathLike)):
        raise InvalidParameterError(
            f"directory must be a path (str or os.PathLike), got {directory!r} "
            f"of type {type(directory).__name__}"
        )
    path = Path(directory)
    if str(directory) == "":
        raise InvalidParameterError("directory must not be empty")
    if path.exists() and not path.is_dir():
        raise InvalidParameterError(f"{path} exists and is not a folder; give a folder path")
    return path


def _write_files(directory: Path, writers: Mapping[str, Callable[[Path], None]]) -> dict[str, Path]:
    """Write ``writers``' files into ``directory``, all or nothing.

    Every file is first written into a temporary folder beside ``directory``. A new
    ``directory`` is then renamed into place in one step; in an existing one (which may hold
    other files) each file is swapped in, and if a swap fails the files already swapped are put
    back as they were. Either way, a failure leaves no half-written file and no mix of old and
    new tables.
    """
    directory.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f".{directory.name}-new-", dir=directory.parent))
    backup: Path | None = None
    try:
        for filename, write in writers.items():
            write(scratch / filename)
        if not directory.exists():
            os.chmod(scratch, 0o755)
            os.replace(scratch, directory)
        else:
            backup = Path(tempfile.mkdtemp(prefix=f".{directory.name}-old-", dir=directory.parent))
            saved, placed = [], []
            try:
                for filename in writers:
                    target = directory / filename
                    if target.exists():
                        os.replace(target, backup / filename)
                        saved.append(filename)
                    os.replace(scratch / filename, target)
                    placed.append(filename)
            except BaseException:
                for filename in placed:
                    (directory / filename).unlink(missing_ok=True)
                for filename in saved:
                    os.replace(backup / filename, directory / filename)
                raise
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
        if backup is not None:
            shutil.rmtree(backup, ignore_errors=True)
    return {filename: directory / filename for filename in writers}


def write_dataset(dataset: ChurnDataset, directory: str | os.PathLike[str]) -> dict[str, Path]:
    """Write every table as Parquet into ``directory``, all or nothing.

    The files are written to a temporary folder beside ``directory`` and moved into place only
    when all of them are written, so an interrupted call leaves no half-written dataset (and
    no mix of old and new tables). Returns the path of each table by name.
    """
    check_dataset(dataset)
    directory = _check_directory(directory)
    tables = dataset.all_tables()

    def writer(frame: pd.DataFrame) -> Callable[[Path], None]:
        return lambda path: frame.to_parquet(path, index=False)

    paths = _write_files(
        directory, {TABLE_FILES[name]: writer(frame) for name, frame in tables.items()}
    )
    return {name: paths[TABLE_FILES[name]] for name in tables}


def read_table(directory: str | os.PathLike[str], name: str) -> pd.DataFrame:
    """Read one table written by :func:`write_dataset`."""
    check_choice("table", name, TABLE_FILES)
    directory = _check_directory(directory)
    path = directory / TABLE_FILES[name]
    if not path.is_file():
        found = sorted(p.name for p in directory.glob("*.parquet")) if directory.is_dir() else []
        raise InvalidParameterError(
            f"no {name} table at {path}; found {found or 'no tables'}: write the dataset there "
            "first with write_dataset()"
        )
    return pd.read_parquet(path)


def write_sample(
    dataset: ChurnDataset, directory: str | os.PathLike[str], n_customers: int = 50
) -> dict[str, Path]:
    """Write a small CSV sample (the first ``n_customers`` customers), all or nothing."""
    check_dataset(dataset)
    check_int("n_customers", n_customers, minimum=1)
    directory = _check_directory(directory)
    keep = set(dataset.customers["customer_id"].head(n_customers))
    frames = {}
    for name, frame in dataset.all_tables().items():
        if "customer_id" in frame.columns:
            frame = frame[frame["customer_id"].isin(keep)]
        frames[name] = frame

    def writer(frame: pd.DataFrame) -> Callable[[Path], None]:
        return lambda path: frame.to_csv(path, index=False, lineterminator="\n")

    paths = _write_files(directory, {f"{name}.csv": writer(f) for name, f in frames.items()})
    return {name: paths[f"{name}.csv"] for name in frames}


def load_params(path: str | os.PathLike[str], section: str = "simulation") -> SimulationConfig:
    """Read a :class:`SimulationConfig` from the ``section`` of a YAML params file."""
    import yaml

    if isinstance(path, bytes) or not isinstance(path, (str, os.PathLike)):
        raise InvalidParameterError(
            f"path must be a path to a YAML file, got {path!r} of type {type(path).__name__}"
        )
    if not isinstance(section, str):
        raise InvalidParameterError(f"section must be a str, got {type(section).__name__}")
    if not Path(path).is_file():
        raise InvalidParameterError(f"no params file at {path}; give the path of a YAML file")
    try:
        with open(path, encoding="utf-8") as handle:
            params = yaml.safe_load(handle) or {}
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise InvalidParameterError(f"{path} is not valid YAML: {exc}") from exc
    if not isinstance(params, Mapping):
        raise InvalidParameterError(
            f"{path} must hold a mapping of sections, got {type(params).__name__}"
        )
    if section not in params:
        raise UnknownNameError(
            f"{path} has no {section!r} section; found {sorted(map(str, params))}"
        )
    if not isinstance(params[section], Mapping):
        raise InvalidParameterError(
            f"section {section!r} of {path} must be a mapping of simulation parameters, got "
            f"{params[section]!r}"
        )
    return SimulationConfig.from_mapping(params[section])


def main(argv: list[str] | None = None) -> None:
    """Command line used by the DVC pipeline in ``data/``."""
    parser = argparse.ArgumentParser(prog="python -m companion.data", description=main.__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    gen = sub.add_parser("generate", help="simulate the dataset and write it as Parquet")
    gen.add_argument("--params", default="params.yaml")
    gen.add_argument("--out", required=True)
    sample = sub.add_parser("sample", help="write a small CSV sample of the dataset")
    sample.add_argument("--params", default="params.yaml")
    sample.add_argument("--out", required=True)
    sample.add_argument("--customers", type=int, default=50)
    args = parser.parse_args(argv)
    dataset = generate(load_params(args.params))
    if args.command == "generate":
        paths = write_dataset(dataset, args.out)
    else:
        paths = write_sample(dataset, args.out, args.customers)
    for name, path in paths.items():
        print(f"{name:>9}: {path}")
    print(f"content hash: {dataset.content_hash()}")


if __name__ == "__main__":
    main()
