"""companion.retraining in memory: policy, triggers, decision log, costs, the loop's safety."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from companion import retraining as rt
from companion.data import SimulationConfig, generate
from companion.errors import InvalidParameterError, UnknownNameError
from companion.monitoring import Alert
from companion.registry import GatePolicy


def _alert(month: str, columns: tuple[str, ...]) -> Alert:
    return Alert(month=month, kind="data_drift", metric="psi", value=0.3, threshold=0.1,
                 direction="above", columns=columns, severity="warning",
                 created_for=f"{month}-01", policy="drift-policy/1")


ALERTS = (_alert("2025-07", ("acquisition_channel",)), _alert("2025-08", ("acquisition_channel",)),
          _alert("2025-09", ("monthly_fee", "acquisition_channel")))


@pytest.fixture(scope="module")
def year() -> rt.Year:
    return rt.prepare_year(generate(SimulationConfig(n_customers=3000, seed=42)), ALERTS)


@pytest.fixture(scope="module")
def comparison(year) -> rt.Comparison:
    return rt.compare_policies(year)


def test_policy_is_validated_and_declared():
    policy = rt.RetrainPolicy("drift", cooldown=1)
    values = policy.to_dict()
    assert values["kind"] == "drift" and values["cooldown"] == 1
    assert values["gate"] == {"min_roc_auc": 0.6, "margin": 0.03, "rule": "non-inferiority"}
    assert json.loads(json.dumps(values)) == values
    for bad, match in [({"kind": "weekly"}, "policy kind"), ({"kind": "drift", "alert_kinds": ()},
                       "at least one"), ({"kind": "drift", "alert_kinds": ("smoke",)},
                       "alert kind"), ({"kind": "scheduled", "every_months": 0}, "every_months"),
                       ({"kind": "none", "canary_share": 0.9}, "canary_share"),
                       ({"kind": "none", "gate": 0.6}, "GatePolicy")]:
        with pytest.raises((InvalidParameterError, UnknownNameError), match=match):
            rt.RetrainPolicy(**bad)
    assert [p.name for p in rt.standard_policies()] == list(rt.POLICY_KINDS)


def test_decision_log_round_trip_and_bad_input(tmp_path):
    record = rt.Decision("drift", "2025-07", "gate", "passed", 2, 1, "why", {"roc_auc": 0.81234567})
    assert record.numbers == {"roc_auc": 0.812346}
    path = rt.write_decisions(tmp_path / "d.jsonl", [record, record])
    assert rt.read_decisions(path) == [record, record]
    assert list(json.loads(path.read_text().splitlines()[0]))[:3] == ["schema", "policy", "month"]
    with pytest.raises(UnknownNameError, match="decision step"):
        rt.Decision("drift", "2025-07", "deploy", "done", None, 1, "x")
    with pytest.raises(InvalidParameterError, match="finite"):
        rt.Decision("drift", "2025-07", "gate", "done", None, 1, "x", {"auc": float("nan")})
    with pytest.raises(InvalidParameterError, match="Decision records"):
        rt.write_decisions(tmp_path / "e.jsonl", [record, "x"])
    assert not (tmp_path / "e.jsonl").exists()
    path.write_text(path.read_text() + '{"schema": "retraining/1"}\n')
    with pytest.raises(InvalidParameterError, match="line 3"):
        rt.read_decisions(path)


def test_costs_by_hand():
    scores = np.array([0.9, 0.1, 0.5, 0.2])
    assert rt.targeted(scores, 0.5).tolist() == [True, False, True, False]
    cost = rt.customer_costs(scores, np.array([0.5] * 4), np.array([100.0] * 4),
                             np.array([0.2] * 4), np.array([5.0] * 4), 0.5)
    assert cost.tolist() == [45.0, 50.0, 45.0, 50.0]
    frame = pd.DataFrame({"customer_id": [1, 1, 2], "snapshot_timestamp": [1, 2, 1],
                          "cost": [1.0, 2.0, 3.0]})
    same = rt.cost_difference(frame, frame, n_boot=200)
    assert (same.value, same.low, same.high) == (0.0, 0.0, 0.0)
    with pytest.raises(InvalidParameterError, match="same rows"):
        rt.cost_difference(frame, frame.iloc[:2], n_boot=200)


def test_triggers_hold_for_cooldown_and_new_rows(year):
    drift = rt.RetrainPolicy("drift", cooldown=2, min_new_rows=1000)
    production = rt.InMemoryDeployer(year).baseline()
    state = rt.TriggerState()
    july = "2025-07-01"
    fire, why, numbers = rt.trigger(drift, state, 6, july, year.labelled(july), year, production)
    assert fire and "acquisition_channel" in why and numbers["new_rows"] > 1000
    state.attempted(6, july, year.alerts)
    fire, why, _ = rt.trigger(drift, state, 7, "2025-08-01", year.labelled("2025-08-01"), year,
                              production)
    assert not fire and why == "no new alert of data_drift, prediction_drift"
    fire, why, _ = rt.trigger(drift, state, 8, "2025-09-01", year.labelled("2025-09-01"), year,
                              production)
    assert not fire and "cooldown of 2 month(s) after the attempt of 2025-07" in why
    fire, why, _ = rt.trigger(rt.RetrainPolicy("scheduled", every_months=3, min_new_rows=10**6),
                              rt.TriggerState(), 3, "2025-04-01", year.labelled("2025-04-01"),
                              year, production)
    assert not fire and "new labelled rows" in why
    # labels arrive 30 days late: on 1 March, February's are not known yet
    assert year.labelled("2025-03-01") == ["2025-01-01"]


def test_comparison_numbers(comparison, year):
    table = comparison.table()
    assert list(table.index) == list(rt.POLICY_KINDS)
    assert table.loc["none", "retrains"] == 0 and table.loc["none", "compute_usd"] == 0
    assert (comparison.monthly("production")["none"] == 1).all()
    assert table.loc["oracle", "retrains"] > table.loc["scheduled", "retrains"] >= 1
    assert (table["above_ceiling"] > 0).all()  # no policy reaches the truth's targeting
    oracle = comparison.difference("oracle", "none", n_boot=300)
    assert oracle.high < 0  # retraining every month lowers the yearly cost
    assert comparison.onsets() == {"covariate": "2025-06", "concept": "2025-09",
                                   "quality": "2025-11"}
    assert comparison.best() in {"none", "scheduled", "drift", "performance"}
    with pytest.raises(UnknownNameError):
        comparison["weekly"]


def test_quality_month_never_promotes_and_every_promotion_passed_the_gate(comparison):
    for name, result in comparison.results.items():
        log = result.decisions
        for i, d in enumerate(log):
            if d.step == "promote":
                gate = [e for e in log[:i] if e.step == "gate" and e.version == d.version]
                assert gate and gate[-1].outcome == "passed", name
    # the oracle retrains in December on the export of November: the quality incident
    december = [d for d in comparison["oracle"].decisions
                if d.month == "2025-12" and d.step != "post_check"]
    assert [(d.step, d.outcome) for d in december] == [("trigger", "fired"),
                                                       ("retrain", "failed")]
    assert "units" in december[1].reason
    assert comparison.monthly("production")["oracle"]["2025-12"] == \
        comparison.monthly("production")["oracle"]["2025-11"]


def test_worse_candidate_is_refused(year):
    policy = rt.RetrainPolicy("scheduled", every_months=3)
    result = rt.run_year(year, policy, faults=[rt.Fault("2025-07", "worse_candidate")])
    july = [d for d in result.decisions if d.month == "2025-07"]
    gate = next(d for d in july if d.step == "gate")
    assert gate.outcome == "refused" and gate.numbers["difference_low"] < -0.03
    assert "promote" not in {d.step for d in july}


def test_serving_skew_stopped_at_canary_and_misjoin_rolled_back(year):
    # 3,000 customers give wide intervals: a wider non-inferiority margin lets July's model in
    policy = rt.RetrainPolicy("drift", gate=GatePolicy(0.6, 0.05, "non-inferiority"))
    clean = rt.run_year(year, policy)
    assert clean.count("promote", "done") >= 1
    month = next(d.month for d in clean.decisions if d.step == "promote")
    skew = rt.run_year(year, policy, faults=[rt.Fault(month, "serving_skew")])
    canary = next(d for d in skew.decisions if d.step == "canary")
    assert canary.outcome == "refused" and canary.numbers["psi"] > policy.max_canary_psi
    assert skew.count("promote", "done") == clean.count("promote", "done") - 1
    bad = rt.run_year(year, policy, faults=[rt.Fault(month, "misjoin")])
    assert bad.count("rollback", "done") == 1
    rollback = next(d for d in bad.decisions if d.step == "rollback")
    assert rollback.numbers["same_scores"] == 1.0 and rollback.production == 1
    degraded = [d for d in bad.decisions if d.outcome == "degraded"]
    assert len(degraded) == 1 and degraded[0].step == "post_check"
    assert degraded[0].numbers["difference_high"] < 0 and degraded[0].month == rollback.month


def test_run_year_refuses_bad_input(year):
    with pytest.raises(InvalidParameterError, match="RetrainPolicy"):
        rt.run_year(year, "drift")
    with pytest.raises(InvalidParameterError, match="not months of the year"):
        rt.run_year(year, rt.RetrainPolicy("drift"), faults=[rt.Fault("2026-01", "misjoin")])
    with pytest.raises(UnknownNameError, match="fault kind"):
        rt.Fault("2025-07", "fire")


def test_loop_tells_the_deployer_each_month(year):
    seen: list[str] = []

    class Spy(rt.InMemoryDeployer):
        def begin_month(self, month: str) -> None:
            seen.append(month)
            super().begin_month(month)

    spy = Spy(year)
    rt.run_year(year, rt.RetrainPolicy("none"), deployer=spy)
    assert seen == list(year.months) and spy.month == year.months[-1]


@pytest.mark.slow
def test_registry_deployer_clock_is_checked_before_anything(tmp_path, year):
    from companion.workspace import Workspace

    ws = Workspace.create("11-clock", root=tmp_path,
                          config=SimulationConfig(n_customers=3000, seed=42))
    for bad in ("weekly", 9, "Month"):
        with pytest.raises(InvalidParameterError, match="clock must be None, 'month'"):
            rt.RegistryDeployer(ws, year, clock=bad)
    assert not (ws.path / "retraining").exists()
    deployer = rt.RegistryDeployer(ws, year, clock=rt.MONTH_CLOCK)
    with pytest.raises(InvalidParameterError, match="begin_month"):
        deployer._moves()
    deployer.begin_month("2025-07-01")
    stamp = deployer._moves()["clock"]()
    assert stamp.isoformat() == "2025-07-01T09:00:00+00:00"


def test_the_year_holds_the_features_the_pipeline_builds_from_an_export(year, tmp_path):
    """The loop trains on what chapter 7's pipeline would: late-arriving weeks left out."""
    from companion.pipelines import export_folder, write_export
    from companion.pipelines.cli import main as cli_main
    from companion.training import FEATURES, snapshot_features

    month = "2025-10-01"  # a month with weeks that reached the warehouse after the snapshot
    export = write_export(year.dataset, month, export_folder(tmp_path / "landing", month))
    run = tmp_path / "run"
    for argv in (["ingest", "--path", f"export={export}", "--path", f"raw={run / 'raw'}"],
                 ["validate", "--path", f"raw={run / 'raw'}",
                  "--path", f"validation={run / 'validation.json'}"],
                 ["features", "--path", f"raw={run / 'raw'}",
                  "--path", f"validation={run / 'validation.json'}",
                  "--path", f"features={run / 'features.parquet'}"]):
        assert cli_main(["step", *argv, "--param", f"month={month}"]) == 0
    built = pd.read_parquet(run / "features.parquet")
    assert built["snapshot_timestamp"].nunique() == 4  # three training months and the holdout
    keys = ["customer_id", "snapshot_timestamp"]
    ours = year.frame.merge(built[keys], on=keys)
    built = built.merge(ours[keys], on=keys)
    assert len(ours) == len(built) > 0
    ours = ours.sort_values(keys).reset_index(drop=True)
    built = built.sort_values(keys).reset_index(drop=True)
    pd.testing.assert_frame_equal(ours[[*keys, *FEATURES, "churned_30d"]],
                                  built[[*keys, *FEATURES, "churned_30d"]], check_dtype=False)
    # summing the activity by event time instead would count weeks not yet arrived
    at = pd.Timestamp(month)
    summed = snapshot_features(year.dataset, [at]).set_index("customer_id")["sessions_4w"]
    joined = ours[ours["snapshot_timestamp"] == at].set_index("customer_id")["sessions_4w"]
    assert (summed.loc[joined.index] != joined).mean() > 0.1
