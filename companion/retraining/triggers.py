"""Whether a policy retrains this month, and why: schedule, alerts, delayed labels, limits.

:func:`trigger` reads only what is known on the first day of the month: the schedule, the
alert records created for a date up to that day, and the labels that have arrived (30 days
late). It first asks the policy's own condition, then the limits every policy shares (the
cooldown after the last attempt, the minimum of new labelled rows, a labelled month to train
on and one to hold out), so the reason always says what fired and what held it back.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from companion.evaluation import auc_interval
from companion.monitoring import Alert
from companion.retraining.policy import RetrainPolicy
from companion.training import TARGET

__all__ = ["TriggerState", "trigger"]


def _key(alert: Alert) -> tuple[str, str, tuple[str, ...]]:
    return alert.kind, alert.metric, alert.columns


@dataclass
class TriggerState:
    """What the trigger remembers: the last attempt and the alerts already acted upon."""

    last_attempt: int | None = None
    last_month: str = ""
    acknowledged: set[tuple[str, str, tuple[str, ...]]] = field(default_factory=set)

    def attempted(self, index: int, month: str, alerts: Any) -> None:
        """Record a retrain attempt in month ``index``: alerts known by then are acted upon."""
        self.last_attempt, self.last_month = index, month
        self.acknowledged |= {_key(a) for a in alerts if a.created_for <= month}


def _condition(policy: RetrainPolicy, state: TriggerState, index: int, month: str,
               labelled: list[str], year: Any, production: Any
               ) -> tuple[bool, str, dict[str, float]]:
    kind = policy.kind
    if kind == "oracle":
        return True, "oracle: every month", {}
    if kind == "scheduled":
        due = index % policy.every_months == 0
        return due, (f"schedule: month {index} of the year is "
                     f"{'' if due else 'not '}a multiple of {policy.every_months}"), {}
    if kind == "drift":
        new = [a for a in year.alerts if a.kind in policy.alert_kinds
               and a.created_for <= month and _key(a) not in state.acknowledged]
        if not new:
            return False, f"no new alert of {', '.join(policy.alert_kinds)}", {}
        first = new[0]
        return True, (f"{len(new)} new alert(s), first: {first.kind} {first.metric} "
                      f"{first.value:.3f} on {', '.join(first.columns) or 'scores'} "
                      f"({first.month})"), {"alerts": float(len(new))}
    # performance: the production model on the latest labelled month it was not trained on
    latest = labelled[-1] if labelled else ""
    if not latest or latest <= production.holdout or production.gate_auc != production.gate_auc:
        return False, "no labelled month after the production model's gate month yet", {}
    rows = year.rows(latest)
    from companion.retraining.deploy import score

    auc = auc_interval(rows[TARGET].to_numpy(), score(production, rows))
    drop = production.gate_auc - auc.value
    numbers = {"roc_auc": auc.value, "gate_roc_auc": production.gate_auc, "drop": drop}
    fired = drop >= policy.auc_drop
    return fired, (f"v{production.version} ROC AUC {auc.format()} on {latest[:7]}, "
                   f"{drop:+.3f} below its gate's {production.gate_auc:.3f} "
                   f"({'>=' if fired else '<'} {policy.auc_drop:g})"), numbers


def trigger(policy: RetrainPolicy, state: TriggerState, index: int, month: str,
            labelled: list[str], year: Any, production: Any
            ) -> tuple[bool, str, dict[str, float]]:
    """Decide whether ``policy`` retrains in month ``index`` (``month``, ``YYYY-MM-DD``).

    Returns ``(fire, reason, numbers)``.
    """
    if not policy.retrains:
        return False, "policy none: never retrains", {}
    fired, why, numbers = _condition(policy, state, index, month, labelled, year, production)
    if not fired:
        return False, why, numbers
    if len(labelled) < 2:
        return False, f"{why}; held: {len(labelled)} labelled month(s), need 2", numbers
    if policy.kind != "oracle":
        if state.last_attempt is not None and index - state.last_attempt <= policy.cooldown:
            return False, (f"{why}; held: cooldown of {policy.cooldown} month(s) after the "
                           f"attempt of {state.last_month[:7]}"), numbers
        trained_end = max(production.train_months)
        fresh = [m for m in labelled if m > trained_end]
        new_rows = int(sum(len(year.rows(m)) for m in fresh))
        numbers = {**numbers, "new_rows": float(new_rows)}
        if new_rows < policy.min_new_rows:
            return False, (f"{why}; held: {new_rows} new labelled rows since "
                           f"{pd.Timestamp(trained_end).strftime('%Y-%m')} < "
                           f"{policy.min_new_rows}"), numbers
    return True, why, numbers
