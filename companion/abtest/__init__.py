"""A/B testing for models: design before data, the analysis, and the pitfalls measured.

The experiment is about the business: champion and challenger each choose which customers get
a retention offer (the simulator's offer has a known effect, :mod:`companion.data.offers`), the
primary metric is 30-day churn, the guardrails are offer cost and serving latency. Customers
are assigned by chapter 8's router and the prediction log is the record.

The package, one concern per module:

- :mod:`~companion.abtest.design`: :func:`sample_size` and :func:`duration_days` (statsmodels
  power), the :class:`PreRegistration` record, :func:`register` and :func:`load_registration`
  (a missing or edited record is refused);
- :mod:`~companion.abtest.experiment`: each model's offers (:func:`offer_decisions`), and the
  month's frame from the prediction log and the simulator (:func:`experiment_frame`);
- :mod:`~companion.abtest.analysis`: :func:`analyse` (SRM, difference with z-test, interval and
  bootstrap, Holm-corrected segments, guardrails, the :class:`Decision` and its reasons);
- :mod:`~companion.abtest.sequential`: Lan-DeMets O'Brien-Fleming group-sequential boundaries
  (:func:`group_sequential_bounds`), valid under peeking;
- :mod:`~companion.abtest.simulate`: A/A tests, peeking with and without the boundaries, and
  power, simulated;
- :mod:`~companion.abtest.timeline`: the difference look by look, with the fixed and the
  group-sequential intervals (:func:`cumulative_differences`), and the difference the
  simulator's truth implies (:func:`true_differences`);
- :mod:`~companion.abtest.record`: the decision as ``abtest.*`` tags on the registry version
  (:func:`record_decision`).

Nothing happens at import: statsmodels and scipy are imported when called.
"""

from __future__ import annotations

from companion.abtest.analysis import (
    DECISIONS,
    Decision,
    Difference,
    Guardrail,
    analyse,
    compare_rates,
)
from companion.abtest.design import (
    GUARDRAILS,
    POPULATIONS,
    PreRegistration,
    duration_days,
    load_registration,
    register,
    sample_size,
)
from companion.abtest.experiment import experiment_frame, offer_decisions
from companion.abtest.record import TAG_PREFIX, decision_tags, record_decision
from companion.abtest.sequential import (
    SequentialBounds,
    equal_looks,
    group_sequential_bounds,
    obrien_fleming_spending,
)
from companion.abtest.simulate import (
    PEEKING_METHODS,
    SimulationResult,
    aa_test,
    peeking,
    power,
    power_curve,
)
from companion.abtest.timeline import cumulative_differences, true_differences

__all__ = [
    "DECISIONS",
    "GUARDRAILS",
    "PEEKING_METHODS",
    "POPULATIONS",
    "Decision",
    "Difference",
    "Guardrail",
    "PreRegistration",
    "SequentialBounds",
    "SimulationResult",
    "TAG_PREFIX",
    "aa_test",
    "analyse",
    "compare_rates",
    "cumulative_differences",
    "decision_tags",
    "duration_days",
    "equal_looks",
    "experiment_frame",
    "group_sequential_bounds",
    "load_registration",
    "obrien_fleming_spending",
    "offer_decisions",
    "peeking",
    "power",
    "power_curve",
    "record_decision",
    "register",
    "sample_size",
    "true_differences",
]
