"""Start and supervise a server process: one home for every server the companion runs.

:class:`ServerProcess` starts a command (an ``mlflow server``, a ``uvicorn`` app) on a loopback
port and owns it until it is stopped:

* it runs in its own process group, with this process's environment plus
  :func:`companion.core.env.offline_env` (no telemetry, no network) and the caller's ``env``;
* on Linux it gets SIGTERM when the process that started it dies (``PR_SET_PDEATHSIG``), so a
  killed kernel leaves no server behind;
* :meth:`ServerProcess.start` waits until ``GET <url><health_path>`` answers 200 and raises
  :class:`~companion.errors.ServerError`, quoting the end of the server's log, if the process
  exits first or does not answer in time;
* :meth:`ServerProcess.stop` sends SIGTERM to the whole group and SIGKILL to what outlives a
  grace period; it also runs when the object is garbage-collected or the interpreter exits.

Use it as a context manager::

    port = free_port()
    with ServerProcess([sys.executable, "-m", "http.server", str(port), "-b", "127.0.0.1"],
                       port=port, health_path="/", log_path=folder / "server.log") as server:
        urllib.request.urlopen(server.url)
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import weakref
from collections.abc import Mapping, Sequence
from pathlib import Path

from companion.core.checks import check_int, check_number, check_path
from companion.core.env import offline_env
from companion.errors import InvalidParameterError, ServerError

__all__ = [
    "LOOPBACK_HOSTS", "ServerProcess", "check_loopback", "free_port", "http_url", "log_tail",
]

logger = logging.getLogger(__name__)

LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")
"""Addresses the companion's servers listen on: this machine only."""


def check_loopback(host: object) -> str:
    """Return ``host`` if it is a loopback address; the companion never listens on a network."""
    if not isinstance(host, str) or host not in LOOPBACK_HOSTS:
        raise InvalidParameterError(
            f"host {host!r} is not a loopback address; accepted: {', '.join(LOOPBACK_HOSTS)} "
            "(the companion never opens a server to the network)"
        )
    return host


