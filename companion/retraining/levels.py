"""The maturity levels as declared policies, run over the same year and graded the same way.

A :class:`Level` says what is automated and what a person must decide. Each runs through the
retraining loop (:func:`~companion.retraining.loop.run_year`) with a deployer that adds what
the level has (:class:`LevelDeployer` in memory, :class:`RegistryLevelDeployer` through the
pipeline, the registry and the router):

- **Level 0** (chapter 1): the first model is never revisited; a person scores every month
  by hand; nobody checks the month's inputs, so a month with broken inputs is scored as is.
- **Level 2** (chapter 12): the pipeline turns every new labelled month into a gated
  candidate, but a *person* promotes each (modelled generously: the gated candidate is always
  promoted, the same day, to every customer: there is no canary to run), a person reads every
  alert, and a failed scoring check is acted upon at the next monthly review (``guard_lag``
  1): one month is scored with broken inputs. Nobody watches a deployment on delayed labels.
- **Level 3**: nobody decides. The same pipeline and gate; the new model is A/B tested on
  half of the month's customers, judged on the delayed outcome by a *pre-registered* test
  (chapter 9's :func:`~companion.abtest.analyse`: churn among triggered customers, the
  offers each model chose) together with chapter 11's paired ROC AUC check, and rolled back
  if either shows it worse; a month whose inputs fail chapter 10's checks is scored at once
  by a *fallback* (:func:`fallback_model`: the production recipe refitted with the broken
  inputs held constant), and the loop returns to the main model when the checks pass.

:mod:`~companion.retraining.guard` holds the scoring guard (:func:`scoring_checks`,
:func:`broken_columns`, :func:`fallback_model`);
:func:`people_decisions` counts what a level leaves to people; :func:`compare_levels` runs
the levels and returns chapter 11's :class:`~companion.retraining.compare.Comparison`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from companion.core.checks import check_bool, check_choice, check_int
from companion.errors import InvalidParameterError
from companion.retraining.compare import Comparison
from companion.retraining.deploy import Candidate, Fault, InMemoryDeployer, fitted_work, score
from companion.retraining.guard import broken_columns, fallback_model, scoring_checks
from companion.retraining.lifecycle import RegistryDeployer
from companion.retraining.loop import PolicyYear, run_year
from companion.retraining.policy import RetrainPolicy
from companion.retraining.year import Year

__all__ = ["PERSON_TASKS", "PROMOTERS", "Level", "LevelDeployer", "LevelYear",
           "RegistryLevelDeployer", "compare_levels", "default_design", "maturity_levels",
           "people_decisions", "run_level"]

logger = logging.getLogger(__name__)

PERSON_TASKS = ("monthly_scoring", "promotion", "alerts")
"""What a level may leave to a person: score and send the offers by hand every month,
promote (or not) each gated candidate, read and decide on each monitoring alert."""
PROMOTERS = ("nobody", "person", "loop")
"""Who moves production to a new model (``nobody``: no new model is ever trained)."""


@dataclass(frozen=True)
class Level:
    """One maturity level, declared (see the module docstring).

    Attributes:
        number: 0, 2 or 3.
        retrain: the retraining policy the loop follows (chapter 11's :class:`RetrainPolicy`).
        promotes: who promotes a gated candidate (:data:`PROMOTERS`).
        people: what a person must decide (:data:`PERSON_TASKS`).
        guard_lag: months from the first month whose scoring inputs fail their checks to the
            first month scored by the fallback: None (never), 0 (the same day), 1 (next review).
        ab_test: the pre-registered A/B design that judges a canary (None: no A/B test).
        direct: a gated model goes to every customer at once (no canary).
    """

    number: int
    retrain: RetrainPolicy
    promotes: str
    people: tuple[str, ...] = ()
    guard_lag: int | None = None
    ab_test: Any = None
    direct: bool = False

    def __post_init__(self) -> None:
        check_int("level number", self.number, minimum=0, maximum=3)
        if not isinstance(self.retrain, RetrainPolicy):
            raise InvalidParameterError(f"retrain must be a RetrainPolicy, got {self.retrain!r}")
        check_choice("promotes", self.promotes, PROMOTERS)
        if isinstance(self.people, str) or not isinstance(self.people, (tuple, list)):
            raise InvalidParameterError(f"people must be a tuple of tasks from {PERSON_TASKS}, "
                                        f"got {self.people!r}")
        for task in self.people:
            check_choice("person task", task, PERSON_TASKS)
        object.__setattr__(self, "people", tuple(self.people))
        check_bool("direct", self.direct)
        if self.direct and self.ab_test is not None:
            raise InvalidParameterError("a level that promotes directly has no canary to A/B test")
        if self.guard_lag is not None:
            check_int("guard_lag", self.guard_lag, minimum=0, maximum=12)
        if self.ab_test is not None:
            from companion.abtest import PreRegistration

            if not isinstance(self.ab_test, PreRegistration):
                raise InvalidParameterError(
                    f"ab_test must be a companion.abtest.PreRegistration, got {self.ab_test!r}")
            if not self.retrain.canary:
                raise InvalidParameterError("an A/B test needs a policy with a canary")
            share = self.ab_test.weights["challenger"]
            if abs(share - self.retrain.canary_share) > 1e-9:
                raise InvalidParameterError(
                    f"the A/B design's challenger share {share:g} must equal the policy's "
                    f"canary_share {self.retrain.canary_share:g}")
        if (self.promotes == "nobody") != (not self.retrain.retrains):
            raise InvalidParameterError(
                f"promotes={self.promotes!r} does not fit a {self.retrain.kind!r} policy")

    @property
    def name(self) -> str:
        """The level's name in tables and logs: its policy's name."""
        return self.retrain.name

    def describe(self) -> str:
        """The level in one line."""
        guard = {None: "inputs never checked at scoring", 0: "broken inputs: fallback at once",
                 1: "broken inputs: fallback from the next month"}.get(
            self.guard_lag, f"broken inputs: fallback after {self.guard_lag} months")
        test = ("canary A/B tested (pre-registered), rolled back if worse"
                if self.ab_test is not None else
                "to every customer at once, nobody watches it" if self.direct else
                "no check on delayed labels" if not self.retrain.watch_months else
                "rolled back if worse on delayed labels")
        who = ", ".join(self.people) or "nothing"
        if not self.retrain.retrains:
            return f"{self.name}: the first model serves all year; {guard}; a person: {who}"
        return (f"{self.name}: {self.retrain.describe().split(': ', 1)[1]}; promoted by "
                f"{self.promotes}; {test}; {guard}; a person: {who}")


def default_design(canary_share: float = 0.5, *, name: str = "level-3-canary") -> Any:
    """The standing A/B design every Level 3 canary is judged by, fixed before the year.

    Primary metric: 30-day churn among *triggered* customers (the two models' offers differ;
    chapter 9), baseline 10%, powered (0.8, alpha 0.05) for a halving; the guardrail is the
    extra offer cost per customer (at most 0.50). One look (a fixed-horizon test): the
    outcome of a month's canary is known once, 30 days later.
    """
    from companion.abtest import PreRegistration

    return PreRegistration(
        name=name, hypothesis="Offers chosen by the retrained model change 30-day churn of "
        "triggered customers compared with offers chosen by the production model.",
        baseline=0.10, mde=0.5, population="triggered", primary_metric="churned_30d",
        weights={"champion": 1.0 - canary_share, "challenger": canary_share},
        guardrails={"offer_cost_per_customer": 0.50}, segments="plan", looks=1)


def maturity_levels(design: Any = None) -> tuple[Level, Level, Level]:
    """Level 0, Level 2 and Level 3 as the chapter declares them (see the module docstring)."""
    design = default_design() if design is None else design
    return (
        Level(0, RetrainPolicy("none", name="level 0"), "nobody", ("monthly_scoring",)),
        Level(2, RetrainPolicy("scheduled", every_months=1, cooldown=0, watch_months=0,
                               name="level 2"), "person", ("promotion", "alerts"), guard_lag=1,
              direct=True),
        Level(3, RetrainPolicy("scheduled", every_months=1, cooldown=0,
                               canary_share=design.weights["challenger"], watch_months=2,
                               name="level 3"), "loop", (), guard_lag=0, ab_test=design),
    )


class _LevelSteps:
    """What a level adds to the loop's deployer: the scoring guard and the A/B judge."""

    year: Year
    kind: str
    seed: int

    def _level(self, level: Level, checks: Mapping[str, tuple[str, ...]] | None) -> None:
        if not isinstance(level, Level):
            raise InvalidParameterError(f"level must be a Level, got {level!r}")
        self.level = level
        self.scoring = dict(scoring_checks(self.year) if checks is None else checks)
        missing = sorted(set(self.year.months) - set(self.scoring))
        if missing:
            raise InvalidParameterError(f"checks miss month(s) {missing}")
        self.events: list[dict[str, Any]] = []
        self.experiments: list[dict[str, Any]] = []
        self.fallback_work = 0.0
        self._fallbacks: dict[tuple[int, tuple[str, ...]], tuple[Any, dict[str, Any]]] = {}

    # --- the scoring guard ------------------------------------------------------------------
    def guard(self, month: str, rows: pd.DataFrame, served: np.ndarray,
              production: Candidate) -> np.ndarray:
        """Scores of ``month``: ``served``, or the fallback's if its inputs failed their checks."""
        failed = self.scoring[month]
        if not failed or self.level.guard_lag is None:
            return served
        months = list(self.year.months)
        start = months.index(month)
        while start > 0 and self.scoring[months[start - 1]]:
            start -= 1
        columns = broken_columns(failed)
        if months.index(month) - start < self.level.guard_lag or not columns:
            acts = start + self.level.guard_lag
            why = ("no model input to hold" if not columns else
                   f"a person acts from {months[acts][:7]}" if acts < len(months) else
                   "a person acts at the next review, after the year")
            self.events.append({"month": month[:7], "step": "guard", "outcome": "unguarded",
                                "reason": f"inputs fail {', '.join(failed)}; scored as is: "
                                          f"{why}"})
            return served
        key = (production.version, columns)
        if key not in self._fallbacks:
            train_rows = pd.concat([self.year.rows(m) for m in production.train_months],
                                   ignore_index=True)
            self._fallbacks[key] = fallback_model(train_rows, columns, kind=self.kind,
                                                  seed=self.seed)
            self.fallback_work += fitted_work(self._fallbacks[key][0], len(train_rows))
        model, held = self._fallbacks[key]
        stand_in = Candidate(production.version, model, production.train_months,
                             production.holdout, 0, 0.0)
        self.events.append({"month": month[:7], "step": "guard", "outcome": "fallback",
                            "reason": f"inputs fail {', '.join(failed)}; v{production.version}"
                                      f"'s recipe refitted without {', '.join(columns)} scores"
                                      " the month"})
        return score(stand_in, rows.assign(**held))

    # --- the A/B judge ----------------------------------------------------------------------
    def requests(self, month: str, mask: np.ndarray, new: Candidate,
                 previous: Candidate) -> pd.DataFrame:
        """The canary month's answers as a prediction log (one per customer, by arm)."""
        from companion.deployment.predlog import LOG_COLUMNS

        rows = self.year.rows(month)
        arm = np.where(mask, "challenger", "champion")
        frame = pd.DataFrame({
            "request_id": [f"{month[:7]}-{c}" for c in rows["customer_id"]],
            "time": pd.Timestamp(month, tz="UTC"), "customer_id": rows["customer_id"].to_numpy(),
            "arm": arm, "model_version": np.where(mask, str(new.version), str(previous.version)),
            "score": 0.0, "shadow": False, "latency_ms": 0.0})
        return frame[list(LOG_COLUMNS)]

    def judge(self, new: Candidate, previous: Candidate, month: str, mask: np.ndarray | None,
              worse: bool) -> tuple[bool, str, dict[str, float]] | None:
        """The canary month's verdict: the pre-registered A/B test and the paired AUC check."""
        design = self.level.ab_test
        if design is None or mask is None:
            return None
        from companion.abtest import analyse, experiment_frame, offer_decisions, true_differences
        from companion.retraining.costs import TARGET_SHARE

        rows = self.year.rows(month)
        scores = pd.DataFrame({"customer_id": rows["customer_id"].to_numpy(),
                               "champion": score(previous, rows),
                               "challenger": score(new, rows, served=True, salt=month)})
        decisions = offer_decisions(scores, TARGET_SHARE)
        frame = experiment_frame(self.year.dataset, month, self.requests(month, mask, new,
                                                                         previous), decisions)
        from companion.deployment import srm_check

        srm = srm_check(frame["arm"].astype(str).value_counts().to_dict(), design.weights)
        record: dict[str, Any] = {"month": month[:7], "version": new.version,
                                  "srm": srm.verdict, "auc_shown_worse": bool(worse)}
        try:
            result = analyse(frame, design, n_boot=500, seed=0)
            truth = true_differences(frame, design).set_index("segment")
        except InvalidParameterError as exc:  # e.g. a segment empty in one arm
            record.update(decision="not analysable", n_champion=int((frame["arm"] ==
                          "champion").sum()), n_challenger=int((frame["arm"] ==
                          "challenger").sum()), difference=float("nan"), ci_low=float("nan"),
                          ci_high=float("nan"), true_difference=float("nan"))
            self.experiments.append(record)
            return worse, (f"A/B {design.name}: not analysable ({exc}); paired ROC AUC "
                           f"{'shown worse' if worse else 'not shown worse'}"), {}
        p = result.primary
        record.update(decision=result.decision, n_champion=p.n_champion,
                      n_challenger=p.n_challenger, difference=p.difference, ci_low=p.ci_low,
                      ci_high=p.ci_high,
                      true_difference=float(truth.loc["all", "true_difference"]))
        self.experiments.append(record)
        harmful = result.decision == "do not ship"
        why = (f"A/B {design.name}: {result.decision} (churn of triggered customers "
               f"{p.difference:+.4f} [{p.ci_low:+.4f}, {p.ci_high:+.4f}], {p.n_champion} and "
               f"{p.n_challenger} per arm); paired ROC AUC "
               f"{'shown worse' if worse else 'not shown worse'}")
        numbers = {"ab_difference": p.difference, "ab_low": p.ci_low, "ab_high": p.ci_high}
        return harmful or worse, why, numbers


    @property
    def skip_canary(self) -> bool:
        """A level that promotes directly runs no canary (the loop reads this)."""
        return bool(self.level.direct)


class LevelDeployer(_LevelSteps, InMemoryDeployer):
    """The in-memory deployer with a level's guard and A/B judge (same definitions)."""

    def __init__(self, year: Year, level: Level, checks: Mapping[str, tuple[str, ...]] | None
                 = None, *, kind: str = "gbm", seed: int = 0) -> None:
        InMemoryDeployer.__init__(self, year, kind=kind, seed=seed)
        self._level(level, checks)


class RegistryLevelDeployer(_LevelSteps, RegistryDeployer):
    """The level through chapter 7's pipeline, 6's registry and 8's router (its real log)."""

    def __init__(self, workspace: Any, year: Year, level: Level,
                 checks: Mapping[str, tuple[str, ...]] | None = None, *, clock: Any = None) -> None:
        RegistryDeployer.__init__(self, workspace, year, policy_name=level.name.replace(" ", "-"),
                                  clock=clock)
        self._level(level, checks)

    def requests(self, month: str, mask: np.ndarray, new: Candidate,
                 previous: Candidate) -> pd.DataFrame:
        """The router's prediction log of the canary month (written by :meth:`canary`)."""
        from companion.deployment import read_log

        return read_log(self.root / "predictions" / f"{month[:7]}.jsonl")


@dataclass
class LevelYear:
    """A level's year: the loop's result, the guard's and the A/B test's records.

    ``alerts`` is the number of monitoring alerts of the year (each one a person reads at a
    level that leaves alerts to people).
    """

    level: Level
    result: PolicyYear
    events: list[dict[str, Any]] = field(default_factory=list)
    experiments: list[dict[str, Any]] = field(default_factory=list)
    fallback_work: float = 0.0
    alerts: int = 0

    def compute(self) -> dict[str, float]:
        """Training work of the year (retrains and fallbacks), priced as chapter 5 prices it."""
        from companion.tracking.cost import work_cost

        return work_cost(self.result.row_iterations + self.fallback_work)


def run_level(year: Year, level: Level, *, checks: Mapping[str, tuple[str, ...]] | None = None,
              deployer: Any = None, faults: Iterable[Fault] = ()) -> LevelYear:
    """Run ``level`` over ``year`` (in memory unless a :class:`RegistryLevelDeployer` is given)."""
    if not isinstance(level, Level):
        raise InvalidParameterError(f"level must be a Level, got {level!r}")
    if deployer is None:
        deployer = LevelDeployer(year, level, checks)
    elif not isinstance(deployer, _LevelSteps) or deployer.level != level:
        raise InvalidParameterError("deployer must be a LevelDeployer or RegistryLevelDeployer "
                                    "built for this level")
    result = run_year(year, level.retrain, deployer=deployer, faults=faults)
    return LevelYear(level, result, list(deployer.events), list(deployer.experiments),
                     deployer.fallback_work, len(year.alerts))


def people_decisions(outcome: LevelYear) -> dict[str, int]:
    """What the level's year left to people, task by task (see :data:`PERSON_TASKS`)."""
    if not isinstance(outcome, LevelYear):
        raise InvalidParameterError(f"outcome must be a LevelYear, got {outcome!r}")
    year_months = outcome.result.months["month"].tolist()
    counts = {"monthly_scoring": len(year_months),
              "promotion": outcome.result.count("gate", "passed"),
              "alerts": outcome.alerts}
    return {task: (counts[task] if task in outcome.level.people else 0) for task in PERSON_TASKS}


def compare_levels(year: Year, levels: Iterable[Level] | None = None, *,
                   checks: Mapping[str, tuple[str, ...]] | None = None,
                   faults: Iterable[Fault] = ()) -> tuple[Comparison, dict[str, LevelYear]]:
    """Run each level (default :func:`maturity_levels`) in memory over one year."""
    chosen = tuple(maturity_levels() if levels is None else levels)
    if not chosen or not all(isinstance(level, Level) for level in chosen):
        raise InvalidParameterError("levels must be a non-empty list of Level")
    names = [level.name for level in chosen]
    if len(set(names)) != len(names):
        raise InvalidParameterError(f"level names must differ, got {names}")
    checks = scoring_checks(year) if checks is None else checks
    faults = tuple(faults)
    runs = {level.name: run_level(year, level, checks=checks, faults=faults) for level in chosen}
    return Comparison(year, {n: r.result for n, r in runs.items()}), runs
