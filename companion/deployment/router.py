"""The A/B router: champion and challenger behind one call, sticky by customer, all logged.

:func:`assign` puts a customer in an arm by consistent hashing: SHA-256 of ``"<salt>:<id>"``
gives a point in [0, 1); the arms own consecutive slices of [0, 1) in the order of the weights
(``{"champion": 0.9, "challenger": 0.1}``: champion [0, 0.9), challenger [0.9, 1)). The same
customer lands in the same arm in every process and after every restart, and changing the
weights moves only the customers whose point changed slice (0.9/0.1 -> 0.8/0.2 moves exactly the
customers in [0.8, 0.9), from champion to challenger). A new experiment takes a new salt, so its
split is independent of the last one's.

:class:`Router` sits in front of two scorers (callables customer id -> score), each an
:class:`Arm` with the model version behind it:

- ``split`` mode: each customer is answered by the arm :func:`assign` gives;
- ``shadow`` mode: the champion answers every request; the challenger scores it too, its row is
  written to the log with ``shadow=True`` and never returned (a failing shadow never fails
  the request);
- :meth:`Router.set_weights`, :meth:`Router.set_arms`, :meth:`Router.promote` and
  :meth:`Router.set_mode` change the configuration at runtime: each replaces one immutable
  configuration under a lock, and each request reads the configuration once, so a request in
  flight finishes with the configuration it started with and none is dropped or mixed.

Every answered request (and every shadow score) is appended to a
:class:`~companion.deployment.predlog.PredictionLog`. The router is pure Python: the online
service can call it, and so can a notebook or a test, with no server.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace

from companion.core.checks import check_choice, check_text
from companion.deployment.predlog import PredictionLog, check_weights
from companion.errors import InvalidParameterError

__all__ = ["ARMS", "MODES", "Arm", "Routed", "Router", "assign", "hash_point"]

logger = logging.getLogger(__name__)

ARMS = ("champion", "challenger")
"""The router's two arms, as they appear in its weights and in the log's ``arm`` column."""

MODES = ("split", "shadow")
"""``split``: the weights decide who answers; ``shadow``: the champion answers, the challenger
is scored on every request and logged only."""

_SCALE = float(2**64)


def _check_customer(customer_id: object) -> int:
    if isinstance(customer_id, bool) or not isinstance(customer_id, int):
        raise InvalidParameterError(f"customer_id must be an int, got {customer_id!r}")
    return customer_id


def hash_point(customer_id: int, salt: str) -> float:
    """The customer's point in [0, 1): the first 8 bytes of SHA-256(``"<salt>:<id>"``) / 2**64.

    Example:
        >>> hash_point(42, "exp-1") == hash_point(42, "exp-1")
        True
    """
    _check_customer(customer_id)
    check_text("salt", salt)
    digest = hashlib.sha256(f"{salt}:{customer_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / _SCALE


def _slice(point: float, shares: Mapping[str, float]) -> str:
    edge = 0.0
    last = ""
    for arm, share in shares.items():
        if share <= 0:
            continue
        edge += share
        last = arm
        if point < edge:
            return arm
    return last  # rounding: a point just under 1 belongs to the last arm with weight


def assign(customer_id: int, weights: Mapping[str, float], salt: str) -> str:
    """The arm of ``customer_id`` under ``weights`` (arm -> weight, any positive total).

    Deterministic: the same id, weights and salt give the same arm in any process.

    Example:
        >>> assign(7, {"champion": 1, "challenger": 0}, "exp-1")
        'champion'
    """
    shares = check_weights(weights)
    return _slice(hash_point(customer_id, salt), shares)


@dataclass(frozen=True)
class Arm:
    """A scorer and the registry version of the model behind it."""

    scorer: Callable[[int], float]
    model_version: str

    def __post_init__(self) -> None:
        if not callable(self.scorer):
            raise InvalidParameterError(f"scorer must be callable (id -> score), "
                                        f"got {self.scorer!r}")
        check_text("model_version", self.model_version)


@dataclass(frozen=True)
class Routed:
    """The answer to one request: who answered, with which model, and the score."""

    request_id: str
    customer_id: int
    arm: str
    model_version: str
    score: float
    latency_ms: float


@dataclass(frozen=True)
class _Config:
    champion: Arm
    challenger: Arm
    shares: dict[str, float]
    mode: str


def _check_router_weights(weights: Mapping[str, float]) -> dict[str, float]:
    shares = check_weights(weights)
    for arm in shares:
        check_choice("arm", arm, ARMS)
    return {arm: shares.get(arm, 0.0) for arm in ARMS}


def _check_arm(name: str, arm: object) -> Arm:
    if not isinstance(arm, Arm):
        raise InvalidParameterError(f"{name} must be an Arm(scorer, model_version), got {arm!r}")
    return arm


class Router:
    """Champion and challenger behind one :meth:`route` call (see the module docstring).

    Args:
        champion: the arm in production.
        challenger: the arm under test.
        log: where every request is appended.
        salt: the experiment's name; it seeds the assignment (a new experiment, a new salt).
        weights: arm -> weight over :data:`ARMS` (default: all traffic to the champion).
        mode: ``"split"`` or ``"shadow"``.
    """

    def __init__(
        self, champion: Arm, challenger: Arm, *, log: PredictionLog, salt: str,
        weights: Mapping[str, float] | None = None, mode: str = "split",
    ) -> None:
        if not isinstance(log, PredictionLog):
            raise InvalidParameterError(f"log must be a PredictionLog, got {log!r}")
        self.salt = check_text("salt", salt)
        self.log = log
        self._lock = threading.Lock()
        self._config = _Config(
            _check_arm("champion", champion), _check_arm("challenger", challenger),
            _check_router_weights(weights if weights is not None else {"champion": 1.0}),
            check_choice("mode", mode, MODES),
        )

    # -- configuration (each change replaces the whole configuration under the lock) --------
    @property
    def weights(self) -> dict[str, float]:
        """The current split, normalised (a copy)."""
        return dict(self._config.shares)

    @property
    def mode(self) -> str:
        """``"split"`` or ``"shadow"``."""
        return self._config.mode

    @property
    def arms(self) -> dict[str, Arm]:
        """Arm name -> :class:`Arm`, now (a router built from them splits the same way)."""
        config = self._config
        return {"champion": config.champion, "challenger": config.challenger}

    @property
    def versions(self) -> dict[str, str]:
        """Arm -> model version, now."""
        config = self._config
        return {"champion": config.champion.model_version,
                "challenger": config.challenger.model_version}

    def set_weights(self, weights: Mapping[str, float]) -> None:
        """Change the split; customers move only where their slice changed."""
        shares = _check_router_weights(weights)
        with self._lock:
            self._config = replace(self._config, shares=shares)
        logger.info("router weights: %s", shares)

    def set_mode(self, mode: str) -> None:
        """Switch between ``split`` and ``shadow``."""
        check_choice("mode", mode, MODES)
        with self._lock:
            self._config = replace(self._config, mode=mode)

    def set_arms(self, *, champion: Arm | None = None, challenger: Arm | None = None) -> None:
        """Replace the champion, the challenger or both, in one step."""
        if champion is not None:
            _check_arm("champion", champion)
        if challenger is not None:
            _check_arm("challenger", challenger)
        with self._lock:
            self._config = replace(self._config,
                                   champion=champion or self._config.champion,
                                   challenger=challenger or self._config.challenger)
        logger.info("router arms: %s", self.versions)

    def promote(self) -> None:
        """Swap the arms: the challenger becomes the champion and the champion the challenger."""
        with self._lock:
            config = self._config
            self._config = replace(config, champion=config.challenger,
                                   challenger=config.champion)
        logger.info("router promoted: %s", self.versions)

    # -- requests ------------------------------------------------------------------------------
    def arm_of(self, customer_id: int) -> str:
        """The arm that answers ``customer_id`` now (the champion in shadow mode)."""
        config = self._config
        if config.mode == "shadow":
            return "champion"
        return _slice(hash_point(_check_customer(customer_id), self.salt), config.shares)

    def route(self, customer_id: int, *, request_id: str | None = None) -> Routed:
        """Score ``customer_id`` with its arm, log the request, return the answer.

        In shadow mode the challenger's score is logged with ``shadow=True`` and not returned;
        an exception from the shadow scorer is logged as a warning and does not fail the call.
        An exception from the answering scorer propagates (nothing is logged for it).
        """
        _check_customer(customer_id)
        rid = uuid.uuid4().hex if request_id is None else check_text("request_id", request_id)
        config = self._config  # one read: the request sees one consistent configuration
        if config.mode == "shadow":
            name = "champion"
        else:
            name = _slice(hash_point(customer_id, self.salt), config.shares)
        arm = config.champion if name == "champion" else config.challenger
        score, latency = _timed(arm, customer_id)
        self.log.record(request_id=rid, customer_id=customer_id, arm=name,
                        model_version=arm.model_version, score=score, latency_ms=latency,
                        shadow=False)
        if config.mode == "shadow":
            self._shadow(config.challenger, customer_id, rid)
        return Routed(rid, customer_id, name, arm.model_version, score, latency)

    def _shadow(self, arm: Arm, customer_id: int, request_id: str) -> None:
        try:
            score, latency = _timed(arm, customer_id)
        except Exception as error:  # a shadow model must never fail the request it mirrors
            logger.warning("shadow scorer %s failed on request %s: %r", arm.model_version,
                           request_id, error)
            return
        self.log.record(request_id=request_id, customer_id=customer_id, arm="challenger",
                        model_version=arm.model_version, score=score, latency_ms=latency,
                        shadow=True)


def _timed(arm: Arm, customer_id: int) -> tuple[float, float]:
    start = time.perf_counter()
    score = float(arm.scorer(customer_id))
    return score, (time.perf_counter() - start) * 1000.0
