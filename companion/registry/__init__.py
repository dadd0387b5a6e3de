"""The model registry: versions with lineage, a validation gate, aliases, an audit trail, prompts.

Every churn model Lumen trains becomes a *version* of one registered model in an MLflow
registry. Its description and tags say what it was built from, as one lineage thread: the
Feast feature service whose features it reads (``churn_model_v1``, see
:data:`companion.features.FEATURE_VERSIONS`), the MLflow run that trained it, the code that
trained it (a SHA-256 of :data:`CODE_FILES`), the data and the metrics. *Aliases* (``staging``,
``production``) say which version does what; MLflow's deprecated stages are not used.

``reg = Registry(workspace)`` opens the registry of a chapter's workspace: one MLflow client
with explicit URIs, and the audit log. Its methods register candidates, run the validation
gate, move the aliases (``stage``, ``promote``, ``rollback``: every move and refusal audited,
under a lock) and version prompt templates. No call changes MLflow's process-wide settings.

The package, one concern per module:

- :mod:`~companion.registry.names`: the model, aliases, feature service, code files; checks.
- :mod:`~companion.registry.policy`: :class:`GatePolicy` and :class:`GateDecision`.
- :mod:`~companion.registry.store`: :class:`Registry`, reading versions, aliases and models.
- :mod:`~companion.registry.candidates`: training and registering a candidate.
- :mod:`~companion.registry.gate`: the gate's month, rows, scoring and decision.
- :mod:`~companion.registry.moves`: staging, promotion and rollback.
- :mod:`~companion.registry.audit`: the audit log and the lock.
- :mod:`~companion.registry.prompts`: prompt templates.
- :mod:`~companion.registry.baseline`: the workspace prerequisite ``"baseline"``.

Nothing happens at import: MLflow is imported and a store touched only when called.

Example:
    >>> GatePolicy(min_roc_auc=0.6, margin=0.02).bound
    0.02
"""

from __future__ import annotations

from companion.errors import PromotionRefusedError
from companion.registry.audit import AUDIT_ACTIONS, LOCK_TIMEOUT_SECONDS, AuditLog
from companion.registry.baseline import build_baseline, register_baseline
from companion.registry.candidates import RegisteredVersion, version_tags
from companion.registry.gate import gate_rows, oracle_interval
from companion.registry.names import (
    ALIAS_PATTERN,
    ALIASES,
    CODE_FILES,
    EXPERIMENT,
    FEATURE_SERVICE,
    FEATURE_SET_DIGEST,
    FEATURE_VERSION,
    MODEL_NAME,
    NAME_PATTERN,
    PRODUCTION,
    STAGING,
    code_hash,
)
from companion.registry.policy import GATE_RULES, GateDataError, GateDecision, GatePolicy
from companion.registry.store import Registry

__all__ = [
    "ALIASES",
    "ALIAS_PATTERN",
    "AUDIT_ACTIONS",
    "CODE_FILES",
    "EXPERIMENT",
    "FEATURE_SERVICE",
    "FEATURE_SET_DIGEST",
    "FEATURE_VERSION",
    "GATE_RULES",
    "LOCK_TIMEOUT_SECONDS",
    "MODEL_NAME",
    "NAME_PATTERN",
    "PRODUCTION",
    "STAGING",
    "AuditLog",
    "GateDataError",
    "GateDecision",
    "GatePolicy",
    "PromotionRefusedError",
    "RegisteredVersion",
    "Registry",
    "build_baseline",
    "code_hash",
    "gate_rows",
    "oracle_interval",
    "register_baseline",
    "version_tags",
]
