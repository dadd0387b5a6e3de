"""Tests of the retention offer's known effect and of the analysis: outcomes drawn on their own
stream (the dataset untouched, an offer only ever saves a churner), the experiment frame from
the router's log, the z-test and intervals against statsmodels, SRM first, Holm-corrected
segments, guardrails and the decision rule on data whose truth is known."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from companion import abtest
from companion.data import generate, offers
from companion.deployment import Arm, PredictionLog, Router, read_log
from companion.errors import InvalidParameterError


@pytest.fixture(scope="module")
def dataset():
    return generate(n_customers=4000, months=3, scenarios=(), seed=7)


def _active(ds, month=1):
    return ds.truth.loc[ds.truth["snapshot_timestamp"] == ds.snapshots[month], "customer_id"]


def test_offer_effect_is_the_documented_one_and_leaves_the_dataset_alone(dataset):
    before = dataset.content_hash()
    ids = _active(dataset).to_numpy()
    offered = np.arange(ids.size) % 2 == 0
    out = offers.draw_outcomes(dataset, dataset.snapshots[1], ids, offered)
    assert dataset.content_hash() == before
    expected = out["base_probability"] * np.where(
        offered, 1 - out["plan"].astype(str).map(offers.OFFER_EFFECT), 1)
    assert np.allclose(out["churn_probability"], expected)
    assert set(out.loc[offered, "offer_cost"].round(3)) <= {3.995, 6.495, 8.995}
    assert (out.loc[~offered, "offer_cost"] == 0).all()
    # Common random numbers: with everyone offered, churners are a subset of the no-offer ones.
    none = offers.draw_outcomes(dataset, dataset.snapshots[1], ids, np.zeros(ids.size, bool))
    everyone = offers.draw_outcomes(dataset, dataset.snapshots[1], ids, np.ones(ids.size, bool))
    assert (everyone["churned_30d"] <= none["churned_30d"]).all()
    assert everyone["churned_30d"].sum() < none["churned_30d"].sum()
    # A customer's outcome does not depend on who else is drawn; a new seed draws anew.
    part = offers.draw_outcomes(dataset, dataset.snapshots[1], ids[::3], np.zeros(ids[::3].size,
                                                                                 bool))
    assert part["churned_30d"].tolist() == none["churned_30d"].iloc[::3].tolist()
    other = offers.draw_outcomes(dataset, dataset.snapshots[1], ids, offered, seed=8)
    assert not other["churned_30d"].equals(out["churned_30d"])


def test_outcomes_refuse_bad_input(dataset):
    ids = _active(dataset).to_numpy()
    with pytest.raises(InvalidParameterError, match="one bool per customer"):
        offers.draw_outcomes(dataset, dataset.snapshots[1], ids, np.zeros(ids.size))
    with pytest.raises(InvalidParameterError, match="not active"):
        offers.draw_outcomes(dataset, dataset.snapshots[1], np.array([10**9]), np.array([True]))
    with pytest.raises(InvalidParameterError, match="not one of the dataset's snapshots"):
        offers.draw_outcomes(dataset, "2031-01-01", ids, np.zeros(ids.size, bool))
    with pytest.raises(InvalidParameterError, match="distinct"):
        offers.draw_outcomes(dataset, dataset.snapshots[1], ids[[0, 0]], np.array([True, True]))


def test_compare_rates_agrees_with_statsmodels():
    from statsmodels.stats.proportion import confint_proportions_2indep, proportions_ztest

    d = abtest.compare_rates(500, 5000, 430, 5000, seed=3)
    assert d.difference == pytest.approx(-0.014)
    assert d.p_value == pytest.approx(proportions_ztest([430, 500], [5000, 5000])[1])
    low, high = confint_proportions_2indep(430, 5000, 500, 5000, method="newcomb")
    assert (d.ci_low, d.ci_high) == pytest.approx((low, high))
    assert d.bootstrap_low == pytest.approx(low, abs=0.003)
    assert d.bootstrap_high == pytest.approx(high, abs=0.003)
    assert abtest.compare_rates(500, 5000, 430, 5000, seed=3) == d  # seeded
    with pytest.raises(InvalidParameterError, match="x_challenger"):
        abtest.compare_rates(1, 10, 11, 10)


def _frame(n=20_000, champion=0.10, challenger=0.08, share=0.5, seed=0, latency=5.0):
    rng = np.random.default_rng(seed)
    arm = np.where(rng.random(n) < share, "challenger", "champion")
    rate = np.where(arm == "challenger", challenger, champion)
    return pd.DataFrame({
        "arm": arm, "churned_30d": (rng.random(n) < rate).astype("int8"),
        "plan": rng.choice(["basic", "standard", "premium"], n),
        "offer_cost": np.where(arm == "challenger", 1.2, 1.0),
        "latency_ms": rng.gamma(4.0, latency / 4.0, n), "triggered": rng.random(n) < 0.3,
    })


def _reg(**changes):
    values = {"name": "t", "hypothesis": "the challenger lowers churn", "baseline": 0.10,
              "mde": 0.2, "guardrails": {"offer_cost_per_customer": 0.5,
                                         "latency_p99_ms": 50.0}}
    return abtest.PreRegistration(**{**values, **changes})


def test_the_decision_rule_on_known_differences():
    ship = abtest.analyse(_frame(), _reg())
    assert ship.decision == "ship" and ship.srm.verdict == "ok"
    assert ship.primary.ci_high < 0 < ship.primary.ci_low + 0.04
    assert [g.passed for g in ship.guardrails] == [True, True]
    table = ship.segment_frame()
    assert table["segment"].tolist() == ["basic", "premium", "standard"]
    assert (table["p_adjusted"] >= table["p_value"]).all()
    assert ship.to_dict()["decision"] == "ship"
    same = abtest.analyse(_frame(challenger=0.10), _reg())
    assert same.decision == "inconclusive" and "includes 0" in same.reasons[-1]
    worse = abtest.analyse(_frame(challenger=0.12), _reg())
    assert worse.decision == "do not ship"
    costly = abtest.analyse(_frame(), _reg(guardrails={"offer_cost_per_customer": 0.1}))
    assert costly.decision == "do not ship" and "offer_cost_per_customer" in costly.reasons[-1]
    slow = abtest.analyse(_frame(latency=60.0), _reg())
    assert slow.decision == "do not ship" and "latency_p99_ms" in slow.reasons[-1]
    # A broken split is reported before anything else: no effect is trusted.
    broken = abtest.analyse(_frame(share=0.6), _reg())
    assert broken.srm.mismatch and broken.decision == "inconclusive"
    triggered = abtest.analyse(_frame(), _reg(population="triggered"))
    assert triggered.primary.n_champion + triggered.primary.n_challenger < 8000


def test_analyse_refuses_bad_frames():
    frame = _frame(n=2000)
    with pytest.raises(InvalidParameterError, match="unknown arm"):
        abtest.analyse(frame.assign(arm="treatment"), _reg())
    with pytest.raises(InvalidParameterError, match="missing column"):
        abtest.analyse(frame.drop(columns="latency_ms"), _reg())
    with pytest.raises(InvalidParameterError, match="0 or 1"):
        abtest.analyse(frame.assign(churned_30d=0.5), _reg())
    with pytest.raises(InvalidParameterError, match="PreRegistration"):
        abtest.analyse(frame, {"name": "t"})


def test_router_log_to_decision_graded_against_the_truth(dataset, tmp_path):
    """Champion offers at random, the challenger to the truly riskiest: the truth says the
    challenger's arm churns less, and the frame built from the router's log shows it."""
    ids = _active(dataset).to_numpy()
    truth = dataset.truth.set_index(["snapshot_timestamp", "customer_id"])["churn_probability"]
    risk = truth.loc[dataset.snapshots[1]].reindex(ids).to_numpy()
    noise = np.random.default_rng(0).random(ids.size)
    scores = pd.DataFrame({"customer_id": ids, "champion": noise, "challenger": risk})
    decisions = abtest.offer_decisions(scores, 0.2)
    assert decisions["offer_champion"].sum() == decisions["offer_challenger"].sum() == round(
        0.2 * ids.size)
    log = PredictionLog(tmp_path / "predictions.jsonl")
    by_id = dict(zip(ids.tolist(), risk.tolist(), strict=True))
    router = Router(Arm(by_id.__getitem__, "1"), Arm(by_id.__getitem__, "2"), log=log,
                    salt="offer-test", weights={"champion": 1, "challenger": 1})
    for customer in ids.tolist():
        router.route(customer)
    frame = abtest.experiment_frame(dataset, dataset.snapshots[1], read_log(log.path), decisions)
    assert len(frame) == ids.size and set(frame["arm"]) == {"champion", "challenger"}
    offered = np.where(frame["arm"] == "champion", frame["offer_champion"],
                       frame["offer_challenger"])
    assert (frame["offered"] == offered).all()
    true_rates = frame.groupby("arm")["churn_probability"].mean()
    assert true_rates["challenger"] < true_rates["champion"]
    result = abtest.analyse(frame, _reg(baseline=0.03, population="triggered"))
    assert result.srm.verdict == "ok"
    assert result.primary.difference < 0
    with pytest.raises(InvalidParameterError, match="lack"):
        abtest.experiment_frame(dataset, dataset.snapshots[1], read_log(log.path),
                                decisions.iloc[10:])
