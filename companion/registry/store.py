"""The registry as an object: one MLflow client over one store, and every operation on it.

:class:`Registry` holds one :class:`~mlflow.tracking.MlflowClient` built with explicit tracking
and registry URIs, and the audit log of its alias moves. Reading (models, versions, aliases,
loading a model) is here; registering a candidate, the gate, the moves and the prompts are
methods too, whose bodies live in :mod:`~companion.registry.candidates`,
:mod:`~companion.registry.gate`, :mod:`~companion.registry.moves` and
:mod:`~companion.registry.prompts`.

No method changes MLflow's process-wide state: where MLflow's fluent API is unavoidable
(runs, ``models:/`` URIs), :meth:`Registry.fluent` points it at this store for that block
only (:func:`companion.core.mlflow_store.using_store`). MLflow's INFO and WARNING log lines are
kept off the reader's screen while a method runs (:func:`companion.core.env.quiet`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

import companion.registry.candidates as candidates
import companion.registry.gate as gate
import companion.registry.moves as moves
import companion.registry.prompts as prompts
from companion.core.checks import check_path
from companion.core.env import quiet
from companion.core.mlflow_store import using_store
from companion.core.types import WorkspaceLike, check_workspace
from companion.data import ChurnDataset
from companion.errors import InvalidParameterError, UnknownNameError
from companion.registry.audit import LOCK_TIMEOUT_SECONDS, AuditLog
from companion.registry.names import (
    EXPERIMENT,
    MODEL_NAME,
    Clock,
    check_name,
    check_one_of,
    check_version,
    is_missing,
    utc_now,
)
from companion.registry.policy import GateDecision, GatePolicy

if TYPE_CHECKING:  # pragma: no cover - annotations only
    from mlflow.entities.model_registry import ModelVersion, PromptVersion
    from sklearn.pipeline import Pipeline

    from companion.registry.candidates import RegisteredVersion

__all__ = ["Registry"]

_quietly = quiet("mlflow")


class Registry:
    """The model registry of one MLflow store: versions with lineage, a gate, aliases, an audit.

    ``Registry(workspace)`` opens the registry of a chapter's workspace: its MLflow store
    (``workspace.require("mlflow")``), its artifact folder and its audit log
    (``registry/audit.jsonl``). :meth:`Registry.at` opens one given by URIs (a tracking
    server, a project's own store).

    Example:
        >>> reg = Registry.at("sqlite:///mlflow.db", audit_dir="registry")  # doctest: +SKIP
        >>> reg.aliases("lumen-churn")  # doctest: +SKIP
        {'production': 1}
    """

    tracking_uri: str
    registry_uri: str
    artifact_root: Path | None
    audit: AuditLog

    def __init__(self, workspace: WorkspaceLike) -> None:
        check_workspace(workspace)
        self._open(workspace.require("mlflow"), None, workspace.path / "registry",
                   workspace.artifact_root)

    @classmethod
    def at(
        cls,
        tracking_uri: str,
        *,
        audit_dir: str | Path,
        registry_uri: str | None = None,
        artifact_root: str | Path | None = None,
    ) -> Registry:
        """Open the registry of the store at ``tracking_uri`` (and ``registry_uri``).

        Args:
            tracking_uri: e.g. ``sqlite:///path/mlflow.db`` or ``http://127.0.0.1:5000``.
            audit_dir: the folder of the audit log and the lock.
            registry_uri: the model registry's URI (default: the tracking URI).
            artifact_root: the folder of new experiments' artifacts (default: the store's).
        """
        registry = object.__new__(cls)
        registry._open(tracking_uri, registry_uri, audit_dir, artifact_root)
        return registry

    def _open(
        self,
        tracking_uri: Any,
        registry_uri: Any,
        audit_dir: Any,
        artifact_root: Any,
    ) -> None:
        from mlflow.tracking import MlflowClient

        for label, uri in (("tracking_uri", tracking_uri), ("registry_uri", registry_uri)):
            if uri is None and label == "registry_uri":
                continue
            if not isinstance(uri, str) or "://" not in uri:
                raise InvalidParameterError(
                    f"{label} must be an MLflow URI such as 'sqlite:///path/mlflow.db' or "
                    f"'http://127.0.0.1:5000', got {uri!r}"
                )
        self.tracking_uri = tracking_uri
        self.registry_uri = registry_uri or tracking_uri
        self.audit = AuditLog(audit_dir)
        self.artifact_root = (
            None if artifact_root is None else check_path("artifact_root", artifact_root)
        )
        self.client = MlflowClient(tracking_uri=self.tracking_uri, registry_uri=self.registry_uri)

    def __repr__(self) -> str:
        return f"Registry({self.registry_uri!r})"

    # ----------------------------------------------------------------------- the store

    @contextlib.contextmanager
    def fluent(self) -> Iterator[str]:
        """Point MLflow's fluent API (runs, ``models:/`` URIs) at this store for the block."""
        with using_store(self.tracking_uri, self.registry_uri) as uri:
            yield uri

    def experiment_id(self, name: str = EXPERIMENT) -> str:
        """Return the id of experiment ``name``, created with its artifacts under the root."""
        from companion.tracking import ensure_experiment_at

        location = None if self.artifact_root is None else (
            (self.artifact_root / name.replace(" ", "-")).as_uri()
        )
        return ensure_experiment_at(self.tracking_uri, name, artifact_location=location)

    def ensure_model(self, name: str, description: str = "") -> None:
        """Create registered model ``name`` (with ``description``) unless it exists already."""
        from mlflow.exceptions import MlflowException

        from companion.registry.names import is_missing

        check_name("model name", name)
        try:
            self.client.get_registered_model(name)
        except MlflowException as exc:
            if not is_missing(exc):
                raise
            self.client.create_registered_model(name, description=description or None)

    # ----------------------------------------------------------------------- reading

    @_quietly
    def registered_models(self) -> list[str]:
        """Return the names of the registered models, sorted."""
        return sorted(m.name for m in self.client.search_registered_models())

    def require_model(self, name: str) -> None:
        """Raise :class:`UnknownNameError` (naming the models there are) unless ``name`` exists."""
        from mlflow.exceptions import MlflowException

        check_name("model name", name)
        try:
            self.client.get_registered_model(name)
        except MlflowException as exc:
            if not is_missing(exc):
                raise
            known = self.registered_models()
            raise UnknownNameError(
                f"registered model {name!r} does not exist; known: "
                f"{', '.join(map(repr, known)) if known else 'none yet'}"
            ) from None

    def versions(self, name: str = MODEL_NAME) -> list[ModelVersion]:
        """Return the versions of model ``name``, oldest first."""
        check_name("model name", name)
        found = self.client.search_model_versions(f"name = '{name}'")
        return sorted(found, key=lambda v: int(v.version))

    @_quietly
    def aliases(self, name: str = MODEL_NAME) -> dict[str, int]:
        """Return the aliases of model ``name`` and the versions they point at."""
        self.require_model(name)
        model = self.client.get_registered_model(name)
        return {alias: int(version) for alias, version in sorted(model.aliases.items())}

    @_quietly
    def get_version(
        self, name: str = MODEL_NAME, *, version: int | str | None = None, alias: str | None = None
    ) -> ModelVersion:
        """Return one model version of ``name``, by number or by alias.

        Raises:
            UnknownNameError: the model, the version or the alias does not exist; the message
                lists what does.
        """
        from mlflow.exceptions import MlflowException

        check_one_of(version, alias)
        self.require_model(name)
        if alias is not None:
            known = self.aliases(name)
            if alias not in known:
                listed = ", ".join(f"{a!r} -> v{v}" for a, v in known.items()) or "none set"
                raise UnknownNameError(
                    f"model {name!r} has no alias {alias!r}; aliases set: {listed}"
                )
            return self.client.get_model_version_by_alias(name, alias)
        number = check_version(version)
        try:
            return self.client.get_model_version(name, str(number))
        except MlflowException as exc:
            if not is_missing(exc):
                raise
            existing = [int(v.version) for v in self.versions(name)]
            raise UnknownNameError(
                f"model {name!r} has no version {number}; versions: {existing or 'none yet'}"
            ) from None

    def model_uri(
        self, name: str = MODEL_NAME, *, version: int | str | None = None, alias: str | None = None
    ) -> str:
        """Return ``models:/name/version`` or ``models:/name@alias`` after checking it exists."""
        found = self.get_version(name, version=version, alias=alias)
        return f"models:/{name}@{alias}" if alias is not None else f"models:/{name}/{found.version}"

    @_quietly
    def load_model(
        self, name: str = MODEL_NAME, *, version: int | str | None = None, alias: str | None = None
    ) -> Pipeline:
        """Load the scikit-learn pipeline a version or an alias of ``name`` points at."""
        import mlflow.sklearn

        uri = self.model_uri(name, version=version, alias=alias)
        with self.fluent():
            return mlflow.sklearn.load_model(uri)

    @_quietly
    def list_versions(self, name: str = MODEL_NAME) -> pd.DataFrame:
        """Return one row per version of ``name``: aliases, lineage and metrics (no run ids).

        Columns: ``version, aliases, kind, trained_on`` (first..last training month),
        ``holdout``, ``data_hash`` (the dataset's content hash, first 12 characters),
        ``features`` (the Feast feature service the version reads), ``holdout_auc`` (ROC AUC
        on the holdout month at training time) and ``gate`` (``passed`` once it passed).
        """
        self.require_model(name)
        by_version: dict[int, list[str]] = {}
        for alias, number in self.aliases(name).items():
            by_version.setdefault(number, []).append(alias)
        rows = []
        for v in self.versions(name):
            tags = v.tags
            snapshots = tags.get("data.training_snapshots", "").split(",")
            rows.append({
                "version": int(v.version),
                "aliases": ",".join(sorted(by_version.get(int(v.version), []))),
                "kind": tags.get("model.kind", ""),
                "trained_on": f"{snapshots[0][:7]}..{snapshots[-1][:7]}" if snapshots[0] else "",
                "holdout": tags.get("data.holdout_snapshot", "")[:7],
                "data_hash": tags.get("data.dataset_hash", "")[:12],
                "features": tags.get("features.service", ""),
                "holdout_auc": float(tags.get("metrics.holdout_roc_auc", "nan")),
                "gate": tags.get("gate.result", ""),
            })
        return pd.DataFrame(rows).set_index("version")

    @_quietly
    def registry_state(self, name: str = MODEL_NAME) -> dict[str, Any]:
        """Return everything the registry holds about ``name``: aliases, versions, tags, texts.

        Two equal states mean nothing in the registry changed in between.
        """
        self.require_model(name)
        return {
            "aliases": self.aliases(name),
            "versions": {
                int(v.version): {"tags": dict(v.tags), "description": v.description}
                for v in self.versions(name)
            },
        }

    # ----------------------------------------------------------------------- the audit

    @property
    def audit_path(self) -> Path:
        """The append-only audit log of alias moves (``registry/audit.jsonl`` in a workspace)."""
        return self.audit.path

    def lock(
        self, timeout: float = LOCK_TIMEOUT_SECONDS
    ) -> contextlib.AbstractContextManager[None]:
        """The registry's exclusive lock: moves hold it while they read, decide, move, audit."""
        return self.audit.lock(timeout)

    def read_audit(self, name: str | None = MODEL_NAME) -> pd.DataFrame:
        """Return the audit log (of model ``name``, or of all models if None) as a table."""
        return self.audit.read(name)

    def aliases_from_audit(self, name: str = MODEL_NAME) -> dict[str, int]:
        """Replay the audit log: the aliases it says ``name`` should have (see :meth:`aliases`)."""
        return self.audit.aliases(name)

    def alias_timeline(self, name: str = MODEL_NAME) -> pd.DataFrame:
        """Replay the audit log into the spans during which each alias held each version."""
        return self.audit.timeline(name)

    # ----------------------------------------------------------------------- candidates

    @_quietly
    def register_candidate(
        self,
        dataset: ChurnDataset,
        kind: str,
        training_snapshots: Sequence[Any],
        holdout_snapshot: Any,
        *,
        name: str = MODEL_NAME,
        seed: int = 0,
        params: Mapping[str, Any] | None = None,
        note: str = "",
    ) -> RegisteredVersion:
        """Train a churn model, log it in a run and register it as a new version of ``name``.

        See :func:`companion.registry.candidates.register_candidate`.
        """
        return candidates.register_candidate(
            self, dataset, kind, training_snapshots, holdout_snapshot,
            name=name, seed=seed, params=params, note=note,
        )

    # ----------------------------------------------------------------------- gate and moves

    @_quietly
    def validate_candidate(
        self,
        dataset: ChurnDataset,
        version: int | str,
        *,
        name: str = MODEL_NAME,
        month: Any = None,
        policy: GatePolicy | None = None,
    ) -> GateDecision:
        """Run the validation gate for ``version`` against production; change nothing.

        See :func:`companion.registry.gate.validate_candidate`.
        """
        return gate.validate_candidate(self, dataset, version, name=name, month=month,
                                       policy=policy)

    @_quietly
    def stage(
        self,
        dataset: ChurnDataset,
        version: int | str,
        *,
        actor: str,
        reason: str,
        name: str = MODEL_NAME,
        month: Any = None,
        policy: GatePolicy | None = None,
        clock: Clock = utc_now,
    ) -> GateDecision:
        """Put ``version`` in ``staging`` if it passes the gate; refuse (audited) otherwise.

        See :func:`companion.registry.moves.stage`.
        """
        return moves.stage(self, dataset, version, actor=actor, reason=reason, name=name,
                           month=month, policy=policy, clock=clock)

    @_quietly
    def promote(
        self,
        version: int | str,
        *,
        actor: str,
        reason: str,
        name: str = MODEL_NAME,
        clock: Clock = utc_now,
    ) -> dict[str, Any]:
        """Move ``production`` to ``version``, which must be in ``staging``; return the audit line.

        See :func:`companion.registry.moves.promote`.
        """
        return moves.promote(self, version, actor=actor, reason=reason, name=name, clock=clock)

    @_quietly
    def rollback(
        self, *, actor: str, reason: str, name: str = MODEL_NAME, clock: Clock = utc_now
    ) -> dict[str, Any]:
        """Return ``production`` to the version it held before the last promotion.

        See :func:`companion.registry.moves.rollback`.
        """
        return moves.rollback(self, actor=actor, reason=reason, name=name, clock=clock)

    # ----------------------------------------------------------------------- prompts

    @_quietly
    def register_prompt(
        self,
        name: str,
        template: str,
        *,
        commit_message: str,
        tags: Mapping[str, str] | None = None,
    ) -> PromptVersion:
        """Register ``template`` as the next version of prompt ``name``.

        See :func:`companion.registry.prompts.register_prompt`.
        """
        return prompts.register_prompt(self, name, template, commit_message=commit_message,
                                       tags=tags)

    @_quietly
    def load_prompt(
        self, name: str, *, version: int | str | None = None, alias: str | None = None
    ) -> PromptVersion:
        """Load prompt ``name`` by version number or by alias (never from a cache).

        See :func:`companion.registry.prompts.load_prompt`.
        """
        return prompts.load_prompt(self, name, version=version, alias=alias)

    @_quietly
    def set_prompt_alias(self, name: str, alias: str, version: int | str) -> None:
        """Point alias ``alias`` of prompt ``name`` at ``version`` (which must exist)."""
        prompts.set_prompt_alias(self, name, alias, version)

