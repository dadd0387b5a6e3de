"""Evaluation with uncertainty: every metric and every difference with a 95% interval.

A test month of a few thousand customers holds a few hundred churners at most, and an AUC
measured on it moves by several hundredths from one sample to the next. This module gives the
number *and* how far it can be trusted:

- :func:`auc_interval`: ROC AUC with DeLong's interval (exact, no resampling);
- :func:`auc_difference`: the paired difference of two models' AUC on the same rows, DeLong's
  interval and p-value (the two models' errors are correlated; a paired interval is far
  narrower than two separate ones);
- :func:`bootstrap_interval`: any metric, or the difference of a metric between two models,
  resampled by *customer* (a customer's rows stay together), for metrics DeLong does not cover;
- :func:`compare_models`: a table of models against a baseline, each metric and each
  difference with its interval, ready to print;
- :func:`clustered_auc_interval`: DeLong's interval when a customer has several rows;
- :func:`unpaired_difference`: the difference of two estimates from independent samples;
- :func:`monthly_auc`: a model's AUC month by month, optionally its gap to the oracle;
- :func:`scenario_contributions`: how much each drift scenario moved a deployed model's AUC,
  measured by regenerating the data without it.

Every result is an :class:`Estimate`, which prints as ``0.812 [0.795, 0.829]``. The package
holds :mod:`~companion.evaluation.estimate` (the :class:`Estimate` and tables of them),
:mod:`~companion.evaluation.auc` (DeLong), :mod:`~companion.evaluation.bootstrap` (resampling
and model comparison tables) and :mod:`~companion.evaluation.monthly` (month by month, and
the drift scenarios' contributions).

Example:
    >>> import numpy as np
    >>> y = np.array([0, 0, 1, 1, 0, 1, 0, 1])
    >>> s = np.array([0.1, 0.4, 0.35, 0.8, 0.2, 0.7, 0.6, 0.9])
    >>> auc_interval(y, s).value
    0.875
"""

from __future__ import annotations

from companion.evaluation.auc import auc_difference, auc_interval, clustered_auc_interval
from companion.evaluation.bootstrap import bootstrap_interval, compare_models
from companion.evaluation.estimate import LEVEL, Estimate, interval_table, unpaired_difference
from companion.evaluation.monthly import (
    ScenarioContributions,
    monthly_auc,
    scenario_contributions,
    scenario_worlds,
)

__all__ = [
    "LEVEL",
    "Estimate",
    "auc_interval",
    "auc_difference",
    "bootstrap_interval",
    "compare_models",
    "interval_table",
    "clustered_auc_interval",
    "unpaired_difference",
    "monthly_auc",
    "scenario_worlds",
    "ScenarioContributions",
    "scenario_contributions",
]
