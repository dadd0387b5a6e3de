"""A retention offer with a known effect: what chapter 9's experiment measures and grades.

The simulated business can send a customer a retention offer at a monthly snapshot: half off
the next month's fee. The offer's true effect is known and documented here, so an A/B test of
who gets it can be graded against the truth:

- an offer multiplies the customer's true 30-day churn probability (the ``truth`` table) by
  ``1 - OFFER_EFFECT[plan]``: 15% fewer churners on ``basic``, 30% on ``standard``, 40% on
  ``premium`` (the dearer the plan, the more a discount is worth to its customer), so a
  segment analysis by plan has something real to find;
- an offer costs :data:`OFFER_COST_SHARE` (half) of the customer's monthly fee in force at the
  snapshot (3.995, 6.495 or 8.995 at the launch prices), whether or not the customer stays.

:func:`draw_outcomes` draws the 30-day churn outcomes of one snapshot given who got an offer.
Its random numbers come from their own stream, ``numpy.random.default_rng([seed,
OFFER_STREAM, snapshot index])``: the dataset's draws (streams ``[seed, block]``) are never
touched, and the outcomes are drawn with common random numbers: each customer has one uniform
``u`` per snapshot and churns when ``u < probability``, so an offer can only turn a churner
into a stayer, never the reverse, and the same customer with the same offer has the same
outcome in every run. These outcomes are not the dataset's ``labels`` (those were drawn
without any offer): the experiment's month is its own.

This module stands apart from :mod:`companion.data`'s package on purpose: it is not imported by
``companion/data/__init__.py``, so the sample dataset's DVC stage (which depends on the
package's files) and the code version chapter 5 prints for a training run do not change with
it. Import it directly: ``from companion.data import offers``.

Example:
    >>> from companion.data import generate
    >>> ds = generate(n_customers=300, months=2, scenarios=())
    >>> ids = ds.truth.loc[ds.truth["snapshot_timestamp"] == ds.snapshots[1], "customer_id"]
    >>> out = draw_outcomes(ds, ds.snapshots[1], ids, offered=ids % 2 == 0)
    >>> bool((out["churn_probability"] <= out["base_probability"]).all())
    True
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd

from companion.core.checks import check_date, check_int
from companion.data.config import PLANS
from companion.data.tables import check_dataset, monthly_fee_at
from companion.errors import InvalidParameterError

__all__ = [
    "OFFER_COST_SHARE",
    "OFFER_EFFECT",
    "OFFER_STREAM",
    "draw_outcomes",
    "offer_cost",
    "offer_effect",
]

logger = logging.getLogger(__name__)

OFFER_EFFECT: dict[str, float] = {"basic": 0.15, "standard": 0.30, "premium": 0.40}
"""Relative reduction of the true churn probability an offer brings, by plan."""

OFFER_COST_SHARE = 0.5
"""An offer costs this share of the customer's monthly fee in force at the snapshot."""

OFFER_STREAM = 9_001
"""The middle word of the outcomes' random stream; the dataset's streams are ``[seed, block]``
with block < 10,000 customers-blocks, so the two never meet."""


def _plans(dataset: Any, customer_ids: np.ndarray) -> np.ndarray:
    customers = dataset.customers.set_index("customer_id")
    return customers["plan"].astype(str).reindex(customer_ids).to_numpy()


def offer_effect(dataset: Any, customer_ids: Any) -> np.ndarray:
    """The true relative effect of an offer for each customer (from :data:`OFFER_EFFECT`)."""
    dataset = check_dataset(dataset)
    ids = _check_ids(customer_ids)
    plans = _plans(dataset, ids)
    _check_known(ids, plans)
    return np.array([OFFER_EFFECT[p] for p in plans], dtype="float64")


def offer_cost(dataset: Any, snapshot: Any, customer_ids: Any) -> np.ndarray:
    """What an offer to each customer costs at ``snapshot``: half the fee then in force."""
    dataset = check_dataset(dataset)
    ids = _check_ids(customer_ids)
    when = check_date("snapshot", snapshot)
    plans = _plans(dataset, ids)
    _check_known(ids, plans)
    fees = monthly_fee_at(dataset.prices, plans, np.full(ids.size, when.to_datetime64()))
    return OFFER_COST_SHARE * fees


