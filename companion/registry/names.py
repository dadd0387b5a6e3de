"""The registry's names and the checks of its arguments.

The registered model, the aliases it moves, the feature service its models read, the code
that trains a version (:data:`CODE_FILES`, digested by :func:`code_hash`), and the checks every
module of the registry applies to names, versions, months, clocks and workspaces. Generic
checks come from :mod:`companion.core.checks`; what is here is what only the registry needs.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from companion.core.checks import check_date, check_identifier
from companion.core.provenance import code_version, module_files, source_name
from companion.data import ChurnDataset
from companion.errors import InvalidParameterError
from companion.features import FEATURE_VERSIONS
from companion.training import FEATURES

if TYPE_CHECKING:  # pragma: no cover - annotations only
    from mlflow.exceptions import MlflowException

__all__ = [
    "ALIASES",
    "ALIAS_PATTERN",
    "CODE_FILES",
    "EXPERIMENT",
    "FEATURE_SERVICE",
    "FEATURE_SET_DIGEST",
    "FEATURE_VERSION",
    "MODEL_NAME",
    "NAME_PATTERN",
    "PRODUCTION",
    "STAGING",
    "code_hash",
]

MODEL_NAME = "lumen-churn"
"""The registered model every churn model version belongs to."""

FEATURE_VERSION = "v1"
"""The feature version (:data:`companion.features.FEATURE_VERSIONS`) whose columns are exactly
:data:`companion.training.FEATURES`, the feature list the registry's models read."""

FEATURE_SERVICE: str = FEATURE_VERSIONS[FEATURE_VERSION]["service"]
"""The Feast feature service that serves those features (``churn_model_v1``): every version
records it as ``features.service`` and its training run logs it as a parameter."""

CODE_FILES = tuple(sorted(
    {*module_files("companion.training"), *Path(__file__).resolve().parent.glob("*.py")},
    key=source_name,
))
"""The code that trains a version: :mod:`companion.training` (features and models) with the
companion modules it imports, and the modules of this package, which run it. Their SHA-256
(:func:`code_hash`) is recorded on every run and version as ``code.sha256``. (The feature
store and the evaluation module are read for names and by the gate, not to train: a change
there does not change what a version is.)"""

NAME_PATTERN = r"[A-Za-z0-9_.-]{1,200}"
"""Names of models and prompts: what MLflow's search filters accept unquoted."""

ALIAS_PATTERN = r"[A-Za-z0-9_-]{1,100}"
"""Alias names: letters, digits, ``-`` and ``_``."""

FEATURE_SET_DIGEST = hashlib.sha256(",".join(FEATURES).encode()).hexdigest()[:12]
"""Digest of the feature list's names and order: it changes if the list changes."""

STAGING = "staging"
PRODUCTION = "production"
ALIASES = (STAGING, PRODUCTION)
"""The aliases the registry moves."""

EXPERIMENT = "model-registry"
"""MLflow experiment of training runs and gate evaluations."""


def code_hash() -> str:
    """Return the SHA-256 of :data:`CODE_FILES` today (see :mod:`companion.core.provenance`).

    A version whose ``code.sha256`` tag equals it was trained by the code on this machine now.
    """
    return code_version(list(CODE_FILES))["code.sha256"]


def code_files_tag() -> str:
    """Return the ``code.files`` tag: the names of :data:`CODE_FILES`, as in the digest."""
    return code_version(list(CODE_FILES))["code.files"]


def is_missing(exc: MlflowException) -> bool:
    """True if MLflow says the thing asked for does not exist (``RESOURCE_DOES_NOT_EXIST``)."""
    from mlflow.protos.databricks_pb2 import RESOURCE_DOES_NOT_EXIST, ErrorCode

    return bool(exc.error_code == ErrorCode.Name(RESOURCE_DOES_NOT_EXIST))


def check_name(kind: str, value: Any) -> str:
    """A model or prompt name: only the characters MLflow's filters accept unquoted."""
    return check_identifier(kind, value, NAME_PATTERN, "letters, digits, '-', '_' and '.'")


def check_alias(value: Any) -> str:
    """An alias name: letters, digits, ``-`` and ``_``."""
    return check_identifier("alias", value, ALIAS_PATTERN, "letters, digits, '-' and '_'")


def check_clock(clock: Any) -> str:
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


def check_version(value: Any) -> int:
    """A version number: a positive int, or a string of one (``"2"``)."""
    if isinstance(value, bool):
        raise InvalidParameterError(f"version must be a positive int, got {value!r}")
    try:
        version = int(value)
    except (TypeError, ValueError) as exc:
        raise InvalidParameterError(f"version must be a positive int, got {value!r}") from exc
    if version < 1 or str(version) != str(value).strip():
        raise InvalidParameterError(f"version must be a positive int, got {value!r}")
    return version


def check_one_of(version: Any, alias: Any) -> None:
    """Exactly one of ``version`` and ``alias`` is given, and it is well formed."""
    if (version is None) == (alias is None):
        raise InvalidParameterError(
            f"give exactly one of version or alias, got version={version!r}, alias={alias!r}"
        )
    if alias is not None:
        check_alias(alias)
    else:
        check_version(version)


def month(value: Any) -> str:
    """Return a date as ``YYYY-MM-DD``."""
    return str(check_date("a month", value, aware="utc").date())


def snapshot(dataset: ChurnDataset, value: Any, what: str = "snapshot") -> str:
    """Return ``value`` as ``YYYY-MM-DD`` if it is one of the dataset's monthly snapshots."""
    day = month(value)
    known = [month(s) for s in dataset.snapshots]
    if day not in known:
        raise InvalidParameterError(
            f"{what} {day} is not a snapshot of the dataset; accepted: "
            f"{known[0]} .. {known[-1]} (first of each month)"
        )
    return day


def utc_now() -> datetime:
    """The audit's default clock."""
    return datetime.now(UTC)


Clock = Callable[[], datetime]
"""A callable that returns the time of a move (timezone-aware)."""
