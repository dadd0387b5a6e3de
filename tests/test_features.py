"""Tests of companion.features: feature tables, point-in-time joins, the Feast repo, versions."""

from __future__ import annotations

import json
from datetime import timedelta

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from companion import features as F
from companion.data import generate
from companion.errors import InvalidParameterError, UnknownNameError
from companion.training import ACTIVITY_AGGREGATES, snapshot_features
from companion.workspace import PREREQUISITES, Workspace


@pytest.fixture(scope="module")
def dataset():
    return generate(n_customers=200, months=4, scenarios=())


@pytest.fixture(scope="module")
def repo(dataset, tmp_path_factory):
    repo, store = F.apply_feature_repo(tmp_path_factory.mktemp("feast"), dataset)
    F.materialize(store, F.history_start(dataset), dataset.snapshots[2])
    return repo, store


def _labels(dataset, snapshots):
    labels = dataset.labels[dataset.labels["snapshot_timestamp"].isin(snapshots)]
    return labels.rename(columns={"snapshot_timestamp": "event_timestamp"})


# --------------------------------------------------------------------------- feature tables


def test_activity_table_matches_the_reference_at_a_week_end(dataset):
    # 2025-01-01 is a week end: the weekly row stamped that day holds exactly the 4-week sums.
    snapshot = dataset.snapshots[0]
    table = F.activity_feature_table(dataset)
    at_snapshot = table[table["event_timestamp"] == snapshot].set_index("customer_id")
    reference = snapshot_features(dataset, [snapshot]).set_index("customer_id")
    common = reference.index.intersection(at_snapshot.index)
    assert len(common) > 100
    for column in ACTIVITY_AGGREGATES:
        np.testing.assert_allclose(at_snapshot.loc[common, column], reference.loc[common, column])


def test_activity_table_windows_and_new_feature(dataset):
    table = F.activity_feature_table(dataset)
    assert len(table) == len(dataset.activity)
    assert table["weeks_seen_4w"].between(1, 4).all()
    assert (table["support_tickets_8w"] >= table["support_tickets_4w"]).all()
    one = table[table["customer_id"] == table["customer_id"].iloc[0]].reset_index(drop=True)
    minutes = dataset.activity.set_index(["customer_id", "event_timestamp"])["minutes_watched"]
    weeks = minutes.loc[one["customer_id"].iloc[0]].fillna(0).to_numpy()
    row = min(10, len(one) - 1)
    expected = 2 * weeks[max(0, row - 3): row + 1].sum() - weeks[max(0, row - 7): row + 1].sum()
    assert one.loc[row, "minutes_change_4w"] == pytest.approx(expected)


def test_profile_table_has_one_row_per_customer(dataset):
    profile = F.profile_feature_table(dataset)
    assert len(profile) == len(dataset.customers)
    assert profile["plan"].isin(["basic", "standard", "premium"]).all()


def test_profile_table_has_a_row_at_sign_up_and_at_each_price_change():
    dataset = generate(n_customers=300, seed=3)  # the default twelve months, with the price rise
    profile = F.profile_feature_table(dataset)
    rise = pd.Timestamp("2025-09-01")
    customers = dataset.customers
    raised = customers["plan"].isin(["standard", "premium"]) & (customers["signup_date"] < rise)
    assert raised.sum() > 50
    assert len(profile) == len(customers) + int(raised.sum())
    at_rise = profile[profile["event_timestamp"] == rise]
    assert sorted(at_rise["customer_id"]) == sorted(customers.loc[raised, "customer_id"])
    assert set(at_rise.groupby("plan")["monthly_fee"].first().items()) == {
        ("premium", 21.99), ("standard", 14.99)}
    ids = customers.loc[raised, "customer_id"].head(5).tolist()
    before = pd.DataFrame({"customer_id": ids, "event_timestamp": rise - pd.Timedelta(days=1)})
    after = before.assign(event_timestamp=rise)
    fee_before = F.point_in_time_join(before, profile, ["monthly_fee"])["monthly_fee"]
    fee_after = F.point_in_time_join(after, profile, ["monthly_fee"])["monthly_fee"]
    assert set(fee_before) <= {12.99, 17.99} and set(fee_after) <= {14.99, 21.99}
    assert ((fee_after - fee_before).round(2).isin([2.0, 4.0])).all()


