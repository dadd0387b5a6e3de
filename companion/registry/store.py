"""The model registry: versions with lineage, a validation gate, aliases, an audit trail, prompts.

Every churn model Lumen trains becomes a *version* of one registered model in the workspace's
MLflow registry. Its description and tags say what it was built from, as one lineage thread:
the Feast feature service whose features it reads (``churn_model_v1``, see
:data:`companion.features.FEATURE_VERSIONS`), the MLflow run that trained it (its parameters,
metrics and training input), the code that trained it (a SHA-256 of :data:`CODE_FILES`), the
data (content hashes and training snapshots) and the metrics. *Aliases*
(``staging``, ``production``) say which version does what; MLflow's deprecated stages are not
used. The rules of moving them live here:

* :func:`stage` puts a candidate in ``staging`` only if it passes a validation gate that
  decides on evidence. Candidate and production are loaded from the registry and scored on
  the same month, one that neither was trained on (a month inside or before either version's
  training is refused, as is a month whose labels hold one class). The candidate's ROC AUC
  must clear a floor with the lower end of its 95% DeLong interval, and the lower end of the
  *paired* DeLong interval of (candidate - production) must clear the policy's margin
  (superiority) or its negative (non-inferiority): see :class:`GatePolicy`.
  ``mlflow.models.evaluate`` logs each model's metrics in the gate's MLflow run, but the
  decision comes from the paired interval, which ``mlflow.validate_evaluation_results``
  cannot compute. The gate's data (month, rows hash, dataset seed) and numbers are recorded
  on the version that passes. A refused candidate changes nothing in the registry.
* :func:`promote` moves ``production`` only to the version in ``staging``.
* :func:`rollback` returns ``production`` to the version it replaced.
* Every move (and every refusal) is appended to an audit log, ``registry/audit.jsonl`` in the
  workspace (who, when, why), and promotions are also tagged on the model version. Moves run
  under an exclusive SQLite lock, so two releases racing each other leave one production
  version and an audit log that agrees with it (:func:`aliases_from_audit`).

Prompt templates for Lumen's LLM features are versioned the same way in MLflow's prompt
registry (:func:`register_prompt`, :func:`load_prompt`, :func:`set_prompt_alias`).

Nothing happens at import: MLflow is imported and the workspace touched only when called.

Example:
    >>> GatePolicy(min_roc_auc=0.6, margin=0.02).bound
    0.02
    >>> GatePolicy(min_roc_auc=0.6, margin=0.02, rule="non-inferiority").bound
    -0.02
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import logging
import math
import os
import re
import sqlite3
import threading
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from companion.core.checks import check_choice, check_int
from companion.data import ChurnDataset, content_hash
from companion.errors import (
    InvalidParameterError,
    PromotionRefusedError,
    UnknownNameError,
    WorkspaceError,
)
from companion.evaluation import Estimate, auc_difference, auc_interval
from companion.features import FEATURE_VERSIONS
from companion.training import (
    FEATURES,
    MODEL_KINDS,
    TARGET,
    evaluate,
    snapshot_features,
    train,
)

if TYPE_CHECKING:  # pragma: no cover - imports for type hints only
    from mlflow.entities.model_registry import ModelVersion, PromptVersion
    from mlflow.tracking import MlflowClient
    from sklearn.pipeline import Pipeline

    from companion.workspace import Workspace

MODEL_NAME = "lumen-churn"
"""The registered model every churn model version belongs to."""

FEATURE_VERSION = "v1"
"""The feature version (:data:`companion.features.FEATURE_VERSIONS`) whose columns are exactly
:data:`companion.training.FEATURES`, the feature list the registry's models read."""

FEATURE_SERVICE = FEATURE_VERSIONS[FEATURE_VERSION]["service"]
"""The Feast feature service that serves those features (``churn_model_v1``): every version
records it as ``features.service`` and its training run logs it as a parameter."""

CODE_FILES = tuple(Path(__file__).with_name(n) for n in ("training.py", "registry.py"))
"""The code that trains a version: the features and models, and this module that runs them.
Their SHA-256 (:func:`code_hash`) is recorded on every run and version as ``code.sha256``."""

NAME_PATTERN = r"[A-Za-z0-9_.-]{1,200}"
"""Names of models and prompts: what MLflow's search filters accept unquoted."""

ALIAS_PATTERN = r"[A-Za-z0-9_-]{1,100}"
"""Alias names: letters, digits, ``-`` and ``_``."""

FEATURE_SET_DIGEST = hashlib.sha256(",".join(FEATURES).encode()).hexdigest()[:12]
"""Digest of the feature list's names and order: it changes if the list changes."""

STAGING = "staging"
PRODUCTION = "production"
ALIASES = (STAGING, PRODUCTION)
"""The aliases this module moves."""

EXPERIMENT = "model-registry"
"""MLflow experiment of training runs and gate evaluations."""

AUDIT_ACTIONS = ("stage", "refuse", "promote", "rollback")
LOCK_TIMEOUT_SECONDS = 60.0


# --------------------------------------------------------------------------- policy

GATE_RULES = ("superiority", "non-inferiority")
"""How a candidate must compare with production: better by the margin, or not worse by it."""


class GateDataError(InvalidParameterError):
    """The gate month cannot decide: it is not held out from a version, or has one class.

    :func:`stage` turns it into an audited refusal, raised before any MLflow run is created.
    """


