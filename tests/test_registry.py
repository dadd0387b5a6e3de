"""Tests of companion.registry: lineage tags, the gate, aliases, audit, rollback, races, prompts.

One small workspace (one MLflow store) is shared by the module; each test registers its own
model name, so tests do not depend on each other's state.
"""

from __future__ import annotations

import dataclasses
import json
import re
import threading
from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mlflow.tracking import MlflowClient
from sklearn.metrics import roc_auc_score

from companion import registry
from companion.core.provenance import source_name
from companion.data import SimulationConfig, content_hash
from companion.errors import (
    CompanionError,
    InvalidParameterError,
    LockTimeoutError,
    UnknownNameError,
)
from companion.evaluation import Estimate, auc_difference, auc_interval
from companion.features import FEATURE_VERSIONS, version_columns
from companion.registry import GateDataError, GatePolicy, PromotionRefusedError, Registry
from companion.training import FEATURES, TARGET, evaluate, snapshot_features
from companion.workspace import Workspace

LENIENT = GatePolicy(min_roc_auc=0.5, margin=0.2, rule="non-inferiority")
"""A policy every sensible model passes (not worse than production by 0.2)."""

STUMP = {"kind": "gbm", "last": 1, "params": {"max_iter": 1, "max_leaf_nodes": 2}}
"""A deliberately weak production model (one split): any real candidate beats it."""


def fixed_clock() -> datetime:
    return datetime(2025, 6, 1, 9, 30, tzinfo=UTC)


