"""Features at a snapshot never look past it; models train and score as documented."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from companion.data import generate
from companion.errors import InvalidParameterError, UnknownNameError
from companion.training import (
    FEATURES,
    TARGET,
    evaluate,
    make_model,
    snapshot_features,
    time_split,
    train,
)


@pytest.fixture(scope="module")
def dataset():
    return generate(n_customers=6000, months=6, scenarios=())


@pytest.fixture(scope="module")
def frame(dataset):
    return snapshot_features(dataset)


def test_one_row_per_label_with_features_then_label(dataset, frame):
    assert len(frame) == len(dataset.labels)
    assert list(frame.columns) == ["customer_id", "snapshot_timestamp", *FEATURES, TARGET]
    assert frame[FEATURES].select_dtypes("number").notna().all().all()


def test_features_equal_a_brute_force_sum_over_the_window(dataset, frame):
    act = dataset.activity
    rng = np.random.default_rng(0)
    for i in rng.choice(len(frame), size=25, replace=False):
        row = frame.iloc[i]
        mine = act[
            (act["customer_id"] == row["customer_id"])
            & (act["event_timestamp"] <= row["snapshot_timestamp"])
            & (act["event_timestamp"] > row["snapshot_timestamp"] - pd.Timedelta(weeks=4))
        ]
        assert row["sessions_4w"] == mine["sessions"].sum()
        assert row["minutes_4w"] == pytest.approx(mine["minutes_watched"].sum())
        assert row["weeks_seen_4w"] == len(mine)


def test_features_never_use_activity_after_the_snapshot(dataset):
    snapshot = dataset.snapshots[3]
    before = snapshot_features(dataset, [snapshot])
    # Wipe every activity row after the snapshot: the features must not change.
    truncated = dataset.__class__(
        **{**dataset.__dict__, "activity": dataset.activity[dataset.activity["event_timestamp"] <= snapshot]}
    )
    pd.testing.assert_frame_equal(before, snapshot_features(truncated, [snapshot]))


def test_unknown_snapshot_lists_the_accepted_ones(dataset):
    with pytest.raises(InvalidParameterError, match=r"snapshot\(s\) \['2031-01-01'\] are not in the dataset; accepted: \['2025-01-01'"):
        snapshot_features(dataset, ["2031-01-01"])
    with pytest.raises(InvalidParameterError, match="window_weeks must be >= 1, got 0"):
        snapshot_features(dataset, window_weeks=0)


@pytest.mark.parametrize("kind", ["logistic", "gbm"])
def test_models_learn_churn_from_the_past(frame, dataset, kind):
    train_rows, test_rows = time_split(frame, dataset.snapshots[:4], dataset.snapshots[5])
    model = train(train_rows, kind=kind, seed=0)
    scores = evaluate(model, test_rows)
    # the simulation's churn depends on recent activity: the model ranks churners well, and
    # not far below the true probabilities (the oracle), which no model can beat on average
    truth = test_rows.merge(dataset.truth, on=["customer_id", "snapshot_timestamp"])
    oracle = roc_auc_score(truth[TARGET], truth["churn_probability"])
    assert 0.65 < scores["roc_auc"] and scores["roc_auc"] > oracle - 0.08
    assert scores["rows"] == len(test_rows)
    assert scores["churn_rate"] == pytest.approx(test_rows[TARGET].mean())
    assert 0 < scores["brier"] < scores["churn_rate"]  # better than nothing, worse than perfect
    again = evaluate(train(train_rows, kind=kind, seed=0), test_rows)
    assert again == scores  # seeded: the same numbers twice


def test_estimator_params_are_passed_through_and_bad_ones_named(frame):
    model = train(frame, kind="logistic", C=0.1)
    assert model.named_steps["model"].C == 0.1
    with pytest.raises(InvalidParameterError, match=r"logistic model does not accept \{'depth': 3\}"):
        train(frame, kind="logistic", depth=3)


def test_unknown_model_kind_is_refused():
    with pytest.raises(UnknownNameError, match=r"model kind 'forest' is not known; accepted: 'logistic', 'gbm'"):
        make_model("forest")


def test_frames_without_the_features_are_refused(frame):
    with pytest.raises(InvalidParameterError, match=r"frame is missing column\(s\) \['plan'\]"):
        train(frame.drop(columns="plan"))
    with pytest.raises(InvalidParameterError, match="frame has no rows"):
        train(frame.iloc[:0])
    with pytest.raises(InvalidParameterError, match="expected a pandas DataFrame, got list"):
        train([1, 2])


def test_evaluation_needs_both_classes(frame):
    model = train(frame, kind="logistic")
    stayers = frame[frame[TARGET] == 0].head(50)
    with pytest.raises(InvalidParameterError, match=r"frame's 50 rows hold a single class \(churned_30d = 0\)"):
        evaluate(model, stayers)


def test_time_split_refuses_a_test_month_before_training(frame, dataset):
    with pytest.raises(InvalidParameterError, match="test snapshot 2025-02-01 must come after every training snapshot"):
        time_split(frame, dataset.snapshots[2:4], dataset.snapshots[1])
    with pytest.raises(InvalidParameterError, match="no rows for training snapshots"):
        time_split(frame, ["2024-01-01"], dataset.snapshots[1])


# --------------------------------------------------------------------------- bad input, everywhere


def test_snapshot_features_refuses_what_is_not_a_dataset():
    with pytest.raises(InvalidParameterError, match=r"dataset must be a ChurnDataset .*of type DataFrame"):
        snapshot_features(pd.DataFrame({"customer_id": [1]}))


def test_a_repeated_snapshot_is_refused_not_counted_twice(dataset):
    m = dataset.snapshots[1]
    with pytest.raises(InvalidParameterError, match=r"snapshots repeats \['2025-02-01'\]; each snapshot may appear once"):
        snapshot_features(dataset, [m, m])
    with pytest.raises(InvalidParameterError, match=r"snapshots repeats \['2025-02-01'\]"):
        snapshot_features(dataset, [m, "2025-02-01"])


@pytest.mark.parametrize(
    ("snapshots", "message"),
    [
        ("2025-02-01", "snapshots must be a list of snapshot timestamps"),
        (pd.Timestamp("2025-02-01"), "snapshots must be a list of snapshot timestamps"),
        (5, "snapshots must be a list of snapshot timestamps"),
        ([], "snapshots must name at least one snapshot"),
        ([None], "snapshots holds None; accepted: timestamps without a time zone"),
        (["soon"], "snapshots holds 'soon', which is not a timestamp"),
        ([pd.Timestamp("2025-02-01", tz="UTC")], "accepted: timestamps without a time zone"),
    ],
)
def test_snapshot_lists_are_checked_before_any_work(dataset, snapshots, message):
    with pytest.raises(InvalidParameterError, match=message):
        snapshot_features(dataset, snapshots)


def test_training_refuses_labels_and_parameters_it_cannot_use(frame):
    with pytest.raises(InvalidParameterError, match=r"frame's 40 rows hold a single class \(churned_30d = 0\)"):
        train(frame[frame[TARGET] == 0].head(40))
    broken = frame.head(200).copy()
    broken[TARGET] = broken[TARGET].astype("float64")
    broken.loc[broken.index[3], TARGET] = np.nan
    with pytest.raises(InvalidParameterError, match=r"churned_30d must hold 0 or 1 only .*\['nan'\]"):
        train(broken)
    broken.loc[broken.index[3], TARGET] = 2
    with pytest.raises(InvalidParameterError, match=r"\['2.0'\]"):
        evaluate(train(frame, kind="logistic"), broken)
    with pytest.raises(InvalidParameterError, match=r"parameter C=nan must be a finite number"):
        train(frame, kind="logistic", C=float("nan"))
    with pytest.raises(InvalidParameterError, match=r"logistic model could not be fitted with parameters \{'C': -1.0\}"):
        train(frame, kind="logistic", C=-1.0)
    with pytest.raises(InvalidParameterError, match=r"seed must be <= 4294967295"):
        make_model("gbm", 2**32)
    with pytest.raises(InvalidParameterError, match="seed must be >= 0"):
        make_model("gbm", -1)


def test_evaluate_needs_a_fitted_model_with_predict_proba(frame):
    with pytest.raises(InvalidParameterError, match="model must be fitted and have predict_proba, got str"):
        evaluate("model.pkl", frame)
    metrics = evaluate(train(frame, kind="logistic"), frame)
    assert metrics["rows"] == len(frame) and 0.6 < metrics["roc_auc"] < 1


def test_time_split_checks_its_inputs(frame, dataset):
    with pytest.raises(InvalidParameterError, match="frame must be a pandas DataFrame, got dict"):
        time_split({}, dataset.snapshots[:2], dataset.snapshots[3])
    with pytest.raises(InvalidParameterError, match="frame has no snapshot_timestamp column"):
        time_split(frame.drop(columns="snapshot_timestamp"), dataset.snapshots[:2], dataset.snapshots[3])
    with pytest.raises(InvalidParameterError, match="train_snapshots repeats"):
        time_split(frame, [dataset.snapshots[0]] * 2, dataset.snapshots[3])
    with pytest.raises(InvalidParameterError, match="train_snapshots must be a list"):
        time_split(frame, "2025-01-01", dataset.snapshots[3])
    with pytest.raises(InvalidParameterError, match="test_snapshot holds 'later'"):
        time_split(frame, dataset.snapshots[:2], "later")
    train_rows, test_rows = time_split(frame, dataset.snapshots[:2], dataset.snapshots[3])
    assert len(train_rows) + len(test_rows) == int(
        frame["snapshot_timestamp"].isin(dataset.snapshots[:2] + [dataset.snapshots[3]]).sum()
    )


from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


@settings(max_examples=15, deadline=None)
@given(st.lists(st.integers(0, 5), min_size=1, max_size=6, unique=True))
def test_any_set_of_snapshots_gives_exactly_their_labelled_rows(dataset, frame, chosen):
    snapshots = [dataset.snapshots[i] for i in chosen]
    part = snapshot_features(dataset, snapshots)
    expected = frame[frame["snapshot_timestamp"].isin(snapshots)]
    assert len(part) == len(expected)
    assert not part.duplicated(["customer_id", "snapshot_timestamp"]).any()
    key = ["customer_id", "snapshot_timestamp"]
    assert part.sort_values(key).reset_index(drop=True).equals(
        expected.sort_values(key).reset_index(drop=True)
    )


def test_a_name_of_the_wrong_type_gets_the_same_clear_error():
    with pytest.raises(UnknownNameError, match="model kind of type DataFrame is not known; accepted: 'logistic', 'gbm'"):
        make_model(pd.DataFrame())
    with pytest.raises(UnknownNameError, match="model kind of type list is not known"):
        make_model(["gbm"])


def test_check_training_frame_is_the_one_check_of_a_labelled_frame(frame):
    from companion.training import check_training_frame

    assert check_training_frame(frame, ["plan"]) is frame
    with pytest.raises(InvalidParameterError, match=r"training set is missing column\(s\) \['x'\]; build it elsewhere"):
        check_training_frame(frame, ["x"], name="training set", hint="build it elsewhere")
    with pytest.raises(InvalidParameterError, match="expected a pandas DataFrame, got list"):
        check_training_frame([1], ["plan"])


def test_evaluate_scores_the_columns_it_is_given(dataset, frame):
    from sklearn.linear_model import LogisticRegression

    from companion.training import TARGET, evaluate

    columns = ["tenure_days", "sessions_4w"]
    model = LogisticRegression().fit(frame[columns], frame[TARGET])
    scores = evaluate(model, frame, columns)
    assert scores["rows"] == len(frame) and 0.5 < scores["roc_auc"] <= 1
    with pytest.raises(InvalidParameterError, match="features must be a list of column names"):
        evaluate(model, frame, "tenure_days")