def test_activity_table_until_keeps_exactly_the_earlier_rows(dataset):
    full = F.activity_feature_table(dataset)
    cut = dataset.snapshots[2]
    part = F.activity_feature_table(dataset, until=cut)
    assert part["event_timestamp"].max() <= cut < full["event_timestamp"].max()
    expected = full[full["event_timestamp"] <= cut].reset_index(drop=True)
    pd.testing.assert_frame_equal(part, expected)
    with pytest.raises(InvalidParameterError, match="until must be a timestamp"):
        F.activity_feature_table(dataset, until="someday")


def test_feature_tables_reject_what_is_not_a_dataset():
    with pytest.raises(InvalidParameterError, match="expected a ChurnDataset"):
        F.activity_feature_table(pd.DataFrame())


# --------------------------------------------------------------------------- joins


def _brute_force(entities, features, ttl, arrived_only=False):
    values = []
    for _, row in entities.iterrows():
        candidates = features[
            (features["customer_id"] == row["customer_id"])
            & (features["event_timestamp"] <= row["event_timestamp"])
        ]
        if arrived_only:
            arrival = candidates["created_timestamp"].fillna(candidates["event_timestamp"])
            candidates = candidates[arrival <= row["event_timestamp"]]
        if candidates.empty:
            values.append(np.nan)
            continue
        # Greatest event time, then greatest created time (missing = oldest), then later row.
        best = candidates.sort_values(["event_timestamp", "created_timestamp"], kind="mergesort",
                                      na_position="first").iloc[-1]
        if ttl is not None and row["event_timestamp"] - best["event_timestamp"] > ttl:
            values.append(np.nan)
            continue
        values.append(best["value"])
    return values


_days = st.integers(min_value=0, max_value=30)
_created_hours = st.one_of(st.none(), st.integers(0, 60))


@settings(max_examples=200, deadline=None)
@given(
    entity_rows=st.lists(st.tuples(st.integers(1, 3), _days), min_size=1, max_size=8),
    feature_rows=st.lists(
        st.tuples(st.integers(1, 3), _days, _created_hours, st.integers(-50, 50)),
        min_size=0, max_size=12,
    ),
    ttl_days=st.one_of(st.none(), st.integers(1, 10)),
    arrived_only=st.booleans(),
)
def test_point_in_time_join_equals_brute_force_and_never_looks_ahead(
    entity_rows, feature_rows, ttl_days, arrived_only
):
    base = pd.Timestamp("2025-01-01")
    entities = pd.DataFrame(
        {"customer_id": [k for k, _ in entity_rows],
         "event_timestamp": [base + pd.Timedelta(days=d) for _, d in entity_rows]}
    )
    features = pd.DataFrame(
        {"customer_id": pd.Series([k for k, *_ in feature_rows], dtype="int64"),
         "event_timestamp": pd.to_datetime([base + pd.Timedelta(days=d) for _, d, _, _ in feature_rows]),
         "created_timestamp": pd.to_datetime(
             [pd.NaT if h is None else base + pd.Timedelta(days=d, hours=h)
              for _, d, h, _ in feature_rows]),
         "value": pd.Series([float(v) for *_, v in feature_rows], dtype="float64")}
    )
    ttl = None if ttl_days is None else timedelta(days=ttl_days)
    joined = F.point_in_time_join(entities, features, ["value"], ttl=ttl,
                                  created_timestamp="created_timestamp",
                                  arrived_only=arrived_only)
    assert len(joined) == len(entities)
    assert joined[["customer_id", "event_timestamp"]].equals(entities)
    found = joined["feature_time"].notna()
    assert (joined.loc[found, "feature_time"] <= joined.loc[found, "event_timestamp"]).all()
    if arrived_only:  # never a row that arrived after the entity time
        created = joined.loc[found, "feature_created"]
        assert (created.isna() | (created <= joined.loc[found, "event_timestamp"])).all()
    expected = _brute_force(entities, features, ttl, arrived_only)
    np.testing.assert_array_equal(joined["value"].to_numpy(), np.array(expected, dtype="float64"))