def draw_outcomes(
    dataset: Any, snapshot: Any, customer_ids: Any, offered: Any, *, seed: int | None = None
) -> pd.DataFrame:
    """Draw 30-day churn after ``snapshot`` for customers, some of whom got the offer.

    Args:
        dataset: the :class:`~companion.data.ChurnDataset` whose truth gives the probabilities.
        snapshot: one of the dataset's snapshots.
        customer_ids: customers active at that snapshot (distinct ids).
        offered: one bool per customer (array or Series aligned by position): got the offer.
        seed: the outcomes' seed (default: the dataset's seed); with the snapshot it fixes the
            stream ``[seed, OFFER_STREAM, snapshot index]``.

    Returns:
        One row per customer, in the given order: ``customer_id, plan, offered,
        base_probability`` (the truth without offer), ``effect, churn_probability`` (the truth
        with this customer's offer or not), ``churned_30d`` (0 or 1), ``offer_cost`` (0 without
        an offer).
    """
    dataset = check_dataset(dataset)
    when = check_date("snapshot", snapshot)
    snapshots = list(dataset.snapshots)
    if when not in snapshots:
        raise InvalidParameterError(
            f"snapshot {when.date()} is not one of the dataset's snapshots "
            f"{snapshots[0].date()} .. {snapshots[-1].date()} (monthly)"
        )
    ids = _check_ids(customer_ids)
    mask = np.asarray(offered)
    if mask.dtype != bool or mask.shape != ids.shape:
        raise InvalidParameterError(
            f"offered must hold one bool per customer ({ids.size}), got dtype {mask.dtype} "
            f"and shape {mask.shape}"
        )
    seed = dataset.config.seed if seed is None else check_int("seed", seed, minimum=0)
    truth = dataset.truth.loc[dataset.truth["snapshot_timestamp"] == when]
    order = truth["customer_id"].to_numpy()  # every active customer, in id order
    position = np.searchsorted(order, ids)
    found = (position < order.size) & (order[np.minimum(position, order.size - 1)] == ids)
    if not found.all():
        raise InvalidParameterError(
            f"customer(s) {ids[~found][:5].tolist()} were not active at {when.date()}; "
            f"draw outcomes only for customers in the truth table at that snapshot"
        )
    index = snapshots.index(when)
    # One uniform per active customer at this snapshot, whoever is asked for: a customer's
    # outcome does not depend on which other customers are in the call.
    uniforms = np.random.default_rng([seed, OFFER_STREAM, index]).random(order.size)[position]
    base = truth["churn_probability"].to_numpy()[position]
    effect = offer_effect(dataset, ids)
    probability = np.where(mask, base * (1.0 - effect), base)
    cost = np.where(mask, offer_cost(dataset, when, ids), 0.0)
    logger.debug("outcomes at %s: %d customers, %d offers", when.date(), ids.size, mask.sum())
    return pd.DataFrame(
        {
            "customer_id": ids,
            "plan": pd.Categorical(_plans(dataset, ids), categories=PLANS),
            "offered": mask,
            "base_probability": base,
            "effect": effect,
            "churn_probability": probability,
            "churned_30d": (uniforms < probability).astype("int8"),
            "offer_cost": cost,
        }
    )


def _check_ids(customer_ids: Any) -> np.ndarray:
    values = np.asarray(customer_ids)
    if values.ndim != 1 or values.size == 0 or not np.issubdtype(values.dtype, np.integer):
        raise InvalidParameterError(
            f"customer_ids must be a non-empty 1-D sequence of int ids, got dtype "
            f"{values.dtype} and shape {values.shape}"
        )
    if np.unique(values).size != values.size:
        raise InvalidParameterError("customer_ids must be distinct; a customer is drawn once")
    return values.astype("int64")


def _check_known(ids: np.ndarray, plans: np.ndarray) -> None:
    unknown = pd.isna(pd.Series(plans)).to_numpy()
    if unknown.any():
        raise InvalidParameterError(
            f"unknown customer id(s) {ids[unknown][:5].tolist()}: not in dataset.customers"
        )
