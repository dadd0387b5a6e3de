"""What the loop asks of the lifecycle: retrain, gate, canary, promote, roll back.

The loop (:mod:`companion.retraining.loop`) decides; a *deployer* acts. Two deployers share
one set of definitions:

- :class:`InMemoryDeployer` (the comparison of policies): trains with
  :func:`companion.training.train` on the shared feature rows, applies chapter 6's
  :class:`~companion.registry.GatePolicy` to the same DeLong intervals the registry's gate
  computes, splits traffic with chapter 8's sticky :func:`~companion.deployment.assign`, and
  keeps the aliases in memory. No store, no files: a year of one policy in seconds.
- :class:`~companion.retraining.lifecycle.RegistryDeployer`: the same steps through chapter 7's
  pipeline, chapter 6's registry and chapter 8's router (one policy, in detail).

A :class:`Fault` injects what the safety checks must catch: ``worse_candidate`` (trained on
shuffled labels: the gate must refuse it), ``serving_skew`` (the new model is served minutes in
hours: the canary's score check must stop it) and ``misjoin`` (its served scores reach the
wrong customers: same distribution, no ranking; only the delayed labels show it, after
promotion, and the post-deployment check must roll it back).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from companion.core.checks import check_choice
from companion.deployment import assign
from companion.errors import DataQualityError, InvalidParameterError
from companion.evaluation import Estimate, auc_difference, auc_interval
from companion.registry import GatePolicy
from companion.training import FEATURES, TARGET, snapshot_features, train

__all__ = ["FAULT_KINDS", "Candidate", "Fault", "GateOutcome", "InMemoryDeployer", "score"]

logger = logging.getLogger(__name__)

FAULT_KINDS = ("worse_candidate", "serving_skew", "misjoin")
_MONTH = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")


@dataclass(frozen=True)
class Fault:
    """A fault injected into the retrain of ``month`` (``YYYY-MM``): see the module docstring."""

    month: str
    kind: str

    def __post_init__(self) -> None:
        if not isinstance(self.month, str) or not _MONTH.match(self.month):
            raise InvalidParameterError(f"fault month must look like '2025-07', got "
                                        f"{self.month!r}")
        check_choice("fault kind", self.kind, FAULT_KINDS)


@dataclass
class Candidate:
    """A trained model with what it was trained on and how it serves.

    ``serving_fault`` is ``""`` or a fault kind that changes what it serves (not what it
    scores offline: a serving fault lives in the deployment, not the model).
    """

    version: int
    model: Any = field(repr=False)
    train_months: tuple[str, ...]
    holdout: str
    training_rows: int
    row_iterations: float
    serving_fault: str = ""
    gate_auc: float = float("nan")
    gate_scores: np.ndarray = field(default_factory=lambda: np.empty(0), repr=False)


@dataclass(frozen=True)
class GateOutcome:
    """The gate's verdict on a candidate: passed, why, and its numbers."""

    passed: bool
    reason: str
    candidate: Estimate
    difference: Estimate | None


def _one_thread() -> Any:
    from threadpoolctl import threadpool_limits

    return threadpool_limits(1)


def score(candidate: Candidate, rows: pd.DataFrame, *, served: bool = False,
          salt: str = "") -> np.ndarray:
    """The candidate's churn scores of ``rows``; ``served`` applies its serving fault."""
    frame = rows[FEATURES]
    if served and candidate.serving_fault == "serving_skew":
        frame = frame.assign(minutes_4w=frame["minutes_4w"] / 60.0)
    with _one_thread():
        scores = np.asarray(candidate.model.predict_proba(frame))[:, 1]
    if served and candidate.serving_fault == "misjoin":
        rng = np.random.default_rng([candidate.version, len(salt)])
        scores = scores[rng.permutation(scores.size)]
    return scores


def fitted_work(model: Any, rows: int) -> float:
    """Training rows x iterations of a fitted churn model (chapter 5's deterministic work)."""
    from companion.tracking.cost import fitted_iterations

    return float(rows * fitted_iterations(model))


