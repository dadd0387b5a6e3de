"""The loop's steps through the real lifecycle: chapter 7's pipeline, 6's registry, 8's router.

:class:`RegistryDeployer` is the deployer the chapter follows for one policy in detail (the
comparison of every policy uses :class:`~companion.retraining.deploy.InMemoryDeployer`, with
the same definitions and no store):

- **retrain**: the month's export is written (:func:`~companion.pipelines.write_export`) and
  chapter 7's pipeline runs its steps ``ingest -> validate -> features -> train -> evaluate``
  in process (:func:`~companion.pipelines.run_local`): point-in-time features from the
  export, a data-quality failure stops the run at ``validate``. The fitted model is logged in
  an MLflow run and registered as a new version with chapter 6's lineage tags
  (:func:`~companion.registry.version_tags`, training snapshots and holdout month included);
- **gate**: :meth:`Registry.stage` (the interval-based gate, audited; a refusal changes
  nothing);
- **canary**: a :class:`~companion.deployment.Router` with the production and staged
  versions as in-process arms, ``canary_share`` of the month's customers to the new one, every
  request in a :class:`~companion.deployment.PredictionLog`;
- **promote** and **rollback**: :meth:`Registry.promote` and :meth:`Registry.rollback`; after a
  rollback the model loaded from ``@production`` scores the month again and must give the
  previous version's scores exactly.

Files go under ``workspace.path / "retraining"`` (exports, pipeline runs, prediction logs).
"""

from __future__ import annotations

import json
import logging
import pickle
import shutil
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd

from companion.core.checks import check_text
from companion.core.types import WorkspaceLike, check_workspace
from companion.deployment import Arm, PredictionLog, Router
from companion.errors import (
    DataQualityError,
    InvalidParameterError,
    PipelineError,
    PromotionRefusedError,
)
from companion.registry import (
    EXPERIMENT,
    MODEL_NAME,
    PRODUCTION,
    GatePolicy,
    Registry,
    version_tags,
)
from companion.retraining.deploy import Candidate, GateOutcome, InMemoryDeployer, score
from companion.training import FEATURES

__all__ = ["ACTOR", "MONTH_CLOCK", "RegistryDeployer"]

logger = logging.getLogger(__name__)

ACTOR = "retraining-loop"
"""Who the registry's audit log says moved the aliases."""

MONTH_CLOCK = "month"
"""The ``clock`` that stamps each move at 09:00 UTC on the first day of the loop's month."""

_STEPS = ["ingest", "validate", "features", "train", "evaluate"]


