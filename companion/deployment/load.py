"""A bounded load test on loopback, and the in-process floor it is compared with.

:func:`load_test` sends a fixed number of requests to one URL from ``clients`` threads, each
with its own keep-alive :class:`httpx.Client` (one connection per client, as a pool of callers
would hold). Every client first opens its connection and sends ``warmup`` requests that are not
counted, then all clients start together (a barrier), so what is timed is the steady state: no
connection set-up, no thread start. Each request is timed with :func:`time.perf_counter` and its
status recorded; a non-2xx answer, a timeout or any other exception is an error. The test is
bounded: a fixed request count, a timeout per request and a deadline for the whole test
(requests not sent by then count as errors), so it never hangs::

    result = load_test(server.url + "/predict", bodies, clients=8, requests=400)
    result.p50_ms, result.p99_ms, result.throughput, result.errors

:func:`in_process_floor` times the same model's one-row predictions in this process, with one
OpenMP thread as the servers run: the latency no server can beat.

The clients share this process's interpreter lock: a request costs a client a fraction of a
millisecond of CPU, small against a model's milliseconds, but at many clients a response can
wait for the lock before its time is taken, so the latencies are an upper bound of what
separate callers would see.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import logging
import threading
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from companion.core.checks import check_frame, check_int, check_number
from companion.errors import InvalidParameterError

__all__ = ["LoadResult", "in_process_floor", "load_test"]

logger = logging.getLogger(__name__)

_TIMEOUT = "timeout"
_FAILED = "failed"
_NOT_SENT = "not sent"


@dataclasses.dataclass(frozen=True, eq=False)
class LoadResult:
    """What one load level measured.

    Attributes:
        clients: concurrent clients (threads, one connection each).
        requests: requests the test was asked to send (warm-up not counted).
        errors: requests that did not get a 2xx answer (an error status, a timeout, an
            exception, or not sent before the deadline).
        p50_ms: median latency of the answered requests, in milliseconds.
        p99_ms: 99th percentile latency of the answered requests, in milliseconds.
        throughput: answered requests per second of the timed part.
        duration_s: seconds from the common start to the last answer.
        statuses: how many answers of each status (``"timeout"``, ``"failed"``,
            ``"not sent"`` for requests that got none).
        latencies_ms: every answered request's latency in milliseconds, in completion order.
    """

    clients: int
    requests: int
    errors: int
    p50_ms: float
    p99_ms: float
    throughput: float
    duration_s: float
    statuses: Mapping[str, int]
    latencies_ms: np.ndarray = dataclasses.field(repr=False)

    def summary(self, digits: int = 1) -> dict[str, Any]:
        """Return the scalar fields rounded to ``digits`` decimals (one row of a table)."""
        check_int("digits", digits, minimum=0, maximum=6)
        return {"clients": self.clients, "requests": self.requests, "errors": self.errors,
                "p50_ms": round(self.p50_ms, digits), "p99_ms": round(self.p99_ms, digits),
                "req_per_s": round(self.throughput, digits),
                "duration_s": round(self.duration_s, 2)}


def _result(clients: int, requests: int, latencies: list[float], statuses: list[str | int],
            started: float, ended: float) -> LoadResult:
    counts = Counter(str(s) for s in statuses)
    ok = sum(n for s, n in counts.items() if s.isdigit() and 200 <= int(s) < 300)
    array = np.asarray(latencies, dtype=float) * 1000.0
    duration = max(ended - started, 1e-9)
    p50, p99 = (np.percentile(array, [50, 99]) if len(array) else (float("nan"),) * 2)
    return LoadResult(
        clients=clients, requests=requests, errors=requests - ok, p50_ms=float(p50),
        p99_ms=float(p99), throughput=len(array) / duration, duration_s=duration,
        statuses=dict(sorted(counts.items())), latencies_ms=array,
    )


def _encode(bodies: Any) -> list[bytes]:
    if isinstance(bodies, (str, bytes, Mapping)) or not isinstance(bodies, Sequence) or not bodies:
        raise InvalidParameterError(
            "bodies must be a non-empty list of request bodies (bytes, or dicts sent as JSON), "
            f"got {bodies!r:.80}"
        )
    encoded = []
    for i, body in enumerate(bodies):
        if isinstance(body, bytes):
            encoded.append(body)
        elif isinstance(body, Mapping):
            encoded.append(json.dumps(body).encode())
        else:
            raise InvalidParameterError(
                f"bodies[{i}] must be bytes or a dict, got {type(body).__name__}"
            )
    return encoded


def load_test(
    url: str,
    bodies: Sequence[bytes | Mapping[str, Any]],
    *,
    clients: int,
    requests: int,
    warmup: int = 2,
    timeout: float = 10.0,
    deadline: float = 120.0,
) -> LoadResult:
    """POST ``requests`` bodies to ``url`` from ``clients`` keep-alive clients; time each one.

    Request ``i`` sends ``bodies[i % len(bodies)]`` (JSON), so a run is the same set of requests
    whatever the number of clients. The clients take the next request as they finish the
    previous one (a closed loop: at most ``clients`` requests in flight).

    Args:
        url: the endpoint, e.g. ``server.url + "/predict"``; loopback only.
        bodies: request bodies, bytes or dicts (encoded as JSON once, before timing).
        clients: concurrent clients, 1 to 256.
        requests: timed requests in all, at least ``clients``.
        warmup: untimed requests each client sends first, on the connection it keeps.
        timeout: seconds one request may take before it counts as an error.
        deadline: seconds the timed part may take; requests not sent by then are errors.

    Raises:
        InvalidParameterError: a bad argument, or a URL that is not on loopback.
    """
    import httpx

    from companion.core.process import check_loopback

    if not isinstance(url, str) or not url.startswith("http://"):
        raise InvalidParameterError(f"url must be an http:// URL, got {url!r}")
    check_loopback(httpx.URL(url).host)
    encoded = _encode(bodies)
    clients = check_int("clients", clients, minimum=1, maximum=256)
    requests = check_int("requests", requests, minimum=clients, maximum=10_000_000)
    warmup = check_int("warmup", warmup, minimum=0, maximum=1000)
    timeout = check_number("timeout", timeout, positive=True)
    deadline = check_number("deadline", deadline, positive=True)

    headers = {"content-type": "application/json"}
    tickets = itertools.count()
    lock = threading.Lock()
    clock: dict[str, float] = {}
    start = threading.Barrier(clients + 1,
                              action=lambda: clock.__setitem__("start", time.perf_counter()))
    latencies: list[float] = []
    statuses: list[str | int] = []

    def client(number: int) -> None:
        with httpx.Client(timeout=timeout, headers=headers, limits=httpx.Limits(
                max_connections=1, max_keepalive_connections=1)) as http:
            for i in range(warmup):
                try:
                    http.post(url, content=encoded[(number + i) % len(encoded)])
                except httpx.HTTPError as exc:
                    logger.info("warm-up request of client %d failed: %s", number, exc)
            try:
                start.wait(timeout=deadline)
            except threading.BrokenBarrierError:
                return
            stop_at = clock["start"] + deadline
            while True:
                with lock:
                    ticket = next(tickets)
                if ticket >= requests or time.perf_counter() > stop_at:
                    return
                began = time.perf_counter()
                try:
                    status: str | int = http.post(url, content=encoded[ticket % len(encoded)]
                                                  ).status_code
                except httpx.TimeoutException:
                    status = _TIMEOUT
                except httpx.HTTPError as exc:
                    logger.info("request %d failed: %s", ticket, exc)
                    status = _FAILED
                took = time.perf_counter() - began
                with lock:
                    statuses.append(status)
                    if not isinstance(status, str):
                        latencies.append(took)
                    clock["end"] = time.perf_counter()

    threads = [threading.Thread(target=client, args=(n,), name=f"load-client-{n}", daemon=True)
               for n in range(clients)]
    for thread in threads:
        thread.start()
    warm_limit = warmup * timeout + deadline
    try:
        start.wait(timeout=warm_limit)
    except threading.BrokenBarrierError:
        clock.setdefault("start", time.perf_counter())
        logger.warning("the clients were not ready within %.0f s", warm_limit)
    for thread in threads:
        thread.join(timeout=deadline + timeout + 5)
    with lock:
        done, times = list(statuses), list(latencies)
        ended = clock.get("end", clock["start"])
    done += [_NOT_SENT] * max(requests - len(done), 0)
    result = _result(clients, requests, times, done, clock["start"], ended)
    if result.errors:
        logger.warning("%d of %d requests to %s got no 2xx answer: %s", result.errors,
                       requests, url, dict(result.statuses))
    return result


def in_process_floor(served_model: Any, frame: pd.DataFrame, n: int = 300) -> LoadResult:
    """Time ``n`` one-row predictions of ``served_model`` in this process (one OpenMP thread).

    Row ``i`` is ``frame``'s row ``i % len(frame)``, cut out before the clock starts; what is
    timed is :meth:`ServedModel.score` (column selection and ``predict_proba``), the work every
    server does at least once per request. Returned as a one-client :class:`LoadResult`.

    Args:
        served_model: a :class:`~companion.deployment.ServedModel` (or anything with
            ``score(frame)`` and ``features``).
        frame: rows holding the model's input columns.
        n: predictions to time.
    """
    from threadpoolctl import threadpool_limits

    if not callable(getattr(served_model, "score", None)) or not hasattr(served_model,
                                                                        "features"):
        raise InvalidParameterError(
            "served_model must be a ServedModel (load_served_model()), got "
            f"{type(served_model).__name__}"
        )
    check_frame("frame", frame, list(served_model.features), non_empty=True)
    n = check_int("n", n, minimum=1, maximum=1_000_000)
    rows = [frame.iloc[[i]] for i in range(min(n, len(frame)))]
    latencies: list[float] = []
    with threadpool_limits(limits=1):
        served_model.score(rows[0])  # the first call builds caches: not counted
        started = time.perf_counter()
        for i in range(n):
            began = time.perf_counter()
            served_model.score(rows[i % len(rows)])
            latencies.append(time.perf_counter() - began)
        ended = time.perf_counter()
    return _result(1, n, latencies, [200] * n, started, ended)