@pytest.fixture(scope="module")
def ws(tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    workspace = Workspace.create(
        "test-registry",
        root=tmp_path_factory.mktemp("registry"),
        config=SimulationConfig(n_customers=2500, months=5, seed=3, scenarios=()),
    )
    workspace.require("data", "mlflow")
    return workspace


@pytest.fixture(scope="module")
def dataset(ws: Workspace):
    return ws.require("data")


def register(ws, dataset, name, kind="logistic", first=0, last=2, holdout=3, **kwargs):
    months = dataset.snapshots
    return Registry(ws).register_candidate(
        dataset, kind, months[first:last], months[holdout], name=name, **kwargs
    )


def release(ws, dataset, version, name, policy=LENIENT):
    Registry(ws).stage(dataset, version, actor="test", reason="test", name=name, policy=policy,
                       clock=fixed_clock)
    return Registry(ws).promote(version, actor="test", reason="test", name=name, clock=fixed_clock)


# --------------------------------------------------------------------------- policy


def test_gate_policy_describes_its_rule_and_rejects_bad_values() -> None:
    superiority = GatePolicy(min_roc_auc=0.6, margin=0.02)
    assert superiority.bound == 0.02 and superiority.rule == "superiority"
    assert "interval > 0.6" in superiority.describe()
    assert "(candidate - production) > +0.02 (superiority)" in superiority.describe()
    inferiority = GatePolicy(min_roc_auc=0.6, margin=0.02, rule="non-inferiority")
    assert inferiority.bound == -0.02
    assert "> -0.02 (non-inferiority)" in inferiority.describe()
    with pytest.raises(InvalidParameterError, match="min_roc_auc .* got 1.5"):
        GatePolicy(min_roc_auc=1.5)
    with pytest.raises(InvalidParameterError, match=r"margin must lie in \[0, 0.5\).* got -0.1"):
        GatePolicy(margin=-0.1)
    with pytest.raises(UnknownNameError,
                       match="rule 'better' is not known; accepted: 'superiority', 'non-inferiority'"):
        GatePolicy(rule="better")
    with pytest.raises(InvalidParameterError, match="min_roc_auc must be a finite number, got 'high'"):
        GatePolicy(min_roc_auc="high")
    with pytest.raises(InvalidParameterError, match="candidate must be an Estimate"):
        superiority.decide(0.8, None)


def test_superiority_passes_only_when_the_lower_bound_clears_the_margin() -> None:
    policy = GatePolicy(min_roc_auc=0.6, margin=0.02)
    good = Estimate(0.80, 0.78, 0.82)
    assert policy.decide(good, Estimate(0.05, 0.03, 0.07))[0] is True
    # A point estimate well above the margin is not enough: the interval must clear it.
    passed, why = policy.decide(good, Estimate(0.05, 0.015, 0.085))
    assert not passed and "+0.050 [+0.015, +0.085] does not lie above +0.02" in why
    assert not policy.decide(good, Estimate(0.0, -0.02, 0.02))[0]
    # Non-inferiority accepts a small loss whose interval stays above -margin.
    small_loss = Estimate(-0.005, -0.015, 0.005)
    assert not policy.decide(good, small_loss)[0]
    assert GatePolicy(margin=0.02, rule="non-inferiority").decide(good, small_loss)[0]
    # The floor reads the lower end of the candidate's interval, not its point estimate.
    passed, why = policy.decide(Estimate(0.64, 0.58, 0.70), None)
    assert not passed and "lower end 0.580 is not above 0.6" in why
    assert policy.decide(Estimate(0.64, 0.61, 0.67), None)[0]


def test_a_tiny_improvement_inside_the_interval_is_refused_a_clear_one_passes() -> None:
    rng = np.random.default_rng(0)
    n = 20_000
    y = (rng.random(n) < 0.05).astype(int)
    production = y + rng.normal(0, 1, n)
    tiny = production + 0.08 * y + rng.normal(0, 0.3, n)
    clear = production + 0.6 * y + rng.normal(0, 0.3, n)
    policy = GatePolicy(min_roc_auc=0.6, margin=0.005)
    small = auc_difference(y, tiny, production)
    assert small.value > policy.margin > small.low  # better on average, not shown better
    assert policy.decide(auc_interval(y, tiny), small)[0] is False
    large = auc_difference(y, clear, production)
    assert large.low > 0.09
    assert policy.decide(auc_interval(y, clear), large)[0] is True


# --------------------------------------------------------------------------- versions


def test_register_candidate_tags_lineage_and_moves_no_alias(ws, dataset) -> None:
    name = "lineage"
    first = register(ws, dataset, name, kind="gbm", last=1, holdout=1)
    second = register(ws, dataset, name, note="Two months.")
    assert (first.version, second.version) == (1, 2)
    version = Registry(ws).get_version(name, version=2)
    tags = version.tags
    months = [str(s.date()) for s in dataset.snapshots]
    assert tags["data.dataset_hash"] == dataset.content_hash()
    assert tags["data.training_snapshots"] == ",".join(months[0:2])
    assert tags["data.holdout_snapshot"] == months[3]
    assert tags["features.service"] == registry.FEATURE_SERVICE == "churn_model_v1"
    assert tags["features.service"] == FEATURE_VERSIONS[tags["features.version"]]["service"]
    assert set(version_columns(tags["features.version"])) == set(FEATURES)
    assert tags["features.digest"] == registry.FEATURE_SET_DIGEST
    assert tags["training.run_id"] == version.run_id == second.run_id
    # the thread: version -> run (its params, metrics, input) -> feature service; code hash
    run = MlflowClient(ws.tracking_uri).get_run(version.run_id)
    assert run.data.params["feature_service"] == "churn_model_v1"
    assert run.data.params["seed"] == "0" and run.data.params["kind"] == "logistic"
    assert f"{run.data.metrics['holdout_roc_auc']:.4f}" == tags["metrics.holdout_roc_auc"]
    assert [d.dataset.name for d in run.inputs.dataset_inputs] == [
        f"churn_model_v1 {months[0][:7]}..{months[1][:7]}"]
    assert run.data.tags["code.sha256"] == tags["code.sha256"] == registry.code_hash()
    assert tags["code.files"] == ",".join(source_name(p) for p in registry.CODE_FILES)
    assert {"training.py", "registry/candidates.py", "data/simulate.py"} <= set(
        tags["code.files"].split(","))
    assert second.run_id in version.description and "Two months." in version.description
    holdout = snapshot_features(dataset, [dataset.snapshots[3]])
    expected_auc = evaluate(second.model, holdout)["roc_auc"]
    assert tags["metrics.holdout_roc_auc"] == f"{expected_auc:.4f}"
    assert second.metrics["roc_auc"] == pytest.approx(expected_auc)
    assert Registry(ws).aliases(name) == {}

    table = Registry(ws).list_versions(name)
    assert list(table.index) == [1, 2]
    assert list(table["kind"]) == ["gbm", "logistic"]
    assert table.loc[2, "trained_on"] == f"{months[0][:7]}..{months[1][:7]}"
    assert table.loc[2, "holdout_auc"] == pytest.approx(round(expected_auc, 4))
    assert not table.astype(str).apply(lambda c: c.str.contains(second.run_id)).any().any()


def test_code_hash_covers_the_training_code_files(tmp_path, monkeypatch) -> None:
    today = registry.code_hash()
    copies = []
    for path in registry.CODE_FILES:
        copy = tmp_path / "companion" / source_name(path)
        copy.parent.mkdir(parents=True, exist_ok=True)
        copy.write_bytes(path.read_bytes())
        copies.append(copy)
    monkeypatch.setattr(registry.names, "CODE_FILES", tuple(copies))
    assert registry.code_hash() == today  # same names and bytes, another folder
    copies[0].write_bytes(copies[0].read_bytes() + b"# one more line\n")
    assert registry.code_hash() != today


def test_register_candidate_rejects_bad_input_and_registers_nothing(ws, dataset) -> None:
    name = "bad-input"
    register(ws, dataset, name)
    months = dataset.snapshots
    with pytest.raises(UnknownNameError, match="'forest'.*accepted: 'logistic', 'gbm'"):
        Registry(ws).register_candidate(dataset, "forest", months[:2], months[3], name=name)
    with pytest.raises(InvalidParameterError, match="must come after every training snapshot"):
        Registry(ws).register_candidate(dataset, "logistic", months[1:3], months[0], name=name)
    with pytest.raises(InvalidParameterError, match="non-empty list of snapshots"):
        Registry(ws).register_candidate(dataset, "logistic", [], months[3], name=name)
    assert list(Registry(ws).list_versions(name).index) == [1]


# --------------------------------------------------------------------------- gate and moves


def _runs(ws):
    from mlflow.tracking import MlflowClient

    client = MlflowClient(ws.tracking_uri)
    experiment = client.get_experiment_by_name(registry.EXPERIMENT)
    return client, ([] if experiment is None else client.search_runs([experiment.experiment_id]))


def test_gate_scores_both_versions_on_the_same_month(ws, dataset, tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)  # nothing may be written to the current directory
    name = "gate"
    baseline = register(ws, dataset, name, holdout=1, **STUMP)
    release(ws, dataset, baseline.version, name)
    candidate = register(ws, dataset, name, last=3, holdout=3)
    policy = GatePolicy(min_roc_auc=0.6, margin=0.01)
    decision = Registry(ws).validate_candidate(dataset, candidate.version, name=name,
                                           policy=policy)
    month = snapshot_features(dataset, [dataset.snapshots[3]])
    y = month[TARGET].to_numpy()
    new_scores = candidate.model.predict_proba(month[FEATURES])[:, 1]
    old_scores = baseline.model.predict_proba(month[FEATURES])[:, 1]
    assert decision.month == str(dataset.snapshots[3].date())
    assert decision.production_version == baseline.version
    assert decision.candidate == auc_interval(y, new_scores)
    assert decision.production == auc_interval(y, old_scores)
    assert decision.difference == auc_difference(y, new_scores, old_scores)
    assert decision.candidate_roc_auc == pytest.approx(evaluate(candidate.model, month)["roc_auc"])
    assert decision.difference.low < decision.difference.value < decision.difference.high
    assert decision.passed == (decision.candidate.low > 0.6 and decision.difference.low > 0.01)
    assert (decision.rows, decision.churners) == (len(y), int(y.sum()))
    assert list(tmp_path.iterdir()) == []
    # Every run of the gate (the parent and one nested run per model) is in the registry's
    # experiment, none in MLflow's default experiment; the parent holds the intervals.
    client, runs = _runs(ws)
    role_filter = "tags.`gate.role` = 'candidate'"
    assert client.search_runs(["0"], filter_string=role_filter) == []
    gate_run = next(r for r in runs if r.data.tags.get("gate.candidate") == str(candidate.version)
                    and r.data.tags.get("gate.month") == decision.month)
    assert gate_run.data.metrics["gate_difference_low"] == pytest.approx(decision.difference.low)
    assert gate_run.data.tags["gate.rows_hash"] == decision.rows_hash
    with pytest.raises(GateDataError, match="is not held out: candidate v2 was trained on "
                       "snapshots up to " + str(dataset.snapshots[2].date())):
        Registry(ws).validate_candidate(dataset, candidate.version, name=name,
                                    month=dataset.snapshots[1])
    with pytest.raises(InvalidParameterError, match="not a snapshot of the dataset; accepted"):
        Registry(ws).validate_candidate(dataset, candidate.version, name=name, month="2031-01-01")


def test_refused_candidate_leaves_the_registry_unchanged(ws, dataset) -> None:
    name = "refuse"
    baseline = register(ws, dataset, name)
    release(ws, dataset, baseline.version, name)
    worse = register(ws, dataset, name, first=1, last=2, params={"C": 0.01})
    before = Registry(ws).registry_state(name)
    strict = GatePolicy(min_roc_auc=0.5, margin=0.4)
    with pytest.raises(PromotionRefusedError, match=r"version 2 may not enter 'staging'.*"
                       r"against production v1.*does not lie above \+0.4.*unchanged"):
        Registry(ws).stage(dataset, worse.version, actor="ben", reason="quick", name=name,
                       policy=strict, clock=fixed_clock)
    with pytest.raises(PromotionRefusedError, match="is not above 0.99"):
        Registry(ws).stage(dataset, worse.version, actor="ben", reason="quick", name=name,
                       policy=GatePolicy(min_roc_auc=0.99), clock=fixed_clock)
    assert Registry(ws).registry_state(name) == before
    audit = Registry(ws).read_audit(name)
    assert list(audit["action"]) == ["stage", "promote", "refuse", "refuse"]
    assert audit["version"].iloc[-1] == worse.version
    assert "[" in audit["reason"].iloc[-2]  # the refusal records the interval numbers


def test_gate_refuses_a_month_production_was_trained_on(ws, dataset) -> None:
    name = "in-sample"
    # Production was trained on later months than the candidate: the candidate's holdout
    # month is inside production's training data, where production would look too good.
    production = register(ws, dataset, name, first=2, last=4, holdout=4)
    release(ws, dataset, production.version, name)
    candidate = register(ws, dataset, name, first=0, last=2, holdout=3)
    end = str(dataset.snapshots[3].date())
    with pytest.raises(GateDataError, match=f"production v1 was trained on snapshots up to {end}"):
        Registry(ws).validate_candidate(dataset, candidate.version, name=name, policy=LENIENT)
    before = Registry(ws).registry_state(name)
    _, runs_before = _runs(ws)
    with pytest.raises(PromotionRefusedError, match="may not enter 'staging': gate month "
                       f"{end} is not held out: production v1"):
        Registry(ws).stage(dataset, candidate.version, actor="dan", reason="r", name=name,
                       policy=LENIENT, clock=fixed_clock)
    assert Registry(ws).registry_state(name) == before
    assert len(_runs(ws)[1]) == len(runs_before)
    audit = Registry(ws).read_audit(name)
    assert (audit["action"].iloc[-1], audit["version"].iloc[-1]) == ("refuse", candidate.version)
    assert "not held out: production v1" in audit["reason"].iloc[-1]
    # A later month, after both versions' training, is accepted.
    later = Registry(ws).validate_candidate(dataset, candidate.version, name=name,
                                        month=dataset.snapshots[4], policy=LENIENT)
    assert later.month == str(dataset.snapshots[4].date())


def test_one_class_month_is_refused_audited_and_leaves_no_run(ws, dataset) -> None:
    name = "one-class"
    release(ws, dataset, register(ws, dataset, name, **STUMP).version, name)
    candidate = register(ws, dataset, name, last=3, holdout=3)
    # The last month's labels are not in yet, and a label job wrote 0 for every customer.
    last = dataset.snapshots[4]
    labels = dataset.labels.copy()
    labels.loc[labels["snapshot_timestamp"] == last, TARGET] = 0
    unlabelled = dataclasses.replace(dataset, labels=labels)
    before = Registry(ws).registry_state(name)
    client, runs_before = _runs(ws)
    rows = int((labels["snapshot_timestamp"] == last).sum())
    with pytest.raises(PromotionRefusedError,
                       match=rf"ROC AUC is undefined on gate month {last.date()}: its {rows:,} "
                       r"labelled rows are all of class 0 \(no churner\)"):
        Registry(ws).stage(unlabelled, candidate.version, actor="cron", reason="monthly",
                       name=name, month=last, policy=LENIENT, clock=fixed_clock)
    assert Registry(ws).registry_state(name) == before
    client, runs_after = _runs(ws)
    assert len(runs_after) == len(runs_before)
    experiment = client.get_experiment_by_name(registry.EXPERIMENT).experiment_id
    assert client.search_runs([experiment], filter_string="attributes.status = 'FAILED'") == []
    audit = Registry(ws).read_audit(name)
    assert (audit["actor"].iloc[-1], audit["action"].iloc[-1]) == ("cron", "refuse")
    assert "undefined" in audit["reason"].iloc[-1]


def test_gate_data_and_decision_are_recorded_on_the_version(ws, dataset) -> None:
    name = "recorded"
    release(ws, dataset, register(ws, dataset, name, **STUMP).version, name)
    candidate = register(ws, dataset, name, last=3, holdout=3)
    decision = Registry(ws).stage(dataset, candidate.version, actor="ana", reason="r", name=name,
                              policy=LENIENT, clock=fixed_clock)
    tags = Registry(ws).get_version(name, version=candidate.version).tags
    month = dataset.snapshots[3]
    rows = registry.gate_rows(dataset, month)
    assert tags["data.training_end"] == str(dataset.snapshots[2].date())
    assert tags["data.dataset_seed"] == tags["gate.dataset_seed"] == "3"
    assert tags["gate.result"] == "passed" and tags["gate.month"] == str(month.date())
    assert tags["gate.rows_hash"] == content_hash({"gate": rows}) == decision.rows_hash
    assert tags["gate.rows"] == str(len(rows))
    assert tags["gate.churners"] == str(int(rows[TARGET].sum()))
    assert tags["gate.dataset_hash"] == dataset.content_hash()
    assert tags["gate.policy"] == LENIENT.describe()
    assert tags["gate.production_version"] == "1"
    low, value, high = (float(tags[f"gate.difference{s}"]) for s in ("_low", "", "_high"))
    assert low < value < high and low > LENIENT.bound
    assert (float(tags["gate.roc_auc_low"]), float(tags["gate.roc_auc"])) == (
        round(decision.candidate.low, 4), round(decision.candidate.value, 4))
    assert tags["gate.reason"] == decision.reason and "[" in decision.reason


def test_oracle_interval_ranks_by_the_true_probabilities(dataset) -> None:
    month = dataset.snapshots[2]
    oracle = registry.oracle_interval(dataset, month)
    rows = registry.gate_rows(dataset, month)[["customer_id", "snapshot_timestamp", TARGET]]
    truth = rows.merge(dataset.truth, on=["customer_id", "snapshot_timestamp"])
    assert oracle.value == pytest.approx(roc_auc_score(truth[TARGET], truth["churn_probability"]))
    assert 0.6 < oracle.low < oracle.value < oracle.high < 1.0


def test_promote_only_from_staging_and_audit_who_when_why(ws, dataset) -> None:
    name = "promote"
    first = register(ws, dataset, name)
    second = register(ws, dataset, name, params={"C": 0.1})
    with pytest.raises(PromotionRefusedError, match="only the version in 'staging'.*holds nothing"):
        Registry(ws).promote(first.version, actor="ana", reason="r", name=name)
    Registry(ws).stage(dataset, first.version, actor="ana", reason="first", name=name,
                   policy=LENIENT, clock=fixed_clock)
    assert Registry(ws).aliases(name) == {"staging": 1}
    with pytest.raises(PromotionRefusedError, match="version 2 .* 'staging' holds v1"):
        Registry(ws).promote(second.version, actor="ana", reason="r", name=name)
    entry = Registry(ws).promote(first.version, actor="ana", reason="ship it", name=name,
                             clock=fixed_clock)
    assert Registry(ws).aliases(name) == {"production": 1}
    assert entry == {"time": "2025-06-01T09:30:00+00:00", "actor": "ana", "action": "promote",
                     "model": name, "alias": "production", "version": 1, "previous": None,
                     "reason": "ship it"}
    tags = Registry(ws).get_version(name, version=1).tags
    assert (tags["production.promoted_by"], tags["production.reason"]) == ("ana", "ship it")
    assert tags["production.promoted_at"] == "2025-06-01T09:30:00+00:00"
    assert tags["gate.result"] == "passed"
    lines = Registry(ws).audit_path.read_text(encoding="utf-8").splitlines()
    assert json.loads(lines[-1]) == entry
    assert Registry(ws).aliases_from_audit(name) == Registry(ws).aliases(name)
    with pytest.raises(InvalidParameterError, match="actor must be a non-empty string"):
        Registry(ws).promote(first.version, actor="", reason="r", name=name)


def test_alias_loads_the_promoted_model_and_rollback_returns_the_previous(ws, dataset) -> None:
    name = "rollback"
    first = register(ws, dataset, name, **STUMP)
    second = register(ws, dataset, name)
    frame = snapshot_features(dataset, [dataset.snapshots[3]])

    def production_scores():
        return Registry(ws).load_model(name, alias="production").predict_proba(frame[FEATURES])

    release(ws, dataset, first.version, name)
    with pytest.raises(PromotionRefusedError, match=r"history is \[1\]"):
        Registry(ws).rollback(actor="carla", reason="r", name=name)
    release(ws, dataset, second.version, name)
    assert np.array_equal(production_scores(), second.model.predict_proba(frame[FEATURES]))
    entry = Registry(ws).rollback(actor="carla", reason="bad scores", name=name,
                              clock=fixed_clock)
    assert (entry["action"], entry["version"], entry["previous"]) == ("rollback", 1, 2)
    assert Registry(ws).aliases(name) == {"production": 1}
    assert np.array_equal(production_scores(), first.model.predict_proba(frame[FEATURES]))
    assert Registry(ws).get_version(name, version=2).tags["production.rolled_back_by"] == "carla"
    assert Registry(ws).aliases_from_audit(name) == {"production": 1}
    with pytest.raises(PromotionRefusedError, match="needs an earlier production version"):
        Registry(ws).rollback(actor="carla", reason="again", name=name)


def test_unknown_model_alias_and_version_raise_clear_errors(ws, dataset) -> None:
    name = "lookup"
    release(ws, dataset, register(ws, dataset, name).version, name)
    with pytest.raises(UnknownNameError, match=r"registered model 'lookpu' does not exist; known:.*'lookup'"):
        Registry(ws).get_version("lookpu", alias="production")
    with pytest.raises(UnknownNameError, match=r"no alias 'champion'; aliases set: 'production' -> v1"):
        Registry(ws).get_version(name, alias="champion")
    with pytest.raises(UnknownNameError, match=r"no version 4; versions: \[1\]"):
        Registry(ws).load_model(name, version=4)
    with pytest.raises(UnknownNameError, match="no alias 'staging'"):
        Registry(ws).model_uri(name, alias="staging")
    with pytest.raises(InvalidParameterError, match="positive int, got 'two'"):
        Registry(ws).get_version(name, version="two")
    with pytest.raises(InvalidParameterError, match="exactly one of version or alias"):
        Registry(ws).get_version(name, version=1, alias="production")
    assert Registry(ws).model_uri(name, version=1) == f"models:/{name}/1"
    assert issubclass(UnknownNameError, CompanionError)


# --------------------------------------------------------------------------- concurrency


def test_two_racing_promotions_of_one_staging_version_promote_once(ws, dataset) -> None:
    name = "race-same"
    release(ws, dataset, register(ws, dataset, name, **STUMP).version, name)
    candidate = register(ws, dataset, name)
    Registry(ws).stage(dataset, candidate.version, actor="ana", reason="r", name=name,
                   policy=LENIENT)
    start = threading.Barrier(4)
    outcomes: list[str] = []

    def job(worker: int) -> None:
        start.wait()
        try:
            Registry(ws).promote(candidate.version, actor=f"bot-{worker}", reason="nightly",
                             name=name)
            outcomes.append("promoted")
        except PromotionRefusedError:
            outcomes.append("refused")

    threads = [threading.Thread(target=job, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["promoted", "refused", "refused", "refused"]
    audit = Registry(ws).read_audit(name)
    promotions = audit[audit["action"] == "promote"]
    assert list(promotions["version"]) == [1, 2]
    assert promotions["previous"].iloc[-1] == 1
    assert Registry(ws).aliases(name) == Registry(ws).aliases_from_audit(name) == {"production": 2}


@pytest.mark.slow
def test_racing_releases_of_different_candidates_agree_with_the_audit(ws, dataset) -> None:
    name = "race-different"
    release(ws, dataset, register(ws, dataset, name, **STUMP).version, name)
    candidates = [register(ws, dataset, name).version,
                  register(ws, dataset, name, params={"C": 0.1}).version]
    start = threading.Barrier(len(candidates))
    promoted: list[int] = []

    def release_job(version: int) -> None:
        start.wait()
        try:
            Registry(ws).stage(dataset, version, actor=f"job-{version}", reason="r", name=name,
                           policy=LENIENT)
            Registry(ws).promote(version, actor=f"job-{version}", reason="r", name=name)
            promoted.append(version)
        except PromotionRefusedError:
            pass

    threads = [threading.Thread(target=release_job, args=(v,)) for v in candidates]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    audit = Registry(ws).read_audit(name)
    production = Registry(ws).aliases(name)["production"]
    assert Registry(ws).aliases(name) == Registry(ws).aliases_from_audit(name)
    assert list(audit.loc[audit["action"] == "promote", "version"])[1:] == promoted
    assert production == (promoted[-1] if promoted else 1)
    assert "staging" not in Registry(ws).aliases(name) or len(promoted) < len(candidates)


def test_registry_lock_times_out_with_a_clear_error(ws) -> None:
    errors: list[Exception] = []

    def contender() -> None:
        try:
            with Registry(ws).lock(timeout=0.2):
                pass
        except LockTimeoutError as exc:
            errors.append(exc)

    with Registry(ws).lock():
        thread = threading.Thread(target=contender)
        thread.start()
        thread.join()
    assert len(errors) == 1 and "another promotion is still running" in str(errors[0])
    with Registry(ws).lock(timeout=0.2):  # released: free again
        pass


# --------------------------------------------------------------------------- audit and baseline


def test_read_audit_of_an_empty_workspace_is_an_empty_table(tmp_path) -> None:
    empty = Workspace.create("empty", root=tmp_path)
    audit = Registry(empty).read_audit()
    assert audit.empty and list(audit.columns) == [
        "time", "actor", "action", "model", "alias", "version", "previous", "reason"]
    assert Registry(empty).aliases_from_audit() == {}


def test_baseline_prerequisite_registers_and_promotes_version_1(tmp_path) -> None:
    workspace = Workspace.create(
        "baseline", root=tmp_path,
        config=SimulationConfig(n_customers=3000, months=2, seed=3, scenarios=()),
    )
    baseline = workspace.require("baseline")
    assert baseline.version == 1 and baseline.kind == "gbm"
    assert Registry(workspace).aliases() == {"production": 1}
    tags = Registry(workspace).get_version(version=1).tags
    # Gated with the default policy on the second month: nothing to compare with, so only
    # the floor applies, to the lower end of the interval.
    assert tags["gate.month"] == "2025-02-01" and tags["gate.production_version"] == ""
    assert float(tags["gate.roc_auc_low"]) > GatePolicy().min_roc_auc
    assert tags["gate.difference"] == ""
    audit = Registry(workspace).read_audit()
    assert list(zip(audit["actor"], audit["action"], strict=True)) == [
        ("setup", "stage"), ("setup", "promote")]
    assert workspace.built() == ["data", "mlflow", "baseline"]


# --------------------------------------------------------------------------- prompts


def test_prompts_are_versioned_and_loaded_by_version_and_alias(ws) -> None:
    name = "winback-email"
    first = Registry(ws).register_prompt(name, "Hello {{first_name}}, we miss you.",
                                     commit_message="first", tags={"owner": "retention"})
    second = Registry(ws).register_prompt(name, "Hi {{first_name}}! New shows on {{plan}}.",
                                      commit_message="mention plan")
    assert (first.version, second.version) == (1, 2)
    Registry(ws).set_prompt_alias(name, "production", 1)
    assert Registry(ws).load_prompt(name, alias="production").format(first_name="Sam") == (
        "Hello Sam, we miss you.")
    Registry(ws).set_prompt_alias(name, "production", 2)
    loaded = Registry(ws).load_prompt(name, alias="production")
    assert loaded.version == 2 and loaded.commit_message == "mention plan"
    assert loaded.format(first_name="Sam", plan="premium") == "Hi Sam! New shows on premium."
    assert Registry(ws).load_prompt(name, version=1).tags["owner"] == "retention"
    with pytest.raises(UnknownNameError, match=r"'winback-email' has no version 3; versions: \[1, 2\]"):
        Registry(ws).load_prompt(name, version=3)
    with pytest.raises(UnknownNameError, match="no alias 'beta'; aliases set: 'production' -> v2"):
        Registry(ws).load_prompt(name, alias="beta")
    with pytest.raises(UnknownNameError, match="prompt 'nope' does not exist"):
        Registry(ws).load_prompt("nope", version=1)
    with pytest.raises(UnknownNameError, match="no version 9"):
        Registry(ws).set_prompt_alias(name, "production", 9)
    assert Registry(ws).load_prompt(name, alias="production").version == 2
    assert isinstance(Registry(ws).read_audit(None), pd.DataFrame)


# --------------------------------------------------------------------------- bad input sweep


@pytest.fixture(scope="module")
def sweep(tmp_path_factory: pytest.TempPathFactory):
    """A workspace holding one registered version of model ``m``, no alias, no lock yet."""
    workspace = Workspace.create(
        "test-registry-sweep",
        root=tmp_path_factory.mktemp("sweep"),
        config=SimulationConfig(n_customers=2500, months=5, seed=4, scenarios=()),
    )
    data = workspace.require("data")
    months = data.snapshots
    Registry(workspace).register_candidate(data, "logistic", months[:2], months[3], name="m")
    return workspace, data


def _footprint(workspace):
    client, runs = _runs(workspace)
    return {
        "state": Registry(workspace).registry_state("m"),
        "models": Registry(workspace).registered_models(),
        "runs": sorted((r.info.run_name, r.info.status) for r in runs),
        "files": sorted(str(p.relative_to(workspace.path)) for p in
                        (workspace.path / "registry").rglob("*")
                        ) if (workspace.path / "registry").exists() else [],
    }


def _bad_calls(ws, data):
    months = data.snapshots
    one_class = dataclasses.replace(
        data, labels=data.labels.assign(**{TARGET: 0}))
    policy = GatePolicy()
    move = {"actor": "a", "reason": "r", "name": "m"}
    nan = float("nan")
    return {
        # not a workspace / not a dataset
        "Registry(None)": lambda: Registry(None),
        "Registry('ws')": lambda: Registry("ws"),
        "Registry(1)": lambda: Registry(1),
        "Registry(dict)": lambda: Registry({}),
        "Registry.at(path)": lambda: Registry.at("build/x", audit_dir="build"),
        "Registry.at(registry_uri=1)": lambda: Registry.at(ws.tracking_uri, registry_uri=1,
                                                           audit_dir="build"),
        "Registry.at(audit_dir=None)": lambda: Registry.at(ws.tracking_uri, audit_dir=None),
        "gate_rows(frame)": lambda: registry.gate_rows(data.labels, months[3]),
        "oracle_interval(None)": lambda: registry.oracle_interval(None, months[3]),
        "register_candidate(dataset=frame)": lambda: Registry(ws).register_candidate(
            data.labels, "gbm", months[:1], months[1], name="m"),
        "stage(dataset=None)": lambda: Registry(ws).stage(None, 1, **move),
        "validate_candidate(dataset=None)": lambda: Registry(ws).validate_candidate(
            None, 1, name="m"),
        "register_baseline(dataset=str)": lambda: registry.register_baseline(ws, "data"),
        "build_baseline(None)": lambda: registry.build_baseline(None),
        "register_prompt(template=None)": lambda: Registry(ws).register_prompt(
            "p", None, commit_message="c"),
        # names MLflow's filters would choke on, or that are not names at all
        "quoted model name": lambda: Registry(ws).register_candidate(
            data, "logistic", months[:2], months[3], name="a'b"),
        "list_versions quoted": lambda: Registry(ws).list_versions("a'b"),
        "model name with space": lambda: Registry(ws).get_version("lumen churn", version=1),
        "model name None": lambda: Registry(ws).aliases(None),
        "alias with slash": lambda: Registry(ws).get_version("m", alias="prod/1"),
        "alias empty": lambda: Registry(ws).model_uri("m", alias=""),
        "prompt name quoted": lambda: Registry(ws).register_prompt(
            "p'q", "t", commit_message="c"),
        "prompt tag None": lambda: Registry(ws).register_prompt(
            "p", "t", commit_message="c", tags={"owner": None}),
        "prompt alias bad": lambda: Registry(ws).set_prompt_alias("p", "a b", 1),
        "load_prompt both": lambda: Registry(ws).load_prompt("p", version=1, alias="x"),
        "read_audit quoted": lambda: Registry(ws).read_audit("a'b"),
        "aliases_from_audit None": lambda: Registry(ws).aliases_from_audit(None),
        "alias_timeline quoted": lambda: Registry(ws).alias_timeline("a'b"),
        # versions
        "version 0": lambda: Registry(ws).get_version("m", version=0),
        "version True": lambda: Registry(ws).load_model("m", version=True),
        "version 1.5": lambda: Registry(ws).model_uri("m", version=1.5),
        "version and alias": lambda: Registry(ws).get_version("m", version=1, alias="x"),
        # register_candidate arguments, all refused before training
        "seed -1": lambda: Registry(ws).register_candidate(
            data, "logistic", months[:2], months[3], name="m", seed=-1),
        "seed 1.0": lambda: Registry(ws).register_candidate(
            data, "logistic", months[:2], months[3], name="m", seed=1.0),
        "params unknown": lambda: Registry(ws).register_candidate(
            data, "gbm", months[:2], months[3], name="m", params={"trees": 3}),
        "params nan": lambda: Registry(ws).register_candidate(
            data, "gbm", months[:2], months[3], name="m", params={"learning_rate": nan}),
        "params negative": lambda: Registry(ws).register_candidate(
            data, "gbm", months[:2], months[3], name="m", params={"max_iter": -1}),
        "params not a mapping": lambda: Registry(ws).register_candidate(
            data, "gbm", months[:2], months[3], name="m", params=[("max_iter", 1)]),
        "duplicate months": lambda: Registry(ws).register_candidate(
            data, "logistic", [months[0], months[0]], months[3], name="m"),
        "month not a snapshot": lambda: Registry(ws).register_candidate(
            data, "logistic", ["2025-01-15"], months[3], name="m"),
        "month garbage": lambda: Registry(ws).register_candidate(
            data, "logistic", ["soon"], months[3], name="m"),
        "month NaT": lambda: Registry(ws).register_candidate(
            data, "logistic", [months[0]], pd.NaT, name="m"),
        "snapshots as a string": lambda: Registry(ws).register_candidate(
            data, "logistic", "2025-01-01", months[3], name="m"),
        "one-class training months": lambda: Registry(ws).register_candidate(
            one_class, "logistic", months[:2], months[3], name="m"),
        "note None": lambda: Registry(ws).register_candidate(
            data, "logistic", months[:2], months[3], name="m", note=None),
        # moves
        "stage month not a snapshot": lambda: Registry(ws).stage(
            data, 1, month="2031-01-01", **move),
        "stage policy dict": lambda: Registry(ws).stage(data, 1, policy={"margin": 0}, **move),
        "stage actor empty": lambda: Registry(ws).stage(data, 1, actor=" ", reason="r",
                                                    name="m"),
        "promote reason None": lambda: Registry(ws).promote(1, actor="a", reason=None,
                                                        name="m"),
        "promote naive clock": lambda: Registry(ws).promote(
            1, clock=lambda: datetime(2025, 1, 1), **move),
        "rollback clock not callable": lambda: Registry(ws).rollback(clock="now", **move),
        "rollback clock returns str": lambda: Registry(ws).rollback(
            clock=lambda: "2025-01-01", **move),
        "register_baseline seed": lambda: registry.register_baseline(ws, data, seed="0",
                                                                     name="fresh"),
        "validate_candidate policy": lambda: Registry(ws).validate_candidate(
            data, 1, name="m", policy=0.02),
        "gate_rows month": lambda: registry.gate_rows(data, "2031-01-01"),
        "registry_lock timeout inf": lambda: Registry(ws).lock(timeout=float("inf"))
            .__enter__(),
        "registry_lock timeout 0": lambda: Registry(ws).lock(timeout=0).__enter__(),
        # the policy and its inputs
        "policy nan floor": lambda: GatePolicy(min_roc_auc=nan),
        "policy inf margin": lambda: GatePolicy(margin=float("inf")),
        "decide nan estimate": lambda: policy.decide(Estimate(nan, nan, nan), None),
        "decide not an estimate": lambda: policy.decide(0.8, None),
        # version_tags
        "version_tags run id": lambda: registry.version_tags(
            data, data.labels, "gbm", [months[0]], months[1], {"roc_auc": 0.7}, "run-1"),
        "version_tags nan metric": lambda: registry.version_tags(
            data, data.labels, "gbm", [months[0]], months[1], {"roc_auc": nan}, "0" * 32),
        "version_tags frame": lambda: registry.version_tags(
            data, None, "gbm", [months[0]], months[1], {"roc_auc": 0.7}, "0" * 32),
        "version_tags code hash": lambda: registry.version_tags(
            data, data.labels, "gbm", [months[0]], months[1], {"roc_auc": 0.7}, "0" * 32,
            code_sha256="abc"),
    }


def test_every_public_function_refuses_bad_input_before_any_side_effect(sweep) -> None:
    ws, data = sweep
    before = _footprint(ws)
    calls = _bad_calls(ws, data)
    outcomes = {}
    for label, call in calls.items():
        try:
            call()
        except CompanionError as error:
            outcomes[label] = type(error).__name__
        except Exception as error:  # noqa: BLE001 - reported below with its label
            outcomes[label] = f"NOT A COMPANION ERROR: {type(error).__name__}: {error}"
        else:
            outcomes[label] = "ACCEPTED"
    wrong = {k: v for k, v in outcomes.items() if not v.endswith("Error") or "NOT" in v}
    assert not wrong, wrong
    assert _footprint(ws) == before  # no run, no version, no model, no alias, no lock, no audit


@pytest.mark.parametrize(
    ("call", "pattern"),
    [
        (lambda ws, d: Registry(ws).list_versions("a'b"),
         r"model name must be .*letters, digits, '-', '_' and '\.', got \"a'b\""),
        (lambda ws, d: Registry(None),
         "workspace must be a workspace .*got NoneType"),
        (lambda ws, d: registry.gate_rows(d.labels, d.snapshots[0]),
         r"dataset must be a ChurnDataset .*of type DataFrame"),
        (lambda ws, d: Registry(ws).register_candidate(
            d, "logistic", [d.snapshots[0]] * 2, d.snapshots[3], name="m"),
         r"repeats \['2025-01-01'\]; each snapshot may appear once"),
        (lambda ws, d: Registry(ws).register_candidate(
            d, "gbm", d.snapshots[:1], d.snapshots[3], name="m", params={"trees": 3}),
         "has no parameter 'trees'; accepted: .*max_iter"),
        (lambda ws, d: Registry(ws).register_candidate(
            d, "gbm", d.snapshots[:1], d.snapshots[3], name="m", params={"max_iter": 0}),
         "refuses params"),
        (lambda ws, d: Registry(ws).register_candidate(
            d, "logistic", ["2025-01-15"], d.snapshots[3], name="m"),
         r"training snapshot 2025-01-15 is not a snapshot of the dataset; accepted: 2025-01-01"),
        (lambda ws, d: Registry(ws).promote(1, actor="a", reason="r", name="m",
                                        clock=lambda: datetime(2025, 1, 1)),
         "clock must return a timezone-aware datetime, it returned datetime"),
        (lambda ws, d: Registry(ws).lock(timeout=-1).__enter__(),
         "timeout must be a finite number > 0, got -1"),
        (lambda ws, d: Registry(ws).register_prompt("p", "t", commit_message="c",
                                                tags={"owner": None}),
         "tags must map non-empty strings to strings"),
    ],
)
def test_bad_input_errors_name_the_value_and_what_is_accepted(sweep, call, pattern) -> None:
    ws, data = sweep
    with pytest.raises(CompanionError, match=pattern):
        call(ws, data)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=st.text(min_size=0, max_size=20))
def test_any_name_is_accepted_only_if_mlflow_filters_take_it(sweep, name) -> None:
    ws, _ = sweep
    valid = re.fullmatch(r"[A-Za-z0-9_.-]+", name) is not None
    try:
        Registry(ws).aliases(name)
    except UnknownNameError:
        assert valid  # a valid name that is not registered: looked up, not found
    except InvalidParameterError as error:
        assert not valid and repr(name) in str(error)
    else:
        assert name == "m"


def test_alias_timeline_replays_spans_from_the_audit(ws, dataset) -> None:
    name = "timeline"
    times = iter(datetime(2025, m, 1, tzinfo=UTC) for m in range(2, 12))
    clock = lambda: next(times)  # noqa: E731
    first = register(ws, dataset, name, holdout=1, **STUMP)
    Registry(ws).stage(dataset, first.version, actor="x", reason="r", name=name, clock=clock,
                   policy=LENIENT)
    Registry(ws).promote(first.version, actor="x", reason="r", name=name, clock=clock)
    second = register(ws, dataset, name, holdout=3)
    Registry(ws).stage(dataset, second.version, actor="y", reason="r", name=name, clock=clock,
                   policy=LENIENT)
    Registry(ws).promote(second.version, actor="y", reason="r", name=name, clock=clock)
    Registry(ws).rollback(actor="z", reason="r", name=name, clock=clock)
    spans = Registry(ws).alias_timeline(name)
    assert list(zip(spans["alias"], spans["version"], strict=True)) == [
        ("staging", 1), ("production", 1), ("staging", 2), ("production", 2), ("production", 1)]
    assert [t.month for t in spans["start"]] == [2, 3, 4, 5, 6]
    assert [None if pd.isna(t) else t.month for t in spans["end"]] == [3, 5, 5, 6, None]
    assert list(spans["moved_by"]) == ["stage by x", "promote by x", "stage by y",
                                       "promote by y", "rollback by z"]
    assert spans.iloc[1]["ended_by"] == "promote by y"
    assert Registry(ws).aliases(name) == {"production": 1}
    audit = Registry(ws).read_audit(name)
    assert list(audit["time"]) == [f"2025-{m:02d}-01T00:00:00+00:00" for m in range(2, 7)]


def test_ensure_model_creates_once_and_refuses_a_bad_name(tmp_path):
    from companion.errors import InvalidParameterError
    from companion.registry import Registry

    registry = Registry.at(f"sqlite:///{tmp_path / 'mlflow.db'}", audit_dir=tmp_path / "audit")
    registry.ensure_model("churn", description="first")
    registry.ensure_model("churn", description="second")  # already there: left as it is
    assert registry.registered_models() == ["churn"]
    assert registry.client.get_registered_model("churn").description == "first"
    with pytest.raises(InvalidParameterError):
        registry.ensure_model("")
