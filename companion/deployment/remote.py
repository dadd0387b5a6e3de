"""The router in front of real servers: arms that call a running service, and routed traffic.

:func:`http_arm` turns a running Lumen service (``serve(...)``, on loopback) into an
:class:`~companion.deployment.router.Arm`: its scorer POSTs ``{"customer_id": ...}`` to the
service's ``/predict`` over one keep-alive connection pool, and its model version is the one the
service reports on ``/health``, so the log records the version that really answered.

:func:`route_all` sends many customers through a router from a pool of client threads, as
concurrent callers would, and counts what failed: the chapter's proof that changing weights,
mode or arms under load drops no request. A failed request is counted, never raised, and the
exception type is kept for the report.

Example::

    with serve("models:/lumen-churn@production", ...) as blue, \
            serve("models:/lumen-churn/2", ...) as green:
        router = Router(http_arm(blue.url), http_arm(green.url), log=PredictionLog(path),
                        salt="exp-1", weights={"champion": 0.8, "challenger": 0.2})
        traffic = route_all(router, customer_ids, clients=8)
        assert traffic.errors == 0
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from companion.core.checks import check_int, check_number, check_text
from companion.deployment.router import Arm, Routed, Router
from companion.errors import InvalidParameterError, ServerError

__all__ = ["HttpScorer", "Traffic", "http_arm", "route_all"]

logger = logging.getLogger(__name__)


class HttpScorer:
    """``customer_id -> score`` through a running service's ``POST /predict``.

    Thread-safe (one :class:`httpx.Client`, whose pool is shared by the threads). A non-2xx
    answer, a refused connection or a timeout raises :class:`~companion.errors.ServerError`
    naming the service and what happened.
    """

    def __init__(self, url: str, *, timeout: float = 10.0) -> None:
        import httpx

        self.url = check_text("url", url).rstrip("/")
        if not self.url.startswith(("http://127.0.0.1", "http://localhost", "http://[::1]")):
            raise InvalidParameterError(f"url {url!r} is not a loopback http:// address")
        check_number("timeout", timeout, minimum=0.1, maximum=300.0)
        self._client = httpx.Client(base_url=self.url, timeout=timeout,
                                    limits=httpx.Limits(max_connections=64,
                                                        max_keepalive_connections=64))

    def _send(self, method: str, path: str, **kwargs: Any) -> Any:
        import httpx

        try:
            return self._client.request(method, path, **kwargs)
        except httpx.HTTPError as error:  # refused, reset, timed out: the service is not there
            raise ServerError(f"{self.url}{path} did not answer: {type(error).__name__}: "
                              f"{error}") from error

    def health(self) -> dict[str, Any]:
        """The service's ``/health`` answer."""
        answer = self._send("GET", "/health")
        if answer.status_code != 200:
            raise ServerError(f"{self.url}/health answered {answer.status_code}")
        body: dict[str, Any] = answer.json()
        return body

    def __call__(self, customer_id: int) -> float:
        answer = self._send("POST", "/predict", json={"customer_id": customer_id})
        if answer.status_code != 200:
            raise ServerError(f"{self.url}/predict answered {answer.status_code} for customer "
                              f"{customer_id}: {answer.text[:200]}")
        return float(answer.json()["score"])

    def close(self) -> None:
        """Close the connection pool."""
        self._client.close()

    def __repr__(self) -> str:
        return f"HttpScorer({self.url!r})"


def http_arm(url: str, *, timeout: float = 10.0) -> Arm:
    """Return an :class:`Arm` scoring through the service at ``url``, with the version it serves.

    Raises:
        InvalidParameterError: ``url`` is not a loopback ``http://`` address.
        ServerError: the service does not answer ``/health``.
    """
    scorer = HttpScorer(url, timeout=timeout)
    version = scorer.health()["model_version"]
    return Arm(scorer, str(version))


@dataclass(frozen=True)
class Traffic:
    """What :func:`route_all` sent and what came back."""

    requests: int
    answered: list[Routed] = field(repr=False)
    errors: int
    error_types: dict[str, int]

    @property
    def arms(self) -> dict[str, int]:
        """Answered requests per arm."""
        return dict(sorted(Counter(r.arm for r in self.answered).items()))


def route_all(
    router: Router,
    customer_ids: Iterable[int],
    *,
    clients: int = 8,
    during: Callable[[int], None] | None = None,
) -> Traffic:
    """Route every id in ``customer_ids`` through ``router`` from ``clients`` threads.

    Args:
        router: the router.
        customer_ids: one request per id, in any order the threads take them.
        clients: concurrent callers (1-256).
        during: called with the count of requests started so far, after each start, from the
            calling threads (an operator changing weights or arms mid-way); it must be quick.

    Returns:
        The answers (in the order of ``customer_ids``) and the count of failed requests.
    """
    if not isinstance(router, Router):
        raise InvalidParameterError(f"router must be a Router, got {router!r}")
    check_int("clients", clients, minimum=1, maximum=256)
    if during is not None and not callable(during):
        raise InvalidParameterError(f"during must be callable (count -> None), got {during!r}")
    ids = [int(check_int("customer_id", c, minimum=0)) for c in customer_ids]
    started = 0
    lock = threading.Lock()

    def one(customer_id: int) -> Routed | BaseException:
        nonlocal started
        with lock:
            started += 1
            count = started
        if during is not None:
            during(count)
        try:
            return router.route(customer_id)
        except Exception as error:  # counted, not raised: the caller asked for a tally
            return error

    with ThreadPoolExecutor(max_workers=clients, thread_name_prefix="route") as pool:
        results = list(pool.map(one, ids))
    answered = [r for r in results if isinstance(r, Routed)]
    failed = [type(r).__name__ for r in results if not isinstance(r, Routed)]
    if failed:
        logger.warning("%d of %d routed requests failed", len(failed), len(ids))
    return Traffic(len(ids), answered, len(failed), dict(Counter(failed)))
