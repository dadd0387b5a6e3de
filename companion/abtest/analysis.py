"""The analysis, in the order it must run: SRM, primary metric, segments, guardrails, decision.

:func:`analyse` starts from a registered design (:func:`~companion.abtest.design.load_registration`
refuses a missing or edited one) and an experiment frame
(:func:`~companion.abtest.experiment.experiment_frame`):

1. the sample-ratio-mismatch check of the split (:func:`companion.deployment.srm_check`): a
   mismatch means the assignment is broken and no difference is trusted;
2. the primary metric, challenger minus champion, over the registered population (every
   customer of each arm, or the triggered ones): statsmodels' two-proportion z-test and its
   95% interval (``confint_proportions_2indep``, Newcombe's method), with a seeded bootstrap
   interval beside it;
3. the same difference in each segment, p-values corrected for multiple comparisons (Holm,
   ``multipletests``);
4. the guardrails (extra offer cost per customer, serving latency p99 from the log);
5. the decision rule: a mismatch is *inconclusive*; a failed guardrail is *do not ship*; an
   interval wholly below 0 is *ship*, wholly above 0 *do not ship*, otherwise *inconclusive*.

The result is a frozen :class:`Decision` with its reasons, ready to be stored beside the
design and on the registry version.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

from companion.abtest.design import PreRegistration
from companion.core.checks import check_frame, check_int
from companion.deployment.predlog import SrmResult, srm_check
from companion.deployment.router import ARMS
from companion.errors import InvalidParameterError

__all__ = ["DECISIONS", "Decision", "Difference", "Guardrail", "analyse", "compare_rates"]

logger = logging.getLogger(__name__)

DECISIONS = ("ship", "do not ship", "inconclusive")


@dataclass(frozen=True)
class Difference:
    """Challenger minus champion on a rate, with its tests and intervals."""

    segment: str
    n_champion: int
    n_challenger: int
    champion_rate: float
    challenger_rate: float
    difference: float
    ci_low: float
    ci_high: float
    p_value: float
    bootstrap_low: float
    bootstrap_high: float
    p_adjusted: float | None = None

    @property
    def relative(self) -> float:
        """The difference as a share of the champion's rate."""
        return self.difference / self.champion_rate if self.champion_rate > 0 else float("nan")


@dataclass(frozen=True)
class Guardrail:
    """One guardrail's measured value against its registered limit."""

    name: str
    value: float
    limit: float

    @property
    def passed(self) -> bool:
        """True when the value stays within the limit."""
        return self.value <= self.limit


