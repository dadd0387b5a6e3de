"""Tests of batch inference: stamped scores, partitioned Parquet replaced whole on a rerun (and
left intact when a write fails), bad input refused naming the value, the throughput measure,
and (slow) a month of a real workspace scored from the registry alias with Feast's offline
store."""

from __future__ import annotations

import types

import numpy as np
import pandas as pd
import pytest

from companion import deployment
from companion.data.config import AGE_BANDS, CHANNELS, PLANS, REGIONS
from companion.deployment import batch
from companion.errors import InvalidParameterError, UnknownNameError
from companion.training import CATEGORICAL_FEATURES, FEATURES, NUMERIC_FEATURES, make_model

SERVICE = "churn_model_v1"
LEVELS = {"plan": PLANS, "region": REGIONS, "acquisition_channel": CHANNELS,
          "age_band": AGE_BANDS}


def _features(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({c: rng.gamma(2.0, 10.0, n) for c in NUMERIC_FEATURES})
    for column in CATEGORICAL_FEATURES:
        frame[column] = rng.choice(LEVELS[column], n)
    frame.insert(0, "customer_id", np.arange(1, n + 1, dtype="int64") * 7)
    return frame[["customer_id", *FEATURES]]


@pytest.fixture(scope="module")
def served() -> deployment.ServedModel:
    train = _features(800, seed=1)
    target = (train["support_tickets_4w"] + 15 * (train["plan"] == "basic")
              + np.random.default_rng(2).normal(0, 10, 800) > 30).astype(int)
    model = make_model("gbm", seed=0).set_params(model__max_iter=20, model__min_samples_leaf=20)
    model.fit(train[FEATURES], target)
    return deployment.ServedModel(model=model, version=4, feature_service=SERVICE)


@pytest.fixture(scope="module")
def features() -> pd.DataFrame:
    return _features(500, seed=5)


# --------------------------------------------------------------------------- scoring


def test_every_row_is_stamped_and_scored_as_the_model_scores(served, features) -> None:
    scores = batch.score_base(served, features, "2025-03")
    assert list(scores.columns) == list(batch.SCORE_COLUMNS)
    assert scores["customer_id"].tolist() == features["customer_id"].tolist()
    expected = served.model.predict_proba(features[FEATURES])[:, 1]
    assert np.array_equal(scores["score"].to_numpy(), expected)
    assert set(scores["month"]) == {"2025-03"}
    assert set(scores["model_version"]) == {4} and scores["model_version"].dtype == "int64"
    assert set(scores["feature_service"]) == {SERVICE}


def test_a_customer_without_profile_features_is_kept_unscored(served, features) -> None:
    frame = features.copy()
    frame.loc[[3, 10], ["plan", "monthly_fee"]] = None
    scores = batch.score_base(served, frame, "2025-03")
    assert len(scores) == len(frame)
    assert scores["score"].isna().sum() == 2 and scores.loc[[3, 10], "score"].isna().all()
    assert scores.drop(index=[3, 10])["score"].notna().all()


def test_active_customers_are_the_snapshot_labels_without_the_label() -> None:
    labels = pd.DataFrame({
        "customer_id": [5, 2, 9, 2, 7],
        "snapshot_timestamp": pd.to_datetime(["2025-02-01", "2025-02-01", "2025-03-01",
                                              "2025-03-01", "2025-03-01"]),
        "churned_30d": [0, 1, 0, 0, 1],
    })
    dataset = types.SimpleNamespace(labels=labels)
    found = batch.active_customers(dataset, "2025-03")
    assert found["customer_id"].tolist() == [2, 7, 9]
    assert list(found.columns) == ["customer_id", "event_timestamp"]
    assert set(found["event_timestamp"]) == {pd.Timestamp("2025-03-01")}
    with pytest.raises(UnknownNameError, match=r"'2025-04'.*accepted: \['2025-02', '2025-03'\]"):
        batch.active_customers(dataset, "2025-04")


# --------------------------------------------------------------------------- partitions


def test_partitions_are_laid_out_by_month_and_read_back_with_month_as_text(
        served, features, tmp_path) -> None:
    root = tmp_path / "scores"
    march = batch.score_base(served, features, "2025-03")
    april = batch.score_base(served, features.iloc[:200], "2025-04")
    assert batch.write_scores(march, root) == root / "month=2025-03"
    batch.write_scores(april, root)
    assert sorted(p.relative_to(root).as_posix() for p in root.rglob("*")) == [
        "month=2025-03", "month=2025-03/part-0.parquet",
        "month=2025-04", "month=2025-04/part-0.parquet"]
    back = batch.read_scores(root)
    assert list(back.columns) == list(batch.SCORE_COLUMNS)
    assert back["month"].map(type).eq(str).all()
    assert back.groupby("month").size().to_dict() == {"2025-03": 500, "2025-04": 200}
    expected = pd.concat([march, april]).sort_values(["month", "customer_id"])
    pd.testing.assert_frame_equal(back, expected.reset_index(drop=True), check_dtype=False)
    assert len(batch.read_scores(root, months=["2025-04"])) == 200
    assert batch.read_scores(tmp_path / "nothing-yet").empty


def test_a_rerun_replaces_its_partition_and_leaves_the_others(served, features, tmp_path) -> None:
    root = tmp_path / "scores"
    march = batch.score_base(served, features, "2025-03")
    batch.write_scores(march, root)
    batch.write_scores(batch.score_base(served, features.iloc[:50], "2025-02"), root)
    february = (root / "month=2025-02" / batch.PARTITION_FILE).read_bytes()
    batch.write_scores(march, root)  # the same month again
    back = batch.read_scores(root, months=["2025-03"])
    assert len(back) == 500 and back["customer_id"].is_unique
    assert np.array_equal(back["score"].to_numpy(),
                          march.sort_values("customer_id")["score"].to_numpy())
    rescored = march.assign(score=0.5, model_version=5)
    batch.write_scores(rescored, root)
    back = batch.read_scores(root, months=["2025-03"])
    assert len(back) == 500 and set(back["score"]) == {0.5} and set(back["model_version"]) == {5}
    assert (root / "month=2025-02" / batch.PARTITION_FILE).read_bytes() == february
    assert sorted(p.name for p in root.iterdir()) == ["month=2025-02", "month=2025-03"]


def test_a_failing_write_leaves_the_old_partition_intact(
        served, features, tmp_path, monkeypatch) -> None:
    import pyarrow.parquet as pq

    root = tmp_path / "scores"
    march = batch.score_base(served, features, "2025-03")
    batch.write_scores(march, root)
    before = (root / "month=2025-03" / batch.PARTITION_FILE).read_bytes()

    def half_then_fail(table, where, **kwargs):
        with open(where, "wb") as handle:
            handle.write(b"PAR1 half a file")
        raise OSError("disk full")

    monkeypatch.setattr(pq, "write_table", half_then_fail)
    with pytest.raises(OSError, match="disk full"):
        batch.write_scores(march.assign(score=0.0), root)
    assert (root / "month=2025-03" / batch.PARTITION_FILE).read_bytes() == before
    assert sorted(p.name for p in root.iterdir()) == ["month=2025-03"]  # no staging left
    monkeypatch.undo()
    assert np.array_equal(batch.read_scores(root)["score"].to_numpy(),
                          march.sort_values("customer_id")["score"].to_numpy())


def test_a_failing_swap_puts_the_old_partition_back(
        served, features, tmp_path, monkeypatch) -> None:
    root = tmp_path / "scores"
    march = batch.score_base(served, features, "2025-03")
    batch.write_scores(march, root)
    before = (root / "month=2025-03" / batch.PARTITION_FILE).read_bytes()
    real_rename = batch.os.rename

    def rename(source, target):
        if ".staging-" in str(source):
            raise OSError("rename refused")
        return real_rename(source, target)

    monkeypatch.setattr(batch.os, "rename", rename)
    with pytest.raises(OSError, match="rename refused"):
        batch.write_scores(march.assign(score=0.0), root)
    monkeypatch.undo()
    assert (root / "month=2025-03" / batch.PARTITION_FILE).read_bytes() == before
    assert sorted(p.name for p in root.iterdir()) == ["month=2025-03"]


def test_write_features_gives_microsecond_timestamps(features, tmp_path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    frame = features.assign(event_timestamp=pd.Timestamp("2025-03-01"))
    path = batch.write_features(frame, tmp_path / "features.parquet")
    schema = pq.read_schema(path)
    assert schema.field("event_timestamp").type == pa.timestamp("us")
    pd.testing.assert_frame_equal(pd.read_parquet(path), frame, check_dtype=False)
    assert [p.name for p in tmp_path.iterdir()] == ["features.parquet"]


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize("month", ["2025-3", "2025-13", "March", 202503, None, "2025-03-01"])
def test_a_bad_month_is_refused_naming_it(served, features, tmp_path, month) -> None:
    with pytest.raises(InvalidParameterError, match=r"month must be a string 'YYYY-MM'"):
        batch.score_base(served, features, month)
    scores = batch.score_base(served, features, "2025-03").assign(month=month)
    with pytest.raises(InvalidParameterError, match="YYYY-MM"):
        batch.write_scores(scores, tmp_path / "scores")
    assert not (tmp_path / "scores").exists()


def test_frames_missing_columns_or_repeating_customers_are_refused(
        served, features, tmp_path) -> None:
    with pytest.raises(InvalidParameterError, match=r"missing column\(s\) \['plan'\]"):
        batch.score_base(served, features.drop(columns="plan"), "2025-03")
    with pytest.raises(InvalidParameterError, match=r"repeat customer\(s\) \[7\]"):
        batch.score_base(served, pd.concat([features, features.iloc[:1]]), "2025-03")
    with pytest.raises(InvalidParameterError, match="ServedModel"):
        batch.score_base(served.model, features, "2025-03")
    scores = batch.score_base(served, features, "2025-03")
    with pytest.raises(InvalidParameterError, match=r"missing column\(s\) \['model_version'\]"):
        batch.write_scores(scores.drop(columns="model_version"), tmp_path / "s")
    with pytest.raises(InvalidParameterError, match=r"one month, got \['2025-03', '2025-04'\]"):
        batch.write_scores(pd.concat([scores, scores.assign(month="2025-04")]), tmp_path / "s")
    with pytest.raises(InvalidParameterError, match="repeat customer"):
        batch.write_scores(pd.concat([scores, scores.iloc[:1]]), tmp_path / "s")
    with pytest.raises(InvalidParameterError, match="no rows"):
        batch.write_scores(scores.iloc[:0], tmp_path / "s")
    with pytest.raises(InvalidParameterError, match="wrong type"):
        batch.write_scores(scores.assign(score="high"), tmp_path / "s")
    assert not (tmp_path / "s").exists()


def test_a_root_that_is_a_file_is_refused(served, features, tmp_path) -> None:
    file = tmp_path / "scores.txt"
    file.write_text("not a folder")
    scores = batch.score_base(served, features, "2025-03")
    with pytest.raises(InvalidParameterError, match=r"root '.*scores.txt' exists and is not a fold"):
        batch.write_scores(scores, file)
    with pytest.raises(InvalidParameterError, match="is not a folder"):
        batch.read_scores(file)
    with pytest.raises(InvalidParameterError, match="root must be a path"):
        batch.write_scores(scores, None)  # type: ignore[arg-type]
    with pytest.raises(InvalidParameterError, match="months must be a list"):
        batch.read_scores(tmp_path, months="2025-03")  # type: ignore[arg-type]
    assert file.read_text() == "not a folder"


def test_a_bad_model_uri_is_refused_before_anything_is_read(tmp_path) -> None:
    with pytest.raises(InvalidParameterError, match=r"model_uri must be 'models:/<name>@<alias>'"
                       r".*got 'runs:/abc/model'"):
        deployment.load_served_model("runs:/abc/model", f"sqlite:///{tmp_path}/m.db")
    assert not (tmp_path / "m.db").exists()


# --------------------------------------------------------------------------- throughput


def test_throughput_compares_the_batch_path_with_the_raw_estimator(served, features) -> None:
    measured = batch.batch_throughput(served, features, repeats=3)
    assert measured.rows == 500 and measured.repeats == 3
    assert measured.raw_rows_per_s > 1_000 and measured.batch_rows_per_s > 1_000
    assert measured.ratio == measured.batch_rows_per_s / measured.raw_rows_per_s
    assert 0.2 < measured.ratio < 1.5  # the batch path is predict_proba plus a little work
    with pytest.raises(InvalidParameterError, match="repeats"):
        batch.batch_throughput(served, features, repeats=0)


# --------------------------------------------------------------------------- for real (slow)


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    from companion.data import SimulationConfig
    from companion.workspace import Workspace

    workspace = Workspace.create(
        "test-batch", root=tmp_path_factory.mktemp("batch"),
        config=SimulationConfig(n_customers=2000, months=3, seed=4, scenarios=()))
    workspace.require("baseline", "features")
    return workspace


@pytest.mark.slow
def test_a_month_of_a_workspace_is_scored_from_the_registry_alias(ws, tmp_path) -> None:
    from companion.features import online_features  # noqa: F401 - Feast is importable

    dataset = ws.require("data")
    scores = batch.score_month(ws, "2025-03")
    labels = dataset.labels[dataset.labels["snapshot_timestamp"] == "2025-03-01"]
    assert sorted(scores["customer_id"]) == sorted(labels["customer_id"])
    assert set(scores["model_version"]) == {1} and set(scores["feature_service"]) == {SERVICE}
    assert scores["score"].between(0, 1).all()
    # the same rows as the pandas batch path by hand: offline features, the served model
    served = deployment.load_served_model(batch.PRODUCTION_URI, ws.tracking_uri)
    customers = batch.active_customers(dataset, "2025-03")
    features = batch.month_features(ws.require("features"), customers, SERVICE)
    assert np.array_equal(scores["score"].to_numpy(), served.score(features))
    # a customer the store never saw is kept, unscored
    stranger = pd.DataFrame({"customer_id": [10**9], "event_timestamp": [
        pd.Timestamp("2025-03-01")]})
    odd = batch.score_base(served, batch.month_features(
        ws.require("features"), pd.concat([customers.iloc[:3], stranger]), SERVICE), "2025-03")
    assert odd["score"].isna().tolist() == [False, False, False, True]
    root = tmp_path / "scores"
    batch.write_scores(scores, root)
    batch.write_scores(batch.score_month(ws, "2025-03"), root)  # a rerun
    back = batch.read_scores(root)
    assert len(back) == len(labels) and back["customer_id"].is_unique
    with pytest.raises(UnknownNameError, match="'2024-12' has no snapshot"):
        batch.score_month(ws, "2024-12")
    with pytest.raises(UnknownNameError, match="not in the registry"):
        batch.score_month(ws, "2025-03", "models:/lumen-churn@nowhere")
