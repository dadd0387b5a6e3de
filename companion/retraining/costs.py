"""The business cost of churn under a model, from the simulator's truth, and its intervals.

Each month Lumen sends a retention offer (half a month's fee, :mod:`companion.data.offers`) to
the ``target_share`` of active customers the served model scores highest. The *expected* cost
of that month is, over its customers ``i``, with ``p_i`` the true churn probability, ``v_i``
the customer's value (:data:`~companion.retraining.year.VALUE_MONTHS` months of fees),
``e_i`` the offer's true effect and ``c_i`` its cost, and ``o_i`` whether they got one:

    cost_i = p_i * (1 - e_i * o_i) * v_i + o_i * c_i

A better ranking puts the offers where ``p_i * e_i * v_i`` is large and lowers the total. The
truth is never a model input; it only grades. :func:`cost_difference` compares two policies
over the year with a bootstrap over customers (a customer's months stay together).

Example:
    >>> import numpy as np
    >>> customer_costs(np.array([0.9, 0.1]), np.array([0.5, 0.5]), np.array([100.0, 100.0]),
    ...                np.array([0.2, 0.2]), np.array([5.0, 5.0]), share=0.5).tolist()
    [45.0, 50.0]
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from companion.core.checks import check_int, check_number
from companion.errors import InvalidParameterError
from companion.evaluation import Estimate

__all__ = ["TARGET_SHARE", "cost_difference", "customer_costs", "targeted"]

TARGET_SHARE = 0.10
"""The share of a month's customers who get the retention offer (the highest scores)."""


def targeted(scores: np.ndarray, share: float = TARGET_SHARE) -> np.ndarray:
    """Whether each customer is among the top ``share`` by score (ties: first rows first)."""
    check_number("share", share, minimum=0.0, maximum=1.0)
    scores = np.asarray(scores, dtype="float64")
    if not np.isfinite(scores).all():
        raise InvalidParameterError("scores must be finite")
    k = int(round(share * scores.size))
    chosen = np.zeros(scores.size, dtype=bool)
    if k:
        chosen[np.argsort(-scores, kind="stable")[:k]] = True
    return chosen


def customer_costs(
    scores: np.ndarray, probability: np.ndarray, value: np.ndarray, effect: np.ndarray,
    offer_cost: np.ndarray, share: float = TARGET_SHARE,
) -> np.ndarray:
    """Each customer's expected cost in one month (see the module docstring)."""
    arrays = [np.asarray(a, dtype="float64") for a in (scores, probability, value, effect,
                                                       offer_cost)]
    if len({a.shape for a in arrays}) != 1:
        raise InvalidParameterError(
            f"scores, probability, value, effect and offer_cost must have one length, got "
            f"{[a.size for a in arrays]}"
        )
    scores, probability, value, effect, offer_cost = arrays
    offered = targeted(scores, share)
    return probability * (1.0 - effect * offered) * value + offered * offer_cost


def cost_difference(
    a: pd.DataFrame, b: pd.DataFrame, *, n_boot: int = 2000, seed: int = 0, level: float = 0.95
) -> Estimate:
    """Yearly cost of ``a`` minus ``b`` with a bootstrap interval over customers.

    ``a`` and ``b`` hold ``customer_id``, ``snapshot_timestamp`` and ``cost`` for the same
    rows (two policies' served months). Customers are resampled with replacement, each with
    all of their months; the interval is the percentile one.
    """
    check_int("n_boot", n_boot, minimum=100, maximum=100_000)
    check_int("seed", seed, minimum=0)
    check_number("level", level, minimum=0.5, maximum=0.999)
    keys = ["customer_id", "snapshot_timestamp"]
    for label, frame in (("a", a), ("b", b)):
        if not isinstance(frame, pd.DataFrame) or not {*keys, "cost"} <= set(frame.columns):
            raise InvalidParameterError(f"{label} must be a frame with {keys + ['cost']}")
    both = a[[*keys, "cost"]].merge(b[[*keys, "cost"]], on=keys, suffixes=("_a", "_b"),
                                    validate="one_to_one")
    if len(both) != len(a) or len(both) != len(b):
        raise InvalidParameterError(
            f"a and b must hold the same rows: {len(a)} and {len(b)} rows, {len(both)} shared")
    per_customer = (both["cost_a"] - both["cost_b"]).groupby(both["customer_id"]).sum()
    values = per_customer.to_numpy()
    rng = np.random.default_rng(seed)
    totals = np.array([values[rng.integers(0, values.size, values.size)].sum()
                       for _ in range(n_boot)])
    tail = (1.0 - level) / 2.0
    low, high = np.quantile(totals, [tail, 1.0 - tail])
    return Estimate(float(values.sum()), float(low), float(high), level=level, method="bootstrap")
