"""Tests of the router in front of real HTTP services: arms that call a running app on loopback
(its version from /health), traffic from many threads with weight changes and champion swaps
mid-way, and failed requests counted, not raised."""

from __future__ import annotations

import threading
import time

import numpy as np
import pandas as pd
import pytest

from companion import deployment
from companion.core.process import free_port
from companion.deployment.remote import HttpScorer, http_arm, route_all
from companion.errors import InvalidParameterError, ServerError
from companion.training import CATEGORICAL_FEATURES, FEATURES, NUMERIC_FEATURES, make_model

IDS = list(range(1, 301))


def _features(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({c: rng.gamma(2.0, 10.0, n) for c in NUMERIC_FEATURES})
    levels = {"plan": ["basic", "standard", "premium"], "region": ["north", "south"],
              "acquisition_channel": ["organic", "search"], "age_band": ["18-24", "55+"]}
    for column in CATEGORICAL_FEATURES:
        frame[column] = rng.choice(levels[column], n)
    return frame[FEATURES]


class _Served:
    """A real uvicorn server for an app, on a loopback port, in a thread of this process."""

    def __init__(self, app) -> None:
        import uvicorn

        self.port = free_port()
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port,
                                                    log_level="error", lifespan="off"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            assert time.monotonic() < deadline, "the test server did not start"
            time.sleep(0.02)
        return f"http://127.0.0.1:{self.port}"

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(10)


@pytest.fixture(scope="module")
def apps():
    from threadpoolctl import threadpool_limits

    table = _features(len(IDS), seed=5)
    table.insert(0, "customer_id", IDS)
    indexed = table.set_index("customer_id")

    def source(ids):
        return indexed.reindex(list(ids)).rename_axis("customer_id").reset_index()

    train = _features(400, seed=1)
    target = (train["support_tickets_4w"] + np.random.default_rng(2).normal(0, 10, 400)
              > 20).astype(int)
    with threadpool_limits(limits=1):
        served = {}
        for version, seed in ((3, 0), (4, 1)):
            model = make_model("gbm", seed=seed).set_params(model__max_iter=10)
            served[version] = deployment.ServedModel(model=model.fit(train, target),
                                                     version=version,
                                                     feature_service="churn_model_v1")
        with _Served(deployment.create_app(served[3], source)) as blue, \
                _Served(deployment.create_app(served[4], source)) as green:
            yield {"blue": blue, "green": green, "served": served, "table": indexed}


@pytest.mark.slow
def test_arms_call_the_services_and_carry_their_versions(apps, tmp_path) -> None:
    champion, challenger = http_arm(apps["blue"]), http_arm(apps["green"])
    assert (champion.model_version, challenger.model_version) == ("3", "4")
    expected = apps["served"][4].model.predict_proba(apps["table"].loc[[7], FEATURES])[:, 1][0]
    assert challenger.scorer(7) == float(expected)
    with pytest.raises(ServerError, match="answered 422 for customer 999999"):
        champion.scorer(999999)


@pytest.mark.slow
def test_weight_changes_and_swaps_under_load_drop_nothing(apps, tmp_path) -> None:
    log = deployment.PredictionLog(tmp_path / "predictions.jsonl")
    router = deployment.Router(http_arm(apps["blue"]), http_arm(apps["green"]), log=log,
                               salt="test", weights={"champion": 0.8, "challenger": 0.2})

    def operator(count: int) -> None:
        if count == 100:
            router.set_weights({"champion": 0.5, "challenger": 0.5})
        elif count == 200:
            router.promote()

    traffic = route_all(router, IDS, clients=8, during=operator)
    assert traffic.errors == 0 and traffic.requests == len(IDS) == len(traffic.answered)
    assert router.versions == {"champion": "4", "challenger": "3"}
    assert [r.customer_id for r in traffic.answered] == IDS
    logged = deployment.read_log(tmp_path / "predictions.jsonl")
    assert len(logged) == len(IDS) and set(logged["model_version"]) == {"3", "4"}
    # every answer came from the version its arm held when the request read the configuration
    assert all(r.score == s for r, s in zip(
        sorted(traffic.answered, key=lambda r: r.request_id),
        logged.sort_values("request_id")["score"], strict=True))


@pytest.mark.slow
def test_failures_are_counted_not_raised(apps, tmp_path) -> None:
    log = deployment.PredictionLog(tmp_path / "predictions.jsonl")
    router = deployment.Router(http_arm(apps["blue"]), http_arm(apps["green"]), log=log,
                               salt="test")
    traffic = route_all(router, [1, 2, 999999, 3], clients=2)
    assert (traffic.requests, traffic.errors, traffic.error_types) == (4, 1, {"ServerError": 1})
    assert traffic.arms == {"champion": 3}


def test_bad_arguments_are_refused_before_any_request(tmp_path) -> None:
    with pytest.raises(InvalidParameterError, match="not a loopback http:// address"):
        HttpScorer("http://example.com:80")
    with pytest.raises(InvalidParameterError, match="router must be a Router"):
        route_all(object(), [1])  # type: ignore[arg-type]
    with pytest.raises(ServerError, match="/health did not answer: ConnectError"):
        http_arm(f"http://127.0.0.1:{free_port()}", timeout=1.0)


# --------------------------------------------------------------------------- start_together


def _http_server(tmp_path, name: str, command: list[str] | None = None):
    import sys

    from companion.core.process import ServerProcess

    port = free_port()
    argv = command or [sys.executable, "-m", "http.server", str(port), "-b", "127.0.0.1"]
    return ServerProcess(argv, port=port, health_path="/", log_path=tmp_path / f"{name}.log",
                         startup_timeout=20, name=name)


@pytest.mark.slow
def test_servers_start_together_and_a_failure_stops_them_all(tmp_path) -> None:
    import sys

    from companion.deployment.launch import start_together, stop_together

    started = start_together([_http_server(tmp_path, "a"), _http_server(tmp_path, "b")])
    try:
        # still running once the threads that waited for them are gone: a child asked to die
        # with the *thread* that forked it would be gone by now
        time.sleep(1.0)
        assert [s.running for s in started] == [True, True]
        import urllib.request

        for server in started:
            with urllib.request.urlopen(server.url, timeout=5) as answer:
                assert answer.status == 200
    finally:
        stop_together(started)
    assert [s.running for s in started] == [False, False]
    assert [s.leftover_processes() for s in started] == [[], []]
    good = _http_server(tmp_path, "good")
    bad = _http_server(tmp_path, "bad", [sys.executable, "-c", "raise SystemExit('no port')"])
    with pytest.raises(ServerError, match="no port"):
        start_together([good, bad])
    assert not good.running and good.leftover_processes() == []
    with pytest.raises(InvalidParameterError, match="appears twice"):
        start_together([good, good])


_SLOW_EXIT = """
import signal, sys, time
from http.server import HTTPServer, SimpleHTTPRequestHandler
def on_term(*_):
    print("term", time.time(), flush=True)
    time.sleep(1.0)                     # a graceful shutdown that takes a moment
    print("exit", time.time(), flush=True)
    sys.exit(0)
signal.signal(signal.SIGTERM, on_term)
HTTPServer(("127.0.0.1", int(sys.argv[1])), SimpleHTTPRequestHandler).serve_forever()
"""


@pytest.mark.slow
def test_servers_stop_together_each_signalled_before_any_has_exited(tmp_path) -> None:
    import sys

    from companion.deployment.launch import start_together, stop_together

    servers = []
    for name in ("a", "b", "c"):
        server = _http_server(tmp_path, name, [sys.executable, "-c", _SLOW_EXIT, "PORT"])
        server.command[-1] = str(server.port)
        servers.append(server)
    start_together(servers)
    stop_together(servers)
    assert [s.running for s in servers] == [False, False, False]
    assert [s.leftover_processes() for s in servers] == [[], [], []]
    events = {}
    for name in ("a", "b", "c"):
        lines = (tmp_path / f"{name}.log").read_text().splitlines()
        events[name] = {line.split()[0]: float(line.split()[1]) for line in lines
                        if line.startswith(("term ", "exit "))}
    assert max(e["term"] for e in events.values()) < min(e["exit"] for e in events.values())
    stop_together(servers)                       # stopping twice is safe
    stop_together([])


def test_stop_together_refuses_what_is_not_a_server() -> None:
    from companion.deployment.launch import stop_together

    with pytest.raises(InvalidParameterError, match="ServerProcess objects, got 'x'"):
        stop_together(["x"])  # type: ignore[list-item]
    with pytest.raises(InvalidParameterError, match="grace_seconds must be a number >= 0, got -1"):
        stop_together([], grace_seconds=-1)


@pytest.mark.slow
def test_a_failed_cell_leaves_no_server_running(tmp_path) -> None:
    """A chapter's kernel that dies on a failed cell takes its servers with it."""
    import json
    import os

    import nbformat
    import papermill

    pids = tmp_path / "pids.json"
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [
        nbformat.v4.new_code_cell(
            "import json, sys\n"
            "from companion.core.process import ServerProcess, free_port\n"
            "from companion.deployment.launch import start_together\n"
            "ports = [free_port(), free_port()]\n"
            "servers = start_together([ServerProcess(\n"
            "    [sys.executable, '-m', 'http.server', str(p), '-b', '127.0.0.1'], port=p,\n"
            f"    health_path='/', log_path={str(tmp_path)!r} + f'/{{p}}.log') for p in ports])\n"
            f"open({str(pids)!r}, 'w').write(json.dumps([s.pid for s in servers]))"),
        nbformat.v4.new_code_cell("raise RuntimeError('a cell fails')"),
    ]
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                       "language": "python"}
    source = tmp_path / "fails.ipynb"
    nbformat.write(notebook, source)
    with pytest.raises(papermill.PapermillExecutionError, match="a cell fails"):
        papermill.execute_notebook(str(source), str(tmp_path / "out.ipynb"), progress_bar=False,
                                   kernel_name="python3", cwd=str(tmp_path),
                                   stdout_file=None, log_output=False)
    started = json.loads(pids.read_text())
    deadline = time.monotonic() + 15
    alive = started
    while alive and time.monotonic() < deadline:
        alive = [p for p in started if _alive(p)]
        time.sleep(0.2)
    assert len(started) == 2 and alive == [], f"servers still running after the kernel died: {alive}"
    assert os.getpid() not in started


def _alive(pid: int) -> bool:
    import psutil

    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_every_entry_point_checks_model_and_store_uris_alike(tmp_path) -> None:
    from companion.deployment import baselines, launch, service

    for call in (lambda m, t: launch.server_command(m, t, tmp_path, port=8000),
                 lambda m, t: baselines.mlflow_command(m, port=8000) if t else None,
                 lambda m, t: service.check_model_uris(m, t)):
        with pytest.raises(InvalidParameterError, match=r"model_uri must be 'models:/<name>@"):
            call("runs:/abc/model", "sqlite:///m.db")
    for call in (lambda t: launch.server_command("models:/m@a", t, tmp_path, port=8000),
                 lambda t: baselines.minimal_command("models:/m@a", t, port=8000),
                 lambda t: service.check_model_uris("models:/m/3", t)):
        with pytest.raises(InvalidParameterError, match="tracking_uri must be an MLflow URI"):
            call("mlflow.db")
    match = service.check_model_uris("models:/lumen-churn@production", "sqlite:///m.db")
    assert (match["name"], match["alias"], match["version"]) == ("lumen-churn", "production", None)
