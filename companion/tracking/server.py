"""A real ``mlflow server`` on a loopback port, owned by the process that starts it.

:class:`TrackingServer` says what to run (the command, its SQLite store, its proxied
artifacts, its log); :class:`companion.core.process.ServerProcess` runs it: its own process
group, the offline environment, a health wait, a clean stop of the whole group, and death with
the parent process.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

from companion.core.checks import check_int, check_number, check_path
from companion.core.process import (
    ServerProcess,
    check_loopback,
    free_port,
    http_url,
    log_tail,
)
from companion.errors import InvalidParameterError, ServerError

logger = logging.getLogger(__name__)

SERVER_ENV = {
    # No background job runner (a dozen huey processes for GenAI evaluation jobs): a tracking
    # server for runs, metrics and models does not need it.
    "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
}
"""Environment of the server process, on top of the caller's and the offline environment."""


class TrackingServer:
    """A real ``mlflow server`` on a loopback port, owned by this process.

    It keeps runs in ``<directory>/server.db`` (SQLite) and serves artifacts from
    ``<directory>/server-artifacts`` through the server (clients never touch that folder
    directly, as with a remote server). Its output goes to ``<directory>/server.log``.

    The server runs in its own process group; :meth:`stop` ends the whole group (the ``mlflow``
    command and its uvicorn worker). It is also stopped when the object is garbage-collected
    or the interpreter exits, and, on Linux, the server gets SIGTERM if the process that
    started it dies, which it forwards to its worker (:mod:`companion.core.process`).

    Starting it changes nothing global: point MLflow at it yourself, visibly::

        with TrackingServer(ws.path / "server") as server:
            mlflow.set_tracking_uri(server.url)

    Args:
        directory: folder for the store, the artifacts and the log.
        host: loopback address to listen on.
        port: TCP port; a free one is chosen at start when None.
        startup_timeout: seconds to wait for ``/health`` before giving up.
    """

    def __init__(
        self,
        directory: str | os.PathLike[str],
        host: str = "127.0.0.1",
        port: int | None = None,
        startup_timeout: float = 90.0,
    ) -> None:
        self.directory = check_path("directory", directory)
        if self.directory.exists() and not self.directory.is_dir():
            raise InvalidParameterError(
                f"directory {self.directory.name!r} exists and is not a folder; accepted: a "
                "folder or a path where one can be created"
            )
        self.host = check_loopback(host)
        self.port = None if port is None else check_int("port", port, minimum=1024, maximum=65535)
        self.startup_timeout = check_number("startup_timeout", startup_timeout, positive=True)
        self._server: ServerProcess | None = None

    def __repr__(self) -> str:
        where = self.url if self.port is not None else "no port yet"
        return f"TrackingServer({where}, {'running' if self.running else 'stopped'})"

    # ------------------------------------------------------------------ places
    @property
    def backend_store_uri(self) -> str:
        """SQLite URI of the server's run store."""
        return f"sqlite:///{self.directory.resolve() / 'server.db'}"

    @property
    def artifacts_destination(self) -> Path:
        """Folder where the server stores the artifacts clients upload through it."""
        return self.directory.resolve() / "server-artifacts"

    @property
    def log_path(self) -> Path:
        """File that receives the server's stdout and stderr."""
        return self.directory.resolve() / "server.log"

    @property
    def url(self) -> str:
        """HTTP tracking URI of the running server, e.g. ``http://127.0.0.1:5000``."""
        if self.port is None:
            raise ServerError("the tracking server has no port yet; call start() first")
        return http_url(self.host, self.port)

    @property
    def running(self) -> bool:
        """Whether the server process is alive."""
        return self._server is not None and self._server.running

    @property
    def pid(self) -> int | None:
        """Process id of the ``mlflow server`` command (also its process group id)."""
        return None if self._server is None else self._server.pid

    def command(self) -> list[str]:
        """Return the command line that starts the server with this interpreter's MLflow."""
        if self.port is None:
            raise ServerError("the tracking server has no port yet; call start() first")
        return [
            sys.executable, "-m", "mlflow", "server",
            "--backend-store-uri", self.backend_store_uri,
            "--artifacts-destination", str(self.artifacts_destination),
            "--host", self.host, "--port", str(self.port), "--workers", "1",
        ]

    # ------------------------------------------------------------------ life cycle
    def start(self) -> TrackingServer:
        """Start the server and wait until ``/health`` answers; return self.

        Raises:
            ServerError: the server is already running, exited during start-up (the message
                quotes the end of its log), or did not answer in time (it is stopped).
        """
        if self.running:
            raise ServerError(f"the tracking server is already running at {self.url}")
        self.directory.mkdir(parents=True, exist_ok=True)
        self.artifacts_destination.mkdir(exist_ok=True)
        if self.port is None:
            self.port = free_port(self.host)
        self._server = ServerProcess(
            self.command(), port=self.port, host=self.host, health_path="/health",
            log_path=self.log_path, env=SERVER_ENV, cwd=self.directory,
            startup_timeout=self.startup_timeout, name="mlflow server",
        )
        self._server.start()
        return self

    def log_tail(self, lines: int = 20) -> str:
        """Return the last ``lines`` lines of the server's log."""
        return log_tail(self.log_path, lines)

    def stop(self, grace_seconds: float = 10.0) -> None:
        """Stop the server and every process of its group; safe to call twice."""
        check_number("grace_seconds", grace_seconds, minimum=0)
        if self._server is not None:
            self._server.stop(grace_seconds)

    def leftover_processes(self) -> list[int]:
        """Return the ids of processes still alive in the server's process group."""
        return [] if self._server is None else self._server.leftover_processes()

    def __enter__(self) -> TrackingServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
