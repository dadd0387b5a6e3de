"""The pitfalls, measured: A/A tests, peeking, the sequential fix and the planned test's power.

Every simulation is vectorised over tests (NumPy, one seeded generator), and each test is the
pooled two-proportion z-test of the analysis (the statistic of statsmodels'
``proportions_ztest``), so the rates measured here are the rates of the test the chapter runs.

- :func:`aa_test` runs many A/A tests (both arms with the same rate): about ``alpha`` of them
  are "significant", and their p-values are uniform.
- :func:`peeking` runs A/A (or A/B) tests with customers arriving evenly over ``looks`` days,
  tests after each day and stops at the first rejection: with the fixed 1.96 threshold the
  false-positive rate climbs to about 0.30 over 30 looks; with the group-sequential
  boundaries of :mod:`companion.abtest.sequential` it stays at alpha.
- :func:`power` is the share of tests that detect a true difference at the planned size
  (simulated), beside :func:`power_curve`, the analytic power of statsmodels.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np

from companion.abtest.sequential import equal_looks, group_sequential_bounds
from companion.core.checks import check_choice, check_int, check_number
from companion.errors import InvalidParameterError

__all__ = ["PEEKING_METHODS", "SimulationResult", "aa_test", "peeking", "power", "power_curve"]

logger = logging.getLogger(__name__)

PEEKING_METHODS = ("fixed", "sequential")
"""How peeking decides: ``fixed`` rejects at any look with ``p < alpha``; ``sequential`` at a
look whose group-sequential boundary is crossed."""


@dataclass(frozen=True)
class SimulationResult:
    """The share of simulated tests that rejected, with its binomial standard error."""

    n_tests: int
    rejections: int
    p_values: np.ndarray

    @property
    def rate(self) -> float:
        """Share of tests that rejected the null."""
        return self.rejections / self.n_tests

    @property
    def standard_error(self) -> float:
        """Binomial standard error of :attr:`rate`."""
        return float(np.sqrt(self.rate * (1.0 - self.rate) / self.n_tests))


def _rate(name: str, value: Any) -> float:
    rate = check_number(name, value)
    if not 0.0 < rate < 1.0:
        raise InvalidParameterError(f"{name} must be a rate in (0, 1), got {value!r}")
    return rate


def _alpha(alpha: Any) -> float:
    alpha = check_number("alpha", alpha)
    if not 0.0 < alpha < 1.0:
        raise InvalidParameterError(f"alpha must be in (0, 1), got {alpha!r}")
    return alpha


def z_statistic(x1: np.ndarray, n1: np.ndarray, x2: np.ndarray, n2: np.ndarray) -> np.ndarray:
    """Pooled two-proportion z (arm 2 minus arm 1), elementwise; 0 where the pool is 0 or 1."""
    p1, p2 = x1 / n1, x2 / n2
    pooled = (x1 + x2) / (n1 + n2)
    se = np.sqrt(pooled * (1.0 - pooled) * (1.0 / n1 + 1.0 / n2))
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(se > 0, (p2 - p1) / np.where(se > 0, se, 1.0), 0.0)
    return np.asarray(z)


def _p_two_sided(z: np.ndarray) -> np.ndarray:
    from scipy.stats import norm

    return np.asarray(2.0 * norm.sf(np.abs(z)))


def aa_test(
    n_tests: int = 1000, *, n_per_arm: int, rate: float, alpha: float = 0.05, seed: int = 0
) -> SimulationResult:
    """``n_tests`` A/A tests: both arms churn at ``rate``; the share with ``p < alpha``.

    Example:
        >>> round(aa_test(2000, n_per_arm=5000, rate=0.1, seed=1).rate, 2)
        0.05
    """
    n_tests = check_int("n_tests", n_tests, minimum=1)
    n = check_int("n_per_arm", n_per_arm, minimum=1)
    rate, alpha = _rate("rate", rate), _alpha(alpha)
    rng = np.random.default_rng(check_int("seed", seed, minimum=0))
    x1, x2 = rng.binomial(n, rate, size=(2, n_tests))
    p = _p_two_sided(z_statistic(x1, np.full(n_tests, n), x2, np.full(n_tests, n)))
    return SimulationResult(n_tests, int((p < alpha).sum()), p)


def peeking(
    n_tests: int = 1000, *, n_per_arm: int, rate: float, treated_rate: float | None = None,
    looks: int = 30, alpha: float = 0.05, method: str = "fixed", seed: int = 0,
) -> SimulationResult:
    """Tests looked at after each of ``looks`` equal batches; a rejection at any look counts.

    Args:
        n_tests: simulated experiments.
        n_per_arm: customers per arm at the last look (``n_per_arm / looks`` arrive per look).
        rate: the control arm's rate; ``treated_rate`` the other arm's (default: ``rate``,
            an A/A test: every rejection is a false positive).
        looks: how many times each test is looked at (30: daily for a month).
        method: ``"fixed"`` (``p < alpha`` at any look) or ``"sequential"`` (Lan-DeMets
            O'Brien-Fleming boundaries at equally spaced looks).

    Returns:
        The share of tests that rejected at some look; ``p_values`` holds each test's smallest
        p-value over its looks.
    """
    n_tests = check_int("n_tests", n_tests, minimum=1)
    n = check_int("n_per_arm", n_per_arm, minimum=1)
    looks = check_int("looks", looks, minimum=1, maximum=1000)
    if n < looks:
        raise InvalidParameterError(f"n_per_arm ({n}) must be at least looks ({looks})")
    rate, alpha = _rate("rate", rate), _alpha(alpha)
    treated = rate if treated_rate is None else _rate("treated_rate", treated_rate)
    check_choice("method", method, PEEKING_METHODS)
    rng = np.random.default_rng(check_int("seed", seed, minimum=0))
    sizes = np.diff(np.round(np.linspace(0, n, looks + 1)).astype("int64"))
    x1 = np.cumsum(rng.binomial(sizes, rate, size=(n_tests, looks)), axis=1)
    x2 = np.cumsum(rng.binomial(sizes, treated, size=(n_tests, looks)), axis=1)
    seen = np.cumsum(sizes)[None, :].astype("float64")
    z = z_statistic(x1, seen, x2, seen)
    if method == "fixed":
        rejected = (_p_two_sided(z) < alpha).any(axis=1)
    else:
        bounds = group_sequential_bounds(equal_looks(looks), alpha)
        rejected = bounds.crossed(z)[:, -1]
    smallest = _p_two_sided(np.abs(z).max(axis=1))
    logger.debug("peeking %s over %d looks: %d of %d rejected", method, looks,
                 rejected.sum(), n_tests)
    return SimulationResult(n_tests, int(rejected.sum()), smallest)


def power(
    n_tests: int = 1000, *, n_per_arm: int, rate: float, treated_rate: float,
    alpha: float = 0.05, seed: int = 0,
) -> SimulationResult:
    """Share of fixed-horizon tests that detect ``rate`` -> ``treated_rate`` (right direction)."""
    n_tests = check_int("n_tests", n_tests, minimum=1)
    n = check_int("n_per_arm", n_per_arm, minimum=1)
    rate, treated = _rate("rate", rate), _rate("treated_rate", treated_rate)
    alpha = _alpha(alpha)
    rng = np.random.default_rng(check_int("seed", seed, minimum=0))
    x1 = rng.binomial(n, rate, size=n_tests)
    x2 = rng.binomial(n, treated, size=n_tests)
    z = z_statistic(x1, np.full(n_tests, n), x2, np.full(n_tests, n))
    p = _p_two_sided(z)
    right_way = np.sign(z) == np.sign(treated - rate)
    return SimulationResult(n_tests, int(((p < alpha) & right_way).sum()), p)


def power_curve(
    baseline: float, relative_effects: Any, *, n_per_arm: int, alpha: float = 0.05
) -> np.ndarray:
    """Analytic power (statsmodels ``NormalIndPower``) for each relative fall of ``baseline``."""
    from statsmodels.stats.power import NormalIndPower
    from statsmodels.stats.proportion import proportion_effectsize

    baseline = _rate("baseline", baseline)
    n = check_int("n_per_arm", n_per_arm, minimum=2)
    alpha = _alpha(alpha)
    effects = np.asarray(relative_effects, dtype="float64")
    if effects.ndim != 1 or effects.size == 0 or np.any((effects < 0) | (effects >= 1)):
        raise InvalidParameterError(
            f"relative_effects must be a non-empty list of shares in [0, 1), got {effects!r}")
    h = np.abs(proportion_effectsize(baseline, baseline * (1.0 - effects)))
    solver = NormalIndPower()
    return np.array([float(solver.power(float(e), n, alpha, ratio=1.0)) if e > 0 else alpha
                     for e in np.atleast_1d(h)])