def free_port(host: str = "127.0.0.1") -> int:
    """Return a TCP port on ``host`` that nothing listens on right now.

    Example:
        >>> 1024 <= free_port() <= 65535
        True
    """
    check_loopback(host)
    family = socket.AF_INET6 if host == "::1" else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def http_url(host: str, port: int) -> str:
    """Return ``http://host:port`` (an IPv6 address in brackets).

    Example:
        >>> http_url("::1", 5000)
        'http://[::1]:5000'
    """
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def _die_with_parent() -> None:  # pragma: no cover - runs in the forked child
    """Ask Linux to send SIGTERM to this (child) process when its parent dies."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            pr_set_pdeathsig = 1
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


def _group_alive(pgid: int) -> bool:
    """Whether a process of group ``pgid`` is still running (a zombie is not).

    A server's child that outlives its parent is reparented to the system's init, which
    reaps it when it gets round to it (in some containers, a second later); until then the
    group answers signals, though its processes have exited and released their ports.
    """
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # pragma: no cover - a process we may not signal still exists
        return True
    return bool(_group_members(pgid))


def _group_members(pgid: int) -> list[int]:
    """Return the ids of the processes of group ``pgid`` that are not zombies."""
    import psutil

    alive = []
    for process in psutil.process_iter(["pid"]):
        with contextlib.suppress(psutil.Error, ProcessLookupError):
            if os.getpgid(process.pid) == pgid and process.status() != psutil.STATUS_ZOMBIE:
                alive.append(process.pid)
    return alive


def _stop_group(process: subprocess.Popen[bytes], grace_seconds: float) -> None:
    """Terminate ``process`` and every process in its group; kill what outlives the grace."""
    if process.poll() is None or _group_alive(process.pid):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + grace_seconds
        while time.monotonic() < deadline:
            if process.poll() is not None and not _group_alive(process.pid):
                break
            time.sleep(0.05)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=grace_seconds)


def log_tail(path: str | os.PathLike[str], lines: int = 20) -> str:
    """Return the last ``lines`` lines of a log file ("" if it does not exist yet)."""
    check_int("lines", lines, minimum=1)
    path = Path(path)
    if not path.exists():
        return ""
    text = path.read_text(encoding="utf-8", errors="replace")
    return "\n".join(text.splitlines()[-lines:])


class ServerProcess:
    """A server command on a loopback port, in its own process group, owned by this process.

    Args:
        command: the argv that starts the server (no shell); it must listen on ``port``.
        port: the TCP port the command listens on (see :func:`free_port`).
        log_path: file that receives the server's stdout and stderr (appended to).
        host: loopback address the command listens on.
        health_path: path that answers 200 once the server is ready (``/health``, ``/ping``).
        env: variables on top of this process's environment and the offline environment.
        cwd: working folder of the command (default: the log file's folder).
        startup_timeout: seconds to wait for the health path before giving up.
        name: what messages call the server (default: the command's program name).
    """

    def __init__(
        self,
        command: Sequence[str],
        *,
        port: int,
        log_path: str | os.PathLike[str],
        host: str = "127.0.0.1",
        health_path: str = "/health",
        env: Mapping[str, str] | None = None,
        cwd: str | os.PathLike[str] | None = None,
        startup_timeout: float = 60.0,
        name: str | None = None,
    ) -> None:
        if isinstance(command, (str, bytes)) or not isinstance(command, Sequence) or not command:
            raise InvalidParameterError(
                f"command must be a non-empty list of arguments, got {command!r}"
            )
        if not all(isinstance(part, str) for part in command):
            raise InvalidParameterError(f"command must hold strings, got {list(command)!r}")
        self.command = list(command)
        self.host = check_loopback(host)
        self.port = check_int("port", port, minimum=1024, maximum=65535)
        self.log_path = check_path("log_path", log_path)
        if not isinstance(health_path, str) or not health_path.startswith("/"):
            raise InvalidParameterError(
                f"health_path must be a URL path starting with '/', got {health_path!r}"
            )
        self.health_path = health_path
        if env is not None and (
            not isinstance(env, Mapping)
            or not all(isinstance(k, str) and isinstance(v, str) for k, v in env.items())
        ):
            raise InvalidParameterError(f"env must be a mapping of strings to strings, got {env!r}")
        self.env = dict(env or {})
        self.cwd = self.log_path.parent if cwd is None else check_path("cwd", cwd)
        self.startup_timeout = check_number("startup_timeout", startup_timeout, positive=True)
        self.name = name if isinstance(name, str) and name else Path(self.command[0]).name
        self._process: subprocess.Popen[bytes] | None = None
        self._finalizer: weakref.finalize | None = None

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"ServerProcess({self.name!r}, {self.url}, {state})"

    @property
    def url(self) -> str:
        """Base URL of the server, e.g. ``http://127.0.0.1:5000``."""
        return http_url(self.host, self.port)

    @property
    def health_url(self) -> str:
        """URL that answers 200 once the server is ready."""
        return self.url + self.health_path

    @property
    def running(self) -> bool:
        """Whether the server process is alive."""
        return self._process is not None and self._process.poll() is None

    @property
    def pid(self) -> int | None:
        """Process id of the command (also its process group id); None before start."""
        return None if self._process is None else self._process.pid

    def start(self, *, wait: bool = True) -> ServerProcess:
        """Start the command and (by default) wait until its health URL answers 200; return self.

        The kill-on-parent-death request is tied to the *thread* that starts the server (Linux
        sends the signal when that thread ends): start servers from a thread that outlives
        them, such as the main thread. To start several at once, start each with
        ``wait=False`` and then call :meth:`wait_ready` on each (from any thread).

        Raises:
            ServerError: the server is already running, exited during start-up, or did not
                answer within ``startup_timeout`` (it is then stopped); the message quotes the
                end of its log.
        """
        if self.running:
            raise ServerError(f"{self.name} is already running at {self.url}")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, **offline_env(), "PYTHONUNBUFFERED": "1", **self.env}
        logger.info("starting %s at %s", self.name, self.url)
        with open(self.log_path, "ab") as log:
            self._process = subprocess.Popen(  # noqa: S603 - an argv list, no shell
                self.command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                env=env, cwd=self.cwd, start_new_session=True,
                preexec_fn=_die_with_parent,  # noqa: PLW1509 - only calls prctl
            )
        self._finalizer = weakref.finalize(self, _stop_group, self._process, 10.0)
        if wait:
            self.wait_ready()
        return self

    def wait_ready(self) -> ServerProcess:
        """Wait until a started server answers its health URL; stop it and raise if it does not.

        Raises:
            ServerError: the server was never started, exited during start-up, or did not
                answer within ``startup_timeout``.
        """
        if self._process is None:
            raise ServerError(f"{self.name} was never started: call start() first")
        try:
            self._wait_healthy()
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_healthy(self) -> None:
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self._process is None or self._process.poll() is not None:
                code = None if self._process is None else self._process.returncode
                raise ServerError(
                    f"{self.name} exited with code {code} during start-up; end of "
                    f"{self.log_path.name}:\n{self.log_tail()}"
                )
            try:
                with urllib.request.urlopen(self.health_url, timeout=2) as response:  # noqa: S310
                    if response.status == 200:
                        logger.info("%s answers at %s", self.name, self.health_url)
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
                pass
            time.sleep(0.2)
        raise ServerError(
            f"{self.name} did not answer {self.health_path} within {self.startup_timeout:g} s; "
            f"end of {self.log_path.name}:\n{self.log_tail()}"
        )

    def log_tail(self, lines: int = 20) -> str:
        """Return the last ``lines`` lines of the server's log."""
        return log_tail(self.log_path, lines)

    def stop(self, grace_seconds: float = 10.0) -> None:
        """Stop the server and every process of its group; safe to call twice.

        SIGTERM first; what is still alive after ``grace_seconds`` gets SIGKILL.
        """
        grace_seconds = check_number("grace_seconds", grace_seconds, minimum=0)
        if self._process is None:
            return
        if self._finalizer is not None:
            self._finalizer.detach()
        _stop_group(self._process, grace_seconds)
        logger.info("stopped %s", self.name)

    def leftover_processes(self) -> list[int]:
        """Return the ids of processes still alive in the server's process group."""
        if self._process is None:
            return []
        return _group_members(self._process.pid)

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
