"""The simulated dataset: determinism, schema, realistic marginals, drift with known onsets."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from companion import data
from companion.data import SimulationConfig, generate
from companion.errors import InvalidParameterError, UnknownNameError
from companion.training import evaluate, snapshot_features, train

ROOT = Path(__file__).resolve().parent.parent

# The content hash of the default dataset. It changes only when the generator changes on
# purpose; then `make data` updates data/dvc.lock and this pin is updated with it.
DEFAULT_HASH = "a4fca24369e5221aa4cfa1b38f035d9eca62c40fa0c5cbe946356ff31812e9af"


@pytest.fixture(scope="module")
def default() -> data.ChurnDataset:
    return generate()


@pytest.fixture(scope="module")
def features(default: data.ChurnDataset) -> pd.DataFrame:
    return snapshot_features(default)


def active_share(ds: data.ChurnDataset, column: str, value: str) -> pd.Series:
    """Share of labelled (active) customers with ``column == value``, per snapshot."""
    merged = ds.labels.merge(ds.customers[["customer_id", column]], on="customer_id")
    return merged.groupby("snapshot_timestamp")[column].apply(lambda s: (s == value).mean())


# --------------------------------------------------------------------------- determinism


def test_default_dataset_content_hash_is_pinned(default):
    assert default.content_hash() == DEFAULT_HASH


def test_same_config_gives_identical_tables_and_other_seed_does_not():
    config = SimulationConfig(n_customers=300, months=4, scenarios=())
    first, second = generate(config), generate(config)
    for name in first.all_tables():
        pd.testing.assert_frame_equal(first.all_tables()[name], second.all_tables()[name])
    assert generate(config, seed=7).content_hash() != first.content_hash()


def test_scenario_order_does_not_change_the_config():
    a = SimulationConfig(scenarios=("quality", "covariate"))
    b = SimulationConfig(scenarios=("covariate", "quality"))
    assert a == b and a.scenarios == ("covariate", "quality")


def test_multiple_blocks_keep_ids_unique_and_rows_sorted(monkeypatch):
    monkeypatch.setattr(data.simulate, "BLOCK_SIZE", 150)
    ds = generate(n_customers=400, months=3, scenarios=())
    assert ds.customers["customer_id"].tolist() == list(range(1, 401))
    assert ds.activity["event_timestamp"].is_monotonic_increasing
    keys = ds.labels[["snapshot_timestamp", "customer_id"]]
    assert not keys.duplicated().any()
    assert keys.equals(keys.sort_values(["snapshot_timestamp", "customer_id"]))


# --------------------------------------------------------------------------- schema


def test_model_facing_tables_have_the_documented_columns(default):
    assert list(default.customers.columns) == [
        "customer_id", "signup_date", "plan", "region", "acquisition_channel", "age_band",
        "monthly_fee",
    ]
    assert list(default.activity.columns) == [
        "customer_id", "event_timestamp", "created_timestamp", "sessions", "minutes_watched",
        "days_active", "support_tickets", "payment_failures",
    ]
    assert list(default.labels.columns) == ["customer_id", "snapshot_timestamp", "churned_30d"]


def test_truth_is_kept_apart_from_model_inputs(default):
    for name, table in default.tables().items():
        assert "churn_probability" not in table.columns, name
    assert set(default.tables()) == {"customers", "activity", "labels", "prices"}
    assert list(default.truth.columns) == ["customer_id", "snapshot_timestamp", "churn_probability"]
    assert default.truth["churn_probability"].between(0, 1).all()
    # one truth row for every label row, same keys
    keys = ["customer_id", "snapshot_timestamp"]
    pd.testing.assert_frame_equal(default.truth[keys], default.labels[keys])


def test_activity_lies_between_signup_and_cancellation(default):
    rows = default.activity.merge(default.customers[["customer_id", "signup_date"]])
    assert (rows["event_timestamp"] > rows["signup_date"]).all()
    assert (rows["created_timestamp"] > rows["event_timestamp"]).all()
    churned = default.labels[default.labels["churned_30d"] == 1]
    last_seen = default.activity.groupby("customer_id")["event_timestamp"].max()
    gone_by = churned.set_index("customer_id")["snapshot_timestamp"] + pd.Timedelta(days=30)
    assert (last_seen.reindex(gone_by.index).fillna(pd.Timestamp(0)) <= gone_by).all()
    # a customer who churned is never labelled again afterwards
    later = default.labels.merge(churned[["customer_id", "snapshot_timestamp"]], on="customer_id",
                                 suffixes=("", "_churn"))
    assert (later["snapshot_timestamp"] <= later["snapshot_timestamp_churn"]).all()


def test_labels_only_for_customers_signed_up_before_the_snapshot(default):
    rows = default.labels.merge(default.customers[["customer_id", "signup_date"]])
    assert (rows["signup_date"] < rows["snapshot_timestamp"]).all()


# --------------------------------------------------------------------------- marginals


def test_monthly_churn_is_a_few_percent_before_drift(default):
    rates = default.labels.groupby("snapshot_timestamp")["churned_30d"].mean()
    before = rates[rates.index < default.config.onset("covariate")]
    assert before.between(0.015, 0.04).all(), before
    # the truth is calibrated: mean true probability matches the observed rate
    truth = default.truth.groupby("snapshot_timestamp")["churn_probability"].mean()
    assert np.allclose(truth, rates, atol=0.01)


def test_annual_churn_of_the_starting_customers_is_near_a_quarter(default):
    first = default.labels[default.labels["snapshot_timestamp"] == default.snapshots[0]]
    churners = default.labels.loc[default.labels["churned_30d"] == 1, "customer_id"]
    annual = first["customer_id"].isin(churners).mean()
    assert 0.18 < annual < 0.45, annual


def test_weekly_activity_is_plausible(default):
    clean = default.activity[default.activity["event_timestamp"] < default.config.onset("quality")]
    assert 3 < clean["sessions"].mean() < 8
    assert 60 < clean["minutes_watched"].median() < 150
    assert (clean["days_active"] <= 7).all() and (clean["days_active"] <= clean["sessions"]).all()


# --------------------------------------------------------------------------- drift scenarios


def test_onsets_are_recorded_as_configured(default):
    onsets = default.onsets.set_index("scenario")["onset"]
    assert onsets.to_dict() == {
        "covariate": pd.Timestamp("2025-06-01"),
        "concept": pd.Timestamp("2025-09-01"),
        "quality": pd.Timestamp("2025-11-01"),
    }
    assert generate(n_customers=50, months=3, scenarios=()).onsets.empty


def test_covariate_drift_changes_the_population_after_onset_only(default):
    onset = default.config.onset("covariate")
    partner = active_share(default, "acquisition_channel", "partner_bundle")
    assert (partner[partner.index < onset] == 0).all()
    assert partner.iloc[-1] > 0.07
    young = active_share(default, "age_band", "18-24")
    before = young[young.index < onset]
    assert before.max() - before.min() < 0.015  # stable before the onset
    assert young.iloc[-1] - before.mean() > 0.03  # clearly shifted after it
    control = generate(scenarios=("concept", "quality"))
    assert (active_share(control, "acquisition_channel", "partner_bundle") == 0).all()


def test_concept_drift_costs_a_model_trained_before_it_roc_auc(default, features):
    onset = default.config.onset("concept")
    snaps = default.snapshots
    k = snaps.index(onset)
    model = train(features[features["snapshot_timestamp"].isin(snaps[k - 4 : k - 2])], seed=0)

    def auc(months):
        return np.mean(
            [evaluate(model, features[features["snapshot_timestamp"] == s])["roc_auc"] for s in months]
        )

    before, after = auc(snaps[k - 2 : k]), auc(snaps[k:])
    assert before - after > 0.04, (before, after)


def test_concept_drift_makes_the_loyal_segment_churn(default):
    def segment_rate(ds):
        rows = ds.labels.merge(ds.customers, on="customer_id")
        segment = rows["plan"].isin(["standard", "premium"]) & rows["age_band"].isin(["45-54", "55+"])
        after = rows["snapshot_timestamp"] >= pd.Timestamp("2025-09-01")
        return rows.loc[segment & ~after, "churned_30d"].mean(), rows.loc[segment & after, "churned_30d"].mean()

    before, after = segment_rate(default)
    assert after > 4 * before
    control_before, control_after = segment_rate(generate(scenarios=("covariate", "quality")))
    assert control_after < 2 * control_before


def test_quality_incident_changes_units_and_nulls_after_onset_only(default):
    onset = default.config.onset("quality")
    act = default.activity
    before, after = act[act["event_timestamp"] < onset], act[act["event_timestamp"] >= onset]
    assert before["minutes_watched"].isna().mean() < 0.01
    assert after["minutes_watched"].isna().mean() > 0.06
    assert (before["minutes_watched"] > 3000).mean() < 0.01
    assert (after["minutes_watched"] > 3000).mean() > 0.15
    # the truth does not change with a data-quality incident
    control = generate(scenarios=("covariate", "concept"))
    pd.testing.assert_frame_equal(control.truth, default.truth)


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"n_customers": 0}, "n_customers must be >= 1, got 0"),
        ({"n_customers": -5}, "n_customers must be >= 1, got -5"),
        ({"n_customers": 10.5}, "n_customers must be an int, got 10.5"),
        ({"n_customers": "100"}, "n_customers must be an int, got '100'"),
        ({"n_customers": True}, "n_customers must be an int, got True"),
        ({"months": 0}, "months must be >= 1, got 0"),
        ({"seed": -1}, "seed must be >= 0, got -1"),
        ({"start": "2025-13-01"}, "start must be a date like '2025-01-01', got '2025-13-01'"),
        ({"start": 20250101}, "start must be a date string like '2025-01-01', got 20250101"),
        ({"start": "2025-01-01 10:00"}, "start must be a date without a time"),
        ({"scenarios": "covariate"}, "scenarios must be a tuple of names"),
        ({"scenarios": ("covariate", "covariate")}, "scenarios must not repeat"),
        ({"months": 5}, "covariate_onset must be a snapshot index between 1 and months - 1 = 4"),
        ({"concept_onset": 0}, "concept_onset must be >= 1, got 0"),
    ],
)
def test_bad_parameters_name_the_value_and_what_is_accepted(params, message):
    with pytest.raises(InvalidParameterError, match=message.replace("(", r"\(").replace(")", r"\)")):
        SimulationConfig(**params)


def test_unknown_scenario_lists_the_accepted_ones():
    with pytest.raises(UnknownNameError, match=r"scenario 'seasonal' is not known; accepted: 'covariate', 'concept', 'quality'"):
        SimulationConfig(scenarios=("seasonal",))


def test_end_before_start_is_refused():
    with pytest.raises(InvalidParameterError, match=r"end '2024-06-01' must be after start '2025-01-01'"):
        SimulationConfig.between("2025-01-01", "2024-06-01")
    assert SimulationConfig.between("2025-01-01", "2026-01-01").months == 12


def test_unknown_params_file_keys_are_refused(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump({"simulation": {"n_customer": 10}}))
    with pytest.raises(InvalidParameterError, match=r"unknown simulation parameter\(s\) \['n_customer'\]"):
        data.load_params(path)


def test_generate_rejects_a_config_of_the_wrong_type():
    with pytest.raises(InvalidParameterError, match="config must be a SimulationConfig or None, got dict"):
        generate({"n_customers": 10})


# --------------------------------------------------------------------------- files


def test_write_and_read_back_round_trip(tmp_path):
    ds = generate(n_customers=200, months=3, scenarios=())
    paths = data.write_dataset(ds, tmp_path / "ds")
    assert sorted(p.name for p in (tmp_path / "ds").iterdir()) == sorted(data.TABLE_FILES.values())
    for name, frame in ds.all_tables().items():
        back = data.read_table(tmp_path / "ds", name)
        pd.testing.assert_frame_equal(back, frame, check_categorical=False)
        assert paths[name].exists()


def test_a_failed_write_leaves_nothing_half_written(tmp_path, monkeypatch):
    ds = generate(n_customers=100, months=2, scenarios=())
    calls = {"n": 0}
    real = pd.DataFrame.to_parquet

    def failing(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise OSError("disk full")
        return real(self, *args, **kwargs)

    monkeypatch.setattr(pd.DataFrame, "to_parquet", failing)
    with pytest.raises(OSError, match="disk full"):
        data.write_dataset(ds, tmp_path / "ds")
    assert list(tmp_path.iterdir()) == []


def test_read_table_names_a_missing_table(tmp_path):
    with pytest.raises(InvalidParameterError, match="no labels table at"):
        data.read_table(tmp_path, "labels")
    with pytest.raises(UnknownNameError, match="table 'label' is not known"):
        data.read_table(tmp_path, "label")


def md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


@pytest.mark.slow
def test_dvc_lock_hashes_are_reproduced_from_a_fresh_generation(tmp_path):
    lock = yaml.safe_load((ROOT / "data" / "dvc.lock").read_text())
    config = data.load_params(ROOT / "data" / "params.yaml")
    dataset = generate(config)
    data.write_dataset(dataset, tmp_path / "generated")
    data.write_sample(dataset, tmp_path / "sample", 50)
    checked = 0
    for stage in ("generate", "sample"):
        for out in lock["stages"][stage]["outs"]:
            assert md5(tmp_path / out["path"]) == out["md5"], out["path"]
            checked += 1
    assert checked == 12
    # the committed CSV sample is what the pipeline produces
    for name in ("customers", "activity", "labels"):
        assert md5(ROOT / "data" / "sample" / f"{name}.csv") == md5(tmp_path / "sample" / f"{name}.csv")


def test_dvc_lock_records_the_params_file():
    lock = yaml.safe_load((ROOT / "data" / "dvc.lock").read_text())
    params = yaml.safe_load((ROOT / "data" / "params.yaml").read_text())
    assert lock["stages"]["generate"]["params"]["params.yaml"]["simulation"] == params["simulation"]
    assert os.path.exists(ROOT / "data" / "dvc.yaml")


@pytest.mark.parametrize("block_size", [150, 100_000])
def test_tables_do_not_share_memory(monkeypatch, block_size):
    monkeypatch.setattr(data.simulate, "BLOCK_SIZE", block_size)
    ds = generate(n_customers=400, months=3, scenarios=())
    before = ds.truth["customer_id"].copy()
    ds.labels.loc[:, "customer_id"] = -1
    pd.testing.assert_series_equal(ds.truth["customer_id"], before)


def test_block_assembly_matches_a_plain_sort(monkeypatch):
    """Interleaving blocks by counts gives exactly a stable sort by time then customer."""
    monkeypatch.setattr(data.simulate, "BLOCK_SIZE", 97)
    ds = generate(n_customers=500, months=3, scenarios=())
    for frame, time_key in ((ds.activity, "event_timestamp"), (ds.labels, "snapshot_timestamp")):
        resorted = frame.sort_values([time_key, "customer_id"], kind="stable").reset_index(drop=True)
        pd.testing.assert_frame_equal(frame, resorted)


# --------------------------------------------------------------------------- known artefacts


def test_new_customers_are_not_a_shortcut_to_the_label(default, features):
    # Customers seen for part of the window churn more (they are new), but nowhere near always:
    # an earlier generator let customers who joined days before a snapshot churn at ~95%.
    rows = features.merge(default.truth, on=["customer_id", "snapshot_timestamp"])
    by_weeks = rows.groupby("weeks_seen_4w").agg(rate=("churned_30d", "mean"),
                                                 truth=("churn_probability", "mean"))
    assert by_weeks["rate"].max() < 0.3, by_weeks
    assert np.allclose(by_weeks["rate"], by_weeks["truth"], atol=0.03)
    first_week = rows[rows["tenure_days"] < 7]
    assert first_week["churned_30d"].mean() < 0.25
    assert first_week["churned_30d"].sum() / rows["churned_30d"].sum() < 0.05


def test_the_price_rise_raises_monthly_fee_for_the_plans_it_hits(default, features):
    onset = default.config.onset("concept")
    prices = default.prices.set_index(["plan", "effective_from"])["monthly_fee"]
    assert prices[("standard", onset)] == 14.99 and prices[("premium", onset)] == 21.99
    assert "basic" not in default.prices.loc[default.prices["effective_from"] == onset, "plan"].tolist()
    fee = features.groupby([features["snapshot_timestamp"] >= onset, "plan"], observed=True)[
        "monthly_fee"].agg(["min", "max"])
    assert fee.loc[(False, "standard")].tolist() == [12.99, 12.99]
    assert fee.loc[(True, "standard")].tolist() == [14.99, 14.99]
    assert fee.loc[(True, "premium")].tolist() == [21.99, 21.99]
    assert fee.loc[(True, "basic")].tolist() == [7.99, 7.99]
    # customers who sign up after the rise pay the new price from the start
    late = default.customers[default.customers["signup_date"] >= onset]
    assert set(late.loc[late["plan"] == "premium", "monthly_fee"]) == {21.99}
    # without the concept scenario nothing rises
    assert len(generate(n_customers=50, months=3, scenarios=()).prices) == 3


def test_monthly_fee_at_reads_the_price_list_and_names_bad_input(default):
    fees = data.monthly_fee_at(default.prices, ["basic", "premium", "premium"],
                               ["2025-01-01", "2025-08-31", "2025-09-01"])
    assert fees.tolist() == [7.99, 17.99, 21.99]
    with pytest.raises(InvalidParameterError, match=r"unknown plan\(s\) \['gold'\]; accepted: \['basic'"):
        data.monthly_fee_at(default.prices, ["gold"], ["2025-01-01"])
    with pytest.raises(InvalidParameterError, match="precedes the first price of plan 'basic'"):
        data.monthly_fee_at(default.prices, ["basic"], ["1990-01-01"])
    with pytest.raises(InvalidParameterError, match="timestamps must not be missing"):
        data.monthly_fee_at(default.prices, ["basic"], [None])


# --------------------------------------------------------------------------- bad input, everywhere


@pytest.fixture(scope="module")
def small() -> data.ChurnDataset:
    return generate(n_customers=120, months=3, scenarios=())


def test_check_dataset_names_what_it_got(small):
    assert data.check_dataset(small) is small
    with pytest.raises(InvalidParameterError, match=r"dataset must be a ChurnDataset .*got 'x' of type str"):
        data.check_dataset("x")
    with pytest.raises(InvalidParameterError, match="got None of type NoneType"):
        data.check_dataset(None)


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda: SimulationConfig(start=None), InvalidParameterError, "start must be a date"),
        (lambda: SimulationConfig(start="2025-01-01T00:00+01:00"), InvalidParameterError, "time zone"),
        (lambda: SimulationConfig.between(None, "2025-03-01"), InvalidParameterError,
         "start must be a date like '2025-01-01', got None"),
        (lambda: SimulationConfig.between("2025-01-01", float("nan")), InvalidParameterError,
         "end must be a date"),
        (lambda: SimulationConfig.between("2025-01-01", "2025-03-01", months=4), InvalidParameterError,
         r"between\(\) sets \['months'\] itself"),
        (lambda: SimulationConfig.between("2025-01-01", "2025-03-01", size=3), InvalidParameterError,
         r"unknown simulation parameter\(s\) \['size'\]"),
        (lambda: SimulationConfig.between(pd.Timestamp("2025-01-01 05:00"), "2025-03-01"),
         InvalidParameterError, "start must be a date without a time"),
        (lambda: SimulationConfig.from_mapping([("seed", 1)]), InvalidParameterError,
         "values must be a mapping"),
        (lambda: generate(SimulationConfig(), bogus=1), InvalidParameterError,
         r"unknown simulation parameter\(s\) \['bogus'\]"),
        (lambda: generate(n_customers=float("nan")), InvalidParameterError, "n_customers must be an int"),
        (lambda: generate("config", n_customers=5), InvalidParameterError,
         "config must be a SimulationConfig or None, got str"),
        (lambda: data.content_hash([pd.DataFrame()]), InvalidParameterError, "tables must be a mapping"),
        (lambda: data.content_hash({"a": [1, 2]}), InvalidParameterError, "got 'a': list"),
        (lambda: data.content_hash({1: pd.DataFrame()}), InvalidParameterError, "str names"),
        (lambda: data.read_table(3, "labels"), InvalidParameterError, "directory must be a path"),
        (lambda: data.write_dataset({"customers": pd.DataFrame()}, "x"), InvalidParameterError,
         "dataset must be a ChurnDataset"),
        (lambda: data.write_sample("x", "y"), InvalidParameterError, "dataset must be a ChurnDataset"),
    ],
)
def test_every_public_function_names_bad_input(call, error, message):
    with pytest.raises(error, match=message):
        call()


def test_a_dataset_needs_a_config_and_data_frames(small):
    tables = small.all_tables()
    with pytest.raises(InvalidParameterError, match="config must be a SimulationConfig, got dict"):
        data.ChurnDataset({}, **tables)
    with pytest.raises(InvalidParameterError, match="labels must be a pandas DataFrame, got list"):
        data.ChurnDataset(small.config, **{**tables, "labels": []})


def test_monthly_fee_at_refuses_what_is_not_a_price_list(small):
    with pytest.raises(InvalidParameterError, match=r"prices \(the price list, dataset.prices\) must be a pandas DataFrame"):
        data.monthly_fee_at("prices", ["basic"], ["2025-01-01"])
    with pytest.raises(InvalidParameterError, match=r"missing column\(s\) \['effective_from'\]"):
        data.monthly_fee_at(small.prices.drop(columns="effective_from"), ["basic"], ["2025-01-01"])
    with pytest.raises(InvalidParameterError, match=r"of one length, got shapes \(1,\) and \(2,\)"):
        data.monthly_fee_at(small.prices, ["basic"], ["2025-01-01", "2025-02-01"])
    with pytest.raises(InvalidParameterError, match="when must hold timestamps"):
        data.monthly_fee_at(small.prices, ["basic"], ["not a date"])


def test_load_params_names_the_file_and_what_is_wrong(tmp_path):
    with pytest.raises(InvalidParameterError, match="no params file at"):
        data.load_params(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("simulation: [unclosed\n")
    with pytest.raises(InvalidParameterError, match="is not valid YAML"):
        data.load_params(bad)
    listing = tmp_path / "list.yaml"
    listing.write_text("- 1\n- 2\n")
    with pytest.raises(InvalidParameterError, match="must hold a mapping of sections, got list"):
        data.load_params(listing)
    other = tmp_path / "other.yaml"
    other.write_text("train: {}\n")
    with pytest.raises(UnknownNameError, match=r"has no 'simulation' section; found \['train'\]"):
        data.load_params(other)
    scalar = tmp_path / "scalar.yaml"
    scalar.write_text("simulation: 5\n")
    with pytest.raises(InvalidParameterError, match="must be a mapping of simulation parameters"):
        data.load_params(scalar)
    good = tmp_path / "good.yaml"
    good.write_text("simulation:\n  n_customers: 30\n  months: 2\n  scenarios: []\n")
    assert data.load_params(good) == SimulationConfig(n_customers=30, months=2, scenarios=())


def leftovers(parent: Path) -> list[str]:
    return sorted(p.name for p in parent.iterdir() if p.name.startswith("."))


def test_a_failed_write_into_an_existing_folder_keeps_the_old_tables(tmp_path, monkeypatch, small):
    target = tmp_path / "data"
    data.write_dataset(small, target)
    (target / "README.md").write_text("kept\n")
    before = {p.name: p.read_bytes() for p in target.iterdir()}
    other = generate(n_customers=60, months=3, scenarios=(), seed=7)
    calls = {"n": 0}
    real = pd.DataFrame.to_parquet

    def fail_on_the_third(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise OSError("disk full")
        return real(self, *args, **kwargs)

    monkeypatch.setattr(pd.DataFrame, "to_parquet", fail_on_the_third)
    with pytest.raises(OSError, match="disk full"):
        data.write_dataset(other, target)
    assert {p.name: p.read_bytes() for p in target.iterdir()} == before
    assert leftovers(tmp_path) == []


def test_a_failed_swap_puts_the_old_tables_back(tmp_path, monkeypatch, small):
    target = tmp_path / "data"
    data.write_dataset(small, target)
    before = {p.name: p.read_bytes() for p in target.iterdir()}
    other = generate(n_customers=60, months=3, scenarios=(), seed=7)
    calls = {"n": 0}
    real = os.replace

    def fail_midway(src, dst):
        calls["n"] += 1
        if calls["n"] == 5:  # old customers saved, new customers placed, old activity saved...
            raise OSError("device gone")
        return real(src, dst)

    monkeypatch.setattr(data.files.os, "replace", fail_midway)
    with pytest.raises(OSError, match="device gone"):
        data.write_dataset(other, target)
    monkeypatch.setattr(data.files.os, "replace", real)
    assert {p.name: p.read_bytes() for p in target.iterdir()} == before
    assert leftovers(tmp_path) == []
    assert data.read_table(target, "customers").equals(small.customers)


def test_a_failed_sample_write_leaves_no_folder(tmp_path, monkeypatch, small):
    calls = {"n": 0}
    real = pd.DataFrame.to_csv

    def fail_on_the_second(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise OSError("disk full")
        return real(self, *args, **kwargs)

    monkeypatch.setattr(pd.DataFrame, "to_csv", fail_on_the_second)
    with pytest.raises(OSError, match="disk full"):
        data.write_sample(small, tmp_path / "sample", n_customers=5)
    assert list(tmp_path.iterdir()) == []
    monkeypatch.setattr(pd.DataFrame, "to_csv", real)
    paths = data.write_sample(small, tmp_path / "sample", n_customers=5)
    assert pd.read_csv(paths["customers"])["customer_id"].tolist() == [1, 2, 3, 4, 5]
    with pytest.raises(InvalidParameterError, match="exists and is not a folder"):
        data.write_sample(small, paths["customers"])


# --------------------------------------------------------------------------- invariants

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    n_customers=st.integers(1, 150),
    months=st.integers(2, 5),
    seed=st.integers(0, 2**31),
    scenarios=st.sets(st.sampled_from(data.SCENARIOS)),
)
def test_any_small_config_gives_consistent_tables(n_customers, months, seed, scenarios):
    config = SimulationConfig(n_customers=n_customers, months=months, seed=seed,
                              scenarios=tuple(scenarios), covariate_onset=1, concept_onset=1,
                              quality_onset=months - 1)
    ds = generate(config)
    assert ds.customers["customer_id"].is_unique
    assert len(ds.customers) == n_customers
    keys = ["customer_id", "snapshot_timestamp"]
    assert not ds.labels.duplicated(keys).any()
    assert ds.labels[keys].equals(ds.truth[keys])
    assert ds.truth["churn_probability"].between(0, 1).all()
    assert set(ds.labels["churned_30d"].unique()) <= {0, 1}
    # Labels only for active customers: signed up before the snapshot, not churned earlier.
    merged = ds.labels.merge(ds.customers[["customer_id", "signup_date"]], on="customer_id")
    assert (merged["signup_date"] < merged["snapshot_timestamp"]).all()
    first_churn = ds.labels[ds.labels["churned_30d"] == 1].groupby("customer_id")[
        "snapshot_timestamp"].min()
    later = merged.merge(first_churn.rename("churned_at"), on="customer_id")
    assert (later["snapshot_timestamp"] <= later["churned_at"]).all()
    assert set(ds.activity["customer_id"]) <= set(ds.customers["customer_id"])
    assert ds.content_hash() == generate(config).content_hash()


def test_the_command_line_runs_as_a_module(tmp_path):
    import subprocess
    import sys

    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump({"simulation": {"n_customers": 30, "months": 2,
                                                     "scenarios": []}}))
    result = subprocess.run(
        [sys.executable, "-m", "companion.data", "sample", "--params", str(params),
         "--out", str(tmp_path / "sample"), "--customers", "5"],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    expected = data.generate(data.load_params(params)).content_hash()
    assert f"content hash: {expected}" in result.stdout
    assert sorted(p.name for p in (tmp_path / "sample").iterdir()) == sorted(
        f"{name}.csv" for name in data.TABLE_FILES)


def test_the_package_names_every_public_name():
    for name in data.__all__:
        assert hasattr(data, name), name
    assert data.generate.__module__ == "companion.data.simulate"
