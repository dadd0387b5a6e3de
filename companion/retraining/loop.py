"""The retraining loop: a simulated year, one month at a time, with what is known that day.

On the first day of each month ``M`` (after January, served by the first model) the loop:

1. **post-deployment check**: for each recent deployment whose watched month now has labels
   (30 days late), compare the new model's *served* scores with the previous model's scores
   of the same customers (paired DeLong interval); if the new model is shown worse (the upper
   end of the difference is below 0) roll production back;
2. **trigger**: ask the policy (:func:`companion.retraining.triggers.trigger`);
3. **retrain** on the policy's window of labelled months, the latest one held out, from that
   month's export (a failed data-quality check stops it here);
4. **gate**: chapter 6's interval-based rule on the held-out month, against production;
5. **canary**: the staged model serves ``canary_share`` of the month's customers through the
   sticky split; a label-free check (PSI of its served scores against its own scores on the
   gate month) stops a model that serves differently from how it was validated;
6. **promote** it to production, and watch it for ``watch_months`` months.

The month's customers are then scored by what serves them (the canary's share by the new
model) and graded: ROC AUC of the served scores and the business cost
(:mod:`companion.retraining.costs`). Every step is a :class:`Decision` with its reason.

Two optional hooks let a deployer add to the loop without changing it: ``judge(new,
previous, month, canary_mask, worse)`` may return ``(worse, reason, numbers)`` to decide a
post-deployment check with its own test (chapter 13's A/B analysis), and ``guard(month,
rows, served, production)`` may return other scores for a month whose inputs it must not
trust (chapter 13's fallback); a deployer whose ``skip_canary`` is true promotes a gated
model to every customer at once (a person's promotion). Without them the loop is chapter
11's.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from companion.errors import DataQualityError, InvalidParameterError
from companion.evaluation import auc_difference, auc_interval
from companion.retraining.costs import TARGET_SHARE, customer_costs
from companion.retraining.decisions import Decision
from companion.retraining.deploy import Candidate, Fault, InMemoryDeployer, score
from companion.retraining.policy import RetrainPolicy
from companion.retraining.triggers import TriggerState, trigger
from companion.retraining.year import Year
from companion.training import TARGET

__all__ = ["PolicyYear", "psi", "run_year"]

logger = logging.getLogger(__name__)


def psi(reference: np.ndarray, current: np.ndarray, bins: int = 10) -> float:
    """Population stability index of ``current`` against ``reference`` (decile bins)."""
    edges = np.unique(np.quantile(reference, np.linspace(0, 1, bins + 1)))
    if edges.size < 3:
        return 0.0
    inner = edges[1:-1]
    ref = np.bincount(np.searchsorted(inner, reference, side="right"), minlength=inner.size + 1)
    cur = np.bincount(np.searchsorted(inner, current, side="right"), minlength=inner.size + 1)
    p = np.clip(ref / ref.sum(), 1e-4, None)
    q = np.clip(cur / max(cur.sum(), 1), 1e-4, None)
    return float(np.sum((q - p) * np.log(q / p)))


@dataclass
class PolicyYear:
    """What a policy did over the year and what it cost.

    Attributes:
        policy: the policy.
        decisions: every step, in order.
        months: one row per month: production version, versions served, ROC AUC of the served
            scores with its interval, cost, retrain / deploy / rollback flags.
        costs: one row per customer and month: ``customer_id``, ``snapshot_timestamp``,
            ``cost``.
        row_iterations: training work of every retrain (chapter 5's deterministic measure).
    """

    policy: RetrainPolicy
    decisions: list[Decision] = field(default_factory=list)
    months: pd.DataFrame = field(default_factory=pd.DataFrame)
    costs: pd.DataFrame = field(default_factory=pd.DataFrame, repr=False)
    row_iterations: float = 0.0

    def count(self, step: str, outcome: str) -> int:
        """How many decisions of ``step`` had ``outcome``."""
        return sum(d.step == step and d.outcome == outcome for d in self.decisions)

    def compute(self) -> dict[str, float]:
        """The year's training work priced with chapter 5's :func:`work_cost`."""
        from companion.tracking.cost import work_cost

        return work_cost(self.row_iterations)


@dataclass
class _Watch:
    new: Candidate
    previous: Candidate
    pending: list[tuple[str, np.ndarray | None]]  # (month, rows mask or None for all)


class _Run:
    def __init__(self, year: Year, policy: RetrainPolicy, deployer: Any,
                 faults: dict[str, str]) -> None:
        self.year, self.policy, self.deployer, self.faults = year, policy, deployer, faults
        self.out = PolicyYear(policy)
        self.production: Candidate = deployer.baseline()
        self.models: dict[int, Candidate] = {self.production.version: self.production}
        self.state = TriggerState()
        self.watches: list[_Watch] = []
        self.served: dict[tuple[int, str], np.ndarray] = {}

    def log(self, month: str, step: str, outcome: str, reason: str, version: int | None = None,
            **numbers: float) -> None:
        self.out.decisions.append(Decision(self.policy.name, month[:7], step, outcome, version,
                                           self.production.version, reason, dict(numbers)))

    def scores(self, model: Candidate, month: str) -> np.ndarray:
        key = (model.version, month)
        if key not in self.served:
            self.served[key] = score(model, self.year.rows(month))
        return self.served[key]

    # --- 1. post-deployment checks ---------------------------------------------------------
    def post_checks(self, month: str, labelled: list[str]) -> None:
        for watch in list(self.watches):
            while watch.pending and watch.pending[0][0] in labelled:
                checked, mask = watch.pending.pop(0)
                rows = self.year.rows(checked)
                keep = np.ones(len(rows), bool) if mask is None else mask
                served = score(watch.new, rows[keep], served=True, salt=checked)
                before = self.scores(watch.previous, checked)[keep]
                y = rows[TARGET].to_numpy()[keep]
                if len(np.unique(y)) < 2:
                    self.log(month, "post_check", "skipped", f"v{watch.new.version} on "
                             f"{checked[:7]}: one class among its {keep.sum()} rows",
                             watch.new.version)
                    continue
                diff = auc_difference(y, served, before)
                where = f"{'canary' if mask is not None else 'all'} rows of {checked[:7]}"
                numbers = {"difference": diff.value, "difference_low": diff.low,
                           "difference_high": diff.high, "rows": float(keep.sum())}
                worse = diff.high < 0
                why = (f"ROC AUC difference {diff.format(signed=True)} against "
                       f"v{watch.previous.version}, shown worse")
                judge, verdict = getattr(self.deployer, "judge", None), None
                if callable(judge):  # a deployer may add its own test (e.g. an A/B analysis)
                    verdict = judge(watch.new, watch.previous, checked, mask, worse)
                    if verdict is not None:
                        worse, why, extra = verdict
                        numbers.update(extra)
                if worse and self.production.version == watch.new.version:
                    same = self.deployer.rollback(
                        f"v{watch.new.version} shown worse than v{watch.previous.version} on "
                        f"{where}", rows, watch.previous)
                    self.log(month, "post_check", "degraded", f"v{watch.new.version} served "
                             f"{where}: {why}", watch.new.version, **numbers)
                    self.production = watch.previous
                    self.log(month, "rollback", "done", f"production back to "
                             f"v{watch.previous.version}; it predicts as before: {same}",
                             watch.previous.version, same_scores=float(same))
                    watch.pending.clear()
                else:
                    passed = (why if verdict is not None else
                              f"difference {diff.format(signed=True)} not shown below 0")
                    self.log(month, "post_check", "passed", f"v{watch.new.version} on {where}: "
                             f"{passed}", watch.new.version, **numbers)
            if not watch.pending:
                self.watches.remove(watch)

    # --- 2-6 ---------------------------------------------------------------------------------
    def retrain(self, index: int, month: str, labelled: list[str]) -> tuple[np.ndarray, bool]:
        """Steps 3-6; return the month's served scores and whether a model was deployed."""
        rows = self.year.rows(month)
        served = score(self.production, rows, served=True, salt=month)
        holdout, window = labelled[-1], labelled[:-1][-self.policy.window_months:]
        self.state.attempted(index, month, self.year.alerts)
        fault = self.faults.get(month[:7], "")
        try:
            new = self.deployer.retrain(holdout, list(window), holdout, fault)
        except DataQualityError as exc:
            self.log(month, "retrain", "failed", f"{exc}; nothing trained")
            return served, False
        self.models[new.version] = new
        self.out.row_iterations += new.row_iterations
        self.log(month, "retrain", "done", f"v{new.version} trained on "
                 f"{', '.join(m[:7] for m in window)} ({new.training_rows} rows), held out "
                 f"{holdout[:7]}", new.version, training_rows=float(new.training_rows))
        against = None if self.policy.kind == "oracle" else self.production
        outcome = self.deployer.gate(new, against, self.policy.gate)
        numbers = {"roc_auc": outcome.candidate.value, "roc_auc_low": outcome.candidate.low}
        if outcome.difference is not None:
            numbers.update(difference=outcome.difference.value,
                           difference_low=outcome.difference.low)
        self.log(month, "gate", "passed" if outcome.passed else "refused", outcome.reason,
                 new.version, **numbers)
        if not outcome.passed:
            return served, False
        self.deployer.stage(new, outcome)
        mask = None
        if self.policy.canary and not getattr(self.deployer, "skip_canary", False):
            served, mask = self.deployer.canary(new, self.production, rows,
                                                self.policy.canary_share, month)
            drift = psi(new.gate_scores, served[mask]) if mask.any() else 0.0
            if drift > self.policy.max_canary_psi:
                self.log(month, "canary", "refused", f"v{new.version} served "
                         f"{int(mask.sum())} customers with scores unlike its validation "
                         f"(PSI {drift:.3f} > {self.policy.max_canary_psi:g}); not promoted",
                         new.version, psi=drift, customers=float(mask.sum()))
                return served, False
            self.log(month, "canary", "passed", f"v{new.version} served {int(mask.sum())} "
                     f"customers ({self.policy.canary_share:.0%}); PSI {drift:.3f} <= "
                     f"{self.policy.max_canary_psi:g}", new.version, psi=drift,
                     customers=float(mask.sum()))
        previous = self.production
        self.deployer.promote(new, f"{self.policy.name}: {outcome.reason}")
        self.production = new
        self.log(month, "promote", "done", f"v{new.version} replaces v{previous.version} in "
                 "production", new.version)
        if mask is None:
            served = score(new, rows, served=True, salt=month)
        if self.policy.watch_months:
            pending: list[tuple[str, np.ndarray | None]] = [(month, mask)]
            later = [m for m in self.year.months if m > month]
            pending += [(m, None) for m in later[: self.policy.watch_months - 1]]
            self.watches.append(_Watch(new, previous, pending))
        return served, True

    def month(self, index: int, month: str) -> None:
        begin = getattr(self.deployer, "begin_month", None)
        if callable(begin):
            begin(month)
        rows = self.year.rows(month)
        labelled = self.year.labelled(month)
        versions = str(self.production.version)
        retrained = deployed = False
        rolled = False
        if index == 0:
            served = score(self.production, rows, served=True, salt=month)
        else:
            before = self.production.version
            self.post_checks(month, labelled)
            rolled = self.production.version != before
            fire, reason, numbers = trigger(self.policy, self.state, index, month, labelled,
                                            self.year, self.production)
            self.out.decisions.append(Decision(
                self.policy.name, month[:7], "trigger", "fired" if fire else "skipped", None,
                self.production.version, reason, numbers))
            if fire:
                retrained = True
                old = self.production.version
                served, deployed = self.retrain(index, month, labelled)
                versions = f"{old}+{self.production.version}" if deployed and \
                    self.policy.canary else str(self.production.version)
            else:
                served = score(self.production, rows, served=True, salt=month)
        guard = getattr(self.deployer, "guard", None)
        if callable(guard):  # a deployer may replace the scores of a month it must not trust
            served = guard(month, rows, served, self.production)
        y = rows[TARGET].to_numpy()
        auc = auc_interval(y, served)
        cost = customer_costs(served, rows["churn_probability"].to_numpy(),
                              rows["value"].to_numpy(), rows["offer_effect"].to_numpy(),
                              rows["offer_cost"].to_numpy(), TARGET_SHARE)
        self._rows.append({"month": month[:7], "production": self.production.version,
                           "served": versions, "roc_auc": auc.value, "roc_auc_low": auc.low,
                           "roc_auc_high": auc.high, "cost": float(cost.sum()),
                           "retrained": retrained, "deployed": deployed,
                           "rolled_back": rolled})
        self._costs.append(pd.DataFrame({"customer_id": rows["customer_id"].to_numpy(),
                                         "snapshot_timestamp": rows["snapshot_timestamp"],
                                         "cost": cost}))

    def run(self) -> PolicyYear:
        self._rows: list[dict[str, Any]] = []
        self._costs: list[pd.DataFrame] = []
        for index, month in enumerate(self.year.months):
            self.month(index, month)
        self.out.months = pd.DataFrame(self._rows)
        self.out.costs = pd.concat(self._costs, ignore_index=True)
        return self.out


def run_year(
    year: Year, policy: RetrainPolicy, *, deployer: Any = None,
    faults: Iterable[Fault] = (),
) -> PolicyYear:
    """Run ``policy`` over ``year`` hands off; return its decisions, months and costs.

    Args:
        year: the shared year (:func:`~companion.retraining.year.prepare_year`).
        policy: the declared policy.
        deployer: who acts: :class:`InMemoryDeployer` (default) or
            :class:`~companion.retraining.lifecycle.RegistryDeployer`.
        faults: faults to inject into the retrains of their months.
    """
    if not isinstance(year, Year):
        raise InvalidParameterError(f"year must be a Year from prepare_year(), got {year!r}")
    if not isinstance(policy, RetrainPolicy):
        raise InvalidParameterError(f"policy must be a RetrainPolicy, got {policy!r}")
    injected: dict[str, str] = {}
    for fault in faults:
        if not isinstance(fault, Fault):
            raise InvalidParameterError(f"faults must be Fault records, got {fault!r}")
        injected[fault.month] = fault.kind
    known = {m[:7] for m in year.months}
    unknown = sorted(set(injected) - known)
    if unknown:
        raise InvalidParameterError(f"fault months {unknown} are not months of the year")
    deployer = InMemoryDeployer(year) if deployer is None else deployer
    return _Run(year, policy, deployer, injected).run()
