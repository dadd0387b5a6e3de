"""A year of monitoring on the default simulation (seed 42, 5,000 customers), graded against
its known onsets: the drift policy's delays and false alarms, the preset's defaults failing,
the concept drift caught by performance when its labels arrive, the quality incident blocked,
alerts written, and the Evidently dashboard served on loopback and stopped."""

from __future__ import annotations

import urllib.request

import pandas as pd
import pytest

from companion import monitoring as mon
from companion.data import SimulationConfig, generate
from companion.errors import InvalidParameterError
from companion.training import snapshot_features, train

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def year():
    dataset = generate(SimulationConfig(n_customers=5000, seed=42))
    frame = snapshot_features(dataset)
    model = train(frame[frame["snapshot_timestamp"] == dataset.snapshots[0]], seed=0)
    return dataset, frame, mon.monitor_year(dataset, model)


def test_policy_meets_the_grade_on_the_default_seed(year):
    dataset, _, run = year
    grades = mon.grade_drift(run.drift, mon.onset_months(dataset))
    assert grades["covariate_delay"] == 1  # June's sign-ups first appear in July's snapshot
    assert grades["quality_delay"] == 1  # the first weekly rows after Nov 1 enter December
    assert grades["concept_delay"] == 0  # the price rise is an input at once
    assert grades["false_alarms"] == 0 and grades["stable_months"] == 4
    assert grades["passed"]
    alarms = run.drift.alarms()
    assert [m for m, on in alarms.items() if on][0] == "2025-07"
    floor = mon.noise_floor(run.drift, dataset.snapshots[1:5])
    assert floor < mon.DEFAULT_POLICY.threshold / 5  # the threshold is far above the noise
    scores = run.drift.scores()
    assert scores.loc["2025-07", "acquisition_channel"] > 0.1 > scores.loc["2025-06"].max()
    assert scores["score"].max() < 0.05  # prediction drift stays small all year


def test_prediction_drift_is_known_the_day_a_month_is_scored_labels_a_month_later(year):
    _, _, run = year
    early = mon.performance_by_month(run.scored, "2025-09-15", run.scored["snapshot_timestamp"]
                                     .drop_duplicates().sort_values().iloc[1:5].tolist())
    assert early["month"].iloc[-1] == "2025-08"  # September is scored, its labels are not in
    assert "2025-09" in run.drift.scores().index
    with pytest.raises(InvalidParameterError, match="no known labels"):
        mon.performance_by_month(run.scored, "2025-02-15", ["2025-02-01"])


def test_concept_drift_caught_by_performance_when_its_labels_arrive(year):
    dataset, _, run = year
    perf = run.performance.set_index("month")
    alarms = perf.index[perf["alarm"]].tolist()
    assert alarms[0] == "2025-09" and perf.loc["2025-09", "labels_known_from"] == "2025-10-01"
    assert not perf.loc[["2025-06", "2025-07", "2025-08"], "alarm"].any()
    assert perf.loc["2025-09", "change_high"] < 0 and perf.loc["2025-09", "auc_alarm"]
    # Calibration: about twice the churners the scores expect, the whole interval above 1.25.
    assert perf.loc["2025-09", "calibration_alarm"] and perf.loc["2025-09", "ratio_low"] > 1.8
    assert perf.loc["2025-08", "ratio_low"] < 1.0 < perf.loc["2025-08", "ratio_high"]
    assert perf.loc["2025-09", "ece"] > 3 * perf.loc["2025-08", "ece"]
    contrast = mon.concept_contrast(run, dataset.config.onset("concept"))
    before, after = contrast["2025-08"], contrast["2025-09"]
    assert after["input_psi_max_without_price"] < 0.05 and after["score_psi"] < 0.05
    assert after["price_psi"] > 1.0
    assert abs(after["predicted_churn"] - before["predicted_churn"]) < 0.005
    assert after["observed_churn"] > 1.5 * before["observed_churn"]
    assert after["churn_45plus_standard_premium"] > 4 * before["churn_45plus_standard_premium"]


def test_quality_incident_blocks_december_and_alerts_are_records(year, tmp_path):
    _, _, run = year
    assert [q.month for q in run.quality if not q.passed] == ["2025-12"]
    status = run.scored.groupby(run.scored["snapshot_timestamp"].dt.strftime("%Y-%m"))
    assert status["score_status"].unique()["2025-12"].tolist() == ["blocked"]
    kinds = {(a.month, a.kind) for a in run.alerts}
    assert ("2025-12", "data_quality") in kinds and ("2025-09", "performance") in kinds
    assert ("2025-07", "data_drift") in kinds
    assert not any(a.month < "2025-07" for a in run.alerts)
    path = mon.write_alerts(tmp_path / "alerts.jsonl", run.alerts)
    assert mon.read_alerts(path) == run.alerts
    summary = run.summary()
    assert summary.set_index("month").loc["2025-12", "quality"] == "blocked"


def test_preset_defaults_fail_where_the_issue_measured(year):
    dataset, frame, _ = year
    table = mon.preset_default_pass(frame)
    grades = mon.grade_preset_defaults(table, mon.onset_months(dataset))
    assert grades["dataset_alarm_months"] == "-"  # share >= 0.5 never reached
    assert grades["any_column_false_alarms"] >= 2
    assert "tenure_days" in grades["false_alarm_columns"]
    assert grades["false_alarm_months"].startswith("2025-03") or "2025-04" in grades[
        "false_alarm_months"]


def test_policy_meets_the_grade_on_another_seed():
    table = mon.drift_grading_table([1])
    row = table.iloc[0]
    assert row["passed"] and row["covariate_delay"] == 1 and row["quality_delay"] == 1
    assert row["false_alarms"] == 0


def test_drift_functions_refuse_bad_input(year):
    _, frame, _ = year
    with pytest.raises(InvalidParameterError, match="2030-01"):
        mon.drift_pass(frame, months=["2030-01-01"])
    with pytest.raises(InvalidParameterError, match="cannot also be monitored"):
        mon.drift_pass(frame, reference="2025-03-01", months=["2025-03-01"])
    with pytest.raises(InvalidParameterError, match="missing column"):
        mon.drift_pass(frame.drop(columns=["plan"]))
    with pytest.raises(InvalidParameterError, match="DriftPolicy"):
        mon.drift_pass(frame, policy="psi")
    with pytest.raises(InvalidParameterError, match="meteor"):
        mon.grade_drift(mon.DriftPass(mon.DEFAULT_POLICY, pd.Timestamp("2025-01-01"), [], []),
                        {"meteor": "2025-05-01"})
    with pytest.raises(InvalidParameterError, match="seeds"):
        mon.drift_grading_table("42")


def test_dashboard_is_served_on_loopback_and_stopped(year, tmp_path):
    _, _, run = year
    board = mon.build_dashboard(tmp_path / "evidently", run.drift)
    assert board.snapshots == tuple(f"2025-{m:02d}" for m in range(2, 13))
    assert len(board.panels) == 3 and all(p.stat().st_size > 100_000
                                          for p in board.reports.values())
    with mon.serve_dashboard(board) as server:
        assert server.url.startswith("http://127.0.0.1:")
        with urllib.request.urlopen(server.url + "/api/projects", timeout=10) as response:
            assert mon.DEFAULT_PROJECT in response.read().decode()
    assert not server.running and server.leftover_processes() == []
    with pytest.raises(InvalidParameterError, match="empty or missing"):
        mon.build_dashboard(tmp_path / "evidently", run.drift)