def test_tie_on_event_time_goes_to_the_known_latest_created_time():
    t = pd.Timestamp("2025-03-01")
    entities = pd.DataFrame({"customer_id": [1, 2], "event_timestamp": [t, t]})
    features = pd.DataFrame({
        "customer_id": [1, 1, 2, 2, 2],
        "event_timestamp": [t - pd.Timedelta(days=1)] * 5,
        "created_timestamp": [pd.NaT, t - pd.Timedelta(hours=20),          # 1: known wins
                              t - pd.Timedelta(hours=3), t - pd.Timedelta(hours=9), pd.NaT],
        "value": [10.0, 11.0, 20.0, 21.0, 22.0],
    })
    for order in (features, features.iloc[::-1]):
        joined = F.point_in_time_join(entities, order, ["value"], created_timestamp="created_timestamp")
        assert joined["value"].tolist() == [11.0, 20.0]
    # Without a created timestamp column the later row wins a tie.
    joined = F.point_in_time_join(entities, features, ["value"])
    assert joined["value"].tolist() == [11.0, 22.0]


def test_arrival_filter_skips_rows_loaded_after_the_label():
    t = pd.Timestamp("2025-03-01")
    entities = pd.DataFrame({"customer_id": [1, 1], "event_timestamp": [t, t + pd.Timedelta(days=1)]})
    features = pd.DataFrame({
        "customer_id": [1, 1],
        "event_timestamp": [t - pd.Timedelta(days=7), t],
        "created_timestamp": [t - pd.Timedelta(days=7) + pd.Timedelta(hours=5),
                              t + pd.Timedelta(hours=5)],
        "value": [1.0, 2.0],
    })
    event_time = F.point_in_time_join(entities, features, ["value"],
                                      created_timestamp="created_timestamp")
    arrived = F.point_in_time_join(entities, features, ["value"],
                                   created_timestamp="created_timestamp", arrived_only=True)
    assert event_time["value"].tolist() == [2.0, 2.0]
    assert arrived["value"].tolist() == [1.0, 2.0]
    assert arrived["feature_created"].tolist() == list(features["created_timestamp"])
    # Past the TTL of the older row the label gets nothing rather than the unarrived row.
    arrived = F.point_in_time_join(entities, features, ["value"], ttl=timedelta(days=6),
                                   created_timestamp="created_timestamp", arrived_only=True)
    assert np.isnan(arrived["value"].iloc[0]) and arrived["value"].iloc[1] == 2.0
    with pytest.raises(InvalidParameterError, match="arrived_only=True needs created_timestamp"):
        F.point_in_time_join(entities, features, ["value"], arrived_only=True)
    with pytest.raises(InvalidParameterError, match="arrived_only must be True or False"):
        F.point_in_time_join(entities, features, ["value"], created_timestamp="created_timestamp",
                             arrived_only="yes")


def test_point_in_time_join_rejects_bad_input():
    entities = pd.DataFrame({"customer_id": [1], "event_timestamp": [pd.Timestamp("2025-01-01")]})
    rows = entities.assign(value=1.0)
    with pytest.raises(InvalidParameterError, match=r"missing column\(s\) \['value'\]"):
        F.point_in_time_join(entities, rows.drop(columns="value"), ["value"])
    with pytest.raises(InvalidParameterError, match="ttl must be a positive timedelta"):
        F.point_in_time_join(entities, rows, ["value"], ttl=timedelta(0))
    with pytest.raises(InvalidParameterError, match="already have column"):
        F.point_in_time_join(rows, rows, ["value"])
    with pytest.raises(InvalidParameterError, match="missing timestamps"):
        F.point_in_time_join(entities.assign(event_timestamp=pd.NaT), rows, ["value"])


