"""The experiment over time, and its truth: what a daily look shows, and what it should find.

:func:`cumulative_differences` recomputes the primary difference (challenger minus champion)
over the customers enrolled up to the end of each period (a day of the month): the naive 95%
interval of a fixed-horizon test (Newcombe's, as in :func:`~companion.abtest.analysis.analyse`)
and, beside it, the interval a group-sequential design would allow at that look (the
difference plus or minus its Lan-DeMets O'Brien-Fleming boundary times the standard error,
:mod:`companion.abtest.sequential`). Watching the first and stopping when it excludes 0 is the
peeking the simulations measure; the second stays valid under it.

:func:`true_differences` grades a result: the simulator knows each customer's churn
probability without an offer (``base_probability``) and an offer's effect (``effect``,
:data:`companion.data.offers.OFFER_EFFECT`), so the expected difference between the arms on the
population analysed, had every customer been in each arm in turn, is
``mean(base * effect * (offer_champion - offer_challenger))``, overall and by segment.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from companion.abtest.design import PreRegistration
from companion.abtest.sequential import group_sequential_bounds
from companion.core.checks import check_frame, check_text
from companion.deployment.router import ARMS
from companion.errors import InvalidParameterError

__all__ = ["cumulative_differences", "true_differences"]

logger = logging.getLogger(__name__)


def _check_registration(registration: object) -> PreRegistration:
    if not isinstance(registration, PreRegistration):
        raise InvalidParameterError(
            f"registration must be a PreRegistration (load_registration()), got "
            f"{type(registration).__name__}")
    return registration


def _population(frame: pd.DataFrame, registration: PreRegistration) -> pd.DataFrame:
    return frame if registration.population == "arm" else frame[frame["triggered"].astype(bool)]


def cumulative_differences(
    frame: pd.DataFrame, registration: PreRegistration, period: str
) -> pd.DataFrame:
    """The primary difference over the customers enrolled by the end of each ``period``.

    Args:
        frame: the experiment frame (:func:`~companion.abtest.experiment.experiment_frame`)
            with a ``period`` column (e.g. the day of the month a customer was enrolled).
        registration: the design (its population, metric and alpha).
        period: the column whose sorted values are the looks.

    Returns:
        One row per look: ``period, n_champion, n_challenger, difference, ci_low, ci_high``
        (fixed-horizon 95%, Newcombe), ``z`` (pooled), ``boundary`` (the group-sequential
        critical value at this look, looks equally spaced in information), ``seq_low,
        seq_high`` (difference +- boundary x unpooled standard error) and ``crossed`` (True
        from the first look whose boundary is crossed).
    """
    from statsmodels.stats.proportion import confint_proportions_2indep

    registration = _check_registration(registration)
    period = check_text("period", period)
    needed = ["arm", registration.primary_metric, period]
    if registration.population == "triggered":
        needed.append("triggered")
    check_frame("frame", frame, needed, non_empty=True)
    rows = _population(frame, registration)
    arms = set(rows["arm"].astype(str))
    if arms != set(ARMS):
        raise InvalidParameterError(
            f"frame must hold both arms {list(ARMS)} in its population, got {sorted(arms)}")
    values = rows[registration.primary_metric].to_numpy(dtype="float64")
    looks = np.sort(rows[period].unique())
    is_challenger = (rows["arm"].astype(str) == "challenger").to_numpy()
    when = rows[period].to_numpy()
    by_look = np.searchsorted(looks, when)
    # events and customers per arm and look, then accumulated over the looks
    x = np.zeros((2, looks.size))
    n = np.zeros((2, looks.size))
    for arm, mask in enumerate((~is_challenger, is_challenger)):
        np.add.at(x[arm], by_look[mask], values[mask])
        np.add.at(n[arm], by_look[mask], 1.0)
    x, n = np.cumsum(x, axis=1), np.cumsum(n, axis=1)
    seen = n.sum(axis=0)
    fractions = (seen / seen[-1]).tolist()  # information: the share of customers seen so far
    bounds = group_sequential_bounds(fractions, registration.alpha)
    out = []
    for k in range(looks.size):
        (x0, x1), (n0, n1) = x[:, k], n[:, k]
        if min(n0, n1) == 0:
            continue
        p0, p1 = x0 / n0, x1 / n1
        low, high = confint_proportions_2indep(int(x1), int(n1), int(x0), int(n0),
                                               method="newcomb", compare="diff",
                                               alpha=registration.alpha)
        pooled = (x0 + x1) / (n0 + n1)
        se_pooled = np.sqrt(pooled * (1 - pooled) * (1 / n0 + 1 / n1))
        se = np.sqrt(p0 * (1 - p0) / n0 + p1 * (1 - p1) / n1)
        z = (p1 - p0) / se_pooled if se_pooled > 0 else 0.0
        c = bounds.z[k]
        out.append({"period": looks[k], "n_champion": int(n0), "n_challenger": int(n1),
                    "difference": p1 - p0, "ci_low": float(low), "ci_high": float(high),
                    "z": float(z), "boundary": float(c), "seq_low": p1 - p0 - c * se,
                    "seq_high": p1 - p0 + c * se})
    table = pd.DataFrame(out)
    table["crossed"] = np.logical_or.accumulate(table["z"].abs() >= table["boundary"])
    logger.debug("cumulative differences over %d looks", len(table))
    return table


def true_differences(
    frame: pd.DataFrame, registration: PreRegistration
) -> pd.DataFrame:
    """The expected challenger-minus-champion difference the simulator's truth implies.

    Args:
        frame: the experiment frame, with the simulator's ``base_probability`` and
            ``effect`` and both models' decisions (``offer_champion, offer_challenger``).
        registration: the design (its population and segment column).

    Returns:
        One row per segment value and a last row ``all`` (the whole population):
        ``segment, customers, true_difference`` (both arms together: the difference does not
        depend on the arm a customer happened to be in).
    """
    registration = _check_registration(registration)
    needed = ["base_probability", "effect", "offer_champion", "offer_challenger",
              registration.segments]
    if registration.population == "triggered":
        needed.append("triggered")
    check_frame("frame", frame, needed, non_empty=True)
    rows = _population(frame, registration)
    gain = (rows["base_probability"].to_numpy(dtype="float64")
            * rows["effect"].to_numpy(dtype="float64")
            * (rows["offer_champion"].astype(int) - rows["offer_challenger"].astype(int))
            .to_numpy())
    table = pd.DataFrame({"segment": rows[registration.segments].reset_index(drop=True),
                          "gain": gain})
    # the order of analyse()'s segments: a categorical's categories, else sorted values
    parts = [{"segment": str(value), "customers": len(group),
              "true_difference": float(group["gain"].mean())}
             for value, group in table.groupby("segment", observed=True, sort=True)]
    parts.append({"segment": "all", "customers": len(table),
                  "true_difference": float(table["gain"].mean())})
    return pd.DataFrame(parts)
