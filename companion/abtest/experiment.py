"""Running the experiment: who gets an offer under each model, and the month's record.

Each model chooses whom to offer: the top ``fraction`` of its scores over every customer scored
that month (:func:`offer_decisions`; ties go to the lower customer id). Both models score every
customer (the batch scoring of chapter 8, or the router's shadow mode), so both decisions are
known for everyone, in both arms; the customers on whom they disagree are the *triggered* ones,
the only customers whose treatment depends on the arm.

:func:`experiment_frame` turns the prediction log (who was routed to which arm, with the
serving latency) and the decisions into one row per customer with the offer of their arm, then
draws the month's outcomes from the simulator (:func:`companion.data.offers.draw_outcomes`):
the frame :func:`companion.abtest.analysis.analyse` reads.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd

from companion.core.checks import check_frame, check_number
from companion.data import offers
from companion.deployment.predlog import LOG_COLUMNS
from companion.deployment.router import ARMS
from companion.errors import InvalidParameterError

__all__ = ["experiment_frame", "offer_decisions"]

logger = logging.getLogger(__name__)


def offer_decisions(scores: pd.DataFrame, fraction: float) -> pd.DataFrame:
    """Each model's offers: the top ``fraction`` of its scores, over all customers.

    Args:
        scores: one row per customer: ``customer_id, champion, challenger`` (scores).
        fraction: share of customers each model offers, in (0, 1).

    Returns:
        ``customer_id, offer_champion, offer_challenger, triggered`` (the decisions differ),
        in customer id order.
    """
    check_frame("scores", scores, ["customer_id", *ARMS], non_empty=True)
    share = check_number("fraction", fraction)
    if not 0.0 < share < 1.0:
        raise InvalidParameterError(f"fraction must be in (0, 1), got {fraction!r}")
    if scores["customer_id"].duplicated().any():
        raise InvalidParameterError("scores must hold one row per customer_id")
    frame = scores.sort_values("customer_id", kind="stable").reset_index(drop=True)
    k = int(round(share * len(frame)))
    out = pd.DataFrame({"customer_id": frame["customer_id"].to_numpy()})
    for arm in ARMS:
        values = pd.to_numeric(frame[arm], errors="coerce").to_numpy(dtype="float64")
        if not np.isfinite(values).all():
            raise InvalidParameterError(f"scores column {arm!r} must hold finite numbers")
        order = np.argsort(-values, kind="stable")  # ties: lower customer id first
        chosen = np.zeros(len(frame), dtype=bool)
        chosen[order[:k]] = True
        out[f"offer_{arm}"] = chosen
    out["triggered"] = out["offer_champion"] != out["offer_challenger"]
    return out


def experiment_frame(
    dataset: Any, snapshot: Any, log: pd.DataFrame, decisions: pd.DataFrame,
    *, seed: int | None = None,
) -> pd.DataFrame:
    """One row per routed customer with their arm, offer and drawn 30-day outcome.

    Args:
        dataset: the simulated dataset (its truth gives the outcomes).
        snapshot: the month of the experiment, one of the dataset's snapshots.
        log: the prediction log (:func:`companion.deployment.read_log`); the first answered
            request of a customer gives their arm (sticky assignment makes it their only one).
        decisions: from :func:`offer_decisions`, covering every routed customer.
        seed: the outcomes' seed (default: the dataset's).

    Returns:
        ``customer_id, arm, model_version, latency_ms, offer_champion, offer_challenger,
        triggered, offered`` and the outcome columns of :func:`~companion.data.offers.draw_outcomes`
        (``plan, base_probability, effect, churn_probability, churned_30d, offer_cost``).
    """
    check_frame("log", log, list(LOG_COLUMNS), non_empty=True,
                hint="it must be a prediction log (read_log)")
    check_frame("decisions", decisions, ["customer_id", "offer_champion", "offer_challenger",
                                         "triggered"], non_empty=True)
    answered = log.loc[~log["shadow"].astype(bool)].sort_values("time", kind="stable")
    unknown = sorted(set(answered["arm"].astype(str)) - set(ARMS))
    if unknown:
        raise InvalidParameterError(f"the log has unknown arm(s) {unknown}; accepted: {ARMS}")
    moved = answered.groupby("customer_id")["arm"].nunique()
    if (moved > 1).any():
        logger.warning("%d customers were answered by both arms; each keeps the first",
                       int((moved > 1).sum()))
    first = answered.drop_duplicates("customer_id", keep="first")
    rows = first[["customer_id", "arm", "model_version", "latency_ms"]].astype(
        {"arm": str, "model_version": str})
    frame = rows.merge(decisions, on="customer_id", how="left", validate="one_to_one")
    missing = frame["triggered"].isna()
    if missing.any():
        raise InvalidParameterError(
            f"decisions lack {int(missing.sum())} routed customer(s), e.g. "
            f"{frame.loc[missing, 'customer_id'].head(3).tolist()}")
    frame = frame.sort_values("customer_id", kind="stable").reset_index(drop=True)
    offered = np.where(frame["arm"] == "champion", frame["offer_champion"],
                       frame["offer_challenger"]).astype(bool)
    outcomes = offers.draw_outcomes(dataset, snapshot, frame["customer_id"].to_numpy(),
                                    offered, seed=seed)
    return pd.concat([frame, outcomes.drop(columns="customer_id")], axis=1)
