"""Tests of the pitfalls measured by simulation, for several seeds: A/A tests at alpha, daily
peeking inflating the false-positive rate to about 0.30, the Lan-DeMets O'Brien-Fleming
boundaries (checked against gsDesign's) keeping it at alpha, and the simulated power of the
planned test at the planned power."""

from __future__ import annotations

import numpy as np
import pytest

from companion import abtest
from companion.errors import InvalidParameterError, UnknownNameError

SEEDS = (0, 1, 2)


def test_boundaries_match_gsdesign_and_spend_alpha():
    five = abtest.group_sequential_bounds(abtest.equal_looks(5))
    # gsDesign::gsDesign(k=5, test.type=2, sfu=sfLDOF): 4.877, 3.357, 2.680, 2.290, 2.031
    assert np.round(five.z, 3).tolist() == [4.877, 3.357, 2.680, 2.290, 2.031]
    assert five.spent[-1] == pytest.approx(0.05)
    assert abtest.group_sequential_bounds([1.0]).z[0] == pytest.approx(1.959964, abs=1e-6)
    thirty = abtest.group_sequential_bounds(abtest.equal_looks(30))
    assert all(a >= b for a, b in zip(thirty.z, thirty.z[1:], strict=False))  # falling
    assert 2.0 < thirty.z[-1] < 2.2 and thirty.z[0] == 8.0
    assert thirty.nominal_p[-1] < 0.05
    assert abtest.obrien_fleming_spending([0.5, 1.0])[0] == pytest.approx(0.00305, abs=1e-5)


def test_boundaries_refuse_bad_looks():
    for fractions in ([], [0.5, 0.4], [0.0, 1.0], [0.5, 1.2], "0.5"):
        with pytest.raises(InvalidParameterError, match="fraction"):
            abtest.group_sequential_bounds(fractions)
    with pytest.raises(InvalidParameterError, match="alpha"):
        abtest.group_sequential_bounds([1.0], alpha=1.0)
    with pytest.raises(InvalidParameterError, match="one value per look"):
        abtest.group_sequential_bounds([0.5, 1.0]).crossed([1.0, 2.0, 3.0])


@pytest.mark.parametrize("seed", SEEDS)
def test_aa_tests_reject_at_alpha_with_uniform_p_values(seed):
    result = abtest.aa_test(1000, n_per_arm=20_000, rate=0.06, seed=seed)
    assert 0.035 <= result.rate <= 0.065
    deciles = np.histogram(result.p_values, bins=10, range=(0, 1))[0]
    assert deciles.min() >= 60 and deciles.max() <= 140  # uniform: 100 per decile


@pytest.mark.parametrize("seed", SEEDS)
def test_peeking_inflates_and_the_boundaries_fix_it(seed):
    fixed = abtest.peeking(1000, n_per_arm=20_000, rate=0.06, looks=30, seed=seed)
    sequential = abtest.peeking(1000, n_per_arm=20_000, rate=0.06, looks=30, seed=seed,
                                method="sequential")
    assert 0.24 <= fixed.rate <= 0.35  # measured 0.295 on this stack
    assert sequential.rate <= 0.065


@pytest.mark.parametrize("seed", SEEDS)
def test_the_planned_test_has_its_planned_power(seed):
    n = abtest.sample_size(0.13, 0.2)
    simulated = abtest.power(2000, n_per_arm=n, rate=0.13, treated_rate=0.104, seed=seed)
    assert simulated.rate == pytest.approx(0.8, abs=0.035)
    curve = abtest.power_curve(0.13, [0.0, 0.1, 0.2, 0.3], n_per_arm=n)
    assert curve[0] == pytest.approx(0.05) and curve[2] == pytest.approx(0.8, abs=0.005)
    assert np.all(np.diff(curve) > 0)
    # The sequential test loses little power against the true effect.
    sequential = abtest.peeking(1000, n_per_arm=n, rate=0.13, treated_rate=0.104, looks=5,
                                method="sequential", seed=seed)
    assert sequential.rate >= 0.72


def test_simulations_refuse_bad_input():
    with pytest.raises(InvalidParameterError, match="alpha"):
        abtest.aa_test(10, n_per_arm=100, rate=0.1, alpha=0)
    with pytest.raises(InvalidParameterError, match="rate"):
        abtest.aa_test(10, n_per_arm=100, rate=1.5)
    with pytest.raises(UnknownNameError, match="bayesian"):
        abtest.peeking(10, n_per_arm=100, rate=0.1, method="bayesian")
    with pytest.raises(InvalidParameterError, match="looks"):
        abtest.peeking(10, n_per_arm=10, rate=0.1, looks=30)
    with pytest.raises(InvalidParameterError, match="relative_effects"):
        abtest.power_curve(0.1, [-0.1], n_per_arm=100)
