"""companion.retraining.levels: the maturity levels declared, the guard, the A/B judge, people."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from companion import retraining as rt
from companion.data import SimulationConfig, generate
from companion.errors import InvalidParameterError, UnknownNameError


@pytest.fixture(scope="module")
def year() -> rt.Year:
    return rt.prepare_year(generate(SimulationConfig(n_customers=3000, seed=42)))


@pytest.fixture(scope="module")
def checks(year):
    return rt.scoring_checks(year)


@pytest.fixture(scope="module")
def levels_run(year, checks):
    return checks, *rt.compare_levels(year, checks=checks)


def test_levels_are_declared_and_checked():
    level0, level2, level3 = rt.maturity_levels()
    assert [lv.name for lv in (level0, level2, level3)] == ["level 0", "level 2", "level 3"]
    assert (level0.promotes, level2.promotes, level3.promotes) == ("nobody", "person", "loop")
    assert level2.direct and not level3.direct and level3.ab_test is not None
    assert level3.retrain.canary_share == 0.5 and level2.retrain.watch_months == 0
    assert (level0.guard_lag, level2.guard_lag, level3.guard_lag) == (None, 1, 0)
    assert "a person: nothing" in level3.describe()
    assert "a person: monthly_scoring" in level0.describe()
    design = rt.default_design()
    assert design.n_per_arm == 424 and design.population == "triggered"
    none = rt.RetrainPolicy("none", name="x")
    monthly = rt.RetrainPolicy("scheduled", every_months=1, name="y")
    for kwargs, error, match in [
        ({"number": 4, "retrain": none, "promotes": "nobody"}, InvalidParameterError, "level"),
        ({"number": 0, "retrain": "none", "promotes": "nobody"}, InvalidParameterError,
         "RetrainPolicy"),
        ({"number": 0, "retrain": none, "promotes": "boss"}, UnknownNameError, "promotes"),
        ({"number": 0, "retrain": none, "promotes": "nobody", "people": ("coffee",)},
         UnknownNameError, "person task"),
        ({"number": 0, "retrain": none, "promotes": "nobody", "people": "alerts"},
         InvalidParameterError, "tuple"),
        ({"number": 0, "retrain": none, "promotes": "loop"}, InvalidParameterError,
         "does not fit"),
        ({"number": 2, "retrain": monthly, "promotes": "loop", "guard_lag": -1},
         InvalidParameterError, "guard_lag"),
        ({"number": 3, "retrain": monthly, "promotes": "loop", "ab_test": design},
         InvalidParameterError, "canary_share"),
        ({"number": 3, "retrain": monthly, "promotes": "loop", "ab_test": "design"},
         InvalidParameterError, "PreRegistration"),
        ({"number": 3, "retrain": monthly, "promotes": "loop", "direct": True,
          "ab_test": rt.default_design(0.1)}, InvalidParameterError, "directly"),
    ]:
        with pytest.raises(error, match=match):
            rt.Level(**kwargs)


def test_broken_columns_and_fallback_model(year):
    assert rt.broken_columns(["raw_minutes_missing", "minutes_per_session"]) == ("minutes_4w",)
    assert rt.broken_columns(["features_missing"]) == ()
    with pytest.raises(UnknownNameError, match="quality check"):
        rt.broken_columns(["smell"])
    rows = year.rows(year.months[0])
    model, held = rt.fallback_model(rows, ("minutes_4w",))
    assert held == {"minutes_4w": rows["minutes_4w"].median()}
    from companion.training import FEATURES

    broken = rows.assign(minutes_4w=rows["minutes_4w"] * 60)
    a = model.predict_proba(rows.assign(**held)[FEATURES])[:, 1]
    b = model.predict_proba(broken.assign(**held)[FEATURES])[:, 1]
    assert np.array_equal(a, b)  # the fallback's scores do not depend on the broken input
    with pytest.raises(InvalidParameterError, match="model inputs"):
        rt.fallback_model(rows, ("plan_name",))
    with pytest.raises(InvalidParameterError, match="model inputs"):
        rt.fallback_model(rows, ())


def test_scoring_checks_find_the_incident_month_only(checks, year):
    failed = {m: c for m, c in checks.items() if c}
    assert list(failed) == [year.months[-1]]
    assert set(failed[year.months[-1]]) == {"raw_minutes_missing", "minutes_per_session"}
    with pytest.raises(InvalidParameterError, match="Year"):
        rt.scoring_checks("year")
    with pytest.raises(InvalidParameterError, match="QualityResult"):
        rt.scoring_checks(year, ["x"])
    with pytest.raises(InvalidParameterError, match="no quality check"):
        rt.scoring_checks(year, [])


@pytest.mark.slow
def test_three_levels_over_the_year(levels_run, year):
    checks, comparison, runs = levels_run
    table = comparison.table()
    assert list(table.index) == ["level 0", "level 2", "level 3"]
    assert table.loc["level 0", "retrains"] == 0
    assert table.loc["level 2", "retrains"] == table.loc["level 3", "retrains"] >= 6
    assert table.loc["level 2", "rolled_back"] == 0  # nobody watches at Level 2
    # no canary at Level 2: a promoted model serves everyone in its month
    assert all(d.step != "canary" for d in runs["level 2"].result.decisions)
    assert any(d.step == "canary" and "(50%)" in d.reason
               for d in runs["level 3"].result.decisions)
    # the guard: Level 3 falls back the same day, Level 2 a month late (after the year), 0 never
    last = year.months[-1][:7]
    assert [(e["month"], e["outcome"]) for e in runs["level 3"].events] == [(last, "fallback")]
    assert [(e["month"], e["outcome"]) for e in runs["level 2"].events] == [(last, "unguarded")]
    assert runs["level 0"].events == []
    auc = comparison.monthly("roc_auc").loc[last]
    assert auc["level 3"] > auc["level 2"] + 0.03
    assert runs["level 3"].fallback_work > 0
    assert runs["level 3"].compute()["row_iterations"] > runs["level 2"].compute()[
        "row_iterations"]
    # people's decisions
    assert rt.people_decisions(runs["level 0"]) == {"monthly_scoring": 12, "promotion": 0,
                                                    "alerts": 0}
    assert rt.people_decisions(runs["level 2"])["promotion"] == runs["level 2"].result.count(
        "gate", "passed")
    assert sum(rt.people_decisions(runs["level 3"]).values()) == 0
    with pytest.raises(InvalidParameterError, match="LevelYear"):
        rt.people_decisions(comparison["level 3"])
    # the A/B test judged every canary whose outcome arrived in the year
    experiments = runs["level 3"].experiments
    promoted = [d.month for d in runs["level 3"].result.decisions if d.step == "promote"]
    assert [e["month"] for e in experiments] == [m for m in promoted if m < last]
    assert all(e["srm"] == "ok" and e["n_champion"] > 50 for e in experiments)
    post = [d for d in runs["level 3"].result.decisions if d.step == "post_check"
            and "canary rows" in d.reason]
    assert len(post) == len(experiments) and all("A/B level-3-canary" in d.reason for d in post)
    assert comparison.difference("level 3", "level 0").high < 0


@pytest.mark.slow
def test_misjoined_deployments_are_rolled_back_at_level_3_only(year, checks):
    faults = [rt.Fault(m[:7], "misjoin") for m in year.months[1:]]
    comparison, runs = rt.compare_levels(year, rt.maturity_levels()[1:], checks=checks,
                                         faults=faults)
    assert comparison["level 2"].count("rollback", "done") == 0
    assert comparison["level 3"].count("rollback", "done") >= 3
    assert comparison.difference("level 3", "level 2").high < 0


def test_bad_arguments(year):
    level3 = rt.maturity_levels()[2]
    with pytest.raises(InvalidParameterError, match="Level"):
        rt.run_level(year, "level 3")
    with pytest.raises(InvalidParameterError, match="built for this level"):
        rt.run_level(year, level3, deployer=rt.InMemoryDeployer(year))
    with pytest.raises(InvalidParameterError, match="non-empty"):
        rt.compare_levels(year, [])
    with pytest.raises(InvalidParameterError, match="differ"):
        rt.compare_levels(year, [level3, level3], checks={m: () for m in year.months})
    with pytest.raises(InvalidParameterError, match="miss month"):
        rt.LevelDeployer(year, level3, {})
    with pytest.raises(InvalidParameterError, match="a Level"):
        rt.LevelDeployer(year, "level 3", {})
    frame = rt.LevelDeployer(year, level3, {m: () for m in year.months}).requests(
        year.months[3], np.ones(len(year.rows(year.months[3])), bool),
        rt.Candidate(2, None, (), "", 0, 0.0), rt.Candidate(1, None, (), "", 0, 0.0))
    assert (frame["arm"] == "challenger").all() and isinstance(frame, pd.DataFrame)
