"""Intervals that mean what they say: DeLong, paired differences, bootstrap, drift contributions."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from sklearn.metrics import roc_auc_score

from companion.data import generate
from companion.errors import InvalidParameterError
from companion.evaluation import (
    Estimate,
    auc_difference,
    auc_interval,
    bootstrap_interval,
    clustered_auc_interval,
    compare_models,
    interval_table,
    monthly_auc,
    scenario_contributions,
    scenario_worlds,
    unpaired_difference,
)


def sample(n: int = 2000, separation: float = 1.0, seed: int = 0, rate: float = 0.2):
    """Labels and a score whose true AUC is Phi(separation / sqrt(2))."""
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < rate).astype(int)
    return y, rng.normal(0.0, 1.0, n) + separation * y


TRUE_AUC = float(stats.norm.cdf(1.0 / np.sqrt(2)))


# --- auc_interval -----------------------------------------------------------------------------


def test_delong_auc_equals_sklearn_with_and_without_ties():
    y, s = sample(seed=1)
    assert auc_interval(y, s).value == pytest.approx(roc_auc_score(y, s), abs=1e-12)
    tied = np.round(s, 1)  # many ties
    assert auc_interval(y, tied).value == pytest.approx(roc_auc_score(y, tied), abs=1e-12)


def test_delong_interval_covers_the_true_auc_at_nominal_rate():
    covered = [auc_interval(*sample(n=600, seed=seed)).contains(TRUE_AUC) for seed in range(200)]
    assert 0.90 <= np.mean(covered) <= 0.99


def test_interval_width_shrinks_with_the_sample():
    small = auc_interval(*sample(n=1000, seed=3))
    large = auc_interval(*sample(n=16000, seed=3))
    assert large.half_width < small.half_width / 3
    assert small.low < small.value < small.high
    assert str(small) == small.format() and small.format().count("[") == 1


def test_estimate_helpers():
    e = Estimate(0.8, 0.75, 0.85)
    assert e.above(0.7) and not e.above(0.76)
    assert e.below(0.9) and not e.below(0.84)
    assert e.contains(0.75) and not e.contains(0.86)
    assert e.format(2) == "0.80 [0.75, 0.85]"
    assert Estimate(0.01, -0.02, 0.04).format(signed=True) == "+0.010 [-0.020, +0.040]"
    assert e.as_dict("auc") == {"auc": 0.8, "auc_low": 0.75, "auc_high": 0.85}


# --- auc_difference ---------------------------------------------------------------------------


def test_difference_of_a_model_with_itself_is_exactly_zero():
    y, s = sample(seed=4)
    d = auc_difference(y, s, s)
    assert (d.value, d.low, d.high, d.p_value) == (0.0, 0.0, 0.0, 1.0)


def test_paired_interval_is_narrower_than_unpaired_for_correlated_scores():
    rng = np.random.default_rng(5)
    y, s = sample(n=4000, seed=5)
    a = s + rng.normal(0, 0.3, s.size)
    b = s + rng.normal(0, 0.3, s.size)
    paired = auc_difference(y, a, b)
    unpaired = unpaired_difference(auc_interval(y, a), auc_interval(y, b))
    assert paired.value == pytest.approx(unpaired.value, abs=1e-12)
    assert paired.half_width < unpaired.half_width / 2


def test_difference_detects_a_better_model():
    rng = np.random.default_rng(6)
    y, s = sample(n=5000, seed=6)
    d = auc_difference(y, s, s + rng.normal(0, 1.5, s.size))
    assert d.above(0) and d.p_value < 0.001 and d.method == "DeLong paired"


# --- bootstrap_interval -----------------------------------------------------------------------


def test_bootstrap_keeps_each_customer_together():
    groups = np.repeat(np.arange(300), 3)
    rng = np.random.default_rng(7)
    y = np.repeat(rng.integers(0, 2, 300), 3)
    scores = groups + 0.5  # the integer part names the customer

    def rows_per_customer_are_whole(y_sample, s_sample):
        counts = np.unique(np.floor(s_sample), return_counts=True)[1]
        assert (counts % 3 == 0).all()
        return float(y_sample.mean())

    est = bootstrap_interval(rows_per_customer_are_whole, y, scores, groups=groups,
                             n_resamples=50)
    assert est.method == "bootstrap" and est.low <= est.value <= est.high


def test_bootstrap_is_seeded_and_close_to_delong():
    y, s = sample(n=1500, seed=8)
    first = bootstrap_interval(roc_auc_score, y, s, n_resamples=200, seed=3)
    assert first == bootstrap_interval(roc_auc_score, y, s, n_resamples=200, seed=3)
    assert first != bootstrap_interval(roc_auc_score, y, s, n_resamples=200, seed=4)
    delong = auc_interval(y, s)
    assert first.value == pytest.approx(delong.value)
    assert first.half_width == pytest.approx(delong.half_width, rel=0.3)


def test_paired_bootstrap_of_a_model_with_itself_is_zero():
    y, s = sample(n=800, seed=9)
    est = bootstrap_interval(roc_auc_score, y, s, s, n_resamples=50)
    assert (est.value, est.low, est.high, est.p_value) == (0.0, 0.0, 0.0, 1.0)
    assert est.method == "bootstrap paired"


# --- compare_models and interval_table --------------------------------------------------------


def test_compare_models_table():
    rng = np.random.default_rng(10)
    y, s = sample(n=3000, seed=10)
    noisy = s + rng.normal(0, 1, s.size)
    table = compare_models(y, {"good": s, "noisy": noisy}, baseline="noisy")
    assert list(table.columns) == [
        "ROC AUC", "95% interval", "difference vs noisy", "difference 95% interval", "p-value"
    ]
    assert list(table.index) == ["good", "noisy"]
    good = auc_interval(y, s)
    assert table.loc["good", "ROC AUC"] == round(good.value, 3)
    assert table.loc["good", "95% interval"] == f"[{good.low:.3f}, {good.high:.3f}]"
    diff = auc_difference(y, s, noisy)
    assert table.loc["good", "difference vs noisy"] == f"{diff.value:+.3f}"
    assert table.loc["good", "p-value"] == "<0.001"
    assert table.loc["noisy", "difference vs noisy"] == ""
    assert list(compare_models(y, {"good": s}).columns) == ["ROC AUC", "95% interval"]


def test_interval_table_rounds():
    table = interval_table({"a": Estimate(0.81234, 0.8, 0.82456)})
    assert table.loc["a"].tolist() == [0.812, 0.8, 0.825]


# --- bad input --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: auc_interval([1, 1, 1], [0.1, 0.2, 0.3]), "single class"),
        (lambda: auc_interval([0, 1, 2], [0.1, 0.2, 0.3]), r"0 or 1, got values \[0, 1, 2\]"),
        (lambda: auc_interval([], []), "non-empty"),
        (lambda: auc_interval([0, 1, 0], [0.1, 0.2]), r"one value per label \(3\)"),
        (lambda: auc_interval([0, 1, 0], [0.1, np.nan, 0.3]), "NaN"),
        (lambda: auc_difference([0, 1, 0], [0.1, 0.2, 0.3], [0.1, 0.2]), r"shape \(2,\)"),
        (lambda: auc_interval([0, 1], [0.1, 0.2], level=1.5), "between 0 and 1, got 1.5"),
        (lambda: auc_interval([0, 1], [0.1, 0.2], level=True), "got True"),
        (lambda: compare_models([0, 1], {"a": [0.1, 0.2]}, baseline="b"),
         r"baseline 'b' is not among the models; accepted: \['a'\]"),
        (lambda: compare_models([0, 1], {}), "non-empty mapping"),
        (lambda: bootstrap_interval(roc_auc_score, [0, 1] * 20, [0.1, 0.2] * 20,
                                    n_resamples=10), "n_resamples must be >= 20, got 10"),
        (lambda: bootstrap_interval(roc_auc_score, [0, 1], [0.1, 0.2], n_resamples=20),
         "only 9 of 20 resamples held both classes; the sample is too small"),
        (lambda: bootstrap_interval(roc_auc_score, [0, 1] * 20, [0.1, 0.2] * 20,
                                    groups=[1, 2]), r"groups must have one value per label"),
        (lambda: bootstrap_interval(roc_auc_score, [0, 1] * 20, [0.1, 0.2] * 20, seed=-1),
         "seed must be >= 0, got -1"),
    ],
)
def test_bad_input_raises_naming_the_value(call, message):
    with pytest.raises(InvalidParameterError, match=message):
        call()


# --- clustered_auc_interval and unpaired_difference -------------------------------------------


def test_clustered_interval_with_one_row_per_group_is_delong():
    y, s = sample(n=3000, seed=11)
    plain = auc_interval(y, s)
    clustered = clustered_auc_interval(y, s, np.arange(y.size))
    assert clustered.value == pytest.approx(plain.value, abs=1e-12)
    assert clustered.half_width == pytest.approx(plain.half_width, rel=1e-3)
    assert clustered.method == "DeLong clustered"


def test_clustered_interval_does_not_count_repeated_rows_as_evidence():
    y, s = sample(n=2000, seed=12)
    y2, s2, groups = np.tile(y, 2), np.tile(s, 2), np.tile(np.arange(y.size), 2)
    once = auc_interval(y, s)
    naive = auc_interval(y2, s2)  # each customer twice, treated as independent
    clustered = clustered_auc_interval(y2, s2, groups)
    assert naive.half_width == pytest.approx(once.half_width / np.sqrt(2), rel=0.02)
    assert clustered.half_width == pytest.approx(once.half_width, rel=0.02)


def test_clustered_interval_bad_groups():
    with pytest.raises(InvalidParameterError, match=r"groups must have one value per label \(4\)"):
        clustered_auc_interval([0, 1, 0, 1], [0.1, 0.2, 0.3, 0.4], [1, 2])
    with pytest.raises(InvalidParameterError, match="at least 2 groups, got 1"):
        clustered_auc_interval([0, 1, 0, 1], [0.1, 0.2, 0.3, 0.4], [7, 7, 7, 7])


def test_unpaired_difference():
    d = unpaired_difference(Estimate(0.80, 0.77, 0.83), Estimate(0.70, 0.66, 0.74))
    assert d.value == pytest.approx(0.10)
    assert d.half_width == pytest.approx(0.05)
    assert d.method == "unpaired" and d.p_value < 0.001
    with pytest.raises(InvalidParameterError, match="a must be an Estimate, got float"):
        unpaired_difference(0.8, Estimate(0.7, 0.6, 0.8))
    with pytest.raises(InvalidParameterError, match="got 0.95 and 0.9"):
        unpaired_difference(Estimate(0.8, 0.7, 0.9), Estimate(0.7, 0.6, 0.8, level=0.9))


# --- monthly_auc ------------------------------------------------------------------------------


def test_monthly_auc_matches_sklearn_per_month_and_the_gap_is_paired():
    rng = np.random.default_rng(13)
    y, truth = sample(n=6000, seed=13)
    model = truth + rng.normal(0, 1, truth.size)
    months = np.repeat(pd.to_datetime(["2025-02-01", "2025-01-01", "2025-03-01"]), 2000)
    table = monthly_auc(y, model, months, baseline_scores=truth)
    assert list(table.index) == sorted(table.index)  # months in order
    for month, rows in table.iterrows():
        mask = months == month
        assert rows["rows"] == 2000 and rows["churners"] == y[mask].sum()
        assert rows["auc"] == pytest.approx(roc_auc_score(y[mask], model[mask]))
        gap = auc_difference(y[mask], truth[mask], model[mask])
        assert (rows["gap"], rows["gap_low"], rows["gap_high"]) == pytest.approx(
            (gap.value, gap.low, gap.high))
        assert rows["gap"] > 0  # the truth ranks better than the noisy model
    assert "gap" not in monthly_auc(y, model, months).columns
    with pytest.raises(InvalidParameterError, match=r"months must have one value per label"):
        monthly_auc(y, model, months[:10])
    with pytest.raises(InvalidParameterError, match="shape"):
        monthly_auc(y, model, months, baseline_scores=truth[:5])


# --- scenario_worlds and scenario_contributions -----------------------------------------------


def test_scenario_worlds_add_one_scenario_at_a_time():
    assert scenario_worlds(("covariate", "concept", "quality")) == {
        "no drift": (),
        "+ covariate": ("covariate",),
        "+ concept": ("covariate", "concept"),
        "+ quality": ("covariate", "concept", "quality"),
    }
    assert scenario_worlds(()) == {"no drift": ()}
    for bad in ("covariate", ("covariate", "price"), ("concept", "concept")):
        with pytest.raises(InvalidParameterError, match="scenarios must be"):
            scenario_worlds(bad)


class MinutesModel:
    """A fixed model that ranks by minutes watched: fewer minutes, higher risk."""

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        risk = 1.0 / (1.0 + np.log1p(frame["minutes_4w"].fillna(0).to_numpy()))
        return np.column_stack([1 - risk, risk])


@pytest.fixture(scope="module")
def drifting():
    return generate(n_customers=4000, months=12, seed=3)


@pytest.fixture(scope="module")
def contributions(drifting):
    later = drifting.snapshots[4:]
    periods = {"May-Jun": later[:2], "Sep-Oct": later[4:6], "Nov": later[6:7],
               "Dec": later[7:8]}
    return scenario_contributions(MinutesModel(), drifting, later, periods=periods)


def test_contributions_table_shape_and_methods(contributions):
    table = contributions.contributions
    assert list(contributions.worlds) == ["no drift", "+ covariate", "+ concept", "+ quality"]
    assert table["scenario"].tolist() == ["covariate"] * 4 + ["concept"] * 4 + ["quality"] * 4
    assert (table["low"] <= table["difference"]).all()
    assert (table["difference"] <= table["high"]).all()
    by = table.set_index(["scenario", "period"])["method"]
    # The partner bundle re-draws behaviour: an unpaired comparison; pooled months: clustered.
    assert by["covariate", "Dec"] == "DeLong unpaired"
    assert by["covariate", "May-Jun"] == "DeLong unpaired, clustered"
    # The incident changes inputs only: same rows and labels, a paired comparison.
    assert by["quality", "Dec"] == "DeLong paired"


def test_the_incident_changes_nothing_before_its_onset_and_hurts_after(contributions):
    for period in ("May-Jun", "Sep-Oct", "Nov"):
        est = contributions.estimate("quality", period)
        assert (est.value, est.low, est.high) == (0.0, 0.0, 0.0)
    # Minutes in seconds make a third of customers look very engaged: the ranking breaks.
    assert contributions.estimate("quality", "Dec").below(-0.02)


def test_the_price_rise_changes_nothing_before_its_onset(contributions):
    before = contributions.estimate("concept", "May-Jun")
    assert abs(before.value) < 0.005 and before.contains(0.0)
    assert contributions.estimate("concept", "Sep-Oct").method == "DeLong unpaired, clustered"


def test_monthly_table_grades_each_world_against_its_own_labels(drifting, contributions):
    monthly = contributions.monthly
    assert monthly.groupby("world", sort=False).size().tolist() == [8, 8, 8, 8]
    assert {"auc", "auc_low", "auc_high", "oracle", "oracle_low", "oracle_high"} <= set(monthly)
    real = monthly[monthly["world"] == "+ quality"].set_index("month")
    december = drifting.snapshots[11]
    labels = drifting.labels[drifting.labels["snapshot_timestamp"] == december]
    truth = drifting.truth[drifting.truth["snapshot_timestamp"] == december]
    assert real.loc[december, "rows"] == len(labels)
    assert real.loc[december, "oracle"] == pytest.approx(
        roc_auc_score(labels["churned_30d"], truth["churn_probability"]))
    # The truth ranks better than a minutes-only model once the price rise is on.
    assert (real.loc[drifting.snapshots[8]:, "oracle"] > real.loc[drifting.snapshots[8]:, "auc"]
            ).all()


def test_contributions_bad_input(drifting, contributions):
    later = drifting.snapshots[4:]
    with pytest.raises(InvalidParameterError, match="dataset must be a ChurnDataset .*of type dict"):
        scenario_contributions(MinutesModel(), {}, later)
    with pytest.raises(InvalidParameterError, match="model must have predict_proba, got str"):
        scenario_contributions("model", drifting, later)
    with pytest.raises(InvalidParameterError, match="at least one month"):
        scenario_contributions(MinutesModel(), drifting, [])
    with pytest.raises(InvalidParameterError, match=r"period 'early' must hold months among"):
        scenario_contributions(MinutesModel(), drifting, later,
                               periods={"early": [drifting.snapshots[0]]})
    with pytest.raises(InvalidParameterError, match=r"no contribution for scenario 'price'"):
        contributions.estimate("price", "Dec")


# --- bad input, every public function ---------------------------------------------------------


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: Estimate(float("nan"), 0.1, 0.2), "Estimate value must be a finite number, got nan"),
        (lambda: Estimate(0.5, 0.1, float("inf")), "Estimate high must be a finite number"),
        (lambda: Estimate("0.5", 0.1, 0.9), "Estimate value must be a finite number, got '0.5'"),
        (lambda: Estimate(0.5, 0.6, 0.9), r"must hold its value: low <= value <= high"),
        (lambda: Estimate(0.5, 0.4, 0.6, level=95), "level must be a number between 0 and 1"),
        (lambda: Estimate(0.5, 0.4, 0.6, p_value=1.5), r"p_value must be None or a number in \[0, 1\]"),
        (lambda: Estimate(0.5, 0.4, 0.6, method=None), "method must be a str"),
        (lambda: Estimate(0.5, 0.4, 0.6).format(-1), "digits must be >= 0"),
        (lambda: Estimate(0.5, 0.4, 0.6).format(3, signed="yes"), "signed must be True or False"),
        (lambda: Estimate(0.5, 0.4, 0.6).above(float("nan")), "threshold must be a finite number"),
        (lambda: Estimate(0.5, 0.4, 0.6).below(None), "threshold must be a finite number, got None"),
        (lambda: Estimate(0.5, 0.4, 0.6).contains("0.5"), "value must be a finite number"),
        (lambda: Estimate(0.5, 0.4, 0.6).as_dict(3), "prefix must be a str"),
        (lambda: auc_interval([0, 1, 0], ["a", "b", "c"]), "scores must be numbers"),
        (lambda: auc_interval("0101", [0.1, 0.2, 0.3, 0.4]), "labels must be a 1-D array of 0 and 1, got str"),
        (lambda: auc_interval([0, 1, None], [0.1, 0.2, 0.3]), "labels must be 0 or 1"),
        (lambda: auc_interval([0, 1, np.nan], [0.1, 0.2, 0.3]), "labels must be 0 or 1"),
        (lambda: auc_difference([0, 1, 0], [0.1, 0.2, 0.3], [0.1, np.inf, 0.3]), "NaN or inf"),
        (lambda: bootstrap_interval("auc", [0, 1] * 20, [0.1, 0.2] * 20), "metric must be a function"),
        (lambda: bootstrap_interval(lambda y, s: float("nan"), [0, 1] * 20, [0.1, 0.2] * 20),
         "returned nan on a resample; it must return a finite number"),
        (lambda: bootstrap_interval(lambda y: 1.0, [0, 1] * 20, [0.1, 0.2] * 20),
         r"must take \(y, scores\) and return a number"),
        (lambda: bootstrap_interval(roc_auc_score, [0, 1] * 20, [0.1, 0.2] * 20,
                                    groups=[1.0] * 39 + [np.nan]), r"groups must not be missing: 1 row"),
        (lambda: clustered_auc_interval([0, 1, 0, 1], [0.1, 0.2, 0.3, 0.4], [1, None, 2, 2]),
         "groups must not be missing"),
        (lambda: compare_models([0, 1], {"a": [0.1, 0.2]}, digits=-2), "digits must be >= 0"),
        (lambda: compare_models([0, 1], {"a": [0.1, 0.2]}, level=0), "level must be a number"),
        (lambda: compare_models([0, 1], {3: [0.1, 0.2]}), "model names must be non-empty str, got 3"),
        (lambda: interval_table([Estimate(0.5, 0.4, 0.6)]), "estimates must be a mapping"),
        (lambda: interval_table({"a": (0.5, 0.4, 0.6)}), "estimate 'a' must be an Estimate, got tuple"),
        (lambda: unpaired_difference(Estimate(0.5, 0.4, 0.6), 0.3), "b must be an Estimate, got float"),
        (lambda: monthly_auc([0, 1, 0, 1], [0.1, 0.2, 0.3, 0.4], ["a", "a", None, "b"]),
         "months must not be missing: 1 row"),
        (lambda: monthly_auc([0, 1, 0, 1, 0, 0], [0.1, 0.2, 0.3, 0.4, 0.5, 0.6], list("aaaabb")),
         "month b: the AUC is undefined on 2 rows of a single class"),
        (lambda: auc_interval([0, 1, 0, 0], [0.1, 0.2, 0.3, 0.4]),
         "needs at least 2 churners and 2 stayers, got 1 and 3"),
        (lambda: monthly_auc([0, 1], [0.1, 0.2], [["a"], ["b"]]), "months must have one value per label"),
        (lambda: scenario_worlds("covariate"), "scenarios must be a sequence of names"),
        (lambda: scenario_worlds(["covariate", "covariate"]), "must be distinct names"),
    ],
)
def test_every_public_function_names_bad_input(call, message):
    with pytest.raises(InvalidParameterError, match=message):
        call()


def test_contributions_refuse_bad_months_before_any_work(drifting):
    model = MinutesModel()
    with pytest.raises(InvalidParameterError, match="snapshots must be a list of snapshot timestamps"):
        scenario_contributions(model, drifting, "2025-06-01")
    with pytest.raises(InvalidParameterError, match=r"snapshots repeats \['2025-06-01'\]"):
        scenario_contributions(model, drifting, ["2025-06-01", "2025-06-01"])
    with pytest.raises(InvalidParameterError, match=r"snapshot\(s\) \['2030-01-01'\] are not in the dataset"):
        scenario_contributions(model, drifting, ["2030-01-01"])
    with pytest.raises(InvalidParameterError, match="periods must be a non-empty mapping"):
        scenario_contributions(model, drifting, drifting.snapshots[4:], periods=[])
    with pytest.raises(InvalidParameterError, match=r"period 'late' repeats"):
        scenario_contributions(model, drifting, drifting.snapshots[4:],
                               periods={"late": [drifting.snapshots[5]] * 2})


def test_estimate_accepts_numpy_numbers_and_stores_floats():
    e = Estimate(np.float32(0.5), np.int64(0), 1, p_value=np.float64(0.25))
    assert (e.value, e.low, e.high, e.p_value) == (0.5, 0.0, 1.0, 0.25)
    assert type(e.value) is float and e.format(2) == "0.50 [0.00, 1.00]"


# --- invariants -------------------------------------------------------------------------------

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from hypothesis.extra import numpy as hnp  # noqa: E402


@st.composite
def labelled_scores(draw, max_size=60):
    n = draw(st.integers(4, max_size))
    y = draw(hnp.arrays(np.int8, n, elements=st.integers(0, 1)))
    y[:4] = [0, 1, 0, 1]  # at least two of each class
    finite = st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False)
    a = draw(hnp.arrays(np.float64, n, elements=finite))
    b = draw(hnp.arrays(np.float64, n, elements=finite))
    return y, a, b


@settings(max_examples=60, deadline=None)
@given(labelled_scores(), st.floats(0.5, 0.99))
def test_every_interval_contains_its_estimate(data, level):
    y, a, b = data
    estimates = [
        auc_interval(y, a, level),
        auc_difference(y, a, b, level),
        clustered_auc_interval(y, a, np.arange(y.size) // 2, level),
    ]
    for e in estimates:
        assert e.low <= e.value <= e.high
        assert 0 <= e.p_value <= 1 if e.p_value is not None else True
    assert 0 <= estimates[0].low <= estimates[0].high <= 1
    assert estimates[0].value == pytest.approx(roc_auc_score(y, a), abs=1e-12)


@settings(max_examples=25, deadline=None)
@given(labelled_scores(max_size=40), st.integers(0, 1000))
def test_every_bootstrap_interval_contains_its_estimate(data, seed):
    y, a, b = data
    y = np.concatenate([y, [0, 1] * 10])  # enough of both classes for most resamples
    a = np.concatenate([a, np.linspace(0, 1, 20)])
    b = np.concatenate([b, np.linspace(1, 0, 20)])
    for baseline in (None, b):
        e = bootstrap_interval(roc_auc_score, y, a, baseline, n_resamples=40, seed=seed)
        assert e.low <= e.value <= e.high


def test_the_package_names_every_public_name():
    import companion.evaluation as evaluation

    for name in evaluation.__all__:
        assert hasattr(evaluation, name), name
    assert evaluation.Estimate.__module__ == "companion.evaluation.estimate"


def test_estimate_checks_numbers_with_the_shared_checks():
    with pytest.raises(InvalidParameterError, match="threshold must be a finite number, got nan"):
        Estimate(0.5, 0.4, 0.6).above(float("nan"))
    with pytest.raises(InvalidParameterError, match="value must be a finite number, got True"):
        Estimate(0.5, 0.4, 0.6).contains(True)
