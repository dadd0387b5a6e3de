"""Choosing between two models by a stated rule, and the yardstick they are graded against.

:func:`prefer_simpler` keeps the simpler model unless the other one's ROC AUC is higher by a
margin its whole paired interval clears; :func:`oracle_scores` gives the simulator's true
probabilities, the best score the data allows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd

from companion.core.checks import check_number
from companion.errors import InvalidParameterError
from companion.evaluation import LEVEL, Estimate, auc_difference


@dataclass(frozen=True)
class Choice:
    """The outcome of :func:`prefer_simpler`.

    Attributes:
        chosen: name of the chosen model.
        simpler: name of the simpler (cheaper) model.
        other: name of the other model.
        difference: AUC(other) - AUC(simpler) with its paired 95% DeLong interval.
        margin: how much better the other model had to be (the interval's lower end above it).
        reason: one sentence that says why.
    """

    chosen: str
    simpler: str
    other: str
    difference: Estimate
    margin: float
    reason: str

    def __post_init__(self) -> None:
        for label in ("chosen", "simpler", "other", "reason"):
            if not isinstance(getattr(self, label), str):
                raise InvalidParameterError(
                    f"{label} must be a string, got {getattr(self, label)!r}"
                )
        if self.simpler == self.other or self.chosen not in (self.simpler, self.other):
            raise InvalidParameterError(
                f"chosen {self.chosen!r} must be one of two different models, simpler "
                f"{self.simpler!r} or other {self.other!r}"
            )
        if not isinstance(self.difference, Estimate):
            raise InvalidParameterError(
                f"difference must be an Estimate, got {type(self.difference).__name__}"
            )
        check_number("margin", self.margin, minimum=0)


def prefer_simpler(
    y: object,
    simpler: tuple[str, object],
    other: tuple[str, object],
    margin: float = 0.0,
    level: float = LEVEL,
) -> Choice:
    """Keep the simpler model unless the other one's ROC AUC is higher by a margin that holds.

    The rule: the other (costlier, harder to explain) model is chosen only if the whole paired
    DeLong interval of ``AUC(other) - AUC(simpler)`` on the rows ``y`` lies above ``margin``.
    A difference whose interval holds the margin is not evidence enough to pay for the other
    model. Apply it on the validation month; report the chosen model on a later month.

    Args:
        y: the labels (0 or 1) of the selection rows.
        simpler: ``(name, scores)`` of the simpler model.
        other: ``(name, scores)`` of the other model, on the same rows.
        margin: the improvement, in ROC AUC, the other model must clear (>= 0).

    Example:
        >>> y = [0, 0, 1, 1, 0, 1, 0, 1]
        >>> prefer_simpler(y, ("a", [.1, .2, .8, .9, .3, .7, .4, .6]),
        ...                ("b", [.1, .2, .8, .9, .3, .7, .4, .6])).chosen
        'a'
    """
    margin = check_number("margin (in ROC AUC)", margin, minimum=0)
    for label, entry in (("simpler", simpler), ("other", other)):
        if not (isinstance(entry, tuple) and len(entry) == 2 and isinstance(entry[0], str)
                and entry[0]):
            raise InvalidParameterError(
                f"{label} must be a (name, scores) pair, got {type(entry).__name__}"
            )
    if simpler[0] == other[0]:
        raise InvalidParameterError(f"the two models need different names, both are {simpler[0]!r}")
    difference = auc_difference(y, other[1], simpler[1], level)
    if difference.low > margin:
        chosen = other[0]
        reason = (f"{other[0]} is better than {simpler[0]} by more than {margin:g} ROC AUC: its "
                  f"whole paired interval {difference.format(3, signed=True)} lies above it")
    else:
        chosen = simpler[0]
        reason = (f"{other[0]} minus {simpler[0]} is {difference.format(3, signed=True)}: the "
                  f"interval does not clear {margin:g}, so the simpler {simpler[0]} is kept")
    return Choice(chosen, simpler[0], other[0], difference, float(margin), reason)


def oracle_scores(dataset: Any, frame: pd.DataFrame) -> pd.Series:
    """Return the simulator's true churn probability of each row of ``frame``.

    A model that scored customers with these would reach the best ROC AUC the data allows:
    the yardstick a measured model is graded against. Never a model input.
    """
    truth = getattr(dataset, "truth", None)
    if not isinstance(truth, pd.DataFrame) or "churn_probability" not in truth.columns:
        raise InvalidParameterError(
            "dataset must be a simulated ChurnDataset with a truth table (churn_probability)"
        )
    if not isinstance(frame, pd.DataFrame) or not {"customer_id", "snapshot_timestamp"} <= set(
        frame.columns
    ):
        raise InvalidParameterError(
            "frame must have customer_id and snapshot_timestamp columns; build it with "
            "snapshot_features()"
        )
    keys = ["customer_id", "snapshot_timestamp"]
    joined = frame[keys].merge(truth[[*keys, "churn_probability"]], on=keys, how="left")
    if joined["churn_probability"].isna().any():
        missing = int(joined["churn_probability"].isna().sum())
        raise InvalidParameterError(
            f"{missing} row(s) of frame have no true probability; accepted: rows of the "
            "dataset's own snapshots"
        )
    return pd.Series(joined["churn_probability"].to_numpy(), index=frame.index,
                     name="churn_probability")

