"""The loop through the real lifecycle: chapter 7's pipeline, 6's registry, 8's router."""

from __future__ import annotations

import numpy as np
import pytest

from companion import retraining as rt
from companion.data import SimulationConfig
from companion.registry import GatePolicy, Registry
from companion.training import FEATURES
from companion.workspace import Workspace


@pytest.fixture(scope="module")
def lifecycle(tmp_path_factory):
    from test_retraining import ALERTS as alerts

    ws = Workspace.create("11-retraining-test", root=tmp_path_factory.mktemp("rt"),
                          config=SimulationConfig(n_customers=3000, seed=42))
    dataset = ws.require("data")
    ws.require("baseline")
    year = rt.prepare_year(dataset, alerts)
    return ws, year


@pytest.mark.slow
def test_misjoined_deployment_is_rolled_back_through_the_registry(lifecycle):
    ws, year = lifecycle
    policy = rt.RetrainPolicy("drift", gate=GatePolicy(0.6, 0.05, "non-inferiority"))
    deployer = rt.RegistryDeployer(ws, year, policy_name="drift", clock=rt.MONTH_CLOCK)
    result = rt.run_year(year, policy, deployer=deployer, faults=[rt.Fault("2025-07", "misjoin")])
    steps = [(d.month, d.step, d.outcome) for d in result.decisions if d.step != "trigger"]
    assert ("2025-07", "promote", "done") in steps
    assert result.count("rollback", "done") == 1
    registry = Registry(ws)
    audit = registry.read_audit()
    assert list(audit["action"])[:5] == ["stage", "promote", "stage", "promote", "rollback"]
    rollback = audit[audit["action"] == "rollback"].iloc[0]
    assert (int(rollback["version"]), int(rollback["previous"])) == (1, 2)
    # the month clock stamps each move with the story's date: the month the loop decided it
    moves = audit[audit["actor"] == rt.lifecycle.ACTOR]
    decided = [(d.step, f"{d.month}-01T09:00") for d in result.decisions
               if d.step in ("promote", "rollback")]
    stamped = [(a, str(t)[:16]) for a, t in zip(moves["action"], moves["time"], strict=True)
               if a in ("promote", "rollback")]
    assert stamped == decided and stamped[0] == ("promote", "2025-07-01T09:00")
    # @production predicts exactly as the version it returned to
    assert deployer.checks == [{"version": 1, "rows": deployer.checks[0]["rows"], "same": True}]
    rows = year.rows("2025-12-01")
    # the comparison's first model (in memory) is chapter 6's baseline, score for score
    first = registry.load_model(version=1)
    in_memory = rt.InMemoryDeployer(year).baseline()
    assert np.array_equal(first.predict_proba(rows[FEATURES]),
                          in_memory.model.predict_proba(rows[FEATURES]))
    # the canary went through the router: one logged request per customer of July
    logged = (ws.path / "retraining" / "drift" / "predictions" / "2025-07.jsonl").read_text()
    assert len(logged.splitlines()) == len(year.rows("2025-07-01"))
    version = registry.get_version(version=2)
    assert version.tags["retraining.policy"] == "drift"
    assert version.tags["data.training_snapshots"] == "2025-03-01,2025-04-01,2025-05-01"
    assert version.tags["gate.result"] == "passed"


@pytest.mark.slow
def test_quality_month_stops_the_pipeline_before_the_registry(lifecycle):
    ws, year = lifecycle
    registry = Registry(ws)
    before = [int(v.version) for v in registry.versions()]
    december = rt.RetrainPolicy("scheduled", every_months=11, name="december")
    result = rt.run_year(year, december, deployer=rt.RegistryDeployer(ws, year,
                                                                      policy_name="december"))
    failed = [d for d in result.decisions if d.step == "retrain"]
    assert [(d.month, d.outcome) for d in failed] == [("2025-12", "failed")]
    assert "validate" in failed[0].reason and "units" in failed[0].reason
    assert [int(v.version) for v in registry.versions()] == before
    assert result.count("promote", "done") == 0
