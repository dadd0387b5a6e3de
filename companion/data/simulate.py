"""The simulator: customers x weeks as NumPy arrays, turned into the dataset's tables.

The generator is vectorised over customers (NumPy arrays of customers x weeks, in fixed blocks
of :data:`BLOCK_SIZE` customers with their own random streams), seeded,
and byte-for-byte deterministic: the same :class:`~companion.data.config.SimulationConfig`
gives the same tables on any machine. Blocks are assembled without a global sort
(:func:`_interleave`), so memory holds the result and what is left of the blocks only.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from companion.data.config import (
    _SCENARIO_DESCRIPTIONS,
    AGE_BANDS,
    CHANNELS,
    HISTORY_WEEKS,
    LABEL_WINDOW_DAYS,
    PLAN_FEES,
    PLANS,
    RAISED_FEES,
    REGIONS,
    SimulationConfig,
)
from companion.data.tables import ChurnDataset
from companion.errors import InvalidParameterError

logger = logging.getLogger(__name__)

BLOCK_SIZE = 100_000
"""Customers per block; each block has its own random stream, which bounds memory."""

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