@dataclass(frozen=True)
class GatePolicy:
    """What a candidate must show on the held-out gate month to enter ``staging``.

    Both rules read 95% intervals, never bare point estimates: on a month of a few hundred
    churners an AUC moves by a few hundredths from one sample to the next, so a margin
    compared with a point estimate decides on noise.

    Attributes:
        min_roc_auc: floor of the candidate's ROC AUC: the *lower end* of its DeLong
            interval must lie above it (0.6: clearly better than chance and than one
            rule of thumb; the simulator's oracle reaches about 0.78 before the price rise).
        margin: the margin of the comparison with the production version, scored on the same
            rows: the lower end of the paired DeLong interval of (candidate - production)
            must lie above ``+margin`` (superiority) or above ``-margin`` (non-inferiority).
            Ignored while nothing is in production.
        rule: ``"superiority"`` (the candidate must be shown better) or
            ``"non-inferiority"`` (it must be shown not worse by more than the margin).
    """

    min_roc_auc: float = 0.60
    margin: float = 0.02
    rule: str = "superiority"

    def __post_init__(self) -> None:
        for name in ("min_roc_auc", "margin"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise InvalidParameterError(f"{name} must be a number, got {value!r}")
        if not 0.0 < self.min_roc_auc < 1.0:
            raise InvalidParameterError(
                f"min_roc_auc must lie strictly between 0 and 1, got {self.min_roc_auc}"
            )
        if not 0.0 <= self.margin < 0.5:
            raise InvalidParameterError(
                f"margin must lie in [0, 0.5) (an AUC difference), got {self.margin}"
            )
        if self.rule not in GATE_RULES:
            raise InvalidParameterError(
                f"rule must be one of {', '.join(map(repr, GATE_RULES))}, got {self.rule!r}"
            )

    @property
    def bound(self) -> float:
        """What the lower end of the difference interval must exceed: +margin or -margin."""
        return self.margin if self.rule == "superiority" else -self.margin

    def describe(self) -> str:
        """Return the policy in one line."""
        return (
            f"lower end of the candidate's 95% ROC AUC interval > {self.min_roc_auc:g}, and "
            f"lower end of the paired DeLong 95% interval of (candidate - production) > "
            f"{self.bound:+g} ({self.rule}), on the same held-out month"
        )

    def decide(self, candidate: Estimate, difference: Estimate | None) -> tuple[bool, str]:
        """Apply the policy to the candidate's AUC and its difference from production.

        Args:
            candidate: the candidate's ROC AUC with its interval.
            difference: AUC(candidate) - AUC(production) on the same rows, with its paired
                interval; None while nothing is in production.

        Returns:
            ``(passed, why)``, ``why`` naming the interval and the bound it was compared with.

        Example:
            >>> policy = GatePolicy(min_roc_auc=0.6, margin=0.02)
            >>> policy.decide(Estimate(0.80, 0.78, 0.82), Estimate(0.03, 0.01, 0.05))[0]
            False
        """
        for label, value in (("candidate", candidate), ("difference", difference)):
            if value is not None and not isinstance(value, Estimate):
                raise InvalidParameterError(
                    f"{label} must be an Estimate (from companion.evaluation), got "
                    f"{type(value).__name__}"
                )
        if candidate is None:
            raise InvalidParameterError("candidate must be an Estimate, got None")
        for label, value in (("candidate", candidate), ("difference", difference)):
            if value is not None and not all(
                isinstance(x, (int, float)) and math.isfinite(x)
                for x in (value.value, value.low, value.high)
            ):
                raise InvalidParameterError(
                    f"{label} must have a finite value and interval, got {value!r}"
                )
        if not candidate.above(self.min_roc_auc):
            return False, (
                f"ROC AUC {candidate.format()} does not clear the floor: its lower end "
                f"{candidate.low:.3f} is not above {self.min_roc_auc:g}"
            )
        if difference is None:
            return True, (
                f"ROC AUC {candidate.format()} clears the floor {self.min_roc_auc:g}; nothing "
                "in production to compare with"
            )
        verdict = "better" if self.rule == "superiority" else "not worse"
        if difference.above(self.bound):
            return True, (
                f"ROC AUC {candidate.format()}; difference from production "
                f"{difference.format(signed=True)} lies above {self.bound:+g}: shown {verdict} "
                f"({self.rule}, margin {self.margin:g})"
            )
        return False, (
            f"ROC AUC {candidate.format()}; difference from production "
            f"{difference.format(signed=True)} does not lie above {self.bound:+g}: not shown "
            f"{verdict} ({self.rule}, margin {self.margin:g})"
        )


@dataclass(frozen=True)
class GateDecision:
    """The outcome of the validation gate for one candidate.

    Attributes:
        candidate_version: the version evaluated.
        production_version: the version it was compared with (None if nothing in production).
        month: the held-out snapshot both were scored on, ``YYYY-MM-DD``.
        candidate: candidate's ROC AUC on that month, with its 95% DeLong interval.
        production: production's ROC AUC on the same rows (None without production).
        difference: candidate - production, with the paired DeLong interval (None without).
        passed: whether the candidate may enter ``staging``.
        reason: why, in one sentence, with the interval numbers.
        policy: the policy's one-line description.
        rows: labelled rows of the gate month.
        churners: churners among them.
        rows_hash: content hash of the gate rows (:func:`gate_rows`).
        dataset_seed: seed of the simulated dataset the rows came from.
        dataset_hash: content hash of that dataset.
    """

    candidate_version: int
    production_version: int | None
    month: str
    candidate: Estimate
    production: Estimate | None
    difference: Estimate | None
    passed: bool
    reason: str
    policy: str
    rows: int
    churners: int
    rows_hash: str
    dataset_seed: int
    dataset_hash: str

    @property
    def candidate_roc_auc(self) -> float:
        """The candidate's ROC AUC point estimate."""
        return self.candidate.value

    @property
    def production_roc_auc(self) -> float | None:
        """Production's ROC AUC point estimate (None without production)."""
        return None if self.production is None else self.production.value

    def tags(self) -> dict[str, str]:
        """Return the decision as model-version tags: the gate's data and its numbers."""

        def interval(prefix: str, estimate: Estimate | None) -> dict[str, str]:
            if estimate is None:
                return {prefix: "", f"{prefix}_low": "", f"{prefix}_high": ""}
            return {prefix: f"{estimate.value:.4f}", f"{prefix}_low": f"{estimate.low:.4f}",
                    f"{prefix}_high": f"{estimate.high:.4f}"}

        return {
            "gate.result": "passed" if self.passed else "refused",
            "gate.month": self.month,
            "gate.rows": str(self.rows),
            "gate.churners": str(self.churners),
            "gate.rows_hash": self.rows_hash,
            "gate.dataset_seed": str(self.dataset_seed),
            "gate.dataset_hash": self.dataset_hash,
            "gate.policy": self.policy,
            "gate.production_version": str(self.production_version or ""),
            **interval("gate.roc_auc", self.candidate),
            **interval("gate.production_roc_auc", self.production),
            **interval("gate.difference", self.difference),
            "gate.p_value": (
                "" if self.difference is None or self.difference.p_value is None
                else f"{self.difference.p_value:.4f}"
            ),
            "gate.reason": self.reason,
        }


@dataclass(frozen=True)
class RegisteredVersion:
    """A model version just registered, with what it was built from.

    Attributes:
        name: registered model name.
        version: version number.
        run_id: the MLflow run that trained and logged it.
        kind: model kind (``logistic`` or ``gbm``).
        training_snapshots: the monthly snapshots it was trained on.
        holdout_snapshot: the later month it was evaluated on at training time.
        metrics: its metrics on that month.
        tags: the tags set on the version.
        model: the fitted pipeline (kept in memory to compare with what the registry loads).
    """

    name: str
    version: int
    run_id: str
    kind: str
    training_snapshots: tuple[str, ...]
    holdout_snapshot: str
    metrics: dict[str, float]
    tags: dict[str, str]
    model: Any = field(repr=False, compare=False)


# --------------------------------------------------------------------------- helpers

_QUIET_LOCK = threading.Lock()
_QUIET_DEPTH = 0
_QUIET_SAVED_LEVEL = logging.NOTSET


@contextlib.contextmanager
def _quiet_mlflow_logs() -> Iterator[None]:
    """Keep MLflow's INFO and WARNING log lines off stderr while inside; restore after.

    MLflow resets its logger to INFO when it is imported, and then reports every table it
    creates, every pickle it saves and every step of an evaluation. Re-entrant and safe
    across threads: the level is restored when the last user leaves.
    """
    global _QUIET_DEPTH, _QUIET_SAVED_LEVEL
    import mlflow  # noqa: F401 - importing MLflow sets its logger's level: do it first

    logger = logging.getLogger("mlflow")
    with _QUIET_LOCK:
        if _QUIET_DEPTH == 0:
            _QUIET_SAVED_LEVEL = logger.level
            logger.setLevel(logging.ERROR)
        _QUIET_DEPTH += 1
    try:
        yield
    finally:
        with _QUIET_LOCK:
            _QUIET_DEPTH -= 1
            if _QUIET_DEPTH == 0:
                logger.setLevel(_QUIET_SAVED_LEVEL)


def _quietly(function: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with _quiet_mlflow_logs():
            return function(*args, **kwargs)

    return wrapper



def _client(workspace: Workspace) -> MlflowClient:
    from mlflow.tracking import MlflowClient

    _check_workspace(workspace)
    return MlflowClient(workspace.require("mlflow"))


def _check_workspace(workspace: Any) -> None:
    from companion.workspace import Workspace

    if not isinstance(workspace, Workspace):
        raise InvalidParameterError(
            f"workspace must be a companion.workspace.Workspace (from Workspace.create), got "
            f"{type(workspace).__name__}"
        )


def _check_dataset(dataset: Any) -> ChurnDataset:
    if not isinstance(dataset, ChurnDataset):
        raise InvalidParameterError(
            f"dataset must be a companion.data.ChurnDataset (e.g. workspace.require('data')), "
            f"got {type(dataset).__name__}"
        )
    return dataset


def code_hash() -> str:
    """Return the SHA-256 of :data:`CODE_FILES` today (:func:`companion.tracking.code_version`).

    A version whose ``code.sha256`` tag equals it was trained by the code on this machine now.
    """
    from companion.tracking import code_version

    return code_version(files=list(CODE_FILES))["code.sha256"]


def _use_store(workspace: Workspace) -> None:
    """Point MLflow's fluent API (runs, ``models:/`` URIs, prompts) at the workspace's store."""
    import mlflow

    uri = workspace.require("mlflow")
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)


def _is_missing(exc: Exception) -> bool:
    return getattr(exc, "error_code", "") in ("RESOURCE_DOES_NOT_EXIST", "NOT_FOUND") or (
        "not found" in str(exc).lower() or "does not exist" in str(exc).lower()
    )


def _check_name(kind: str, value: Any) -> str:
    """A free text (actor, reason, template): a non-empty string without NUL characters."""
    if not isinstance(value, str) or not value.strip() or "\x00" in value:
        raise InvalidParameterError(f"{kind} must be a non-empty string, got {value!r}")
    return value


def _check_identifier(kind: str, value: Any, pattern: str = NAME_PATTERN) -> str:
    """A model, prompt or alias name: only the characters MLflow's filters accept unquoted."""
    if not isinstance(value, str) or not re.fullmatch(pattern, value):
        accepted = "letters, digits, '-', '_' and '.'" if pattern == NAME_PATTERN else (
            "letters, digits, '-' and '_'")
        raise InvalidParameterError(
            f"{kind} must be a non-empty string of {accepted}, got {value!r}"
        )
    return value


def _check_alias(value: Any) -> str:
    return _check_identifier("alias", value, ALIAS_PATTERN)


def _check_clock(clock: Any) -> str:
    """Call ``clock`` once and return its time for the audit; it must be timezone-aware."""
    if not callable(clock):
        raise InvalidParameterError(
            f"clock must be a callable returning a timezone-aware datetime, got {clock!r}"
        )
    now = clock()
    if not isinstance(now, datetime) or now.tzinfo is None or now.utcoffset() is None:
        raise InvalidParameterError(
            f"clock must return a timezone-aware datetime, it returned {now!r}"
        )
    return now.isoformat(timespec="seconds")


def _check_version(value: Any) -> int:
    if isinstance(value, bool):
        raise InvalidParameterError(f"version must be a positive int, got {value!r}")
    try:
        version = int(value)
    except (TypeError, ValueError) as exc:
        raise InvalidParameterError(f"version must be a positive int, got {value!r}") from exc
    if version < 1 or str(version) != str(value).strip():
        raise InvalidParameterError(f"version must be a positive int, got {value!r}")
    return version


def _month(value: Any) -> str:
    try:
        stamp = pd.Timestamp(value)
    except (TypeError, ValueError) as exc:
        raise InvalidParameterError(
            f"a month must be a date like '2025-10-01', got {value!r}"
        ) from exc
    if pd.isna(stamp):
        raise InvalidParameterError(f"a month must be a date like '2025-10-01', got {value!r}")
    return str(stamp.date())


def _snapshot(dataset: ChurnDataset, value: Any, what: str = "snapshot") -> str:
    """Return ``value`` as ``YYYY-MM-DD`` if it is one of the dataset's monthly snapshots."""
    month = _month(value)
    known = [_month(s) for s in dataset.snapshots]
    if month not in known:
        raise InvalidParameterError(
            f"{what} {month} is not a snapshot of the dataset; accepted: "
            f"{known[0]} .. {known[-1]} (first of each month)"
        )
    return month


def _utc_now() -> datetime:
    return datetime.now(UTC)


@_quietly
def registered_models(workspace: Workspace) -> list[str]:
    """Return the names of the registered models in the workspace's registry, sorted."""
    return sorted(m.name for m in _client(workspace).search_registered_models())


def _require_model(workspace: Workspace, name: str) -> None:
    from mlflow.exceptions import MlflowException

    _check_workspace(workspace)
    _check_identifier("model name", name)
    try:
        _client(workspace).get_registered_model(name)
    except MlflowException as exc:
        if not _is_missing(exc):
            raise
        known = registered_models(workspace)
        raise UnknownNameError(
            f"registered model {name!r} does not exist; known: "
            f"{', '.join(map(repr, known)) if known else 'none yet'}"
        ) from None


def _versions(workspace: Workspace, name: str) -> list[ModelVersion]:
    versions = _client(workspace).search_model_versions(f"name = '{name}'")
    return sorted(versions, key=lambda v: int(v.version))


@_quietly
def aliases(workspace: Workspace, name: str = MODEL_NAME) -> dict[str, int]:
    """Return the aliases of model ``name`` and the versions they point at."""
    _require_model(workspace, name)
    model = _client(workspace).get_registered_model(name)
    return {alias: int(version) for alias, version in sorted(model.aliases.items())}


@_quietly
def get_version(
    workspace: Workspace,
    name: str = MODEL_NAME,
    *,
    version: int | str | None = None,
    alias: str | None = None,
) -> ModelVersion:
    """Return one model version of ``name``, by number or by alias.

    Raises:
        UnknownNameError: the model, the version or the alias does not exist; the message
            lists what does.
    """
    from mlflow.exceptions import MlflowException

    if (version is None) == (alias is None):
        raise InvalidParameterError(
            f"give exactly one of version or alias, got version={version!r}, alias={alias!r}"
        )
    if alias is not None:
        _check_alias(alias)
    else:
        _check_version(version)
    _require_model(workspace, name)
    client = _client(workspace)
    if alias is not None:
        known = aliases(workspace, name)
        if alias not in known:
            listed = ", ".join(f"{a!r} -> v{v}" for a, v in known.items()) or "none set"
            raise UnknownNameError(
                f"model {name!r} has no alias {alias!r}; aliases set: {listed}"
            )
        return client.get_model_version_by_alias(name, alias)
    number = _check_version(version)
    try:
        return client.get_model_version(name, str(number))
    except MlflowException as exc:
        if not _is_missing(exc):
            raise
        known = [int(v.version) for v in _versions(workspace, name)]
        raise UnknownNameError(
            f"model {name!r} has no version {number}; versions: {known or 'none yet'}"
        ) from None


@_quietly
def model_uri(
    workspace: Workspace,
    name: str = MODEL_NAME,
    *,
    version: int | str | None = None,
    alias: str | None = None,
) -> str:
    """Return ``models:/name/version`` or ``models:/name@alias`` after checking it exists."""
    get_version(workspace, name, version=version, alias=alias)
    return f"models:/{name}@{alias}" if alias is not None else f"models:/{name}/{int(version)}"


@_quietly
def load_model(
    workspace: Workspace,
    name: str = MODEL_NAME,
    *,
    version: int | str | None = None,
    alias: str | None = None,
) -> Pipeline:
    """Load the scikit-learn pipeline a version or an alias of ``name`` points at."""
    import mlflow.sklearn

    uri = model_uri(workspace, name, version=version, alias=alias)
    _use_store(workspace)
    return mlflow.sklearn.load_model(uri)


# --------------------------------------------------------------------------- registering


def version_tags(
    dataset: ChurnDataset,
    training_frame: pd.DataFrame,
    kind: str,
    training_snapshots: Sequence[str],
    holdout_snapshot: str,
    metrics: Mapping[str, float],
    run_id: str,
    *,
    code_sha256: str | None = None,
) -> dict[str, str]:
    """Return the lineage tags of a model version: features, run, code, data and metrics.

    ``features.service`` names the Feast feature service whose features the model reads
    (:data:`FEATURE_SERVICE`), ``training.run_id`` the run that trained it and ``code.sha256``
    the code (:func:`code_hash` unless given).
    """
    _check_dataset(dataset)
    if not isinstance(training_frame, pd.DataFrame) or training_frame.empty:
        raise InvalidParameterError(
            f"training_frame must be a non-empty DataFrame, got {type(training_frame).__name__}"
        )
    check_choice("model kind", kind, MODEL_KINDS)
    if isinstance(training_snapshots, str) or not isinstance(training_snapshots, Sequence) \
            or not training_snapshots:
        raise InvalidParameterError(
            f"training_snapshots must be a non-empty list of months, got {training_snapshots!r}"
        )
    months = [_month(s) for s in training_snapshots]
    holdout = _month(holdout_snapshot)
    if not isinstance(metrics, Mapping) or not metrics:
        raise InvalidParameterError(f"metrics must be a non-empty mapping, got {metrics!r}")
    for key, value in metrics.items():
        if not isinstance(key, str) or isinstance(value, bool) \
                or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise InvalidParameterError(
                f"metrics must map names to finite numbers, got {key!r}: {value!r}"
            )
    if not isinstance(run_id, str) or not re.fullmatch(r"[0-9a-f]{32}", run_id):
        raise InvalidParameterError(
            f"run_id must be an MLflow run id (32 hex digits), got {run_id!r}"
        )
    if code_sha256 is None:
        code_sha256 = code_hash()
    elif not isinstance(code_sha256, str) or not re.fullmatch(r"[0-9a-f]{64}", code_sha256):
        raise InvalidParameterError(
            f"code_sha256 must be a SHA-256 hex digest (64 hex digits), got {code_sha256!r}"
        )
    return {
        "data.dataset_hash": dataset.content_hash(),
        "data.training_rows_hash": content_hash({"training": training_frame}),
        "data.training_snapshots": ",".join(months),
        "data.training_end": max(months),
        "data.dataset_seed": str(dataset.config.seed),
        "data.holdout_snapshot": holdout,
        "features.service": FEATURE_SERVICE,
        "features.version": FEATURE_VERSION,
        "features.digest": FEATURE_SET_DIGEST,
        "code.sha256": code_sha256,
        "code.files": ",".join(p.name for p in CODE_FILES),
        "model.kind": kind,
        **{f"metrics.holdout_{key}": f"{value:.4f}" for key, value in metrics.items()},
        "training.run_id": run_id,
    }


def _check_params(kind: str, seed: int, params: Any) -> dict[str, Any]:
    """Check extra estimator parameters on an unfitted model, before anything is trained."""
    from companion.training import make_model

    if params is None:
        return {}
    if not isinstance(params, Mapping) or not all(isinstance(k, str) for k in params):
        raise InvalidParameterError(
            f"params must be a mapping of estimator parameter names to values, got {params!r}"
        )
    for key, value in params.items():
        if isinstance(value, float) and not math.isfinite(value):
            raise InvalidParameterError(f"params[{key!r}] must be finite, got {value!r}")
    model = make_model(kind, seed)
    estimator = model.named_steps["model"]
    unknown = sorted(set(params) - set(estimator.get_params()))
    if unknown:
        raise InvalidParameterError(
            f"the {kind} model has no parameter {', '.join(map(repr, unknown))}; accepted: "
            f"{', '.join(sorted(estimator.get_params()))}"
        )
    try:
        estimator.set_params(**params)
        estimator._validate_params()  # scikit-learn's own check of types and ranges
    except (TypeError, ValueError) as exc:
        raise InvalidParameterError(f"the {kind} model refuses params {params!r}: {exc}") from exc
    return dict(params)


def _two_classes(frame: pd.DataFrame, what: str) -> None:
    counts = frame[TARGET].value_counts()
    if len(counts) < 2:
        raise InvalidParameterError(
            f"{what} has {len(frame):,} rows of a single class "
            f"({', '.join(f'{int(k)}: {v}' for k, v in counts.items()) or 'no rows'}); "
            "training and evaluating need churners and stayers"
        )


@_quietly
def register_candidate(
    workspace: Workspace,
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

    The run records the parameters (with the feature service), the held-out metrics, the
    training rows as its input and the code hash; the version gets a description and tags
    (:func:`version_tags`) naming the feature service, the run, the code, the data and the
    metrics. No alias moves: a new version is only a candidate.

    Every argument is checked before anything is trained, logged or registered: a bad one
    raises a companion error and leaves the store as it was.

    Args:
        workspace: the chapter's workspace (its MLflow store is used).
        dataset: the simulated dataset to train on.
        kind: model kind, one of :data:`companion.training.MODEL_KINDS`.
        training_snapshots: monthly snapshots to train on (distinct, each one of the dataset's).
        holdout_snapshot: a later snapshot to evaluate on.
        name: registered model name (letters, digits, ``-``, ``_``, ``.``).
        seed: model seed (an int >= 0).
        params: extra estimator parameters (see :func:`companion.training.train`).
        note: a sentence added to the description (why this candidate exists).
    """
    import mlflow
    import mlflow.data
    from mlflow.exceptions import MlflowException

    from companion.tracking import log_sklearn_model
    from companion.workspace import ensure_experiment

    _check_workspace(workspace)
    _check_dataset(dataset)
    check_choice("model kind", kind, MODEL_KINDS)
    _check_identifier("model name", name)
    check_int("seed", seed, minimum=0)
    extra = _check_params(kind, seed, params)
    if not isinstance(note, str):
        raise InvalidParameterError(f"note must be a string, got {note!r}")
    if isinstance(training_snapshots, str) or not isinstance(training_snapshots, (list, tuple)) \
            or not training_snapshots:
        raise InvalidParameterError(
            f"training_snapshots must be a non-empty list of snapshots, got {training_snapshots!r}"
        )
    train_months = [_snapshot(dataset, s, "training snapshot") for s in training_snapshots]
    repeated = sorted({m for m in train_months if train_months.count(m) > 1})
    if repeated:
        raise InvalidParameterError(
            f"training snapshots must be distinct, {', '.join(repeated)} is given more than "
            "once (its rows would count twice)"
        )
    train_months = sorted(train_months)
    holdout = _snapshot(dataset, holdout_snapshot, "holdout snapshot")
    if max(train_months) >= holdout:
        raise InvalidParameterError(
            f"holdout snapshot {holdout} must come after every training snapshot "
            f"(latest {max(train_months)})"
        )
    frame = snapshot_features(dataset, [*train_months, holdout])
    training_frame = frame[frame["snapshot_timestamp"].isin(pd.DatetimeIndex(train_months))]
    holdout_frame = frame[frame["snapshot_timestamp"] == pd.Timestamp(holdout)]
    _two_classes(training_frame, f"the training snapshots {', '.join(train_months)}")
    _two_classes(holdout_frame, f"the holdout snapshot {holdout}")
    code = code_hash()
    model = train(training_frame, kind=kind, seed=seed, **extra)
    scores = evaluate(model, holdout_frame)
    metrics = {k: scores[k] for k in ("roc_auc", "average_precision", "brier")}

    _use_store(workspace)
    experiment_id = ensure_experiment(workspace, EXPERIMENT)
    with mlflow.start_run(experiment_id=experiment_id, run_name=f"train {kind}") as run:
        mlflow.log_params(
            {"kind": kind, "seed": seed, **extra, "feature_service": FEATURE_SERVICE,
             "training_snapshots": ",".join(train_months), "holdout_snapshot": holdout}
        )
        mlflow.log_metrics({f"holdout_{k}": v for k, v in metrics.items()})
        with warnings.catch_warnings():  # MLflow hints that integer columns cannot hold NaN
            warnings.simplefilter("ignore", UserWarning)
            mlflow.log_input(
                mlflow.data.from_pandas(
                    training_frame[["customer_id", "snapshot_timestamp", *FEATURES, TARGET]],
                    name=f"{FEATURE_SERVICE} {train_months[0][:7]}..{train_months[-1][:7]}",
                    targets=TARGET,
                ),
                context="training",
            )
        info = log_sklearn_model(model, training_frame)
        run_id = run.info.run_id
        tags = version_tags(dataset, training_frame, kind, train_months, holdout, metrics,
                            run_id, code_sha256=code)
        mlflow.set_tags({k: v for k, v in tags.items() if k != "training.run_id"})

    client = _client(workspace)
    try:
        client.get_registered_model(name)
    except MlflowException as exc:
        if not _is_missing(exc):
            raise
        client.create_registered_model(
            name, description="Lumen's churn model: who is likely to cancel in the next 30 days."
        )
    description = (
        f"{kind} churn model trained on snapshots {train_months[0]}..{train_months[-1]} "
        f"({len(training_frame):,} rows, data {tags['data.dataset_hash'][:12]}), features of "
        f"the Feast feature service {FEATURE_SERVICE}; ROC AUC {metrics['roc_auc']:.4f} on "
        f"{holdout}; training run {run_id}." + (f" {note}" if note else "")
    )
    version = client.create_model_version(
        name,
        source=info.model_uri,
        run_id=run_id,
        tags=tags,
        description=description,
        model_id=info.model_id,
    )
    return RegisteredVersion(
        name=name,
        version=int(version.version),
        run_id=run_id,
        kind=kind,
        training_snapshots=tuple(train_months),
        holdout_snapshot=holdout,
        metrics=metrics,
        tags=tags,
        model=model,
    )


@_quietly
def list_versions(workspace: Workspace, name: str = MODEL_NAME) -> pd.DataFrame:
    """Return one row per version of ``name``: aliases, lineage and metrics (no run ids).

    Columns: ``version, aliases, kind, trained_on`` (first..last training month), ``holdout``,
    ``data_hash`` (the dataset's content hash, first 12 characters), ``features``,
    ``holdout_auc`` (ROC AUC on the holdout month at training time) and ``gate`` (``passed``
    once the version has passed the validation gate). ``features`` is the Feast feature
    service the version reads.
    """
    _require_model(workspace, name)
    by_version: dict[int, list[str]] = {}
    for alias, number in aliases(workspace, name).items():
        by_version.setdefault(number, []).append(alias)
    rows = []
    for v in _versions(workspace, name):
        tags = v.tags
        snapshots = tags.get("data.training_snapshots", "").split(",")
        rows.append(
            {
                "version": int(v.version),
                "aliases": ",".join(sorted(by_version.get(int(v.version), []))),
                "kind": tags.get("model.kind", ""),
                "trained_on": (
                    f"{snapshots[0][:7]}..{snapshots[-1][:7]}" if snapshots[0] else ""
                ),
                "holdout": tags.get("data.holdout_snapshot", "")[:7],
                "data_hash": tags.get("data.dataset_hash", "")[:12],
                "features": tags.get("features.service", ""),
                "holdout_auc": float(tags.get("metrics.holdout_roc_auc", "nan")),
                "gate": tags.get("gate.result", ""),
            }
        )
    return pd.DataFrame(rows).set_index("version")


@_quietly
def registry_state(workspace: Workspace, name: str = MODEL_NAME) -> dict[str, Any]:
    """Return everything the registry holds about ``name``: aliases, versions, tags, texts.

    Two equal states mean nothing in the registry changed in between.
    """
    _require_model(workspace, name)
    return {
        "aliases": aliases(workspace, name),
        "versions": {
            int(v.version): {"tags": dict(v.tags), "description": v.description}
            for v in _versions(workspace, name)
        },
    }


# --------------------------------------------------------------------------- audit and lock


def audit_path(workspace: Workspace) -> Path:
    """Return the path of the workspace's append-only audit log of alias moves."""
    _check_workspace(workspace)
    return workspace.path / "registry" / "audit.jsonl"


@contextlib.contextmanager
def registry_lock(workspace: Workspace, timeout: float = LOCK_TIMEOUT_SECONDS) -> Iterator[None]:
    """Hold the workspace's registry lock (an exclusive SQLite transaction) while inside.

    Threads and processes that move aliases in the same workspace take turns: each reads the
    aliases, decides, moves them and writes the audit line before the next one reads.
    """
    _check_workspace(workspace)
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) \
            or not math.isfinite(timeout) or timeout <= 0:
        raise InvalidParameterError(
            f"timeout must be a positive, finite number of seconds, got {timeout!r}"
        )
    path = workspace.path / "registry" / "lock.sqlite"
    path.parent.mkdir(exist_ok=True)
    connection = sqlite3.connect(path, timeout=timeout, isolation_level=None)
    try:
        try:
            connection.execute("BEGIN EXCLUSIVE")
        except sqlite3.OperationalError as exc:
            raise WorkspaceError(
                f"could not take the registry lock {workspace.relative(path)} within "
                f"{timeout} s ({exc}); another promotion is still running"
            ) from exc
        try:
            yield
        finally:
            connection.execute("ROLLBACK")
    finally:
        connection.close()


def _append_audit(workspace: Workspace, entry: Mapping[str, Any]) -> None:
    path = audit_path(workspace)
    path.parent.mkdir(exist_ok=True)
    line = json.dumps(dict(entry), sort_keys=True) + "\n"
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(line)
        handle.flush()
        os.fsync(handle.fileno())


def read_audit(workspace: Workspace, name: str | None = MODEL_NAME) -> pd.DataFrame:
    """Return the audit log (of model ``name``, or of all models if None) as a table.

    Columns: ``time, actor, action, model, alias, version, previous, reason``.
    """
    if name is not None:
        _check_identifier("model name", name)
    columns = ["time", "actor", "action", "model", "alias", "version", "previous", "reason"]
    path = audit_path(workspace)
    entries = []
    if path.exists():
        entries = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    frame = pd.DataFrame(entries, columns=columns)
    if name is not None:
        frame = frame[frame["model"] == name].reset_index(drop=True)
    for column in ("version", "previous"):
        frame[column] = frame[column].astype("Int64")
    return frame


def _production_history(audit: pd.DataFrame) -> list[int]:
    history: list[int] = []
    for entry in audit.itertuples():
        if entry.action == "promote":
            history.append(int(entry.version))
        elif entry.action == "rollback":
            history.pop()
    return history


def aliases_from_audit(workspace: Workspace, name: str = MODEL_NAME) -> dict[str, int]:
    """Replay the audit log and return the aliases it says ``name`` should have now.

    Comparing it with :func:`aliases` checks that the registry and its audit trail agree.
    """
    _check_identifier("model name", name)
    state: dict[str, int] = {}
    for entry in read_audit(workspace, name).itertuples():
        if entry.action == "stage":
            state[STAGING] = int(entry.version)
        elif entry.action == "promote":
            state[PRODUCTION] = int(entry.version)
            state.pop(STAGING, None)
        elif entry.action == "rollback":
            state[PRODUCTION] = int(entry.version)
    return dict(sorted(state.items()))


def alias_timeline(workspace: Workspace, name: str = MODEL_NAME) -> pd.DataFrame:
    """Replay the audit log into the spans during which each alias held each version.

    Returns one row per span: ``alias, version, start, end`` (audit times; ``end`` is empty
    while the alias still holds the version), ``moved_by`` (the action and actor that started
    the span) and ``ended_by``. Refusals move nothing and start no span.
    """
    audit = read_audit(workspace, name)
    spans: list[dict[str, Any]] = []
    open_spans: dict[str, dict[str, Any]] = {}

    def close(alias: str, time: Any, why: str) -> None:
        span = open_spans.pop(alias, None)
        if span is not None:
            span.update(end=time, ended_by=why)

    def start(alias: str, version: int, time: Any, why: str) -> None:
        close(alias, time, why)
        span = {"alias": alias, "version": version, "start": time, "end": pd.NaT,
                "moved_by": why, "ended_by": ""}
        spans.append(span)
        open_spans[alias] = span

    for entry in audit.itertuples():
        time = pd.Timestamp(entry.time)
        why = f"{entry.action} by {entry.actor}"
        if entry.action == "stage":
            start(STAGING, int(entry.version), time, why)
        elif entry.action == "promote":
            start(PRODUCTION, int(entry.version), time, why)
            close(STAGING, time, why)
        elif entry.action == "rollback":
            start(PRODUCTION, int(entry.version), time, why)
    columns = ["alias", "version", "start", "end", "moved_by", "ended_by"]
    return pd.DataFrame(spans, columns=columns).astype({"version": "int64"})


def _audit_entry(
    time: str,
    actor: str,
    action: str,
    name: str,
    alias: str,
    version: int,
    previous: int | None,
    reason: str,
) -> dict[str, Any]:
    check_choice("audit action", action, AUDIT_ACTIONS)
    return {
        "time": time,
        "actor": actor,
        "action": action,
        "model": name,
        "alias": alias,
        "version": version,
        "previous": previous,
        "reason": reason,
    }


# --------------------------------------------------------------------------- gate and moves


def gate_rows(dataset: ChurnDataset, month: Any) -> pd.DataFrame:
    """Return the labelled rows of gate month ``month``: features and label, one per customer.

    These are the rows both versions are scored on; their content hash is recorded on the
    version that passes (``gate.rows_hash``).
    """
    _check_dataset(dataset)
    return snapshot_features(dataset, [_snapshot(dataset, month, "gate month")])


def oracle_interval(dataset: ChurnDataset, month: Any) -> Estimate:
    """Return the ROC AUC of the *true* churn probabilities on ``month``, with its interval.

    The simulator knows each customer's probability of churning (``dataset.truth``); ranking
    customers by it is the best any model can do, so this is the ceiling a candidate's AUC is
    graded against. The truth is never a model input and the gate never reads it.
    """
    rows = gate_rows(dataset, month)[["customer_id", "snapshot_timestamp", TARGET]]
    truth = rows.merge(dataset.truth, on=["customer_id", "snapshot_timestamp"], how="left")
    if truth["churn_probability"].isna().any():
        raise InvalidParameterError(
            f"the dataset's truth has no churn probability for "
            f"{int(truth['churn_probability'].isna().sum())} rows of {_month(month)}"
        )
    return auc_interval(truth[TARGET].to_numpy(), truth["churn_probability"].to_numpy())


def _training_end(version: ModelVersion, role: str) -> str:
    tags = version.tags
    end = tags.get("data.training_end") or max(
        (s for s in tags.get("data.training_snapshots", "").split(",") if s), default=""
    )
    if not end:
        raise GateDataError(
            f"{role} v{version.version} has no data.training_snapshots tag: the gate cannot "
            "tell which months it was trained on, so no month is known to be held out from it; "
            "register it with register_candidate()"
        )
    return end


@dataclass(frozen=True)
class _GateInputs:
    candidate: int
    production: int | None
    month: str
    frame: pd.DataFrame


def _gate_inputs(
    workspace: Workspace,
    dataset: ChurnDataset,
    version: int | str,
    name: str,
    month: Any,
) -> _GateInputs:
    """Check the gate can decide on ``month``, before anything is run or written.

    Raises:
        GateDataError: the month is not after every training month of the candidate and of
            the production version, or its rows hold one class only (the AUC is undefined).
    """
    candidate = get_version(workspace, name, version=version)
    number = int(candidate.version)
    if month is None:
        month = candidate.tags.get("data.holdout_snapshot")
        if not month:
            raise InvalidParameterError(
                f"version {number} of {name!r} has no data.holdout_snapshot tag; pass month="
            )
    month = _snapshot(dataset, month, "gate month")
    production = aliases(workspace, name).get(PRODUCTION)
    versions = [("candidate", candidate)]
    if production is not None and production != number:
        versions.append(("production", get_version(workspace, name, version=production)))
    inside = []
    for role, model_version in versions:
        end = _training_end(model_version, role)
        if month <= end:
            inside.append(f"{role} v{model_version.version} was trained on snapshots up to {end}")
    if inside:
        raise GateDataError(
            f"gate month {month} is not held out: {'; '.join(inside)}. Scoring a version on "
            "a month it was trained on (or before its training ended) flatters it; choose a "
            "month after every version's training"
        )
    frame = gate_rows(dataset, month)
    classes = frame[TARGET].unique()
    if len(classes) < 2:
        raise GateDataError(
            f"the ROC AUC is undefined on gate month {month}: its {len(frame):,} labelled rows "
            f"are all of class {int(classes[0]) if len(classes) else 'none'} (no "
            f"{'churner' if len(classes) and classes[0] == 0 else 'stayer'}); the gate needs "
            "churners and stayers, so check that the month's labels are complete"
        )
    return _GateInputs(number, production if production != number else None, month, frame)


def _roc_auc_metric() -> Any:
    """Return ROC AUC as an MLflow evaluation metric over churn probabilities."""
    from mlflow.metrics import MetricValue, make_metric
    from sklearn.metrics import roc_auc_score

    def roc_auc(predictions: pd.Series, targets: pd.Series) -> MetricValue:
        if pd.Series(targets).nunique() < 2:  # MLflow first tries the metric on one row
            return MetricValue(aggregate_results={"roc_auc": float("nan")})
        score = float(roc_auc_score(targets, predictions))
        return MetricValue(aggregate_results={"roc_auc": score})

    return make_metric(eval_fn=roc_auc, greater_is_better=True, name="roc_auc")


def _score_version(
    name: str, version: int, frame: pd.DataFrame, role: str, experiment_id: str
) -> pd.Series:
    """Score the gate rows with ``version`` loaded from the registry; log it with MLflow.

    The model is loaded through ``models:/name/version``, exactly as a deployment would load
    it; ``mlflow.models.evaluate`` logs its ROC AUC in a nested run named after the role
    (``candidate`` or ``production``). The decision is not MLflow's: it comes from the paired
    interval computed on the returned scores.
    """
    import mlflow
    import mlflow.sklearn

    from companion.tracking import model_input

    model = mlflow.sklearn.load_model(f"models:/{name}/{version}")
    scores = model.predict_proba(model_input(frame))[:, 1]
    scored = pd.DataFrame({TARGET: frame[TARGET].to_numpy(), "churn_probability": scores})
    # The experiment is explicit: a nested run would otherwise land in the default
    # experiment, whose artifacts go to ./mlruns in the current directory.
    with mlflow.start_run(experiment_id=experiment_id, run_name=f"{role} v{version}",
                          nested=True):
        mlflow.set_tags({"gate.role": role, "gate.version": str(version)})
        mlflow.models.evaluate(
            data=scored,
            predictions="churn_probability",
            targets=TARGET,
            model_type=None,
            extra_metrics=[_roc_auc_metric()],
        )
    return pd.Series(scores, index=frame.index)


@_quietly
def validate_candidate(
    workspace: Workspace,
    dataset: ChurnDataset,
    version: int | str,
    *,
    name: str = MODEL_NAME,
    month: Any = None,
    policy: GatePolicy | None = None,
) -> GateDecision:
    """Run the validation gate for ``version`` against the current production version.

    First the gate month is checked (the candidate's holdout snapshot unless ``month`` is
    given): it must come after every training month of both versions, and hold churners and
    stayers; otherwise :class:`GateDataError` is raised before any MLflow run exists. Then,
    in an MLflow run named ``gate vN``, both versions are loaded from the registry and score
    the same rows (``mlflow.models.evaluate`` logs each one's ROC AUC in a nested run); the
    candidate's DeLong interval and the paired DeLong interval of the difference are logged,
    and :meth:`GatePolicy.decide` applies the policy to them. Nothing in the registry changes.

    Raises:
        GateDataError: the month is not held out from a version, or has a single class.
    """
    import mlflow

    from companion.workspace import ensure_experiment

    policy = _check_policy(policy)
    _check_workspace(workspace)
    _check_dataset(dataset)
    inputs = _gate_inputs(workspace, dataset, version, name, month)
    number, production, month, frame = (
        inputs.candidate, inputs.production, inputs.month, inputs.frame
    )
    y = frame[TARGET].to_numpy()
    rows_hash = content_hash({"gate": frame})
    _use_store(workspace)
    experiment_id = ensure_experiment(workspace, EXPERIMENT)
    with mlflow.start_run(experiment_id=experiment_id, run_name=f"gate v{number}"):
        mlflow.set_tags({"gate.candidate": str(number), "gate.month": month,
                         "gate.policy": policy.describe(), "gate.rows_hash": rows_hash,
                         "gate.dataset_seed": str(dataset.config.seed)})
        candidate_scores = _score_version(name, number, frame, "candidate", experiment_id)
        candidate = auc_interval(y, candidate_scores)
        production_auc = difference = None
        if production is not None:
            production_scores = _score_version(name, production, frame, "production",
                                               experiment_id)
            production_auc = auc_interval(y, production_scores)
            difference = auc_difference(y, candidate_scores, production_scores)
        passed, why = policy.decide(candidate, difference)
        metrics = {"roc_auc": candidate, "production_roc_auc": production_auc,
                   "difference": difference}
        mlflow.log_metrics({
            f"gate_{key}{suffix}": getattr(value, attr)
            for key, value in metrics.items() if value is not None
            for suffix, attr in (("", "value"), ("_low", "low"), ("_high", "high"))
        })
        mlflow.set_tag("gate.passed", str(passed).lower())
    against = "nothing in production" if production is None else f"against production v{production}"
    return GateDecision(
        candidate_version=number,
        production_version=production,
        month=month,
        candidate=candidate,
        production=production_auc,
        difference=difference,
        passed=passed,
        reason=f"v{number} on {month} ({against}): {why}",
        policy=policy.describe(),
        rows=len(frame),
        churners=int(y.sum()),
        rows_hash=rows_hash,
        dataset_seed=int(dataset.config.seed),
        dataset_hash=dataset.content_hash(),
    )


def _check_policy(policy: Any) -> GatePolicy:
    policy = GatePolicy() if policy is None else policy
    if not isinstance(policy, GatePolicy):
        raise InvalidParameterError(f"policy must be a GatePolicy, got {type(policy).__name__}")
    return policy


def _check_move(workspace: Any, actor: Any, reason: Any, name: Any, clock: Any) -> str:
    """Check what every alias move needs, before the lock is taken; return the audit time."""
    _check_workspace(workspace)
    _check_name("actor", actor)
    _check_name("reason", reason)
    _check_identifier("model name", name)
    return _check_clock(clock)


@_quietly
def stage(
    workspace: Workspace,
    dataset: ChurnDataset,
    version: int | str,
    *,
    actor: str,
    reason: str,
    name: str = MODEL_NAME,
    month: Any = None,
    policy: GatePolicy | None = None,
    clock: Callable[[], datetime] = _utc_now,
) -> GateDecision:
    """Put ``version`` in ``staging`` if it passes the validation gate; refuse otherwise.

    Under the registry lock: run :func:`validate_candidate`; on success point ``staging`` at
    the version (replacing any version waiting there; the audit line records which), record
    the gate's data and decision on it as ``gate.*`` tags (month, rows and their hash, dataset
    seed and hash, policy, each ROC AUC and the difference with their intervals) and append a
    ``stage`` line to the audit log.
    On failure append a ``refuse`` line (with the reason and the interval numbers) and raise;
    the registry is left exactly as it was. A gate month that cannot decide (not held out, or
    a single class) is refused the same way, before any MLflow run is created.

    Raises:
        PromotionRefusedError: the candidate failed the gate, or the month cannot decide
            (the message says why, with the numbers).
    """
    time = _check_move(workspace, actor, reason, name, clock)
    _check_dataset(dataset)
    policy = _check_policy(policy)
    if month is not None:
        _snapshot(dataset, month, "gate month")
    number = int(get_version(workspace, name, version=version).version)
    with registry_lock(workspace):
        previous = aliases(workspace, name).get(STAGING)

        def refuse(why: str, cause: Exception | None = None) -> None:
            _append_audit(
                workspace,
                _audit_entry(time, actor, "refuse", name, STAGING, number, previous,
                             f"{reason} | refused: {why}"),
            )
            raise PromotionRefusedError(
                f"model {name!r} version {number} may not enter {STAGING!r}: {why}. "
                "The registry is unchanged."
            ) from cause

        try:
            decision = validate_candidate(
                workspace, dataset, number, name=name, month=month, policy=policy
            )
        except GateDataError as exc:
            refuse(str(exc).rstrip("."), exc)
        if not decision.passed:
            refuse(decision.reason)
        client = _client(workspace)
        client.set_registered_model_alias(name, STAGING, str(number))
        for key, value in decision.tags().items():
            client.set_model_version_tag(name, str(number), key, value)
        _append_audit(
            workspace,
            _audit_entry(time, actor, "stage", name, STAGING, number, previous, reason),
        )
    return decision


@_quietly
def promote(
    workspace: Workspace,
    version: int | str,
    *,
    actor: str,
    reason: str,
    name: str = MODEL_NAME,
    clock: Callable[[], datetime] = _utc_now,
) -> dict[str, Any]:
    """Move ``production`` to ``version``, which must be the version in ``staging``.

    Under the registry lock: check ``staging`` points at the version, point ``production``
    at it, clear ``staging``, tag the version with who, when and why, and append a
    ``promote`` line to the audit log. Returns that audit entry.

    Raises:
        PromotionRefusedError: the version is not in ``staging`` (nothing changes; a
            ``refuse`` line is audited).
    """
    time = _check_move(workspace, actor, reason, name, clock)
    number = int(get_version(workspace, name, version=version).version)
    with registry_lock(workspace):
        current = aliases(workspace, name)
        if current.get(STAGING) != number:
            held = f"v{current[STAGING]}" if STAGING in current else "nothing"
            _append_audit(
                workspace,
                _audit_entry(time, actor, "refuse", name, PRODUCTION, number,
                             current.get(PRODUCTION),
                             f"{reason} | refused: v{number} is not in staging"),
            )
            raise PromotionRefusedError(
                f"cannot promote model {name!r} version {number} to {PRODUCTION!r}: only the "
                f"version in {STAGING!r} can be promoted, and {STAGING!r} holds {held}"
            )
        entry = _audit_entry(
            time, actor, "promote", name, PRODUCTION, number, current.get(PRODUCTION), reason
        )
        client = _client(workspace)
        client.set_registered_model_alias(name, PRODUCTION, str(number))
        client.delete_registered_model_alias(name, STAGING)
        for key, value in {"production.promoted_by": actor,
                           "production.promoted_at": entry["time"],
                           "production.reason": reason}.items():
            client.set_model_version_tag(name, str(number), key, value)
        _append_audit(workspace, entry)
    return entry


@_quietly
def rollback(
    workspace: Workspace,
    *,
    actor: str,
    reason: str,
    name: str = MODEL_NAME,
    clock: Callable[[], datetime] = _utc_now,
) -> dict[str, Any]:
    """Return ``production`` to the version it pointed at before the last promotion.

    The production history is read from the audit log (promotions push, rollbacks pop), so
    two rollbacks in a row go two promotions back. Returns the audit entry.

    Raises:
        PromotionRefusedError: there is no earlier production version to return to.
    """
    time = _check_move(workspace, actor, reason, name, clock)
    _require_model(workspace, name)
    with registry_lock(workspace):
        history = _production_history(read_audit(workspace, name))
        current = aliases(workspace, name).get(PRODUCTION)
        if len(history) < 2 or history[-1] != current:
            raise PromotionRefusedError(
                f"cannot roll back model {name!r}: the audited production history is "
                f"{history or 'empty'} (production now {current}); a rollback needs an earlier "
                "production version"
            )
        target = history[-2]
        entry = _audit_entry(time, actor, "rollback", name, PRODUCTION, target, current, reason)
        client = _client(workspace)
        client.set_registered_model_alias(name, PRODUCTION, str(target))
        for key, value in {"production.rolled_back_by": actor,
                           "production.rolled_back_at": entry["time"],
                           "production.rollback_reason": reason}.items():
            client.set_model_version_tag(name, str(current), key, value)
        _append_audit(workspace, entry)
    return entry


# --------------------------------------------------------------------------- prerequisite


@_quietly
def register_baseline(
    workspace: Workspace,
    dataset: ChurnDataset,
    *,
    seed: int = 0,
    name: str = MODEL_NAME,
    actor: str = "setup",
    clock: Callable[[], datetime] = _utc_now,
) -> RegisteredVersion:
    """Register Lumen's first churn model and take it through staging to production.

    A gradient-boosting model with model seed ``seed``, trained on the first monthly snapshot
    and gated on the second with the default :class:`GatePolicy` (nothing is in production
    yet, so only the floor applies: the lower end of its ROC AUC interval must exceed 0.6).
    ``clock`` stamps the two audit lines.

    Raises:
        WorkspaceError: the dataset has fewer than 2 snapshots, or the model already has
            versions (the baseline is the first).
    """
    time = _check_move(workspace, actor, "baseline: first churn model", name, clock)
    _check_dataset(dataset)
    check_int("seed", seed, minimum=0)
    snapshots = dataset.snapshots
    if len(snapshots) < 2:
        raise WorkspaceError(
            f"the baseline needs at least 2 monthly snapshots, the dataset has {len(snapshots)}"
        )
    if name in registered_models(workspace):
        existing = [int(v.version) for v in _versions(workspace, name)]
        raise WorkspaceError(
            f"model {name!r} already has versions {existing}; the baseline must be its first"
        )
    baseline = register_candidate(
        workspace, dataset, "gbm", [snapshots[0]], snapshots[1], name=name, seed=seed,
        note="First model of the registry (baseline).",
    )
    stamp = lambda: datetime.fromisoformat(time)  # noqa: E731 - both moves at one time
    stage(workspace, dataset, baseline.version, actor=actor, name=name,
          reason="baseline: first churn model", clock=stamp)
    promote(workspace, baseline.version, actor=actor, name=name,
            reason="baseline: first churn model", clock=stamp)
    return baseline


def build_baseline(workspace: Workspace) -> RegisteredVersion:
    """The prerequisite ``"baseline"``: :func:`register_baseline` with model seed 0."""
    _check_workspace(workspace)
    return register_baseline(workspace, workspace.require("data"))


# --------------------------------------------------------------------------- prompts


@_quietly
def register_prompt(
    workspace: Workspace,
    name: str,
    template: str,
    *,
    commit_message: str,
    tags: Mapping[str, str] | None = None,
) -> PromptVersion:
    """Register ``template`` as the next version of prompt ``name`` in MLflow's prompt registry.

    The template uses ``{{variable}}`` placeholders. Returns the new prompt version.
    """
    import mlflow.genai

    _check_workspace(workspace)
    _check_identifier("prompt name", name)
    _check_name("prompt template", template)
    _check_name("commit message", commit_message)
    if tags is not None and (
        not isinstance(tags, Mapping)
        or not all(isinstance(k, str) and k and isinstance(v, str) for k, v in tags.items())
    ):
        raise InvalidParameterError(
            f"tags must map non-empty strings to strings, got {tags!r}"
        )
    _use_store(workspace)
    return mlflow.genai.register_prompt(
        name=name, template=template, commit_message=commit_message, tags=dict(tags or {})
    )


def _prompt_versions(name: str) -> list[int]:
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    try:
        found = MlflowClient().search_prompt_versions(name)
    except MlflowException as exc:
        if _is_missing(exc):
            return []
        raise
    return sorted(int(v.version) for v in found)


def _prompt_aliases(name: str) -> dict[int, list[str]]:
    import mlflow.genai

    return {
        number: sorted(mlflow.genai.load_prompt(name, version=number, cache_ttl_seconds=0,
                                                link_to_model=False).aliases)
        for number in _prompt_versions(name)
    }


@_quietly
def load_prompt(
    workspace: Workspace,
    name: str,
    *,
    version: int | str | None = None,
    alias: str | None = None,
) -> PromptVersion:
    """Load prompt ``name`` by version number or by alias, from the workspace's registry.

    Reads bypass MLflow's prompt cache, so a moved alias is seen at once.

    Raises:
        UnknownNameError: the prompt, version or alias does not exist.
    """
    import mlflow.genai
    from mlflow.exceptions import MlflowException

    _check_workspace(workspace)
    _check_identifier("prompt name", name)
    if (version is None) == (alias is None):
        raise InvalidParameterError(
            f"give exactly one of version or alias, got version={version!r}, alias={alias!r}"
        )
    if alias is not None:
        _check_alias(alias)
    else:
        _check_version(version)
    _use_store(workspace)
    versions = _prompt_versions(name)
    if not versions:
        raise UnknownNameError(f"prompt {name!r} does not exist in the registry")
    if version is not None:
        number = _check_version(version)
        if number not in versions:
            raise UnknownNameError(f"prompt {name!r} has no version {number}; versions: {versions}")
        return mlflow.genai.load_prompt(name, version=number, cache_ttl_seconds=0,
                                        link_to_model=False)
    try:
        return mlflow.genai.load_prompt(f"prompts:/{name}@{alias}", cache_ttl_seconds=0,
                                        link_to_model=False)
    except MlflowException as exc:
        if not _is_missing(exc):
            raise
        known = ", ".join(
            f"{a!r} -> v{number}" for number, names in _prompt_aliases(name).items() for a in names
        ) or "none set"
        raise UnknownNameError(
            f"prompt {name!r} has no alias {alias!r}; aliases set: {known}"
        ) from exc


@_quietly
def set_prompt_alias(workspace: Workspace, name: str, alias: str, version: int | str) -> None:
    """Point alias ``alias`` of prompt ``name`` at ``version`` (which must exist)."""
    import mlflow.genai

    _check_alias(alias)
    load_prompt(workspace, name, version=version)
    mlflow.genai.set_prompt_alias(name, alias, _check_version(version))
