"""Tests of the experiment look by look (fixed and group-sequential intervals), of the true
difference the simulator implies, and of the decision recorded on a registry version."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from statsmodels.stats.proportion import confint_proportions_2indep

from companion import abtest
from companion.errors import InvalidParameterError, UnknownNameError


def _design(**changes):
    values = dict(name="exp-t", hypothesis="h", baseline=0.1, mde=0.2, population="triggered",
                  guardrails={"offer_cost_per_customer": 1.0, "latency_p99_ms": 50.0})
    values.update(changes)
    return abtest.PreRegistration(**values)


def _frame(n=4000, seed=3, rate0=0.12, rate1=0.09):
    rng = np.random.default_rng(seed)
    arm = np.where(rng.random(n) < 0.5, "champion", "challenger")
    triggered = rng.random(n) < 0.5
    rate = np.where(triggered & (arm == "challenger"), rate1, rate0)
    offer_champion = triggered & (rng.random(n) < 0.5)
    return pd.DataFrame({
        "customer_id": np.arange(n), "arm": arm, "triggered": triggered,
        "churned_30d": (rng.random(n) < rate).astype(int), "day": rng.integers(1, 11, n),
        "plan": pd.Categorical(rng.choice(["basic", "standard", "premium"], n),
                               categories=["basic", "standard", "premium"]),
        "base_probability": np.full(n, 0.2), "effect": np.full(n, 0.25),
        "offer_champion": offer_champion, "offer_challenger": triggered & ~offer_champion,
        "offer_cost": np.zeros(n), "latency_ms": np.ones(n),
    })


def test_cumulative_differences_end_at_the_analysis_and_widen_sequentially():
    frame, design = _frame(), _design()
    daily = abtest.cumulative_differences(frame, design, "day")
    assert daily["period"].tolist() == list(range(1, 11))
    trig = frame[frame["triggered"]]
    assert daily["n_champion"].iloc[-1] == (trig["arm"] == "champion").sum()
    result = abtest.analyse(frame, design)
    last = daily.iloc[-1]
    assert last["difference"] == pytest.approx(result.primary.difference)
    assert last["ci_low"] == pytest.approx(result.primary.ci_low)
    # the first look: statsmodels' interval on the first day's customers
    first = trig[trig["day"] == 1]
    x = first.groupby("arm")["churned_30d"].agg(["sum", "size"])
    low, high = confint_proportions_2indep(x.loc["challenger", "sum"], x.loc["challenger", "size"],
                                           x.loc["champion", "sum"], x.loc["champion", "size"],
                                           method="newcomb", compare="diff")
    assert daily["ci_low"].iloc[0] == pytest.approx(low)
    # boundaries: those of 10 looks at the information seen, falling to about 2 at the end
    assert daily["boundary"].is_monotonic_decreasing and 1.96 < last["boundary"] < 2.2
    width_seq = daily["seq_high"] - daily["seq_low"]
    assert (width_seq > daily["ci_high"] - daily["ci_low"]).all()
    assert daily["crossed"].is_monotonic_increasing  # once crossed, crossed


def test_true_differences_follow_the_offers():
    frame, design = _frame(), _design()
    truth = abtest.true_differences(frame, design).set_index("segment")
    trig = frame[frame["triggered"]]
    expected = (0.2 * 0.25 * (trig["offer_champion"].astype(int)
                              - trig["offer_challenger"].astype(int))).mean()
    assert truth.loc["all", "true_difference"] == pytest.approx(expected)
    assert truth.index.tolist() == ["basic", "standard", "premium", "all"]  # analyse()'s order
    assert truth.loc["all", "customers"] == len(trig)
    whole = abtest.true_differences(frame, _design(population="arm")).set_index("segment")
    assert whole.loc["all", "customers"] == len(frame)


def test_timeline_refuses_bad_input():
    frame, design = _frame(), _design()
    with pytest.raises(InvalidParameterError, match="PreRegistration"):
        abtest.cumulative_differences(frame, {"name": "x"}, "day")
    with pytest.raises(InvalidParameterError, match="week"):
        abtest.cumulative_differences(frame, design, "week")
    with pytest.raises(InvalidParameterError, match="both arms"):
        abtest.cumulative_differences(frame[frame["arm"] == "champion"], design, "day")
    with pytest.raises(InvalidParameterError, match="effect"):
        abtest.true_differences(frame.drop(columns="effect"), design)


@pytest.fixture()
def registry_with_a_version(tmp_path):
    from mlflow.tracking import MlflowClient

    from companion.registry import MODEL_NAME, Registry

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    reg = Registry.at(uri, audit_dir=tmp_path / "registry", artifact_root=tmp_path / "art")
    client = MlflowClient(uri)
    client.create_registered_model(MODEL_NAME)
    client.create_model_version(MODEL_NAME, source=(tmp_path / "model").as_uri())
    return reg


def test_record_decision_tags_the_version_and_refuses_bad_calls(registry_with_a_version):
    reg = registry_with_a_version
    frame, design = _frame(), _design()
    result = abtest.analyse(frame, design)
    tags = abtest.record_decision(reg, 1, result)
    stored = reg.get_version(version=1).tags
    assert {k: v for k, v in stored.items() if k.startswith(abtest.TAG_PREFIX)} == tags
    assert tags["abtest.decision"] == result.decision
    assert tags["abtest.preregistration"] == design.digest()
    assert float(tags["abtest.ci_low"]) == pytest.approx(result.primary.ci_low, abs=1e-6)
    assert tags == abtest.decision_tags(result)
    with pytest.raises(UnknownNameError, match="no version 7"):
        abtest.record_decision(reg, 7, result)
    with pytest.raises(InvalidParameterError, match="Decision"):
        abtest.record_decision(reg, 1, {"decision": "ship"})
    with pytest.raises(InvalidParameterError, match="Registry"):
        abtest.record_decision("sqlite:///x.db", 1, result)
    assert reg.get_version(version=1).tags == stored  # refused calls wrote nothing
