"""The validation gate's policy and its decision: what a candidate must show to enter staging.

:class:`GatePolicy` states the rule (a floor on the candidate's ROC AUC interval and a margin on
the paired difference from production); :class:`GateDecision` is one gate's outcome with the
numbers behind it; :class:`GateDataError` says a gate month cannot decide. Pure: no store.

Example:
    >>> GatePolicy(min_roc_auc=0.6, margin=0.02).bound
    0.02
    >>> GatePolicy(min_roc_auc=0.6, margin=0.02, rule="non-inferiority").bound
    -0.02
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from companion.core.checks import check_choice, check_number, is_real
from companion.errors import InvalidParameterError
from companion.evaluation import Estimate

__all__ = ["GATE_RULES", "GateDataError", "GateDecision", "GatePolicy"]

GATE_RULES = ("superiority", "non-inferiority")
"""How a candidate must compare with production: better by the margin, or not worse by it."""


class GateDataError(InvalidParameterError):
    """The gate month cannot decide: it is not held out from a version, or has one class.

    :meth:`companion.registry.Registry.stage` turns it into an audited refusal, raised before
    any MLflow run is created.
    """


@dataclass(frozen=True)
class GatePolicy:
    """What a candidate must show on the held-out gate month to enter ``staging``.

    Both rules read 95% intervals, never bare point estimates: on a month of a few hundred
    churners an AUC moves by a few hundredths from one sample to the next, so a margin
    compared with a point estimate decides on noise.

    Attributes:
        min_roc_auc: floor of the candidate's ROC AUC: the *lower end* of its DeLong
            interval must lie above it (0.6: clearly better than chance and than one
            rule of thumb; the simulator's oracle reaches about 0.78 before the price rise).
        margin: the margin of the comparison with the production version, scored on the same
            rows: the lower end of the paired DeLong interval of (candidate - production)
            must lie above ``+margin`` (superiority) or above ``-margin`` (non-inferiority).
            Ignored while nothing is in production.
        rule: ``"superiority"`` (the candidate must be shown better) or
            ``"non-inferiority"`` (it must be shown not worse by more than the margin).
    """

    min_roc_auc: float = 0.60
    margin: float = 0.02
    rule: str = "superiority"

    def __post_init__(self) -> None:
        check_number("min_roc_auc", self.min_roc_auc)
        check_number("margin", self.margin)
        if not 0.0 < self.min_roc_auc < 1.0:
            raise InvalidParameterError(
                f"min_roc_auc must lie strictly between 0 and 1, got {self.min_roc_auc}"
            )
        if not 0.0 <= self.margin < 0.5:
            raise InvalidParameterError(
                f"margin must lie in [0, 0.5) (an AUC difference), got {self.margin}"
            )
        check_choice("rule", self.rule, GATE_RULES)

    @property
    def bound(self) -> float:
        """What the lower end of the difference interval must exceed: +margin or -margin."""
        return self.margin if self.rule == "superiority" else -self.margin

    def describe(self) -> str:
        """Return the policy in one line."""
        return (
            f"lower end of the candidate's 95% ROC AUC interval > {self.min_roc_auc:g}, and "
            f"lower end of the paired DeLong 95% interval of (candidate - production) > "
            f"{self.bound:+g} ({self.rule}), on the same held-out month"
        )

    def decide(self, candidate: Estimate, difference: Estimate | None) -> tuple[bool, str]:
        """Apply the policy to the candidate's AUC and its difference from production.

        Args:
            candidate: the candidate's ROC AUC with its interval.
            difference: AUC(candidate) - AUC(production) on the same rows, with its paired
                interval; None while nothing is in production.

        Returns:
            ``(passed, why)``, ``why`` naming the interval and the bound it was compared with.

        Example:
            >>> policy = GatePolicy(min_roc_auc=0.6, margin=0.02)
            >>> policy.decide(Estimate(0.80, 0.78, 0.82), Estimate(0.03, 0.01, 0.05))[0]
            False
        """
        for label, value in (("candidate", candidate), ("difference", difference)):
            if value is not None and not isinstance(value, Estimate):
                raise InvalidParameterError(
                    f"{label} must be an Estimate (from companion.evaluation), got "
                    f"{type(value).__name__}"
                )
        if candidate is None:
            raise InvalidParameterError("candidate must be an Estimate, got None")
        for label, value in (("candidate", candidate), ("difference", difference)):
            if value is not None and not all(
                is_real(x) and math.isfinite(x) for x in (value.value, value.low, value.high)
            ):
                raise InvalidParameterError(
                    f"{label} must have a finite value and interval, got {value!r}"
                )
        if not candidate.above(self.min_roc_auc):
            return False, (
                f"ROC AUC {candidate.format()} does not clear the floor: its lower end "
                f"{candidate.low:.3f} is not above {self.min_roc_auc:g}"
            )
        if difference is None:
            return True, (
                f"ROC AUC {candidate.format()} clears the floor {self.min_roc_auc:g}; nothing "
                "in production to compare with"
            )
        verdict = "better" if self.rule == "superiority" else "not worse"
        if difference.above(self.bound):
            return True, (
                f"ROC AUC {candidate.format()}; difference from production "
                f"{difference.format(signed=True)} lies above {self.bound:+g}: shown {verdict} "
                f"({self.rule}, margin {self.margin:g})"
            )
        return False, (
            f"ROC AUC {candidate.format()}; difference from production "
            f"{difference.format(signed=True)} does not lie above {self.bound:+g}: not shown "
            f"{verdict} ({self.rule}, margin {self.margin:g})"
        )


@dataclass(frozen=True)
class GateDecision:
    """The outcome of the validation gate for one candidate.

    Attributes:
        candidate_version: the version evaluated.
        production_version: the version it was compared with (None if nothing in production).
        month: the held-out snapshot both were scored on, ``YYYY-MM-DD``.
        candidate: candidate's ROC AUC on that month, with its 95% DeLong interval.
        production: production's ROC AUC on the same rows (None without production).
        difference: candidate - production, with the paired DeLong interval (None without).
        passed: whether the candidate may enter ``staging``.
        reason: why, in one sentence, with the interval numbers.
        policy: the policy's one-line description.
        rows: labelled rows of the gate month.
        churners: churners among them.
        rows_hash: content hash of the gate rows (:func:`companion.registry.gate_rows`).
        dataset_seed: seed of the simulated dataset the rows came from.
        dataset_hash: content hash of that dataset.
    """

    candidate_version: int
    production_version: int | None
    month: str
    candidate: Estimate
    production: Estimate | None
    difference: Estimate | None
    passed: bool
    reason: str
    policy: str
    rows: int
    churners: int
    rows_hash: str
    dataset_seed: int
    dataset_hash: str

    @property
    def candidate_roc_auc(self) -> float:
        """The candidate's ROC AUC point estimate."""
        return self.candidate.value

    @property
    def production_roc_auc(self) -> float | None:
        """Production's ROC AUC point estimate (None without production)."""
        return None if self.production is None else self.production.value

    def tags(self) -> dict[str, str]:
        """Return the decision as model-version tags: the gate's data and its numbers."""

        def interval(prefix: str, estimate: Estimate | None) -> dict[str, str]:
            if estimate is None:
                return {prefix: "", f"{prefix}_low": "", f"{prefix}_high": ""}
            return {prefix: f"{estimate.value:.4f}", f"{prefix}_low": f"{estimate.low:.4f}",
                    f"{prefix}_high": f"{estimate.high:.4f}"}

        return {
            "gate.result": "passed" if self.passed else "refused",
            "gate.month": self.month,
            "gate.rows": str(self.rows),
            "gate.churners": str(self.churners),
            "gate.rows_hash": self.rows_hash,
            "gate.dataset_seed": str(self.dataset_seed),
            "gate.dataset_hash": self.dataset_hash,
            "gate.policy": self.policy,
            "gate.production_version": str(self.production_version or ""),
            **interval("gate.roc_auc", self.candidate),
            **interval("gate.production_roc_auc", self.production),
            **interval("gate.difference", self.difference),
            "gate.p_value": (
                "" if self.difference is None or self.difference.p_value is None
                else f"{self.difference.p_value:.4f}"
            ),
            "gate.reason": self.reason,
        }