class RegistryDeployer(InMemoryDeployer):
    """The lifecycle's steps through the pipeline, the registry and the router.

    Args:
        workspace: a workspace with the ``baseline`` (production v1) and ``data``.
        year: the shared year of the workspace's dataset.
        policy_name: recorded in the versions' tags and the audit reasons.
        clock: what stamps the registry's audit lines: None (the wall clock), a callable
            returning an aware ``datetime``, or ``"month"``: 09:00 UTC on the first day of the
            month the loop is deciding for (the story's date; the same file on every run).
    """

    def __init__(self, workspace: WorkspaceLike, year: Any, *, policy_name: str = "loop",
                 clock: Any = None) -> None:
        check_workspace(workspace)
        check_text("policy_name", policy_name)
        if not (clock is None or clock == MONTH_CLOCK or callable(clock)):
            raise InvalidParameterError(
                f"clock must be None, {MONTH_CLOCK!r} or a callable returning a datetime, "
                f"got {clock!r}")
        super().__init__(year)
        self.workspace = workspace
        self.policy_name = policy_name
        self.registry = Registry(workspace)
        self.root = workspace.path / "retraining" / policy_name
        self.clock = clock
        self.checks: list[dict[str, Any]] = []

    def _moves(self) -> dict[str, Any]:
        if self.clock is None:
            return {}
        if self.clock == MONTH_CLOCK:
            if not self.month:
                raise InvalidParameterError("the month clock needs begin_month() first")
            stamp = datetime.fromisoformat(f"{self.month[:10]}T09:00:00+00:00")
            return {"clock": lambda: stamp}
        return {"clock": self.clock}

    def baseline(self) -> Candidate:
        """Production as the registry holds it (chapter 6's baseline)."""
        found = self.registry.get_version(MODEL_NAME, alias=PRODUCTION)
        model = self.registry.load_model(MODEL_NAME, alias=PRODUCTION)
        tags = found.tags
        months = tuple(tags["data.training_snapshots"].split(","))
        first = Candidate(int(found.version), model, months, tags["data.holdout_snapshot"], 0,
                          0.0)
        super().gate(first, None, GatePolicy())
        self.history.append(first.version)
        return first

    def retrain(self, export_month: str, train_months: list[str], holdout: str,
                fault: str = "") -> Candidate:
        """Export, run the pipeline up to ``evaluate``, register the model.

        A ``worse_candidate`` fault is fitted outside the pipeline (on shuffled labels) and
        registered the same way.

        Raises:
            DataQualityError: the pipeline's ``validate`` step refused the export.
        """
        from companion.pipelines import LUMEN, run_local, write_export

        label = export_month[:7]
        export = self.root / "exports" / label
        run_dir = self.root / "runs" / label
        if export.exists():
            shutil.rmtree(export)
        write_export(self.year.dataset, export_month, export)
        try:
            run_local(LUMEN, run_dir, params={"tracking_uri": self.workspace.tracking_uri,
                                              "train_months": len(train_months)},
                      inputs={"export": export}, only=_STEPS)
        except PipelineError as exc:
            cause = exc.__cause__
            if isinstance(cause, DataQualityError) or "data-quality" in str(exc):
                raise DataQualityError(f"pipeline run {label}: {exc}") from exc
            raise
        frame = pd.read_parquet(run_dir / "features.parquet")
        training = frame[frame["snapshot_timestamp"] < pd.Timestamp(holdout)]
        if fault == "worse_candidate":
            model, _ = self._fit(list(train_months), fault)
        else:
            model = pickle.loads((run_dir / "model.pkl").read_bytes())  # noqa: S301
        metrics = json.loads((run_dir / "metrics.json").read_text(encoding="utf-8"))
        version = self._register(model, training, list(train_months), holdout, metrics, label)
        serving = fault if fault in ("serving_skew", "misjoin") else ""
        from companion.retraining.deploy import fitted_work

        return Candidate(version, model, tuple(train_months), holdout, len(training),
                         fitted_work(model, len(training)), serving)

    def _register(self, model: Any, training: pd.DataFrame, months: list[str], holdout: str,
                  metrics: dict[str, Any], label: str) -> int:
        import mlflow

        from companion.core.env import quiet
        from companion.tracking import log_sklearn_model

        registry = self.registry
        numbers = {"roc_auc": float(metrics["roc_auc"])}
        with quiet("mlflow", "alembic"), registry.fluent(), mlflow.start_run(
                experiment_id=registry.experiment_id(EXPERIMENT),
                run_name=f"retrain {label}") as run:
            mlflow.log_params({"kind": "gbm", "training_snapshots": ",".join(months),
                               "holdout_snapshot": holdout, "policy": self.policy_name})
            mlflow.log_metrics({f"holdout_{k}": v for k, v in numbers.items()})
            info = log_sklearn_model(model, training)
            run_id = run.info.run_id
        tags = version_tags(self.year.dataset, training, "gbm", months, holdout, numbers,
                            run_id)
        tags.update({"pipeline.name": "lumen-training", "pipeline.run": f"retraining/{label}",
                     "retraining.policy": self.policy_name})
        with quiet("mlflow", "alembic"), registry.fluent():
            version = registry.client.create_model_version(
                MODEL_NAME, source=info.model_uri, run_id=run_id, tags=tags,
                description=f"retrained by policy {self.policy_name} for {label}",
                model_id=info.model_id)
        return int(version.version)

    def gate(self, candidate: Candidate, production: Candidate | None,
             policy: GatePolicy) -> GateOutcome:
        """The registry's gate through :meth:`Registry.stage` (audited either way)."""
        numbers = super().gate(candidate, production, policy)  # the same intervals, in memory
        try:
            decision = self.registry.stage(
                self.year.dataset, candidate.version, actor=ACTOR, month=candidate.holdout,
                reason=f"{self.policy_name}: retrained for {candidate.holdout[:7]}",
                policy=policy, **self._moves())
        except PromotionRefusedError as exc:
            return GateOutcome(False, str(exc), numbers.candidate, numbers.difference)
        return GateOutcome(True, decision.reason, decision.candidate, decision.difference)

    def stage(self, candidate: Candidate, outcome: GateOutcome) -> None:
        """Staged by the gate already."""

    def canary(self, candidate: Candidate, production: Candidate, rows: pd.DataFrame,
               share: float, salt: str) -> tuple[np.ndarray, np.ndarray]:
        """Route every customer of the month through chapter 8's router, logged."""
        ids = rows["customer_id"].to_numpy()
        tables = {}
        for model in (production, candidate):
            tables[model.version] = dict(zip(ids.tolist(), score(model, rows, served=True,
                                                                 salt=salt), strict=True))

        def arm(model: Candidate) -> Arm:
            table = tables[model.version]
            return Arm(scorer=lambda cid: float(table[int(cid)]),
                       model_version=str(model.version))

        log = PredictionLog(self.root / "predictions" / f"{salt[:7]}.jsonl")
        router = Router(arm(production), arm(candidate), log=log, salt=f"canary-{salt[:7]}",
                        weights={"champion": 1.0 - share, "challenger": share})
        answers = [router.route(int(c), request_id=f"{salt[:7]}-{int(c)}") for c in ids]
        served = np.array([a.score for a in answers])
        mask = np.array([a.arm == "challenger" for a in answers])
        return served, mask

    def promote(self, candidate: Candidate, reason: str) -> None:
        """Move ``@production`` to the staged candidate."""
        self.registry.promote(candidate.version, actor=ACTOR, reason=reason[:500],
                              **self._moves())
        self.history.append(candidate.version)

    def rollback(self, reason: str, rows: pd.DataFrame, previous: Candidate) -> bool:
        """Roll ``@production`` back; True if the model it now loads scores as ``previous``."""
        self.registry.rollback(actor=ACTOR, reason=reason, **self._moves())
        self.history.pop()
        loaded = self.registry.load_model(MODEL_NAME, alias=PRODUCTION)
        now = np.asarray(loaded.predict_proba(rows[FEATURES]))[:, 1]
        before = score(previous, rows)
        same = bool(np.array_equal(now, before))
        self.checks.append({"version": previous.version, "rows": len(rows), "same": same})
        return same
