"""Tests of the experiment's design: statsmodels sample sizes (10% -> 9% needs 13,488 per arm),
durations, the pre-registration record written once, read back, and refused when missing or
edited; bad alpha, power, MDE, arms, populations and guardrails raise naming the value."""

from __future__ import annotations

import json

import pytest

from companion import abtest
from companion.errors import InvalidParameterError, LineageError, UnknownNameError


def _registration(**changes):
    values = {"name": "offer-test-1", "hypothesis": "the challenger's offers lower churn",
              "baseline": 0.13, "mde": 0.2, "population": "triggered",
              "guardrails": {"offer_cost_per_customer": 0.5, "latency_p99_ms": 50.0}}
    return abtest.PreRegistration(**{**values, **changes})


def test_sample_size_matches_statsmodels_measurements():
    assert abtest.sample_size(0.10, 0.01, relative=False) == 13_488
    assert abtest.sample_size(0.10, 0.10) == 13_488  # 10% of 0.10 is the same fall
    # The simulator's monthly rate before any drift: about 50,000 per arm for a 10% fall.
    assert 49_000 <= abtest.sample_size(0.029, 0.10) <= 52_000
    # Higher power, lower alpha, smaller effect: more customers.
    assert abtest.sample_size(0.10, 0.1, power=0.9) > 13_488
    assert abtest.sample_size(0.10, 0.1, alpha=0.01) > 13_488
    assert abtest.sample_size(0.10, 0.05) > 4 * 13_488 * 0.9


@pytest.mark.parametrize("kwargs", [
    {"alpha": 0.0}, {"alpha": 1.0}, {"alpha": 1.5}, {"alpha": "0.05"},
    {"power": 0.0}, {"power": 1.0}, {"mde": -0.1}, {"mde": 0.0}, {"mde": 1.0},
    {"baseline": 0.0}, {"baseline": 1.2},
])
def test_sample_size_refuses_bad_input(kwargs):
    args = {"baseline": 0.1, "mde": 0.1, **kwargs}
    with pytest.raises(InvalidParameterError) as error:
        abtest.sample_size(args.pop("baseline"), args.pop("mde"), **args)
    name = next(iter(kwargs))
    assert name in str(error.value)


def test_duration_is_enrolment_then_the_outcome_window():
    assert abtest.duration_days(13_488, eligible_per_day=1_000) == 27 + 30
    assert abtest.duration_days(100, eligible_per_day=200, outcome_days=0) == 1
    with pytest.raises(InvalidParameterError, match="eligible_per_day"):
        abtest.duration_days(100, eligible_per_day=0)


def test_registration_computes_its_sample_size_and_normalises():
    reg = _registration(weights={"challenger": 1, "champion": 1})
    assert reg.n_per_arm == abtest.sample_size(0.13, 0.2)
    assert reg.weights == {"champion": 0.5, "challenger": 0.5}
    assert reg.target == pytest.approx(0.104)
    assert _registration(n_per_arm=5000).n_per_arm == 5000


@pytest.mark.parametrize(("changes", "error", "words"), [
    ({"alpha": 1.2}, InvalidParameterError, "alpha"),
    ({"power": -0.5}, InvalidParameterError, "power"),
    ({"mde": -0.1}, InvalidParameterError, "mde"),
    ({"weights": {"champion": 1, "treatment": 1}}, UnknownNameError, "treatment"),
    ({"weights": {"champion": 1}}, InvalidParameterError, "both arms"),
    ({"population": "targeted"}, UnknownNameError, "targeted"),
    ({"guardrails": {"revenue": 1.0}}, UnknownNameError, "revenue"),
    ({"name": "Offer Test"}, InvalidParameterError, "name"),
    ({"looks": 0}, InvalidParameterError, "looks"),
])
def test_registration_refuses_bad_designs(changes, error, words):
    with pytest.raises(error, match=words):
        _registration(**changes)


def test_register_then_load_round_trips(tmp_path):
    reg = _registration()
    path = abtest.register(reg, tmp_path / "experiments")
    assert path.name == "offer-test-1.preregistration.json"
    stored = json.loads(path.read_text())
    assert stored["sha256"] == reg.digest()
    assert abtest.load_registration(path) == reg
    assert abtest.register(reg, tmp_path / "experiments") == path  # same design: accepted
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]  # no temporary left


def test_a_design_changed_after_registration_is_refused(tmp_path):
    path = abtest.register(_registration(), tmp_path)
    with pytest.raises(LineageError, match="another design"):
        abtest.register(_registration(mde=0.1), tmp_path)
    stored = json.loads(path.read_text())
    stored["record"]["mde"] = 0.1  # the MDE quietly lowered after the data came in
    path.write_text(json.dumps(stored))
    with pytest.raises(LineageError, match="changed after it was registered"):
        abtest.load_registration(path)
    path.write_text("{not json")
    with pytest.raises(LineageError, match="not a pre-registration"):
        abtest.load_registration(path)
    with pytest.raises(LineageError, match="register"):
        abtest.load_registration(tmp_path / "missing.preregistration.json")
