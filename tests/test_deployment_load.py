"""Tests of the load generator, the in-process floor, the service's fast feature lookup, and
(slow) the serving baselines for real: ``mlflow models serve`` and the minimal FastAPI app
start, answer and stop leaving nothing, and the bad-input probes return their tables."""

from __future__ import annotations

import json
import os
import socket
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from companion import deployment
from companion.data import SimulationConfig
from companion.data.config import AGE_BANDS, CHANNELS, PLANS, REGIONS
from companion.deployment import baselines, load
from companion.errors import InvalidParameterError
from companion.training import CATEGORICAL_FEATURES, FEATURES, NUMERIC_FEATURES, make_model

MODEL_URI = "models:/lumen-churn@production"


# --------------------------------------------------------------------------- a toy server


class _Toy(ThreadingHTTPServer):
    daemon_threads = True
    received = 0
    release = threading.Event()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the load clients expect

    def do_POST(self) -> None:  # noqa: N802 - the name http.server calls
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        server = self.server
        assert isinstance(server, _Toy)
        server.received += 1
        if body == b'{"hang": true}':
            server.release.wait(10)
            return
        if body == b'{"slow": true}':
            time.sleep(0.1)
        status = 500 if body == b'{"fail": true}' else 200
        answer = b'{"ok": true}'
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def toy() -> Iterator[_Toy]:
    server = _Toy(("127.0.0.1", 0), _Handler)
    server.release = threading.Event()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.release.set()
    server.shutdown()
    server.server_close()


def _url(server: _Toy) -> str:
    return f"http://127.0.0.1:{server.server_address[1]}/p"


# --------------------------------------------------------------------------- load_test


def test_errors_are_counted_and_the_request_count_is_kept(toy) -> None:
    bodies = [{"ok": 1}, {"ok": 2}, {"fail": True}]
    result = load.load_test(_url(toy), bodies, clients=3, requests=30, warmup=2)
    assert (result.clients, result.requests, result.errors) == (3, 30, 10)
    assert result.statuses == {"200": 20, "500": 10}
    assert toy.received == 30 + 3 * 2  # the timed requests and each client's warm-up
    assert len(result.latencies_ms) == 30 and (result.latencies_ms > 0).all()
    assert 0 < result.p50_ms <= result.p99_ms <= result.latencies_ms.max()
    assert result.throughput == pytest.approx(30 / result.duration_s)
    assert result.summary()["errors"] == 10


def test_one_client_sends_exactly_the_requests_asked(toy) -> None:
    result = load.load_test(_url(toy), [b'{"a": 1}'], clients=1, requests=7, warmup=0)
    assert (result.errors, len(result.latencies_ms), toy.received) == (0, 7, 7)
    assert set(result.summary()) == {"clients", "requests", "errors", "p50_ms", "p99_ms",
                                     "req_per_s", "duration_s"}


def test_a_server_that_never_answers_times_out_cleanly(toy) -> None:
    started = time.perf_counter()
    result = load.load_test(_url(toy), [{"hang": True}], clients=2, requests=2, warmup=0,
                            timeout=0.5)
    assert time.perf_counter() - started < 5
    assert result.errors == 2 and result.statuses == {"timeout": 2}
    assert len(result.latencies_ms) == 0 and np.isnan(result.p50_ms)


def test_the_deadline_bounds_a_slow_run_and_counts_what_was_not_sent(toy) -> None:
    started = time.perf_counter()
    result = load.load_test(_url(toy), [{"slow": True}], clients=2, requests=400, warmup=0,
                            deadline=0.5)
    assert time.perf_counter() - started < 3
    assert result.requests == 400 and 0 < len(result.latencies_ms) < 40
    assert result.statuses["not sent"] == 400 - len(result.latencies_ms)
    assert result.errors == result.statuses["not sent"]


@pytest.mark.parametrize("kwargs, message", [
    ({"clients": 0}, "clients must be >= 1"),
    ({"clients": 4, "requests": 3}, "requests must be >= 4"),
    ({"timeout": 0}, "timeout"),
    ({"warmup": -1}, "warmup"),
    ({"bodies": []}, "bodies must be a non-empty list"),
    ({"bodies": "{}"}, "bodies must be a non-empty list"),
    ({"bodies": [1]}, r"bodies\[0\] must be bytes or a dict"),
    ({"url": "http://example.com/p"}, "not a loopback address"),
    ({"url": "127.0.0.1:80/p"}, "url must be an http:// URL"),
])
def test_bad_arguments_are_refused_before_any_request(toy, kwargs, message) -> None:
    arguments = {"url": _url(toy), "bodies": [b"{}"], "clients": 2, "requests": 10,
                 **kwargs}
    url, bodies = arguments.pop("url"), arguments.pop("bodies")
    with pytest.raises(InvalidParameterError, match=message):
        load.load_test(url, bodies, **arguments)
    assert toy.received == 0


