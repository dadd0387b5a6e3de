"""Automated retraining: a declared policy, the monthly loop, its safety checks and its cost.

The package, one concern per module:

- :mod:`~companion.retraining.policy`: :class:`RetrainPolicy` (none, scheduled, drift,
  performance, and the oracle benchmark), its thresholds, cooldown, minimum of new data,
  window, gate, canary and watch;
- :mod:`~companion.retraining.year`: :func:`prepare_year`, the shared year (feature rows of
  every month, the truth, the exports' data-quality verdicts, chapter 10's alerts);
- :mod:`~companion.retraining.triggers`: :func:`trigger`, whether a policy retrains this month;
- :mod:`~companion.retraining.deploy`: the deployer's steps on shared rows
  (:class:`InMemoryDeployer`) and the injected :class:`Fault`;
- :mod:`~companion.retraining.lifecycle`: :class:`RegistryDeployer`, the same steps through
  chapter 7's pipeline, chapter 6's registry and chapter 8's router;
- :mod:`~companion.retraining.loop`: :func:`run_year`, the loop, month by month;
- :mod:`~companion.retraining.decisions`: the decision log (``retraining/1`` JSON lines);
- :mod:`~companion.retraining.costs`: the business cost of churn and its bootstrap interval;
- :mod:`~companion.retraining.compare`: every policy over one year, the result table, the
  figure's data and the winner with its interval;
- :mod:`~companion.retraining.levels`: the maturity levels (0, 2, 3) as declared
  :class:`Level` policies over the same year: who decides, the canary's pre-registered A/B
  test, and the people's decisions each needs;
- :mod:`~companion.retraining.guard`: Level 3's scoring guard, the quality checks of a
  month's scoring inputs and the fallback model that ignores the broken ones.

Nothing happens at import.

Example:
    >>> RetrainPolicy("drift").alert_kinds
    ('data_drift', 'prediction_drift')
"""

from __future__ import annotations

from companion.retraining.compare import Comparison, compare_policies
from companion.retraining.costs import TARGET_SHARE, cost_difference, customer_costs, targeted
from companion.retraining.decisions import (
    DECISION_SCHEMA,
    OUTCOMES,
    STEPS,
    Decision,
    decisions_frame,
    read_decisions,
    write_decisions,
)
from companion.retraining.deploy import FAULT_KINDS, Candidate, Fault, GateOutcome, InMemoryDeployer
from companion.retraining.guard import broken_columns, fallback_model, scoring_checks
from companion.retraining.levels import (
    PERSON_TASKS,
    PROMOTERS,
    Level,
    LevelDeployer,
    LevelYear,
    RegistryLevelDeployer,
    compare_levels,
    default_design,
    maturity_levels,
    people_decisions,
    run_level,
)
from companion.retraining.lifecycle import MONTH_CLOCK, RegistryDeployer
from companion.retraining.loop import PolicyYear, psi, run_year
from companion.retraining.policy import DEFAULT_GATE, POLICY_KINDS, RetrainPolicy, standard_policies
from companion.retraining.triggers import TriggerState, trigger
from companion.retraining.year import VALUE_MONTHS, Year, pipeline_features, prepare_year

__all__ = [
    "DECISION_SCHEMA",
    "DEFAULT_GATE",
    "FAULT_KINDS",
    "MONTH_CLOCK",
    "OUTCOMES",
    "PERSON_TASKS",
    "POLICY_KINDS",
    "PROMOTERS",
    "STEPS",
    "TARGET_SHARE",
    "VALUE_MONTHS",
    "Candidate",
    "Comparison",
    "Decision",
    "Fault",
    "GateOutcome",
    "InMemoryDeployer",
    "Level",
    "LevelDeployer",
    "LevelYear",
    "PolicyYear",
    "RegistryDeployer",
    "RegistryLevelDeployer",
    "RetrainPolicy",
    "TriggerState",
    "Year",
    "broken_columns",
    "compare_levels",
    "compare_policies",
    "cost_difference",
    "customer_costs",
    "decisions_frame",
    "default_design",
    "fallback_model",
    "maturity_levels",
    "people_decisions",
    "pipeline_features",
    "prepare_year",
    "psi",
    "read_decisions",
    "run_level",
    "run_year",
    "scoring_checks",
    "standard_policies",
    "targeted",
    "trigger",
    "write_decisions",
]
