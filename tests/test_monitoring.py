"""Unit tests of companion.monitoring that need no Evidently report: the drift policy and its
reading of a snapshot dict, what is known when, calibration, quality checks before scoring,
serving health from a prediction log, and alerts as records."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from companion import monitoring as mon
from companion.data import SimulationConfig, generate
from companion.deployment.predlog import PredictionLog, read_log
from companion.errors import InvalidParameterError, UnknownNameError
from companion.training import snapshot_features

# --- policy ------------------------------------------------------------------------------


def test_default_policy_leaves_tenure_out_and_names_psi_per_column():
    policy = mon.DEFAULT_POLICY
    assert "tenure_days" not in policy.columns
    assert len(policy.columns) == 11
    arguments = policy.preset_arguments()
    assert set(arguments["per_column_method"].values()) == {"psi"}
    assert set(arguments["per_column_threshold"].values()) == {0.1}
    assert policy.drifted("plan", 0.1) and not policy.drifted("plan", 0.0999)
    assert policy.to_dict()["version"] == mon.POLICY_VERSION


def test_p_value_policy_reads_below_and_bonferroni_divides_by_the_family():
    policy = mon.DriftPolicy(method="ks", methods={c: "chisquare" for c in
                                                    mon.DEFAULT_POLICY.categorical},
                             threshold=0.05, correction="bonferroni", months=11)
    assert policy.direction("sessions_4w") == "below"
    assert policy.column_threshold("sessions_4w") == pytest.approx(0.05 / (11 * 11))
    assert policy.drifted("sessions_4w", 1e-6) and not policy.drifted("sessions_4w", 0.001)


@pytest.mark.parametrize("changes, error, text", [
    ({"method": "cosine"}, UnknownNameError, "cosine"),
    ({"threshold": 0}, InvalidParameterError, "threshold"),
    ({"threshold": float("nan")}, InvalidParameterError, "threshold"),
    ({"methods": {"nope": "psi"}}, UnknownNameError, "nope"),
    ({"methods": {"plan": "wasserstein"}}, InvalidParameterError, "categorical"),
    ({"method": "ks", "threshold": 1.5}, InvalidParameterError, "below 1"),
    ({"min_columns": 12}, InvalidParameterError, "min_columns"),
    ({"correction": "holm"}, UnknownNameError, "holm"),
    ({"numeric": ("plan",)}, InvalidParameterError, "numeric and categorical"),
    ({"numeric": (), "categorical": ()}, InvalidParameterError, "at least one column"),
])
def test_policy_refuses_bad_settings(changes, error, text):
    with pytest.raises(error, match=text):
        mon.DEFAULT_POLICY.replace(**changes)


def test_policy_refuses_unknown_fields_and_columns():
    with pytest.raises(InvalidParameterError, match="unknown policy field"):
        mon.DEFAULT_POLICY.replace(colums=["plan"])
    with pytest.raises(UnknownNameError, match="tenure_days"):
        mon.DEFAULT_POLICY.column_method("tenure_days")


def _fake_dict(scores, method="psi", threshold=0.1, statuses=None):
    metrics, tests = [], []
    for column, score in scores.items():
        metrics.append({"config": {"type": "evidently:metric_v2:ValueDrift", "column": column,
                                   "method": method, "threshold": threshold}, "value": score})
        status = (statuses or {}).get(column, "FAIL" if score >= threshold else "SUCCESS")
        tests.append({"metric_config": {"params": {"type": "evidently:metric_v2:ValueDrift",
                                                   "column": column}}, "status": status})
    return {"metrics": metrics, "tests": tests}


def test_read_drift_applies_the_policy_and_checks_evidently_agrees():
    scores = dict.fromkeys(mon.DEFAULT_POLICY.columns, 0.01)
    scores["acquisition_channel"] = 0.142
    reading = mon.read_drift(_fake_dict(scores))
    assert reading.drifted == ("acquisition_channel",) and reading.alarm
    assert reading.prediction_score is None
    quiet = mon.read_drift(_fake_dict(dict.fromkeys(mon.DEFAULT_POLICY.columns, 0.01)))
    assert quiet.drifted == () and not quiet.alarm
    with pytest.raises(InvalidParameterError, match="Evidently's test says SUCCESS"):
        mon.read_drift(_fake_dict(scores, statuses={"acquisition_channel": "SUCCESS"}))
    with pytest.raises(InvalidParameterError, match="the policy asks for psi"):
        mon.read_drift(_fake_dict(scores, method="jensenshannon"))
    del scores["plan"]
    with pytest.raises(InvalidParameterError, match="plan"):
        mon.read_drift(_fake_dict(scores))
    with pytest.raises(InvalidParameterError, match="snapshot.dict"):
        mon.read_drift({"tests": []})


# --- what is known when, calibration --------------------------------------------------------


def test_label_calendar_labels_arrive_thirty_days_late():
    table = mon.label_calendar(["2025-08-01", "2025-09-01", "2025-10-01"], "2025-10-01")
    assert table["scored"].tolist() == [True, True, True]
    assert table["labels_known"].tolist() == [True, True, False]
    assert table["labels_known_from"].tolist() == ["2025-08-31", "2025-10-01", "2025-10-31"]
    with pytest.raises(InvalidParameterError, match="as_of"):
        mon.label_calendar(["2025-08-01"], "soon")
    with pytest.raises(InvalidParameterError, match="label_days"):
        mon.label_calendar(["2025-08-01"], "2025-10-01", label_days=0)


def test_calibration_of_a_calibrated_and_a_biased_model():
    rng = np.random.default_rng(0)
    p = rng.uniform(0.0, 0.3, 200_000)
    y = (rng.random(p.size) < p).astype(int)
    assert mon.expected_calibration_error(y, p) < 0.003
    assert mon.expected_calibration_error(y, p / 2) == pytest.approx(p.mean() / 2, abs=0.003)
    table = mon.calibration_table(y, p)
    assert len(table) == 10 and table["rows"].sum() == p.size
    assert (np.diff(table["predicted"]) > 0).all()
    with pytest.raises(InvalidParameterError, match="one length"):
        mon.calibration_table([0, 1], [0.5])
    with pytest.raises(InvalidParameterError, match="0 or 1"):
        mon.calibration_table([0, 2], [0.5, 0.5])


# --- data quality ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def small():
    dataset = generate(SimulationConfig(n_customers=1500, seed=7))
    return dataset, snapshot_features(dataset)


def test_quality_checks_block_the_first_month_the_incident_reaches(small):
    dataset, frame = small
    fees = dataset.prices["monthly_fee"]
    results = [mon.quality_checks(frame, m, dataset.activity, fees=fees)
               for m in dataset.snapshots]
    blocked = [r.month for r in results if not r.passed]
    # The incident starts 2025-11-01; the first weekly rows after it enter the 2025-12 window.
    assert blocked == ["2025-12"]
    december = results[-1].checks.set_index("check")["value"]
    assert december["raw_minutes_missing"] > 0.05
    assert 0.2 < december["minutes_per_session"] < 0.45  # about a third use the new app
    assert results[-1].failed == ["raw_minutes_missing", "minutes_per_session"]
    scored = frame.assign(score=0.5)
    gated = mon.gate_scores(scored, results)
    status = gated.groupby(gated["snapshot_timestamp"].dt.strftime("%Y-%m"))["score_status"]
    assert status.unique()["2025-12"].tolist() == ["blocked"]
    assert status.unique()["2025-11"].tolist() == ["ok"]
    with pytest.raises(InvalidParameterError, match="no quality check"):
        mon.gate_scores(scored, results[:-1])


def test_quality_checks_catch_ranges_units_and_categories(small):
    dataset, frame = small
    month = dataset.snapshots[2]
    rows = frame[frame["snapshot_timestamp"] == month].copy()
    rows.loc[rows.index[:5], "support_tickets_4w"] = -1
    rows.loc[rows.index[5:10], "monthly_fee"] = 99.0
    rows["region"] = rows["region"].astype("object")
    rows.loc[rows.index[10], "region"] = "atlantis"
    rows.loc[rows.index[11], "sessions_4w"] = np.nan
    result = mon.quality_checks(rows, month, fees=dataset.prices["monthly_fee"])
    values = result.checks.set_index("check")["value"]
    assert values["out_of_range"] == pytest.approx(10 / len(rows))
    assert values["unknown_category"] == pytest.approx(1 / len(rows))
    assert values["features_missing"] == pytest.approx(1 / len(rows))
    assert np.isnan(values["raw_minutes_missing"])  # no activity given: skipped
    assert set(result.failed) == {"out_of_range", "unknown_category", "features_missing"}
    with pytest.raises(InvalidParameterError, match="2030-01 has no rows"):
        mon.quality_checks(frame, "2030-01-01")
    with pytest.raises(InvalidParameterError, match="missing column"):
        mon.quality_checks(frame.drop(columns=["plan"]), month)


# --- serving health -------------------------------------------------------------------------


def _log(tmp_path):
    start = datetime(2025, 3, 1, tzinfo=UTC)
    ticks = iter(start + timedelta(hours=3 * i) for i in range(1000))
    log = PredictionLog(tmp_path / "predictions.jsonl", clock=lambda: next(ticks))
    for i in range(16):
        arm = "champion" if i % 4 else "challenger"
        log.record(request_id=f"r{i}", customer_id=i, arm=arm, model_version="1",
                   score=0.1, latency_ms=float(10 + i), shadow=False)
    log.record(request_id="r0", customer_id=0, arm="challenger", model_version="2",
               score=0.2, latency_ms=400.0, shadow=True)
    return read_log(log.path)


def test_serving_health_per_arm_and_day(tmp_path):
    log = _log(tmp_path)
    failures = pd.DataFrame({"time": ["2025-03-01T05:00:00+00:00", "2025-03-02T01:00:00+00:00"],
                             "arm": ["champion", "champion"]})
    health = mon.serving_health(log, period="day", failures=failures)
    first = health[(health["period"] == "2025-03-01") & (health["arm"] == "champion")].iloc[0]
    # Day one: requests 1-7 at 3-hour ticks, champion for i % 4 != 0: i = 1, 2, 3, 5, 6, 7.
    assert first["requests"] == 6 and first["failed"] == 1
    assert first["error_rate"] == pytest.approx(1 / 7, abs=1e-4)
    assert first["p50_ms"] == 13.0 and first["p99_ms"] == 17.0
    # The shadow row is the 17th tick (48 h): 2025-03-03, beside no answered challenger row.
    shadow = health[(health["period"] == "2025-03-03") & (health["arm"] == "challenger")]
    assert shadow.iloc[0]["shadow"] == 1 and shadow.iloc[0]["requests"] == 0
    assert shadow.iloc[0]["max_ms"] == 400.0 and shadow.iloc[0]["slow_share"] == 1.0
    assert health["requests"].sum() == 16
    alarms = mon.serving_alarms(health)
    assert set(alarms["metric"]) == {"p99_ms", "error_rate"}
    again = mon.serving_health(log, period="day", failures=failures)
    pd.testing.assert_frame_equal(health, again)
    with pytest.raises(UnknownNameError, match="fortnight"):
        mon.serving_health(log, period="fortnight")
    with pytest.raises(InvalidParameterError, match="missing column"):
        mon.serving_health(log.drop(columns=["latency_ms"]))
    with pytest.raises(InvalidParameterError, match="unknown serving limit"):
        mon.serving_alarms(health, {"p95_ms": 3})


def test_serving_alerts_are_records_of_the_broken_objectives(tmp_path):
    log = _log(tmp_path)
    failures = pd.DataFrame({"time": ["2025-03-01T05:00:00+00:00"], "arm": ["champion"]})
    health = mon.serving_health(log, period="hour", failures=failures)
    alarms = mon.serving_alarms(health)
    alerts = mon.serving_alerts(alarms, period="hour")
    # The shadow row at 400 ms (2025-03-03 00:00) and the failed champion request at 05:00.
    assert [(a.metric, a.created_for, a.columns) for a in alerts] == [
        ("champion.error_rate", "2025-03-01", ()),
        ("challenger.p99_ms", "2025-03-03", ("latency_ms",)),
    ]
    assert alerts[0].value == 1.0 and alerts[0].threshold == 0.01
    assert alerts[1].value == 400.0 and alerts[1].threshold == 250.0
    assert {(a.kind, a.month, a.policy, a.severity) for a in alerts} == {
        ("serving", "2025-03", mon.SERVING_POLICY, "critical")}
    path = mon.write_alerts(tmp_path / "alerts.jsonl", alerts)
    assert mon.read_alerts(path) == alerts
    monthly = mon.serving_alerts(mon.serving_alarms(mon.serving_health(
        log, period="month", failures=failures)), period="month")
    assert {a.created_for for a in monthly} == {"2025-03-31"}  # a month ends on its last day
    assert mon.serving_alerts(alarms.iloc[:0], period="hour") == []
    with pytest.raises(UnknownNameError, match="fortnight"):
        mon.serving_alerts(alarms, period="fortnight")
    with pytest.raises(InvalidParameterError, match="not a day period"):
        mon.serving_alerts(alarms.assign(period="yesterday"), period="day")
    with pytest.raises(InvalidParameterError, match="missing column"):
        mon.serving_alerts(alarms.drop(columns=["limit"]))
    with pytest.raises(UnknownNameError):
        mon.serving_alerts(alarms, period="hour", severity="panic")


# --- alerts ---------------------------------------------------------------------------------


def _alert(**changes):
    values = dict(month="2025-07", kind="data_drift", metric="psi", value=0.142,
                  threshold=0.1, direction="above", columns=("acquisition_channel",),
                  severity="warning", created_for="2025-07-01", policy=mon.POLICY_VERSION)
    values.update(changes)
    return mon.Alert(**values)


def test_alerts_round_trip_in_documented_order(tmp_path):
    alerts = [_alert(), _alert(kind="performance", metric="roc_auc_change", value=-0.08,
                               threshold=0.0, direction="below", columns=["churned_30d"],
                               severity="critical", month="2025-09",
                               created_for="2025-10-01")]
    path = mon.write_alerts(tmp_path / "alerts.jsonl", alerts)
    first = json.loads(path.read_text().splitlines()[0])
    assert list(first) == ["schema", "month", "kind", "metric", "value", "threshold",
                           "direction", "columns", "severity", "created_for", "policy"]
    assert mon.read_alerts(path) == alerts
    assert mon.alerts_frame(alerts)["columns"].tolist() == ["acquisition_channel", "churned_30d"]
    # Values are rounded: two runs whose scores differ in the last bits write the same bytes.
    noisy = [_alert(value=0.17138598347515843), _alert(value=0.1713859834751584)]
    assert noisy[0] == noisy[1] and noisy[0].value == 0.171386
    assert noisy[0].to_json() == noisy[1].to_json()


@pytest.mark.parametrize("changes, text", [
    ({"month": "2025-13"}, "month"), ({"kind": "vibes"}, "vibes"),
    ({"value": float("inf")}, "value"), ({"severity": "panic"}, "panic"),
    ({"created_for": "2025-7-1"}, "created_for"), ({"columns": "plan"}, "columns"),
    ({"direction": "sideways"}, "sideways"), ({"schema": "alerts/0"}, "schema"),
])
def test_bad_alerts_are_refused(changes, text):
    with pytest.raises((InvalidParameterError, UnknownNameError), match=text):
        _alert(**changes)


def test_alert_files_are_validated_and_never_half_written(tmp_path):
    path = mon.write_alerts(tmp_path / "alerts.jsonl", [_alert()])
    before = path.read_text()
    with pytest.raises(InvalidParameterError, match="Alert records"):
        mon.write_alerts(path, [_alert(), {"month": "2025-08"}])
    assert path.read_text() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["alerts.jsonl"]
    record = json.loads(before)
    record["extra"] = 1
    path.write_text(json.dumps(record) + "\n")
    with pytest.raises(InvalidParameterError, match="line 1.*unknown key"):
        mon.read_alerts(path)
    path.write_text("{not json\n")
    with pytest.raises(InvalidParameterError, match="not JSON"):
        mon.read_alerts(path)
    with pytest.raises(InvalidParameterError, match="no alerts file"):
        mon.read_alerts(tmp_path / "missing.jsonl")