# --------------------------------------------------------------------------- the model


LEVELS = {"plan": PLANS, "region": REGIONS, "acquisition_channel": CHANNELS[:-1],
          "age_band": AGE_BANDS}


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    rng = np.random.default_rng(1)
    frame = pd.DataFrame({c: rng.gamma(2.0, 10.0, 400) for c in NUMERIC_FEATURES})
    for column in CATEGORICAL_FEATURES:
        frame[column] = rng.choice(LEVELS[column], 400)
    return frame[FEATURES]


@pytest.fixture(scope="module")
def served(frame) -> deployment.ServedModel:
    from threadpoolctl import threadpool_limits

    target = (frame["support_tickets_4w"] + np.random.default_rng(2).normal(0, 10, 400)
              > 20).astype(int)
    model = make_model("gbm", seed=0).set_params(model__max_iter=10)
    with threadpool_limits(limits=1):
        model.fit(frame, target)
    return deployment.ServedModel(model=model, version=2, feature_service="churn_model_v1")


def test_the_in_process_floor_times_each_prediction(served, frame) -> None:
    result = load.in_process_floor(served, frame, n=25)
    assert (result.clients, result.requests, result.errors) == (1, 25, 0)
    assert len(result.latencies_ms) == 25 and (result.latencies_ms > 0).all()
    assert result.p50_ms <= result.p99_ms
    with pytest.raises(InvalidParameterError, match="missing column"):
        load.in_process_floor(served, frame.drop(columns=["plan"]), n=5)
    with pytest.raises(InvalidParameterError, match="has no rows"):
        load.in_process_floor(served, frame.head(0), n=5)
    with pytest.raises(InvalidParameterError, match="served_model must be a ServedModel"):
        load.in_process_floor(served.model, frame, n=5)


@pytest.mark.parametrize("as_mapping", [False, True])
def test_the_fast_lookup_scores_like_model_frame(served, frame, as_mapping) -> None:
    from companion.features import model_frame

    table = frame.head(6).copy()
    table.insert(0, "customer_id", range(1, 7))
    table.loc[[1, 4], ["sessions_4w", "minutes_4w"]] = np.nan  # no activity in the window
    table.loc[2, "tenure_days"] = np.nan  # a profile feature stays empty

    def source(ids):
        rows = table.set_index("customer_id").reindex(list(ids)).reset_index()
        if not as_mapping:
            return rows
        return {c: [None if pd.isna(v) else v for v in rows[c]] for c in rows.columns}

    client = TestClient(deployment.create_app(served, source))
    ids = [1, 2, 3, 4, 5, 6]
    answer = client.post("/predict/batch", json={"customer_ids": ids})
    assert answer.status_code == 200
    expected = served.model.predict_proba(model_frame(table)[FEATURES])[:, 1]
    assert [p["score"] for p in answer.json()["predictions"]] == expected.tolist()
    one = client.post("/predict", json={"customer_id": 2})
    assert one.json()["score"] == expected[1]
    missing = client.post("/predict", json={"customer_id": 77})
    assert missing.status_code == 422 and "77 is not in the online store" in missing.text


# --------------------------------------------------------------------------- arguments


def test_baseline_servers_check_their_arguments_before_starting(tmp_path) -> None:
    with pytest.raises(InvalidParameterError, match="model_uri must be 'models:/"):
        baselines.mlflow_serve("runs:/x/model", "sqlite:///x.db", log_path=tmp_path / "l")
    with pytest.raises(InvalidParameterError, match="tracking_uri must be an MLflow URI"):
        baselines.minimal_serve(MODEL_URI, "mlflow.db", log_path=tmp_path / "l")
    with pytest.raises(InvalidParameterError, match="not a loopback address"):
        baselines.mlflow_serve(MODEL_URI, "sqlite:///x.db", log_path=tmp_path / "l",
                               host="0.0.0.0")
    with pytest.raises(InvalidParameterError, match="url must be an http:// URL"):
        baselines.mlflow_probe("localhost:5000", pd.DataFrame())
    with pytest.raises(InvalidParameterError, match="missing column"):
        baselines.mlflow_probe("http://127.0.0.1:5000", pd.DataFrame({"plan": ["basic"]}))
    with pytest.raises(InvalidParameterError, match="features must be a non-empty dict"):
        baselines.service_probe("http://127.0.0.1:5000", 1, {})
    assert not (tmp_path / "l").exists()
    command = baselines.mlflow_command(MODEL_URI, port=5001)
    assert command[1:] == ["-m", "mlflow", "models", "serve", "-m", MODEL_URI,
                           "--env-manager", "local", "-h", "127.0.0.1", "-p", "5001"]
    env = baselines._child_env("sqlite:///x.db")
    assert env["OMP_NUM_THREADS"] == "1" and env["MLFLOW_TRACKING_URI"] == "sqlite:///x.db"
    assert env["PATH"].split(os.pathsep)[0] == os.path.dirname(sys.executable)