@dataclass(frozen=True)
class Decision:
    """What the experiment concluded and why (see the module docstring)."""

    experiment: str
    registration_sha256: str
    srm: SrmResult
    primary: Difference
    segments: tuple[Difference, ...]
    guardrails: tuple[Guardrail, ...]
    decision: str
    reasons: tuple[str, ...]

    def segment_frame(self) -> pd.DataFrame:
        """The segments as a table (one row each, Holm-adjusted p-values included)."""
        return pd.DataFrame([{**asdict(s), "relative": s.relative} for s in self.segments])

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON values: the decision, its reasons and every number behind it."""
        return {
            "experiment": self.experiment,
            "registration_sha256": self.registration_sha256,
            "decision": self.decision,
            "reasons": list(self.reasons),
            "srm": {"counts": self.srm.counts, "p_value": self.srm.p_value,
                    "verdict": self.srm.verdict},
            "primary": {**asdict(self.primary), "relative": self.primary.relative},
            "segments": [asdict(s) for s in self.segments],
            "guardrails": [{**asdict(g), "passed": g.passed} for g in self.guardrails],
        }


def compare_rates(
    x_champion: int, n_champion: int, x_challenger: int, n_challenger: int, *,
    alpha: float = 0.05, n_boot: int = 2000, seed: int = 0, segment: str = "all",
) -> Difference:
    """Challenger minus champion for counts of events out of customers in each arm.

    The z-test is statsmodels' pooled ``proportions_ztest``; the interval
    ``confint_proportions_2indep`` (Newcombe); the bootstrap resamples each arm's customers
    (for a 0/1 outcome, a binomial draw of the arm's size at its observed rate is exactly
    that), ``n_boot`` times with ``seed``, and takes the percentile interval.
    """
    from statsmodels.stats.proportion import confint_proportions_2indep, proportions_ztest

    n0 = check_int("n_champion", n_champion, minimum=1)
    n1 = check_int("n_challenger", n_challenger, minimum=1)
    x0 = check_int("x_champion", x_champion, minimum=0, maximum=n0)
    x1 = check_int("x_challenger", x_challenger, minimum=0, maximum=n1)
    n_boot = check_int("n_boot", n_boot, minimum=100)
    p0, p1 = x0 / n0, x1 / n1
    if 0 < x0 + x1 < n0 + n1:
        _, p_value = proportions_ztest([x1, x0], [n1, n0])
    else:
        p_value = 1.0  # no event (or only events) in both arms: no evidence of a difference
    low, high = confint_proportions_2indep(x1, n1, x0, n0, method="newcomb", compare="diff",
                                           alpha=alpha)
    rng = np.random.default_rng([check_int("seed", seed, minimum=0), n0, n1])
    boot = rng.binomial(n1, p1, n_boot) / n1 - rng.binomial(n0, p0, n_boot) / n0
    b_low, b_high = np.quantile(boot, [alpha / 2.0, 1.0 - alpha / 2.0])
    return Difference(segment, n0, n1, p0, p1, p1 - p0, float(low), float(high),
                      float(p_value), float(b_low), float(b_high))


def _difference(frame: pd.DataFrame, metric: str, alpha: float, n_boot: int, seed: int,
                segment: str) -> Difference:
    arm = frame["arm"].to_numpy()
    values = frame[metric].to_numpy()
    counts = {a: (int(values[arm == a].sum()), int((arm == a).sum())) for a in ARMS}
    if min(n for _, n in counts.values()) == 0:
        raise InvalidParameterError(f"segment {segment!r} has no customer in one arm: {counts}")
    return compare_rates(*counts["champion"], *counts["challenger"], alpha=alpha,
                         n_boot=n_boot, seed=seed, segment=segment)


def _guardrails(frame: pd.DataFrame, registration: PreRegistration) -> list[Guardrail]:
    out = []
    for name, limit in registration.guardrails.items():
        if name == "offer_cost_per_customer":
            cost = frame.groupby("arm")["offer_cost"].mean()
            value = float(cost["challenger"] - cost["champion"])
        else:  # latency_p99_ms
            latency = frame.loc[frame["arm"] == "challenger", "latency_ms"]
            value = float(np.percentile(latency.to_numpy(dtype="float64"), 99))
        out.append(Guardrail(name, round(value, 6), float(limit)))
    return out


def analyse(
    frame: pd.DataFrame, registration: PreRegistration, *, n_boot: int = 2000, seed: int = 0
) -> Decision:
    """Analyse an experiment frame against its pre-registration (see the module docstring).

    Args:
        frame: one row per customer: ``arm`` (champion or challenger), the primary metric
            (0/1), ``offer_cost``, ``latency_ms``, the segment column, and ``triggered`` for
            a triggered population.
        registration: the design, as :func:`~companion.abtest.design.load_registration`
            returned it.
        n_boot: the bootstrap's resamples.
        seed: the bootstrap's seed.
    """
    if not isinstance(registration, PreRegistration):
        raise InvalidParameterError(
            f"registration must be a PreRegistration (load_registration()), got "
            f"{type(registration).__name__}")
    needed = ["arm", registration.primary_metric, registration.segments, "offer_cost",
              "latency_ms"]
    if registration.population == "triggered":
        needed.append("triggered")
    check_frame("frame", frame, needed, non_empty=True)
    arms = set(frame["arm"].astype(str))
    if not arms <= set(ARMS):
        raise InvalidParameterError(
            f"frame has unknown arm(s) {sorted(arms - set(ARMS))}; accepted: {list(ARMS)}")
    metric = frame[registration.primary_metric]
    if not metric.isin([0, 1]).all():
        raise InvalidParameterError(
            f"the primary metric {registration.primary_metric!r} must be 0 or 1 per customer")
    frame = frame.assign(arm=frame["arm"].astype(str))
    srm = srm_check(frame["arm"].value_counts().to_dict(), registration.weights)
    population = frame if registration.population == "arm" else frame[frame["triggered"]]
    alpha = registration.alpha
    primary = _difference(population, registration.primary_metric, alpha, n_boot, seed,
                          registration.population)
    segments = [
        _difference(rows, registration.primary_metric, alpha, n_boot, seed, str(value))
        for value, rows in population.groupby(registration.segments, observed=True, sort=True)
    ]
    if segments:
        from statsmodels.stats.multitest import multipletests

        adjusted = multipletests([s.p_value for s in segments], alpha=alpha, method="holm")[1]
        segments = [Difference(**{**asdict(s), "p_adjusted": float(p)})
                    for s, p in zip(segments, adjusted, strict=True)]
    guardrails = _guardrails(frame, registration)
    decision, reasons = _decide(registration, srm, primary, guardrails)
    logger.info("experiment %s: %s", registration.name, decision)
    return Decision(registration.name, registration.digest(), srm, primary, tuple(segments),
                    tuple(guardrails), decision, tuple(reasons))


def _decide(registration: PreRegistration, srm: SrmResult, primary: Difference,
            guardrails: list[Guardrail]) -> tuple[str, list[str]]:
    interval = f"[{primary.ci_low:+.4f}, {primary.ci_high:+.4f}]"
    reasons = []
    planned = registration.n_per_arm
    if min(primary.n_champion, primary.n_challenger) < planned:
        reasons.append(f"fewer customers than planned ({primary.n_champion:,} and "
                       f"{primary.n_challenger:,} against {planned:,} per arm)")
    if srm.mismatch:
        reasons.append(f"sample ratio mismatch (p = {srm.p_value:.2g}): the split is broken, "
                       "no difference can be trusted")
        return "inconclusive", reasons
    failed = [g for g in guardrails if not g.passed]
    for g in failed:
        reasons.append(f"guardrail {g.name} failed: {g.value:.4g} > {g.limit:.4g}")
    if failed:
        return "do not ship", reasons
    if primary.ci_high < 0:
        reasons.append(f"the challenger lowers {registration.primary_metric}: "
                       f"{primary.difference:+.4f}, 95% interval {interval}")
        return "ship", reasons
    if primary.ci_low > 0:
        reasons.append(f"the challenger raises {registration.primary_metric}: "
                       f"{primary.difference:+.4f}, 95% interval {interval}")
        return "do not ship", reasons
    reasons.append(f"the 95% interval {interval} includes 0")
    return "inconclusive", reasons
