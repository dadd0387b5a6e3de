"""The declared retraining policy: when to retrain, on what, and how a new model is deployed.

A :class:`RetrainPolicy` is one frozen, validated record; the loop
(:mod:`companion.retraining.loop`) reads nothing else to decide. Its ``kind`` says what fires a
retrain:

- ``none``: never (the model of January serves all year);
- ``scheduled``: every ``every_months`` months, whatever the data says;
- ``drift``: a new alert of one of ``alert_kinds`` in chapter 10's alert records
  (``alerts/1``), i.e. one whose (kind, metric, columns) had not been seen when the model was
  last retrained;
- ``performance``: the production model's ROC AUC on the latest month whose labels have
  arrived (30 days late) is at least ``auc_drop`` below the AUC it showed at its gate;
- ``oracle``: the benchmark, not a policy one would run: retrain *every* month on the freshest
  labelled window and deploy the new model straight away, with only the gate's floor (no
  comparison with production, no canary). With labels 30 days late, no retraining policy can
  hold a fresher model; the oracle tells how much of that any trigger leaves on the table.

Every kind but ``none`` and ``oracle`` then honours a ``cooldown`` (months after a retrain
attempt during which nothing fires) and a minimum of ``min_new_rows`` labelled rows that the
production model has not been trained on. The training window is the ``window_months``
labelled months before the holdout month (the latest labelled one, where the gate scores).
The deployment side says how large the canary is (``canary_share`` of customers, for the first
month) and how a deployed model is watched (``watch_months`` post-deployment checks, a
rollback when the new model is shown worse at 95%).

Example:
    >>> RetrainPolicy("scheduled", every_months=3).describe()
    'scheduled: every 3 months; cooldown 2, >= 1000 new labelled rows, window 3 months'
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from companion.core.checks import check_choice, check_int, check_number
from companion.errors import InvalidParameterError
from companion.monitoring import ALERT_KINDS
from companion.registry import GatePolicy

__all__ = ["DEFAULT_GATE", "POLICY_KINDS", "RetrainPolicy", "standard_policies"]

POLICY_KINDS = ("none", "scheduled", "drift", "performance", "oracle")
"""What may fire a retrain (``oracle`` is the benchmark; see the module docstring)."""

DEFAULT_GATE = GatePolicy(min_roc_auc=0.6, margin=0.03, rule="non-inferiority")
"""The retraining gate: a fresher model enters if it is shown *not worse* than production by
more than 0.03 of ROC AUC (paired 95% interval on the held-out month) and clears the floor.
Superiority would keep a stale model whenever the new one is only as good, which is most
months before a drift; a clearly worse candidate is still refused."""


@dataclass(frozen=True)
class RetrainPolicy:
    """One retraining policy, declared (see the module docstring for each field's role).

    Attributes:
        kind: one of :data:`POLICY_KINDS`.
        every_months: the schedule's period (``scheduled`` only).
        alert_kinds: alert kinds that fire a ``drift`` retrain.
        auc_drop: drop of ROC AUC below the model's gate AUC that fires ``performance``.
        cooldown: months after a retrain attempt during which no trigger fires.
        min_new_rows: labelled rows the production model was not trained on, needed to retrain.
        window_months: labelled months a model is trained on (fewer while fewer exist).
        gate: the interval-based gate a candidate must pass (chapter 6's :class:`GatePolicy`).
        canary_share: the share of customers the new model serves in its first month.
        max_canary_psi: largest PSI between the canary's served scores and the model's scores
            on its gate month (a label-free check before promotion).
        watch_months: post-deployment checks on delayed labels after a deployment.
        name: how tables and logs call the policy (default: ``kind``).
    """

    kind: str
    every_months: int = 3
    alert_kinds: tuple[str, ...] = ("data_drift", "prediction_drift")
    auc_drop: float = 0.03
    cooldown: int = 2
    min_new_rows: int = 1000
    window_months: int = 3
    gate: GatePolicy = field(default=DEFAULT_GATE)
    canary_share: float = 0.10
    max_canary_psi: float = 0.25
    watch_months: int = 2
    name: str = ""

    def __post_init__(self) -> None:
        check_choice("policy kind", self.kind, POLICY_KINDS)
        check_int("every_months", self.every_months, minimum=1, maximum=12)
        if isinstance(self.alert_kinds, str) or not isinstance(self.alert_kinds, (tuple, list)):
            raise InvalidParameterError(
                f"alert_kinds must be a tuple of alert kinds from {ALERT_KINDS}, got "
                f"{self.alert_kinds!r}"
            )
        for kind in self.alert_kinds:
            check_choice("alert kind", kind, ALERT_KINDS)
        object.__setattr__(self, "alert_kinds", tuple(self.alert_kinds))
        if self.kind == "drift" and not self.alert_kinds:
            raise InvalidParameterError("a drift policy needs at least one alert kind")
        check_number("auc_drop", self.auc_drop, minimum=0.0, maximum=0.5)
        check_int("cooldown", self.cooldown, minimum=0, maximum=12)
        check_int("min_new_rows", self.min_new_rows, minimum=0)
        check_int("window_months", self.window_months, minimum=1, maximum=12)
        if not isinstance(self.gate, GatePolicy):
            raise InvalidParameterError(
                f"gate must be a companion.registry.GatePolicy, got {self.gate!r}"
            )
        check_number("canary_share", self.canary_share, minimum=0.01, maximum=0.5)
        check_number("max_canary_psi", self.max_canary_psi, minimum=0.0)
        check_int("watch_months", self.watch_months, minimum=0, maximum=6)
        if not isinstance(self.name, str):
            raise InvalidParameterError(f"name must be a string, got {self.name!r}")
        object.__setattr__(self, "name", self.name or self.kind)

    @property
    def retrains(self) -> bool:
        """Whether the policy ever retrains (every kind but ``none``)."""
        return self.kind != "none"

    @property
    def canary(self) -> bool:
        """Whether a new model goes through a canary (every kind but the oracle)."""
        return self.kind != "oracle"

    def describe(self) -> str:
        """The policy in one line."""
        if self.kind == "none":
            return "none: the first model serves all year"
        if self.kind == "oracle":
            return (f"oracle: retrain every month on the latest {self.window_months} labelled "
                    "months, deploy at once (floor only)")
        trigger = {
            "scheduled": f"every {self.every_months} months",
            "drift": f"a new alert of {', '.join(self.alert_kinds)}",
            "performance": f"ROC AUC {self.auc_drop:g} below the gate's",
        }[self.kind]
        return (f"{self.name}: {trigger}; cooldown {self.cooldown}, >= {self.min_new_rows} new "
                f"labelled rows, window {self.window_months} months")

    def to_dict(self) -> dict[str, Any]:
        """The policy as plain values (the gate as its own fields), for logs and tables."""
        values = dataclasses.asdict(self)
        values["alert_kinds"] = list(self.alert_kinds)
        values["gate"] = dataclasses.asdict(self.gate)
        return values


def standard_policies(**overrides: Any) -> tuple[RetrainPolicy, ...]:
    """The chapter's five: none, scheduled (quarterly), drift, performance and the oracle.

    ``overrides`` are applied to each (e.g. ``window_months=3``).
    """
    kinds = ("none", "scheduled", "drift", "performance", "oracle")
    return tuple(RetrainPolicy(kind, **overrides) for kind in kinds)