# --------------------------------------------------------------------------- for real (slow)


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    from companion.workspace import Workspace

    workspace = Workspace.create(
        "test-load", root=tmp_path_factory.mktemp("load"),
        config=SimulationConfig(n_customers=2500, months=3, seed=3, scenarios=()))
    workspace.require("baseline", "features")
    return workspace


@pytest.fixture(scope="module")
def rows(ws) -> pd.DataFrame:
    from companion.features import model_frame, online_features

    served = deployment.load_served_model(MODEL_URI, ws.tracking_uri)
    ids = list(range(1, 401))
    return model_frame(online_features(ws.require("features"), ids,
                                       served.feature_service))[served.features]


def _gone(server) -> None:
    assert not server.running
    assert server.leftover_processes() == []
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", server.port)) != 0


@pytest.mark.slow
def test_mlflow_models_serve_answers_what_it_should_refuse_and_leaves_nothing(ws, rows) -> None:
    before = os.environ.get("MLFLOW_TRACKING_URI")
    server = baselines.mlflow_serve(MODEL_URI, ws.tracking_uri,
                                    log_path=ws.path / "logs" / "mlflow.log")
    with server:
        with open(f"/proc/{server.pid}/environ", "rb") as environ:
            variables = environ.read().split(b"\0")
        assert b"OMP_NUM_THREADS=1" in variables
        assert f"MLFLOW_TRACKING_URI={ws.tracking_uri}".encode() in variables
        table = baselines.mlflow_probe(server.url, rows, big_rows=3_000)
        changed = baselines.unknown_category_changes(server.url, rows)
    _gone(server)
    assert os.environ.get("MLFLOW_TRACKING_URI") == before
    assert list(table.columns) == ["payload", "status", "echoes_rows"]
    found = table.set_index("payload")
    assert len(table) == 9 and found.loc["valid rows", "status"] == 200
    assert found.loc["unknown category value", "status"] == 200  # no refusal
    assert found.loc["int in a string column", "status"] == 200
    assert found.loc["missing column", "status"] == 400
    assert bool(found.loc["missing column", "echoes_rows"])  # the rows are in the error
    assert found.loc["empty body", "status"] == 400
    assert found.loc["JSON sent as text/plain", "status"] == 415
    assert table["payload"].iloc[-1].startswith("3,000 rows") and table["status"].iloc[-1] == 200
    assert 0 < changed < len(rows)  # some scores move silently, not all


@pytest.mark.slow
def test_the_minimal_app_and_the_service_under_load_and_probed(ws, rows) -> None:
    minimal = baselines.minimal_serve(MODEL_URI, ws.tracking_uri,
                                      log_path=ws.path / "logs" / "minimal.log")
    split = [{"dataframe_split": {"columns": list(rows.columns), "data": [row]}}
             for row in rows.astype(object).to_numpy().tolist()[:50]]
    with minimal:
        result = load.load_test(minimal.url + "/invocations", split, clients=4, requests=40)
        flat = json.loads(json.dumps(rows.iloc[0].to_dict()))
        import httpx

        answer = httpx.post(minimal.url + "/invocations", json=flat).json()["predictions"]
    _gone(minimal)
    assert (result.errors, len(result.latencies_ms)) == (0, 40)
    assert len(answer) == 1 and answer[0][1] == pytest.approx(
        deployment.load_served_model(MODEL_URI, ws.tracking_uri).score(rows.head(1))[0])

    service = deployment.serve(MODEL_URI, ws.tracking_uri, ws.feast_dir,
                               log_path=ws.path / "logs" / "service.log")
    with service:
        loaded = load.load_test(service.url + "/predict",
                                [{"customer_id": i} for i in range(1, 60)], clients=8,
                                requests=80)
        table = baselines.service_probe(service.url, 7, rows.iloc[6].to_dict(),
                                        big_bytes=2**20)
    _gone(service)
    assert loaded.errors == 0 and len(loaded.latencies_ms) == 80
    assert list(table.columns) == ["endpoint", "payload", "status", "echoes_input", "detail"]
    assert len(table) == 12 and not table["echoes_input"].any()
    statuses = dict(zip(table["payload"], table["status"], strict=True))
    assert statuses["valid customer"] == statuses["valid features"] == 200
    assert statuses["1 MB body"] == 413
    refused = table[~table["payload"].isin(["valid customer", "valid features", "1 MB body"])]
    assert set(refused["status"]) == {422}
    assert all(refused["detail"].str.len() > 0)