class InMemoryDeployer:
    """The lifecycle's steps on the shared rows, with aliases held in memory."""

    def __init__(self, year: Any, *, kind: str = "gbm", seed: int = 0) -> None:
        self.year = year
        self.kind = kind
        self.seed = seed
        self.aliases: dict[str, int] = {}
        self.history: list[int] = []
        self.month = ""
        self._next = 1

    def begin_month(self, month: str) -> None:
        """The loop starts deciding for ``month`` (``YYYY-MM-DD``): remember it."""
        self.month = month

    # --- models ----------------------------------------------------------------------
    def _fit(self, months: list[str], fault: str) -> tuple[Any, pd.DataFrame]:
        rows = pd.concat([self.year.rows(m) for m in months], ignore_index=True)
        if fault == "worse_candidate":
            rng = np.random.default_rng(self.seed)
            rows = rows.assign(**{TARGET: rng.permutation(rows[TARGET].to_numpy())})
        with _one_thread():
            model = train(rows, kind=self.kind, seed=self.seed)
        return model, rows

    def baseline(self) -> Candidate:
        """The first production model: chapter 6's baseline, trained as the registry trains it.

        The registry's version 1 was fitted on the first month's
        :func:`~companion.training.snapshot_features` (the pandas reference), so this model is
        too, and it is version 1 score for score. Every retrain after it reads the year's rows,
        the features the pipeline builds.
        """
        months = list(self.year.months)
        rows = snapshot_features(self.year.dataset, months[:1])
        with _one_thread():
            model = train(rows, kind=self.kind, seed=self.seed)
        first = self._candidate(model, rows, months[:1], months[1], "")
        self.gate(first, None, GatePolicy())  # its AUC on its gate month, the reference
        self.aliases["production"] = first.version
        self.history.append(first.version)
        return first

    def _candidate(self, model: Any, rows: pd.DataFrame, months: list[str], holdout: str,
                   fault: str) -> Candidate:
        version = self._next
        self._next += 1
        serving = fault if fault in ("serving_skew", "misjoin") else ""
        return Candidate(version, model, tuple(months), holdout, len(rows),
                         fitted_work(model, len(rows)), serving)

    def retrain(self, export_month: str, train_months: list[str], holdout: str,
                fault: str = "") -> Candidate:
        """Train on ``train_months`` from the export of ``export_month``; register it.

        Raises:
            DataQualityError: the export failed chapter 7's data-quality checks.
        """
        failed = self.year.quality.get(export_month)
        if failed is None:
            raise InvalidParameterError(f"no export for {export_month}")
        if failed:
            raise DataQualityError(
                f"the export of {export_month} failed {len(failed)} data-quality check(s): "
                f"{', '.join(failed)}")
        model, rows = self._fit(train_months, fault)
        return self._candidate(model, rows, train_months, holdout, fault)

    # --- gate and moves ----------------------------------------------------------------
    def gate(self, candidate: Candidate, production: Candidate | None,
             policy: GatePolicy) -> GateOutcome:
        """Chapter 6's rule on the candidate's held-out month (floor only without production)."""
        rows = self.year.rows(candidate.holdout)
        y = rows[TARGET].to_numpy()
        scores = score(candidate, rows)
        estimate = auc_interval(y, scores)
        difference = None
        if production is not None:
            difference = auc_difference(y, scores, score(production, rows))
        passed, why = policy.decide(estimate, difference)
        candidate.gate_auc = estimate.value
        candidate.gate_scores = scores
        return GateOutcome(passed, f"v{candidate.version} on {candidate.holdout}: {why}",
                           estimate, difference)

    def stage(self, candidate: Candidate, outcome: GateOutcome) -> None:
        """Record a candidate that passed the gate in ``staging``."""
        self.aliases["staging"] = candidate.version

    def canary(self, candidate: Candidate, production: Candidate, rows: pd.DataFrame,
               share: float, salt: str) -> tuple[np.ndarray, np.ndarray]:
        """Serve ``rows`` through the sticky split: (served scores, canary mask)."""
        weights = {"champion": 1.0 - share, "challenger": share}
        mask = np.array([assign(int(c), weights, salt) == "challenger"
                         for c in rows["customer_id"]])
        served = score(production, rows, served=True, salt=salt)
        if mask.any():
            served[mask] = score(candidate, rows[mask], served=True, salt=salt)
        return served, mask

    def promote(self, candidate: Candidate, reason: str) -> None:
        """Move production to the candidate."""
        self.aliases.pop("staging", None)
        self.aliases["production"] = candidate.version
        self.history.append(candidate.version)

    def rollback(self, reason: str, rows: pd.DataFrame, previous: Candidate) -> bool:
        """Return production to the version before; True if it predicts as ``previous``."""
        self.history.pop()
        self.aliases["production"] = self.history[-1]
        return self.history[-1] == previous.version