def test_latest_value_join_leaks_values_from_after_the_label(dataset):
    table = F.activity_feature_table(dataset)
    labels = _labels(dataset, dataset.snapshots[:3])
    naive = F.latest_value_join(labels, table, ["minutes_4w"], as_of=dataset.snapshots[3])
    assert len(naive) == len(labels)
    assert (naive["feature_time"] > naive["event_timestamp"]).mean() > 0.6
    pit = F.point_in_time_join(labels, table, ["minutes_4w"], ttl=F.ACTIVITY_TTL)
    churners = naive["churned_30d"] == 1
    # Churners stop watching after the snapshot: the naive value is far below the honest one.
    assert churners.sum() >= 8
    assert naive.loc[churners, "minutes_4w"].mean() < 0.85 * pit.loc[churners, "minutes_4w"].mean()
    stayers = ~churners
    assert naive.loc[stayers, "minutes_4w"].mean() > 0.8 * pit.loc[stayers, "minutes_4w"].mean()


# --------------------------------------------------------------------------- Feast


def test_feast_point_in_time_join_equals_the_companion_join(dataset, repo):
    _, store = repo
    labels = _labels(dataset, dataset.snapshots[:3])
    from_feast = F.historical_features(store, labels, "churn_model_v1")
    assert len(from_feast) == len(labels)
    assert list(from_feast.columns[:3]) == ["customer_id", "event_timestamp", "churned_30d"]
    table = F.activity_feature_table(dataset)
    ours = F.point_in_time_join(labels, table, F.V1_ACTIVITY_FEATURES, ttl=F.ACTIVITY_TTL,
                                created_timestamp="created_timestamp")
    pd.testing.assert_frame_equal(
        from_feast[F.V1_ACTIVITY_FEATURES], ours[F.V1_ACTIVITY_FEATURES], check_dtype=False
    )
    assert from_feast["plan"].notna().all()


def test_training_set_equals_feast_on_event_time_and_arrival_takes_older_rows(dataset, repo):
    _, store = repo
    labels = _labels(dataset, dataset.snapshots[:3])
    weekly, profile = F.activity_feature_table(dataset), F.profile_feature_table(dataset)
    for version in ("v1", "v2"):
        from_feast = F.historical_features(store, labels, F.FEATURE_VERSIONS[version]["service"])
        ours = F.training_set(labels, weekly, profile, version, arrived_only=False)
        assert list(ours.columns) == list(from_feast.columns)
        pd.testing.assert_frame_equal(ours, from_feast, check_dtype=False)
    arrived = F.training_set(labels, weekly, profile, "v1")
    changed = (arrived["minutes_4w"] != ours["minutes_4w"]) & ours["minutes_4w"].notna()
    # Snapshots on a week end (1 January) find that week's row not yet loaded.
    on_week_end = labels["event_timestamp"] == dataset.snapshots[0]
    assert changed[on_week_end].mean() > 0.8 and changed[~on_week_end].sum() == 0


def test_file_store_drops_rows_past_ttl_and_duckdb_keeps_them(dataset, repo):
    path, store = repo
    churned = dataset.labels.loc[dataset.labels["churned_30d"] == 1, "customer_id"].head(3)
    active = dataset.labels.loc[
        dataset.labels["snapshot_timestamp"] == dataset.snapshots[3], "customer_id"].head(3)
    when = dataset.snapshots[3]
    entities = pd.DataFrame({"customer_id": [*churned, *active], "event_timestamp": when})
    kept = F.historical_features(store, entities, "churn_model_v1")
    assert len(kept) == 6
    assert kept["minutes_4w"].isna().sum() >= 3
    file_store = F.feature_store(path, offline_store="file")
    with pytest.raises(F.RowsDroppedError, match="returned 3 rows for 6 entity rows"):
        F.historical_features(file_store, entities, "churn_model_v1")


def test_online_features_equal_offline_features_at_materialization_end(dataset, repo):
    _, store = repo
    end = dataset.snapshots[2]
    active = _labels(dataset, [end])[["customer_id", "event_timestamp"]]
    for version in ("v1", "v2"):
        service = F.FEATURE_VERSIONS[version]["service"]
        offline = F.historical_features(store, active, service)
        online = F.online_features(store, active["customer_id"], service)
        columns = F.service_features(store, service)
        pd.testing.assert_frame_equal(
            offline[columns].reset_index(drop=True), online[columns].reset_index(drop=True),
            check_dtype=False,
        )


