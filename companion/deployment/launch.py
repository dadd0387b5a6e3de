"""Start Lumen's online service in a child process: :func:`serve` and the command it runs.

``python -m companion.deployment.server --model-uri models:/lumen-churn@production
--tracking-uri sqlite:///.../mlflow.db --feast-repo .../feast --port 8000`` loads the model
version the alias points at, opens the Feast repo and runs the app on one uvicorn worker on a
loopback address (:mod:`companion.deployment.server`, kept apart from this module so the
package does not import it before ``-m`` runs it). :func:`serve` builds that command as a
:class:`~companion.core.process.ServerProcess` with one OpenMP thread (a one-row
gradient-boosting predict on a busy 2-core machine is many times slower with the default)::

    with serve("models:/lumen-churn@production", ws.tracking_uri, ws.feast_dir,
               log_path=ws.path / "logs" / "service.log") as server:
        httpx.post(server.url + "/predict", json={"customer_id": 42})

Entering the block starts the server and waits until ``/health`` answers; leaving it stops the
server's whole process group.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

from companion.core.checks import check_path
from companion.core.process import ServerProcess, check_loopback, free_port
from companion.deployment.schemas import Limits
from companion.deployment.service import check_model_uris
from companion.errors import InvalidParameterError

__all__ = ["SERVER_ENV", "serve", "server_command", "start_together", "stop_together"]

logger = logging.getLogger(__name__)

SERVER_ENV = {
    "OMP_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
}
"""Variables of the server process: one OpenMP (and BLAS) thread, no progress bars."""


def server_command(
    model_uri: str,
    tracking_uri: str,
    feast_repo: str | os.PathLike[str],
    *,
    port: int,
    host: str = "127.0.0.1",
    limits: Limits | None = None,
) -> list[str]:
    """Return the argv that runs the service (``python -m companion.deployment.server ...``)."""
    check_model_uris(model_uri, tracking_uri)
    repo = check_path("feast_repo", feast_repo).resolve()
    if not repo.is_dir():
        raise InvalidParameterError(f"feast_repo {str(feast_repo)!r} is not a folder")
    check_loopback(host)
    limits = Limits() if limits is None else limits
    if not isinstance(limits, Limits):
        raise InvalidParameterError(f"limits must be a Limits, got {type(limits).__name__}")
    return [
        sys.executable, "-m", "companion.deployment.server",
        "--model-uri", model_uri, "--tracking-uri", tracking_uri, "--feast-repo", str(repo),
        "--host", host, "--port", str(port),
        "--max-body-bytes", str(limits.max_body_bytes), "--max-batch", str(limits.max_batch),
    ]


def serve(
    model_uri: str,
    tracking_uri: str,
    feast_repo: str | os.PathLike[str],
    *,
    log_path: str | os.PathLike[str],
    port: int | None = None,
    host: str = "127.0.0.1",
    limits: Limits | None = None,
    startup_timeout: float = 60.0,
    name: str = "lumen-service",
) -> ServerProcess:
    """Return the service as a :class:`~companion.core.process.ServerProcess`, not started yet.

    ``with serve(...) as server:`` (or ``server.start()``) starts it, waits for ``/health``,
    and stopping it ends the whole process group. The server runs with :data:`SERVER_ENV`.

    Args:
        model_uri: ``models:/lumen-churn@production`` or ``models:/<name>/<version>``.
        tracking_uri: the MLflow store the registry lives in (given explicitly).
        feast_repo: the Feast repo folder (``workspace.feast_dir``).
        log_path: the file that receives the server's output.
        port: the loopback port (default: a free one).
        host: the loopback address.
        limits: body size and batch limits.
        startup_timeout: seconds to wait for ``/health``.
        name: what messages and :func:`start_together` call this server.
    """
    check_loopback(host)
    port = free_port(host) if port is None else port
    command = server_command(model_uri, tracking_uri, feast_repo, port=port, host=host,
                             limits=limits)
    return ServerProcess(command, port=port, host=host, log_path=log_path, health_path="/health",
                         env=SERVER_ENV, startup_timeout=startup_timeout, name=name)


def start_together(servers: Sequence[ServerProcess]) -> list[ServerProcess]:
    """Start ``servers`` at the same time and wait until every one answers its health check.

    Each server spends seconds importing its libraries before it listens; started together,
    they wait for the slowest, not for the sum. If any fails to start, every one of them is
    stopped before the first error is raised, so nothing is left running.

    Returns:
        The servers, started, in the order given.

    Raises:
        InvalidParameterError: an item is not a :class:`ServerProcess`, or one appears twice.
        ServerError: a server exited or did not answer in time (its log's end is quoted).
    """
    servers = list(servers)
    for server in servers:
        if not isinstance(server, ServerProcess):
            raise InvalidParameterError(f"servers must be ServerProcess objects, got {server!r}")
    if len({id(s) for s in servers}) != len(servers):
        raise InvalidParameterError("a server appears twice in servers")
    if not servers:
        return []
    # Each process is started here, in the calling thread: Linux ties a child's "stop me when
    # my parent dies" request to the thread that forked it, and a pool thread ends at once.
    # Only the waiting (HTTP polls) happens in the pool.
    failures: list[BaseException] = []
    for server in servers:
        try:
            server.start(wait=False)
        except Exception as error:  # reported after every server is stopped
            failures.append(error)
            break
    if not failures:
        with ThreadPoolExecutor(max_workers=len(servers), thread_name_prefix="wait") as pool:
            outcomes = list(pool.map(_wait_one, servers))
        failures = [error for error in outcomes if error is not None]
    if failures:
        for server in servers:
            server.stop()
        raise failures[0]
    return servers


def _wait_one(server: ServerProcess) -> BaseException | None:
    try:
        server.wait_ready()
    except Exception as error:  # reported after every server is stopped
        return error
    return None


def stop_together(servers: Sequence[ServerProcess], grace_seconds: float = 10.0) -> None:
    """Stop ``servers`` at the same time: each gets its SIGTERM now, not after the last exits.

    A server shuts down gracefully (it finishes the requests it holds, then exits), which takes
    a moment; stopped one after another, the moments add up. Each server is stopped as
    :meth:`ServerProcess.stop` does (its whole process group, SIGKILL after
    ``grace_seconds``); safe for servers already stopped or never started.

    Raises:
        InvalidParameterError: an item is not a :class:`ServerProcess`, or a bad grace.
    """
    servers = list(servers)
    for server in servers:
        if not isinstance(server, ServerProcess):
            raise InvalidParameterError(f"servers must be ServerProcess objects, got {server!r}")
    if isinstance(grace_seconds, bool) or not isinstance(grace_seconds, (int, float)) or not (
        grace_seconds >= 0
    ):
        raise InvalidParameterError(
            f"grace_seconds must be a number >= 0, got {grace_seconds!r}"
        )
    if not servers:
        return
    with ThreadPoolExecutor(max_workers=len(servers), thread_name_prefix="stop") as pool:
        list(pool.map(lambda server: server.stop(grace_seconds), servers))
