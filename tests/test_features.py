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
    with pytest.raises(InvalidParameterError, match="until must be a date"):
        F.activity_feature_table(dataset, until="someday")


def test_feature_tables_reject_what_is_not_a_dataset():
    with pytest.raises(InvalidParameterError, match="dataset must be a ChurnDataset"):
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


# --------------------------------------------------------------------------- Feast's own objects


def _hand_written(repo_dir):
    """Feast's definitions of version 1, written out as the chapter does."""
    from feast import Entity, FeatureService, FeatureView, Field, FileSource, ValueType
    from feast.types import Float64, String

    repo = F.FeatureRepo(repo_dir)
    customer = Entity(name="customer", join_keys=["customer_id"], value_type=ValueType.INT64)
    weekly = FileSource(name="customer_activity_weekly", path=str(repo.activity_source),
                        timestamp_field="event_timestamp",
                        created_timestamp_column="created_timestamp")
    activity = FeatureView(name="customer_activity_v1", entities=[customer], source=weekly,
                           ttl=timedelta(days=14), online=True,
                           schema=[Field(name=n, dtype=Float64) for n in F.V1_ACTIVITY_FEATURES])
    profile_source = FileSource(name="customer_profile_source", path=str(repo.profile_source),
                                timestamp_field="event_timestamp")
    profile = FeatureView(name="customer_profile", entities=[customer], source=profile_source,
                          ttl=timedelta(0), online=True,
                          schema=[Field(name="monthly_fee", dtype=Float64)]
                          + [Field(name=n, dtype=String) for n in F.PROFILE_FEATURES[1:]])
    service = FeatureService(name="churn_model_v1", features=[activity, profile])
    return [customer, weekly, activity, profile_source, profile, service]


def test_hand_written_definitions_equal_the_companions(tmp_path):
    table = F.compare_definitions(_hand_written(tmp_path), tmp_path)
    assert list(table.index) == ["customer", "customer_activity_weekly", "customer_activity_v1",
                                 "customer_profile_source", "customer_profile", "churn_model_v1"]
    assert table["fields differing"].tolist() == [0] * 6
    assert table.loc["customer_activity_v1", "ttl (days)"] == 14
    assert table.loc["customer_activity_v1", "features"] == 7
    assert table.loc["churn_model_v1", "features"] == 12


def test_compare_definitions_counts_each_field_that_differs(tmp_path):
    from feast import FeatureView, Field
    from feast.types import Float64

    customer, weekly, activity, *_ = _hand_written(tmp_path)
    longer = FeatureView(name="customer_activity_v1", entities=[customer], source=weekly,
                         ttl=timedelta(days=28), online=True,  # TTL changed
                         schema=[Field(name=n, dtype=Float64)
                                 for n in F.V1_ACTIVITY_FEATURES[:-1]])  # a feature dropped
    table = F.compare_definitions([longer], tmp_path)
    assert table.loc["customer_activity_v1", "fields differing"] == 2
    elsewhere = F.compare_definitions([weekly], tmp_path / "other")
    assert elsewhere.loc["customer_activity_weekly", "fields differing"] == 1  # the path


def test_definition_signature_and_compare_reject_what_is_not_a_definition(tmp_path):
    from feast import Entity, ValueType

    with pytest.raises(InvalidParameterError, match="must be a Feast Entity.*got dict"):
        F.definition_signature({"name": "customer"})
    with pytest.raises(InvalidParameterError, match="non-empty list of Feast definitions"):
        F.compare_definitions([], tmp_path)
    with pytest.raises(InvalidParameterError, match="non-empty list of Feast definitions"):
        F.compare_definitions("customer", tmp_path)
    stranger = Entity(name="household", join_keys=["household_id"], value_type=ValueType.INT64)
    with pytest.raises(UnknownNameError, match="'household'.*known: churn_model_v1"):
        F.compare_definitions([stranger], tmp_path)
    customer = _hand_written(tmp_path)[0]
    with pytest.raises(InvalidParameterError, match=r"repeat the name\(s\) \['customer'\]"):
        F.compare_definitions([customer, customer], tmp_path)
    with pytest.raises(InvalidParameterError, match="repo must be a folder path"):
        F.compare_definitions([customer], 42)


# --------------------------------------------------------------------------- bad input