def test_feature_services_and_stores_reject_unknown_names(repo, tmp_path):
    _, store = repo
    with pytest.raises(UnknownNameError, match="churn_model_v3.*known: churn_model_v1"):
        F.online_features(store, [1], "churn_model_v3")
    with pytest.raises(UnknownNameError, match="offline store 'spark'"):
        F.feature_store(tmp_path, offline_store="spark")
    with pytest.raises(InvalidParameterError, match="must come before"):
        F.materialize(store, "2025-02-01", "2025-01-01")


def test_versions_train_score_and_record(dataset, repo, tmp_path):
    _, store = repo
    labels = _labels(dataset, dataset.snapshots[:3])
    for version in ("v1", "v2"):
        frame = F.historical_features(store, labels, F.FEATURE_VERSIONS[version]["service"])
        model = F.train_version(frame, version)
        scores = F.score_version(model, frame, version)
        assert 0.6 < scores["roc_auc"] <= 1.0
        assert scores["rows"] == len(labels)
        path = F.record_model_version(tmp_path, f"churn-{version}", version, {"auc": 0.5})
        record = F.read_model_record(path)
        assert record["feature_service"] == f"churn_model_{version}"
        assert record["features"] == F.version_columns(version)
    assert "minutes_change_4w" in F.version_columns("v2")
    assert "minutes_change_4w" not in F.version_columns("v1")
    with pytest.raises(UnknownNameError, match="feature version 'v9'"):
        F.train_version(frame, "v9")
    with pytest.raises(InvalidParameterError, match="missing column"):
        F.train_version(frame.drop(columns="minutes_4w"), "v1")
    with pytest.raises(InvalidParameterError, match="model name"):
        F.record_model_version(tmp_path, "bad name", "v1", {})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["churn-v1.json", "churn-v2.json"]
    assert json.loads((tmp_path / "churn-v1.json").read_text())["auc"] == 0.5


def test_model_frame_fills_activity_but_not_profile():
    frame = pd.DataFrame({"minutes_4w": [np.nan, 2.0], "plan": [None, "basic"],
                          "tenure_days": [np.nan, 3.0]})
    filled = F.model_frame(frame)
    assert filled["minutes_4w"].tolist() == [0.0, 2.0]
    assert filled["plan"].isna().sum() == 1 and filled["tenure_days"].isna().sum() == 1


def test_features_prerequisite_applies_and_materializes(tmp_path):
    from companion.data import SimulationConfig

    assert "features" in PREREQUISITES
    ws = Workspace.create("t-features", root=tmp_path,
                          config=SimulationConfig(n_customers=150, months=3, scenarios=()))
    store = ws.require("features")
    assert ws.built() == ["data", "features"]
    assert sorted(s.name for s in store.list_feature_services()) == [
        "churn_model_v1", "churn_model_v2"]
    online = F.online_features(store, [1, 2, 3], "churn_model_v1")
    assert online["plan"].notna().all()


def test_auc_gap_adds_the_two_variances():
    from companion.evaluation import auc_interval

    rng = np.random.default_rng(0)
    y1, y2 = rng.integers(0, 2, 400), rng.integers(0, 2, 300)
    s1, s2 = y1 + rng.normal(0, 1, 400), y2 + rng.normal(0, 2, 300)
    gap = F.auc_gap(y1, s1, y2, s2)
    a, b = auc_interval(y1, s1), auc_interval(y2, s2)
    assert gap.value == pytest.approx(a.value - b.value)
    assert gap.half_width == pytest.approx(np.hypot(a.half_width, b.half_width), rel=1e-6)
    assert gap.value > 0 and gap.method == "DeLong unpaired"
    with pytest.raises(InvalidParameterError, match="single class"):
        F.auc_gap([1, 1], [0.2, 0.3], y2, s2)
