"""companion.llm's simulated weeks, their Evidently monitoring, and alerts graded by onset."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from companion import llm
from companion.errors import InvalidParameterError, UnknownNameError
from companion.monitoring import Alert

TEMPLATE = "{{context}}\n{{question}}"


def test_stream_is_deterministic_and_asks_about_the_price_rise_only_from_the_onset():
    stream = llm.StreamConfig(weeks=10, onset_week=6, queries_per_week=200, seed=3)
    queries = llm.simulate_queries(stream)
    assert queries.equals(llm.simulate_queries(stream))
    assert len(queries) == 2000 and queries["week"].nunique() == 10
    price = queries["about"] == llm.PRICE_RISE_ARTICLE
    assert not price[queries["week"] < stream.onset].any()
    share = price[queries["week"] >= stream.onset].mean()
    assert 0.25 < share < 0.35  # 800 draws at 0.3
    assert stream.onset == "2025-08-18" and stream.week_starts()[0] == "2025-07-07"


@pytest.mark.parametrize("kwargs", [
    {"start": "2025-07-08"},          # a Tuesday
    {"onset_week": 16},
    {"queries_per_week": 10},
    {"price_share": 1.5},
    {"weeks": 4},
])
def test_stream_config_refuses_bad_values(kwargs):
    with pytest.raises(InvalidParameterError):
        llm.StreamConfig(**kwargs)


def test_response_log_describes_questions_retrieval_and_answers():
    queries = llm.simulate_queries(llm.StreamConfig(weeks=8, onset_week=4, queries_per_week=50))
    assistant = llm.Assistant(llm.PRODUCTION_CONFIG, TEMPLATE)
    log = llm.log_responses(assistant, queries)
    assert list(log.columns) == list(llm.LOG_COLUMNS) and len(log) == 400
    assert (log["answer_words"][log["refused"]] == 0).all()
    assert (log["answer_words"][~log["refused"]] > 0).all()
    assert (log["top_score"][log["refused"]] < llm.PRODUCTION_CONFIG.min_score).all()
    assert log["unknown_share"].between(0, 1).all()
    price = log["about"] == llm.PRICE_RISE_ARTICLE
    # the August corpus has no article on the price rise: its questions find fewer known words
    assert log.loc[price, "unknown_share"].mean() > log.loc[~price, "unknown_share"].mean()
    assert set(log["config_version"]) == {llm.PRODUCTION_CONFIG.version}
    with pytest.raises(InvalidParameterError):
        llm.log_responses(assistant, queries[["week"]])
    with pytest.raises(InvalidParameterError):
        llm.log_responses("assistant", queries)


def test_policy_reads_each_method_in_its_direction_and_refuses_bad_values():
    assert llm.LlmPolicy(method="wasserstein", threshold=0.25).drifted(0.3)
    assert not llm.LlmPolicy(method="wasserstein", threshold=0.25).drifted(0.2)
    assert llm.LlmPolicy(method="ks", threshold=0.01).drifted(0.001)
    assert not llm.LlmPolicy(method="ks", threshold=0.01).drifted(0.5)
    with pytest.raises(UnknownNameError):
        llm.LlmPolicy(method="eyeball")
    with pytest.raises(InvalidParameterError):
        llm.LlmPolicy(columns=("question",))
    with pytest.raises(InvalidParameterError):
        llm.LlmPolicy(threshold=0)


def _alert(week, kind):
    return Alert(week[:7], kind, "psi", 1.0, 0.5, "above", ("x",), "warning", week,
                 llm.LLM_POLICY)


def test_grading_counts_delays_from_the_onset_and_false_alarms_before_it():
    weeks = [str(d.date()) for d in pd.date_range("2025-07-07", periods=8, freq="7D")]
    alerts = [_alert(weeks[1], "data_drift"), _alert(weeks[5], "data_drift"),
              _alert(weeks[4], "performance")]
    grades = llm.grade_alerts(alerts, weeks[4], weeks)
    assert grades.loc["data_drift"].to_dict() == {"first_alert": weeks[5], "delay_weeks": 1,
                                                 "false_alarms": 1}
    assert grades.loc["performance", "delay_weeks"] == 0
    assert grades.loc["prediction_drift", "first_alert"] is None
    with pytest.raises(InvalidParameterError, match="onset"):
        llm.grade_alerts(alerts, "2025-01-06", weeks)
    with pytest.raises(InvalidParameterError):
        llm.grade_alerts(["alert"], weeks[4], weeks)


def _synthetic_log(shift_from: int, weeks: int = 7, n: int = 300) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    rows = []
    for index, week in enumerate(pd.date_range("2025-07-07", periods=weeks, freq="7D")):
        shifted = index >= shift_from
        rows.append(pd.DataFrame({
            "week": str(week.date()),
            "query_words": rng.poisson(5, n),
            "unknown_share": rng.beta(2, 3, n) + (0.3 if shifted else 0.0),
            "top_score": rng.normal(6, 2, n) - (1.5 if shifted else 0.0),
            "answer_words": rng.normal(22, 5, n),
            "refused": rng.random(n) < (0.15 if shifted else 0.03),
        }))
    return pd.concat(rows, ignore_index=True)


@pytest.mark.slow
def test_monitoring_alerts_on_the_shifted_weeks_only():
    log = _synthetic_log(shift_from=5)
    weekly = llm.monitor_weeks(log)
    assert weekly.reference == ["2025-07-07", "2025-07-14", "2025-07-21", "2025-07-28"]
    assert list(weekly.table.index) == ["2025-08-04", "2025-08-11", "2025-08-18"]
    assert not weekly.table.loc["2025-08-04", "refusal_alert"]
    assert weekly.table.loc["2025-08-11", "drifted"] == "unknown_share, top_score"
    assert weekly.first_alert() == "2025-08-11"
    kinds = {(a.created_for, a.kind) for a in weekly.alerts}
    assert kinds == {(w, k) for w in ("2025-08-11", "2025-08-18")
                     for k in ("data_drift", "prediction_drift", "performance")}
    refusal = next(a for a in weekly.alerts if a.kind == "performance")
    assert refusal.value > 0.1 and refusal.threshold < 0.05
    drift = next(a for a in weekly.alerts if a.kind == "data_drift")
    assert drift.columns == ("unknown_share",) and drift.value >= 0.25
    with pytest.raises(InvalidParameterError, match="reference"):
        llm.monitor_weeks(log[log["week"] < "2025-08-04"])
    with pytest.raises(InvalidParameterError):
        llm.monitor_weeks(log.drop(columns="refused"))
