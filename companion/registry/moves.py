"""Moving the aliases: stage a candidate through the gate, promote it, roll production back.

The rules of moving ``staging`` and ``production`` (bodies of the
:class:`~companion.registry.Registry` methods of the same names):

* :func:`stage` puts a candidate in ``staging`` only if it passes the validation gate
  (:func:`companion.registry.gate.validate_candidate`); a refused candidate changes nothing.
* :func:`promote` moves ``production`` only to the version in ``staging``.
* :func:`rollback` returns ``production`` to the version it replaced.

Every move, and every refusal, holds the registry's lock from the first read of the aliases to
the audit line, and is appended to the audit log (who, when, why); promotions and rollbacks
are also tagged on the model version.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from companion.core.checks import check_text
from companion.data import ChurnDataset, check_dataset
from companion.errors import PromotionRefusedError
from companion.registry.audit import audit_entry, production_history
from companion.registry.gate import check_policy, validate_candidate
from companion.registry.names import PRODUCTION, STAGING, Clock, check_clock, check_name, snapshot
from companion.registry.policy import GateDataError, GateDecision, GatePolicy

if TYPE_CHECKING:  # pragma: no cover - annotations only
    from companion.registry.store import Registry

__all__ = ["promote", "rollback", "stage"]


def check_move(actor: Any, reason: Any, name: Any, clock: Any) -> str:
    """Check what every alias move needs, before the lock is taken; return the audit time."""
    check_text("actor", actor)
    check_text("reason", reason)
    check_name("model name", name)
    return check_clock(clock)


def stage(
    registry: Registry,
    dataset: ChurnDataset,
    version: int | str,
    *,
    actor: str,
    reason: str,
    name: str,
    month: Any,
    policy: GatePolicy | None,
    clock: Clock,
) -> GateDecision:
    """Put ``version`` in ``staging`` if it passes the validation gate; refuse otherwise.

    Under the registry lock: run the gate; on success point ``staging`` at the version
    (replacing any version waiting there; the audit line records which), record the gate's
    data and decision on it as ``gate.*`` tags (month, rows and their hash, dataset seed and
    hash, policy, each ROC AUC and the difference with their intervals) and append a
    ``stage`` line to the audit log. On failure append a ``refuse`` line (with the reason and
    the interval numbers) and raise; the registry is left exactly as it was. A gate month
    that cannot decide (not held out, or a single class) is refused the same way, before any
    MLflow run is created.

    Raises:
        PromotionRefusedError: the candidate failed the gate, or the month cannot decide
            (the message says why, with the numbers).
    """
    time = check_move(actor, reason, name, clock)
    check_dataset(dataset)
    policy = check_policy(policy)
    if month is not None:
        snapshot(dataset, month, "gate month")
    number = int(registry.get_version(name, version=version).version)
    with registry.lock():
        previous = registry.aliases(name).get(STAGING)

        def refuse(why: str, cause: Exception | None = None) -> None:
            registry.audit.append(audit_entry(time, actor, "refuse", name, STAGING, number,
                                              previous, f"{reason} | refused: {why}"))
            raise PromotionRefusedError(
                f"model {name!r} version {number} may not enter {STAGING!r}: {why}. "
                "The registry is unchanged."
            ) from cause

        try:
            decision = validate_candidate(registry, dataset, number, name=name, month=month,
                                          policy=policy)
        except GateDataError as exc:
            refuse(str(exc).rstrip("."), exc)
        if not decision.passed:
            refuse(decision.reason)
        client = registry.client
        client.set_registered_model_alias(name, STAGING, str(number))
        for key, value in decision.tags().items():
            client.set_model_version_tag(name, str(number), key, value)
        registry.audit.append(audit_entry(time, actor, "stage", name, STAGING, number, previous,
                                          reason))
    return decision


def promote(
    registry: Registry,
    version: int | str,
    *,
    actor: str,
    reason: str,
    name: str,
    clock: Clock,
) -> dict[str, Any]:
    """Move ``production`` to ``version``, which must be the version in ``staging``.

    Under the registry lock: check ``staging`` points at the version, point ``production``
    at it, clear ``staging``, tag the version with who, when and why, and append a
    ``promote`` line to the audit log. Returns that audit entry.

    Raises:
        PromotionRefusedError: the version is not in ``staging`` (nothing changes; a
            ``refuse`` line is audited).
    """
    time = check_move(actor, reason, name, clock)
    number = int(registry.get_version(name, version=version).version)
    with registry.lock():
        current = registry.aliases(name)
        if current.get(STAGING) != number:
            held = f"v{current[STAGING]}" if STAGING in current else "nothing"
            registry.audit.append(audit_entry(
                time, actor, "refuse", name, PRODUCTION, number, current.get(PRODUCTION),
                f"{reason} | refused: v{number} is not in staging",
            ))
            raise PromotionRefusedError(
                f"cannot promote model {name!r} version {number} to {PRODUCTION!r}: only the "
                f"version in {STAGING!r} can be promoted, and {STAGING!r} holds {held}"
            )
        entry = audit_entry(time, actor, "promote", name, PRODUCTION, number,
                            current.get(PRODUCTION), reason)
        client = registry.client
        client.set_registered_model_alias(name, PRODUCTION, str(number))
        client.delete_registered_model_alias(name, STAGING)
        for key, value in {"production.promoted_by": actor,
                           "production.promoted_at": entry["time"],
                           "production.reason": reason}.items():
            client.set_model_version_tag(name, str(number), key, value)
        registry.audit.append(entry)
    return entry


def rollback(
    registry: Registry, *, actor: str, reason: str, name: str, clock: Clock
) -> dict[str, Any]:
    """Return ``production`` to the version it pointed at before the last promotion.

    The production history is read from the audit log (promotions push, rollbacks pop), so
    two rollbacks in a row go two promotions back. Returns the audit entry.

    Raises:
        PromotionRefusedError: there is no earlier production version to return to.
    """
    time = check_move(actor, reason, name, clock)
    registry.require_model(name)
    with registry.lock():
        history = production_history(registry.audit.read(name))
        current = registry.aliases(name).get(PRODUCTION)
        if len(history) < 2 or history[-1] != current:
            raise PromotionRefusedError(
                f"cannot roll back model {name!r}: the audited production history is "
                f"{history or 'empty'} (production now {current}); a rollback needs an earlier "
                "production version"
            )
        target = history[-2]
        entry = audit_entry(time, actor, "rollback", name, PRODUCTION, target, current, reason)
        client = registry.client
        client.set_registered_model_alias(name, PRODUCTION, str(target))
        for key, value in {"production.rolled_back_by": actor,
                           "production.rolled_back_at": entry["time"],
                           "production.rollback_reason": reason}.items():
            client.set_model_version_tag(name, str(current), key, value)
        registry.audit.append(entry)
    return entry

