"""Tests of companion.core.process: a real server process started, checked and stopped."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
import urllib.request
from pathlib import Path

import pytest

from companion.core.env import OFFLINE_ENV
from companion.core.process import ServerProcess, free_port, http_url, log_tail
from companion.errors import InvalidParameterError, ServerError

ROOT = Path(__file__).resolve().parent.parent


def _http_server(tmp_path: Path, **kwargs) -> ServerProcess:
    port = free_port()
    (tmp_path / "www").mkdir(exist_ok=True)
    command = [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1",
               "--directory", str(tmp_path / "www")]
    return ServerProcess(command, port=port, health_path="/", log_path=tmp_path / "server.log",
                         **kwargs)


def test_free_port_can_be_bound():
    port = free_port()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", port))
    assert 1024 <= port <= 65535
    for bad in ("0.0.0.0", "example.com", None):
        with pytest.raises(InvalidParameterError, match="is not a loopback address"):
            free_port(bad)


def test_urls_put_ipv6_addresses_in_brackets():
    assert http_url("127.0.0.1", 5000) == "http://127.0.0.1:5000"
    assert http_url("::1", 5000) == "http://[::1]:5000"


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"command": "python -m http.server"}, "command must be a non-empty list"),
        ({"command": []}, "command must be a non-empty list"),
        ({"command": ["python", 3]}, "command must hold strings"),
        ({"port": 80}, "port must be >= 1024"),
        ({"port": None}, "port must be an int"),
        ({"host": "0.0.0.0"}, "not a loopback address"),
        ({"health_path": "health"}, "health_path must be a URL path"),
        ({"env": {"A": 1}}, "env must be a mapping of strings"),
        ({"startup_timeout": 0}, "startup_timeout must be a finite number > 0"),
        ({"log_path": None}, "log_path must be a path"),
    ],
)
def test_server_process_refuses_bad_settings(tmp_path, kwargs, message):
    args = {"command": ["python"], "port": 8000, "log_path": tmp_path / "log", **kwargs}
    with pytest.raises(InvalidParameterError, match=message):
        ServerProcess(args.pop("command"), **args)
    assert list(tmp_path.iterdir()) == []


def test_a_server_that_never_started_is_harmless(tmp_path):
    server = _http_server(tmp_path)
    assert not server.running and server.pid is None and server.leftover_processes() == []
    assert server.log_tail() == ""
    server.stop()
    with pytest.raises(InvalidParameterError, match="grace_seconds must be a finite number"):
        server.stop(float("nan"))
    with pytest.raises(InvalidParameterError, match="lines must be >= 1"):
        log_tail(tmp_path / "server.log", 0)
    with pytest.raises(ServerError, match="was never started: call start"):
        server.wait_ready()


@pytest.mark.slow
def test_a_server_is_started_answers_and_is_stopped_with_its_group(tmp_path):
    (tmp_path / "www").mkdir()
    (tmp_path / "www" / "hello.txt").write_text("hello")
    with _http_server(tmp_path, env={"COMPANION_TEST": "yes"}) as server:
        assert server.running
        with urllib.request.urlopen(f"{server.url}/hello.txt", timeout=5) as response:
            assert response.read() == b"hello"
        assert server.leftover_processes() == [server.pid]
        environ = Path(f"/proc/{server.pid}/environ").read_bytes().split(b"\0")
        for name, value in {**OFFLINE_ENV, "COMPANION_TEST": "yes"}.items():
            assert f"{name}={value}".encode() in environ
        with pytest.raises(ServerError, match="already running"):
            server.start()
        pid = server.pid
    assert not server.running and server.leftover_processes() == []
    with pytest.raises(ProcessLookupError):
        os.killpg(pid, 0)
    assert "GET /hello.txt" in server.log_tail()


@pytest.mark.slow
def test_a_server_that_exits_reports_the_end_of_its_log(tmp_path):
    command = [sys.executable, "-c", "import sys; print('cannot bind: port taken'); sys.exit(3)"]
    server = ServerProcess(command, port=free_port(), log_path=tmp_path / "s.log", name="broken")
    with pytest.raises(ServerError, match=r"broken exited with code 3(.|\n)*cannot bind"):
        server.start()
    assert not server.running and server.leftover_processes() == []


@pytest.mark.slow
def test_a_server_that_never_answers_is_stopped(tmp_path):
    command = [sys.executable, "-c", "import time; print('starting', flush=True); time.sleep(60)"]
    server = ServerProcess(command, port=free_port(), log_path=tmp_path / "s.log",
                           startup_timeout=1.0, name="mute")
    started = time.monotonic()
    with pytest.raises(ServerError, match=r"mute did not answer /health within 1 s(.|\n)*starting"):
        server.start()
    assert time.monotonic() - started < 15
    assert not server.running and server.leftover_processes() == []


@pytest.mark.slow
def test_stop_kills_a_server_that_ignores_sigterm(tmp_path):
    port = free_port()
    script = textwrap.dedent(
        f"""
        import signal, http.server
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        http.server.HTTPServer(("127.0.0.1", {port}), http.server.SimpleHTTPRequestHandler
                               ).serve_forever()
        """
    )
    server = ServerProcess([sys.executable, "-c", script], port=port, health_path="/",
                           log_path=tmp_path / "s.log").start()
    started = time.monotonic()
    server.stop(grace_seconds=0.5)
    assert time.monotonic() - started < 5
    assert not server.running and server.leftover_processes() == []


@pytest.mark.slow
def test_a_server_dies_with_the_process_that_started_it(tmp_path):
    script = textwrap.dedent(
        f"""
        import sys, time
        from companion.core.process import ServerProcess, free_port
        port = free_port()
        command = [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"]
        server = ServerProcess(command, port=port, health_path="/",
                               log_path={str(tmp_path / "s.log")!r}).start()
        print(server.pid, flush=True)
        time.sleep(600)
        """
    )
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True,
                              cwd=ROOT)
    try:
        server_pid = int(parent.stdout.readline())
        os.killpg(server_pid, 0)  # the server's process group is alive
        parent.send_signal(signal.SIGKILL)  # no atexit, no finalizer: only the kernel's signal
        parent.wait(timeout=10)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                os.killpg(server_pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.1)
        else:
            os.killpg(server_pid, signal.SIGKILL)
            pytest.fail("the server outlived the process that started it")
    finally:
        if parent.poll() is None:
            parent.kill()


def test_a_group_of_zombies_is_not_alive() -> None:
    """An exited process not yet reaped still answers signals; it holds no port and no CPU."""
    from companion.core.process import _group_alive, _group_members

    child = subprocess.Popen([sys.executable, "-c", "pass"], start_new_session=True)
    deadline = time.monotonic() + 20
    while _group_members(child.pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    try:
        os.killpg(child.pid, 0)  # the zombie is still in its group: the signal is accepted
        assert _group_members(child.pid) == []
        assert _group_alive(child.pid) is False
    finally:
        child.wait()
    assert _group_alive(child.pid) is False  # reaped: the group is gone


def test_a_running_group_is_alive() -> None:
    from companion.core.process import _group_alive, _group_members

    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"],
                             start_new_session=True)
    try:
        assert _group_alive(child.pid) is True
        assert _group_members(child.pid) == [child.pid]
    finally:
        child.kill()
        child.wait()
