"""Tests of the point-in-time join on several engines (companion.features.asof): Feast's DuckDB
store, DuckDB's ASOF JOIN and pandas merge_asof give the companion's join, cell for cell, never
a future value; bad frames are refused before any engine runs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from companion.errors import InvalidParameterError
from companion.features import (
    duckdb_asof_join,
    feast_duckdb_join,
    join_differences,
    pandas_asof_join,
    point_in_time_join,
)

COLUMNS = ["sessions", "minutes"]


def _frames(seed: int = 0, customers: int = 40, weeks: int = 12, entity_rows: int = 200):
    rng = np.random.default_rng(seed)
    start = pd.Timestamp("2025-01-05")
    features = pd.DataFrame({
        "customer_id": np.repeat(np.arange(customers), weeks),
        "event_timestamp": np.tile(pd.date_range(start, periods=weeks, freq="7D"), customers),
        "sessions": rng.integers(0, 30, customers * weeks).astype("int16"),
        "minutes": rng.gamma(2.0, 100.0, customers * weeks).round(1),
    })
    features = features.sample(frac=0.8, random_state=seed)  # gaps, and rows out of order
    entities = pd.DataFrame({
        "customer_id": rng.integers(0, customers + 3, entity_rows),  # some keys have no rows
        "event_timestamp": start - pd.Timedelta(days=10) + pd.to_timedelta(
            rng.integers(0, weeks * 7 * 24, entity_rows), unit="h"),
    })
    return entities, features


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_engines_agree_with_the_companion_join(seed):
    entities, features = _frames(seed)
    reference = point_in_time_join(entities, features, COLUMNS)
    for engine in (pandas_asof_join, duckdb_asof_join):
        joined = engine(entities, features, COLUMNS)
        assert join_differences(reference, joined, COLUMNS) == 0
        assert joined["customer_id"].tolist() == entities["customer_id"].tolist()
    assert reference["sessions"].isna().sum() > 0  # before any row, or an unknown key


def test_no_future_values():
    entities, features = _frames(3)
    joined = pandas_asof_join(entities, features, COLUMNS)
    merged = joined.merge(features, on=["customer_id", *COLUMNS], suffixes=("", "_feature"))
    assert (merged["event_timestamp_feature"] <= merged["event_timestamp"]).all()


@pytest.mark.slow
def test_feast_duckdb_join_agrees(tmp_path):
    entities, features = _frames(4, customers=10, weeks=6, entity_rows=40)
    joined = feast_duckdb_join(tmp_path / "repo", entities, features, COLUMNS)
    assert len(joined) == len(entities)
    assert joined["customer_id"].tolist() == entities["customer_id"].tolist()
    assert join_differences(pandas_asof_join(entities, features, COLUMNS), joined, COLUMNS) == 0
    assert (tmp_path / "repo" / "data" / "features.parquet").is_file()


def test_join_differences_counts_cells():
    left = pd.DataFrame({"a": [1.0, np.nan, 3.0], "b": [1, 2, 3]})
    right = pd.DataFrame({"a": [1.0, np.nan, 4.0], "b": [1.0, 2.5, 3.0]})
    assert join_differences(left, right, ["a", "b"]) == 2
    assert join_differences(left, left, ["a", "b"]) == 0
    with pytest.raises(InvalidParameterError, match="3 and 2 rows"):
        join_differences(left, right.iloc[:2], ["a"])


def test_bad_frames_are_refused(tmp_path):
    entities, features = _frames(5)
    doubled = pd.concat([features, features.iloc[:3]])
    with pytest.raises(InvalidParameterError, match="3 row\\(s\\) sharing"):
        duckdb_asof_join(entities, doubled, COLUMNS)
    with pytest.raises(InvalidParameterError, match="missing"):
        pandas_asof_join(entities, features, ["sessions", "nope"])
    with pytest.raises(InvalidParameterError, match="already have"):
        pandas_asof_join(entities.assign(sessions=1), features, COLUMNS)
    missing = entities.copy()
    missing.loc[0, "event_timestamp"] = pd.NaT
    with pytest.raises(InvalidParameterError, match="missing timestamps"):
        pandas_asof_join(missing, features, COLUMNS)
    with pytest.raises(InvalidParameterError, match="threads"):
        duckdb_asof_join(entities, features, COLUMNS, threads=0)
    with pytest.raises(InvalidParameterError, match="sharing"):
        feast_duckdb_join(tmp_path / "repo", entities, doubled, COLUMNS)
    assert not (tmp_path / "repo").exists()  # refused before anything is written
    (tmp_path / "file").write_text("x")
    with pytest.raises(InvalidParameterError, match="is a file"):
        feast_duckdb_join(tmp_path / "file", entities, features, COLUMNS)