def test_record_details_may_not_overwrite_the_records_own_keys(tmp_path):
    for key in F.RECORD_KEYS:
        with pytest.raises(InvalidParameterError, match=f"may not overwrite.*'{key}'"):
            F.record_model_version(tmp_path / "models", "churn-v1", "v1", {key: None})
    with pytest.raises(InvalidParameterError, match="NaN or infinity"):
        F.record_model_version(tmp_path / "models", "churn-v1", "v1", {"auc": float("nan")})
    with pytest.raises(InvalidParameterError, match="keys must be non-empty strings"):
        F.record_model_version(tmp_path / "models", "churn-v1", "v1", {1: "one"})
    with pytest.raises(InvalidParameterError, match="details must be a dict"):
        F.record_model_version(tmp_path / "models", "churn-v1", "v1", [("auc", 1)])
    with pytest.raises(InvalidParameterError, match="model name"):
        F.record_model_version(tmp_path / "models", "churn'v1", "v1", {})
    with pytest.raises(InvalidParameterError, match="directory must be a path"):
        F.record_model_version(None, "churn-v1", "v1", {})
    (tmp_path / "a-file").write_text("x")
    with pytest.raises(InvalidParameterError, match="is a file, not a folder"):
        F.record_model_version(tmp_path / "a-file", "churn-v1", "v1", {})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file"]  # nothing half-written


@settings(max_examples=60, deadline=None)
@given(details=st.dictionaries(
    st.text(min_size=1, max_size=8),
    st.one_of(st.none(), st.integers(), st.floats(allow_nan=False, allow_infinity=False),
              st.text(max_size=8), st.lists(st.integers(), max_size=3)),
    max_size=4))
def test_record_round_trips_any_details_and_keeps_its_own_keys(tmp_path_factory, details):
    directory = tmp_path_factory.mktemp("records")
    taken = set(details) & set(F.RECORD_KEYS)
    if taken:
        with pytest.raises(InvalidParameterError, match="may not overwrite"):
            F.record_model_version(directory, "m", "v2", details)
        assert list(directory.iterdir()) == []
        return
    record = F.read_model_record(F.record_model_version(directory, "m", "v2", details))
    assert record["features"] == F.version_columns("v2")
    assert record["feature_service"] == "churn_model_v2" and record["model"] == "m"
    assert {k: record[k] for k in details} == details


def test_read_model_record_rejects_missing_and_foreign_files(tmp_path):
    with pytest.raises(InvalidParameterError, match="no model record"):
        F.read_model_record(tmp_path / "absent.json")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(InvalidParameterError, match="not a JSON model record"):
        F.read_model_record(tmp_path / "bad.json")
    (tmp_path / "other.json").write_text('{"model": "x"}')
    with pytest.raises(InvalidParameterError, match="lacks.*feature_service"):
        F.read_model_record(tmp_path / "other.json")
    with pytest.raises(InvalidParameterError, match="path must be a path"):
        F.read_model_record(None)


@pytest.mark.parametrize("call", [
    lambda ds: F.profile_feature_table(ds),
    lambda ds: F.history_start(ds),
    lambda ds: F.activity_feature_table(ds),
    lambda ds: F.apply_feature_repo("/nonexistent-never-created", ds),
])
@pytest.mark.parametrize("not_a_dataset", [None, pd.DataFrame(), "dataset"])
def test_dataset_functions_reject_what_is_not_a_dataset(call, not_a_dataset):
    with pytest.raises(InvalidParameterError, match="dataset must be a ChurnDataset"):
        call(not_a_dataset)


