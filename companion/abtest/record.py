"""The decision, recorded where the model lives: tags on the challenger's registry version.

:func:`record_decision` writes an experiment's outcome on the model version that was tested,
with MLflow's ``set_model_version_tag`` through the :class:`~companion.registry.Registry`'s own
client (explicit URIs; MLflow's global state is not touched): the experiment's name, the
decision, the SHA-256 of the pre-registration it was analysed against, the primary difference
with its 95% interval and p-value, the customers per arm, the SRM verdict and the reasons.
Anyone reading the version later sees which experiment let it through (or stopped it), and can
check the design file's digest against the tag. Tags are namespaced ``abtest.*``; recording
the same decision again writes the same values.

:func:`decision_tags` is the mapping itself, computed without touching the registry.
"""

from __future__ import annotations

import logging
from typing import Any

from companion.abtest.analysis import Decision
from companion.core.checks import check_text
from companion.errors import InvalidParameterError
from companion.registry import MODEL_NAME, Registry

__all__ = ["TAG_PREFIX", "decision_tags", "record_decision"]

logger = logging.getLogger(__name__)

TAG_PREFIX = "abtest."
"""Every tag :func:`record_decision` writes starts with it."""


def decision_tags(decision: Decision) -> dict[str, str]:
    """The ``abtest.*`` tags of ``decision`` (strings, numbers rounded to 6 decimals)."""
    if not isinstance(decision, Decision):
        raise InvalidParameterError(
            f"decision must be a Decision (analyse()), got {type(decision).__name__}")
    primary = decision.primary
    values: dict[str, Any] = {
        "experiment": decision.experiment,
        "decision": decision.decision,
        "preregistration": decision.registration_sha256,
        "population": primary.segment,
        "difference": f"{primary.difference:.6f}",
        "ci_low": f"{primary.ci_low:.6f}",
        "ci_high": f"{primary.ci_high:.6f}",
        "p_value": f"{primary.p_value:.6f}",
        "n_champion": str(primary.n_champion),
        "n_challenger": str(primary.n_challenger),
        "srm": decision.srm.verdict,
        "reasons": "; ".join(decision.reasons),
    }
    return {f"{TAG_PREFIX}{key}": str(value) for key, value in values.items()}


def record_decision(
    registry: Registry, version: int | str, decision: Decision, *, name: str = MODEL_NAME
) -> dict[str, str]:
    """Tag model ``name`` version ``version`` with ``decision``; return the tags written.

    Everything is checked first (the registry, the decision, the version exists: an
    :class:`~companion.errors.UnknownNameError` lists the versions), so a bad call writes no tag.
    """
    if not isinstance(registry, Registry):
        raise InvalidParameterError(
            f"registry must be a companion.registry.Registry, got {type(registry).__name__}")
    tags = decision_tags(decision)
    check_text("name", name)
    found = registry.get_version(name, version=version)
    for key, value in tags.items():
        registry.client.set_model_version_tag(name, found.version, key, value)
    logger.info("recorded %s on %s v%s: %s", decision.experiment, name, found.version,
                decision.decision)
    return tags