def test_apply_feature_repo_refuses_bad_folders_and_bad_until_before_writing(dataset, tmp_path):
    (tmp_path / "a-file").write_text("x")
    with pytest.raises(InvalidParameterError, match="is a file"):
        F.apply_feature_repo(tmp_path / "a-file", dataset)
    with pytest.raises(InvalidParameterError, match="repo must be a folder path"):
        F.apply_feature_repo(None, dataset)
    with pytest.raises(InvalidParameterError, match="until must be a date"):
        F.apply_feature_repo(tmp_path / "repo", dataset, until="someday")
    with pytest.raises(InvalidParameterError, match="until must be a date"):
        F.apply_feature_repo(tmp_path / "repo", dataset, until=float("nan"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file"]


def test_feature_repo_needs_a_path():
    assert F.FeatureRepo("some/where").registry.name == "registry.db"
    for bad in (None, 3, "", True):
        with pytest.raises(InvalidParameterError, match="must be a folder path"):
            F.FeatureRepo(bad)


def test_store_functions_reject_what_is_not_a_store(dataset):
    entities = _labels(dataset, dataset.snapshots[:1])
    for call in (lambda s: F.historical_features(s, entities, "churn_model_v1"),
                 lambda s: F.online_features(s, [1], "churn_model_v1"),
                 lambda s: F.service_features(s, "churn_model_v1"),
                 lambda s: F.materialize(s, "2025-01-01", "2025-02-01")):
        for bad in (None, "feature_repo", {"store": 1}):
            with pytest.raises(InvalidParameterError, match="expected a Feast FeatureStore"):
                call(bad)


def test_store_functions_reject_bad_names_ids_and_timestamps(dataset, repo):
    _, store = repo
    entities = _labels(dataset, dataset.snapshots[:1]).head(5)
    with pytest.raises(InvalidParameterError, match="feature service must be a name"):
        F.service_features(store, None)
    with pytest.raises(UnknownNameError, match="'churn_model_v9'.*known"):
        F.historical_features(store, entities, "churn_model_v9")
    for bad in ("12", [1, "2"], [1.5], [True], [1, np.nan]):
        with pytest.raises(InvalidParameterError, match="customer ids"):
            F.online_features(store, bad, "churn_model_v1")
    with pytest.raises(InvalidParameterError, match=r"repeat \[1\]"):
        F.online_features(store, [1, 2, 1], "churn_model_v1")
    with pytest.raises(InvalidParameterError, match="is empty"):
        F.online_features(store, [], "churn_model_v1")
    with pytest.raises(InvalidParameterError, match="missing timestamps"):
        F.historical_features(store, entities.assign(event_timestamp=pd.NaT), "churn_model_v1")
    with pytest.raises(InvalidParameterError, match="must hold timestamps"):
        F.historical_features(store, entities.assign(event_timestamp="someday"), "churn_model_v1")
    with pytest.raises(InvalidParameterError, match=r"already have column\(s\) \['minutes_4w'\]"):
        F.historical_features(store, entities.assign(minutes_4w=1.0), "churn_model_v1")
    with pytest.raises(InvalidParameterError, match="whole-number customer ids"):
        F.historical_features(store, entities.assign(customer_id=entities["customer_id"] + 0.5),
                              "churn_model_v1")
    with pytest.raises(InvalidParameterError, match="missing column"):
        F.historical_features(store, entities, "churn_model_v1", timestamp="snapshot")
    for start, end in [("someday", "2025-02-01"), ("2025-01-01", None), (0, "2025-02-01")]:
        with pytest.raises(InvalidParameterError, match="must be a date"):
            F.materialize(store, start, end)


def test_joins_reject_bad_columns_and_timestamps():
    entities = pd.DataFrame({"customer_id": [1], "event_timestamp": [pd.Timestamp("2025-01-02")]})
    rows = pd.DataFrame({"customer_id": [1], "event_timestamp": [pd.Timestamp("2025-01-01")],
                         "value": [1.0]})
    for join in (F.point_in_time_join, F.latest_value_join):
        with pytest.raises(InvalidParameterError, match="list of column names"):
            join(entities, rows, "value")  # a string is not a list of names
        with pytest.raises(InvalidParameterError, match=r"repeat \['value'\]"):
            join(entities, rows, ["value", "value"])
        with pytest.raises(InvalidParameterError, match="non-empty list"):
            join(entities, rows, [])
        with pytest.raises(InvalidParameterError, match="must be a pandas DataFrame"):
            join(entities.to_dict(), rows, ["value"])
        with pytest.raises(InvalidParameterError, match="already have column"):
            join(entities.assign(value=0.0), rows, ["value"])
        with pytest.raises(InvalidParameterError, match="must hold timestamps"):
            join(entities, rows.assign(event_timestamp="someday"), ["value"])
    with pytest.raises(InvalidParameterError, match="as_of must be a date"):
        F.latest_value_join(entities, rows, ["value"], as_of="someday")
    with pytest.raises(InvalidParameterError, match="ttl must be a positive timedelta"):
        F.point_in_time_join(entities, rows, ["value"], ttl=pd.NaT)
    with pytest.raises(InvalidParameterError, match="ttl must be a positive timedelta"):
        F.point_in_time_join(entities, rows, ["value"], ttl=14)
    # Time-zone-aware stamps are read in UTC: the same join as naive UTC.
    aware = F.point_in_time_join(entities.assign(event_timestamp=pd.Timestamp(
        "2025-01-02", tz="UTC")), rows, ["value"])
    assert aware["value"].tolist() == [1.0]


def test_training_set_rejects_unknown_versions_and_bad_frames(dataset):
    labels = _labels(dataset, dataset.snapshots[:1])
    weekly, profile = F.activity_feature_table(dataset), F.profile_feature_table(dataset)
    with pytest.raises(UnknownNameError, match="feature version 'v3'"):
        F.training_set(labels, weekly, profile, "v3")
    with pytest.raises(InvalidParameterError, match="must be a pandas DataFrame"):
        F.training_set(labels, dataset, profile, "v1")
    with pytest.raises(InvalidParameterError, match="missing column"):
        F.training_set(labels, weekly, profile.drop(columns="plan"), "v1")
    with pytest.raises(InvalidParameterError, match="arrived_only must be True or False"):
        F.training_set(labels, weekly, profile, "v1", arrived_only=None)


def test_models_reject_bad_seeds_targets_and_models(dataset):
    labels = _labels(dataset, dataset.snapshots[:2])
    frame = F.training_set(labels, F.activity_feature_table(dataset),
                           F.profile_feature_table(dataset), "v1")
    for seed in (-1, 1.5, None, True):
        with pytest.raises(InvalidParameterError, match="seed must be"):
            F.train_version(frame, "v1", seed=seed)
        with pytest.raises(InvalidParameterError, match="seed must be"):
            F.make_version_model("v1", seed=seed)
    with pytest.raises(InvalidParameterError, match="single class"):
        F.train_version(frame.assign(churned_30d=0), "v1")
    with pytest.raises(InvalidParameterError, match="0 or 1 only"):
        F.train_version(frame.assign(churned_30d=np.where(frame.index == 0, np.nan, 1.0)), "v1")
    with pytest.raises(InvalidParameterError, match="predict_proba"):
        F.score_version("model", frame, "v1")
    with pytest.raises(InvalidParameterError, match="must be a pandas DataFrame"):
        F.model_frame([1, 2])
    with pytest.raises(UnknownNameError, match="feature version 'v0'"):
        F.version_columns("v0")


def test_build_features_needs_a_workspace():
    with pytest.raises(InvalidParameterError, match="workspace must be a workspace"):
        F.build_features("04-feature-store")


# --------------------------------------------------------------------------- the package's ground


def test_quiet_feast_is_the_shared_quieting_and_restores_levels():
    import logging

    before = {name: logging.getLogger(name).level for name in F.FEAST_LOGGERS}
    with F.quiet_feast() as sink:
        print("a progress bar")
        assert all(logging.getLogger(n).getEffectiveLevel() >= logging.ERROR
                   for n in F.FEAST_LOGGERS)
    assert "a progress bar" in sink.getvalue()
    assert {name: logging.getLogger(name).level for name in F.FEAST_LOGGERS} == before


def test_score_version_is_training_evaluate_over_the_version_columns(dataset):
    from companion.training import evaluate

    labels = _labels(dataset, dataset.snapshots[:2])
    frame = F.training_set(labels, F.activity_feature_table(dataset),
                           F.profile_feature_table(dataset), "v2")
    model = F.train_version(frame, "v2")
    scores = F.score_version(model, frame, "v2")
    assert scores == evaluate(model, F.model_frame(frame), F.version_columns("v2"))
    assert set(scores) == {"roc_auc", "average_precision", "brier", "churn_rate", "rows"}


def test_auc_gap_is_the_unpaired_difference_of_two_auc_intervals():
    from companion.evaluation import auc_interval, unpaired_difference

    rng = np.random.default_rng(1)
    y1, y2 = rng.integers(0, 2, 300), rng.integers(0, 2, 200)
    s1, s2 = y1 + rng.normal(0, 1, 300), y2 + rng.normal(0, 1.5, 200)
    gap = F.auc_gap(y1, s1, y2, s2)
    plain = unpaired_difference(auc_interval(y1, s1), auc_interval(y2, s2))
    assert (gap.value, gap.low, gap.high, gap.p_value) == (
        plain.value, plain.low, plain.high, plain.p_value)
    assert gap.method == "DeLong unpaired"


def test_build_features_accepts_any_workspace_like_object(tmp_path, dataset):
    class Folder:  # not a companion Workspace: the stage reads only the interface
        name, config, tracking_uri = "probe", dataset.config, ""
        path = data_dir = artifact_root = dvc_dir = reports_dir = tmp_path
        feast_dir = tmp_path / "feast"

        def relative(self, path):
            return str(path)

        def require(self, *names):
            assert names == ("data",)
            return dataset

    store = F.build_features(Folder())
    assert F.service_features(store, "churn_model_v1")[:1] == ["sessions_4w"]


def test_the_package_names_every_public_name_and_imports_no_workspace():
    import ast
    from pathlib import Path

    for name in F.__all__:
        assert hasattr(F, name), name
    for path in Path(F.__file__).parent.glob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        targets = [n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
        assert "companion.workspace" not in targets, path.name


def test_records_are_written_atomically_through_the_shared_helper(tmp_path, monkeypatch):
    import companion.core.files as files

    calls = []
    real = files.atomic_write

    def spy(path, write):
        calls.append(path)
        return real(path, write)

    monkeypatch.setattr(files, "atomic_write", spy)
    path = F.record_model_version(tmp_path, "churn-v1", "v1", {})
    assert calls == [path] and not list(tmp_path.glob(".*.tmp"))
