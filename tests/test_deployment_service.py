"""Tests of Lumen's online service: every bad payload refused with 422/413 and a clear message,
good requests scored exactly as the model scores the same features, and (slow) the real server
on loopback against a small registry and Feast store, with nothing left running afterwards."""

from __future__ import annotations

import json
import socket

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from companion import deployment
from companion.data import SimulationConfig
from companion.data.config import AGE_BANDS, CHANNELS, PLANS, REGIONS
from companion.errors import InvalidParameterError, UnknownNameError
from companion.training import CATEGORICAL_FEATURES, FEATURES, NUMERIC_FEATURES, make_model

SERVICE = "churn_model_v1"
KNOWN_IDS = list(range(1, 201))
# the model never sees the channel "partner_bundle": a caller may not send it
LEVELS = {"plan": PLANS, "region": REGIONS, "acquisition_channel": CHANNELS[:-1],
          "age_band": AGE_BANDS}


def _features(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({c: rng.gamma(2.0, 10.0, n) for c in NUMERIC_FEATURES})
    for column in CATEGORICAL_FEATURES:
        frame[column] = rng.choice(LEVELS[column], n)
    return frame[FEATURES]


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """One OpenMP thread, as the server runs: a busy 2-core machine is far slower with more."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        yield


@pytest.fixture(scope="module")
def served(one_thread) -> deployment.ServedModel:
    train = _features(600, seed=1)
    target = (train["support_tickets_4w"] + 15 * (train["plan"] == "basic")
              + np.random.default_rng(2).normal(0, 10, 600) > 30).astype(int)
    model = make_model("gbm", seed=0).set_params(model__max_iter=20, model__min_samples_leaf=20)
    model.fit(train, target)
    return deployment.ServedModel(model=model, version=3, feature_service=SERVICE)


@pytest.fixture(scope="module")
def table() -> pd.DataFrame:
    frame = _features(len(KNOWN_IDS), seed=5)
    frame.insert(0, "customer_id", KNOWN_IDS)
    return frame


@pytest.fixture(scope="module")
def client(served, table) -> TestClient:
    indexed = table.set_index("customer_id")

    def source(ids):  # the online store's behaviour: unknown customers get empty features
        return indexed.reindex(list(ids)).rename_axis("customer_id").reset_index()

    limits = deployment.Limits(max_body_bytes=2048, max_batch=50)
    return TestClient(deployment.create_app(served, source, limits=limits))


def _expected(served, table, ids) -> list[float]:
    rows = table.set_index("customer_id").loc[ids, FEATURES]
    return served.model.predict_proba(rows)[:, 1].tolist()


# --------------------------------------------------------------------------- good requests


def test_health_names_the_model_version_and_feature_service(client) -> None:
    answer = client.get("/health")
    assert answer.status_code == 200
    assert answer.json() == {"status": "ok", "model": "lumen-churn", "model_version": 3,
                             "feature_service": SERVICE}


def test_one_customer_is_scored_exactly_as_the_model_scores_its_features(
        client, served, table) -> None:
    for customer in (1, 17, 200):
        answer = client.post("/predict", json={"customer_id": customer})
        assert answer.status_code == 200
        assert answer.json() == {"customer_id": customer,
                                 "score": _expected(served, table, [customer])[0],
                                 "model_version": 3, "feature_service": SERVICE}


def test_a_batch_keeps_its_order_and_scores(client, served, table) -> None:
    ids = [40, 3, 199, 77]
    answer = client.post("/predict/batch", json={"customer_ids": ids})
    assert answer.status_code == 200
    predictions = answer.json()["predictions"]
    assert [p["customer_id"] for p in predictions] == ids
    assert [p["score"] for p in predictions] == _expected(served, table, ids)
    assert {p["model_version"] for p in predictions} == {3}


def test_a_caller_with_its_own_features_is_scored_like_the_model(client, served, table) -> None:
    row = table.iloc[9][FEATURES].to_dict()
    answer = client.post("/predict/features", json={"customer_id": 10, "features": row})
    assert answer.status_code == 200
    assert answer.json()["score"] == _expected(served, table, [10])[0]
    assert answer.json()["feature_service"] is None  # the features came with the request
    whole = {**row, "sessions_4w": 12}  # an int is a number
    assert client.post("/predict/features",
                       json={"customer_id": 10, "features": whole}).status_code == 200


def test_known_categories_come_from_the_fitted_encoder(served) -> None:
    assert served.categories == {c: sorted(LEVELS[c]) for c in CATEGORICAL_FEATURES}
    assert deployment.known_categories(served.model) == served.categories
    assert served.features == FEATURES
    assert deployment.known_categories(make_model("gbm")) == {}  # not fitted: nothing known


# --------------------------------------------------------------------------- bad requests

BAD_PREDICT = [
    (b"", 422, "the body is empty"),
    (b"   ", 422, "the body is empty"),
    (b"{nope", 422, "not valid JSON"),
    (b"{}", 422, "field 'customer_id' is missing"),
    (b"[5]", 422, "must be a JSON object"),
    (b"5", 422, "must be a JSON object"),
    (b'{"customer_id": "5"}', 422, "field 'customer_id' got '5'; accepted: a whole number"),
    (b'{"customer_id": 5.0}', 422, "got 5.0; accepted: a whole number"),
    (b'{"customer_id": true}', 422, "got True; accepted: a whole number"),
    (b'{"customer_id": null}', 422, "got None; accepted: a whole number"),
    (b'{"customer_id": -1}', 422, "got -1"),
    (b'{"customer_id": 99999999999999999999999}', 422, "customer_id"),
    (b'{"customer_id": 5, "plan": "basic"}', 422, "field 'plan' is not accepted"),
    (b'{"customer_id": 999999}', 422, "customer_id 999999 is not in the online store"),
    (b'{"customer_id": 0}', 422, "customer_id 0 is not in the online store"),
]


@pytest.mark.parametrize("body, status, message", BAD_PREDICT)
def test_bad_single_requests_get_a_clear_4xx(client, body, status, message) -> None:
    answer = client.post("/predict", content=body,
                         headers={"content-type": "application/json"})
    assert answer.status_code == status, answer.text
    assert message in answer.json()["detail"]
    assert all(set(e) == {"field", "message"} for e in answer.json()["errors"])


def test_oversized_bodies_get_413_before_parsing_declared_or_streamed(client) -> None:
    big = json.dumps({"customer_id": 1, "pad": "x" * 5000}).encode()
    answer = client.post("/predict", content=big)
    assert answer.status_code == 413
    assert "larger than the limit of 2048 bytes" in answer.json()["detail"]
    assert "xxx" not in answer.text

    def chunks():  # no content-length: the limit applies while the body streams in
        yield b'{"customer_id": 1, "pad": "'
        for _ in range(10):
            yield b"y" * 500
        yield b'"}'

    streamed = client.post("/predict", content=chunks())
    assert streamed.status_code == 413
    assert "yyy" not in streamed.text


def test_errors_name_the_offending_value_and_echo_nothing_else(client) -> None:
    answer = client.post("/predict/batch", json={"customer_ids": [101, 102, "103", 104]})
    assert answer.status_code == 422
    assert "field 'customer_ids.2' got '103'" in answer.json()["detail"]
    for other in ("101", "102", "104"):
        assert other not in answer.text
    nested = client.post("/predict", json={"customer_id": 1, "row": {"secret": "s3cr3t"}})
    assert nested.status_code == 422
    assert "s3cr3t" not in nested.text and "an object" in nested.json()["detail"]


@pytest.mark.parametrize("ids, message", [
    ([], "at least 1 item"),
    (list(range(1, 52)), "holds 51 ids; accepted: at most 50"),
    ([1, 2, 1], "repeats [1]"),
    ([1, -4], "holds -4"),
    ([5, 777777, 6, 888888], "customer_id 777777, 888888 is not in the online store"),
    ("1,2", "accepted: a list"),
])
def test_bad_batches_get_422_naming_what_is_wrong(client, ids, message) -> None:
    answer = client.post("/predict/batch", json={"customer_ids": ids})
    assert answer.status_code == 422, answer.text
    assert message in answer.json()["detail"]


@pytest.mark.parametrize("change, message", [
    ({"acquisition_channel": "partner_bundle"},
     "'features.acquisition_channel' got 'partner_bundle', which the model never saw; "
     "accepted: 'organic', 'referral', 'search', 'social'"),
    ({"plan": "gold"}, "'features.plan' got 'gold', which the model never saw"),
    ({"plan": 2}, "field 'features.plan' got 2; accepted: a string"),
    ({"monthly_fee": "9.99"}, "field 'features.monthly_fee' got '9.99'; accepted: a number"),
    ({"monthly_fee": False}, "field 'features.monthly_fee' got False"),
    ({"colour": "red"}, "field 'features.colour' is not accepted"),
    ({"tenure_days": None}, "field 'features.tenure_days' got None"),
])
def test_bad_direct_features_get_422(client, table, change, message) -> None:
    row = {**table.iloc[0][FEATURES].to_dict(), **change}
    answer = client.post("/predict/features", json={"customer_id": 1, "features": row})
    assert answer.status_code == 422, answer.text
    assert message in answer.json()["detail"]


def test_missing_or_non_finite_direct_features_get_422(client, table) -> None:
    row = table.iloc[0][FEATURES].to_dict()
    del row["region"]
    answer = client.post("/predict/features", json={"customer_id": 1, "features": row})
    assert answer.status_code == 422
    assert "field 'features.region' is missing" in answer.json()["detail"]
    text = json.dumps({"customer_id": 1, "features": {**table.iloc[0][FEATURES].to_dict(),
                                                      "minutes_4w": float("nan")}})
    assert "NaN" in text
    answer = client.post("/predict/features", content=text.encode())
    assert answer.status_code == 422
    assert "features.minutes_4w" in answer.json()["detail"]


def test_no_bad_input_gets_a_5xx(client) -> None:
    rng = np.random.default_rng(0)
    values = [None, True, -1, 0, 3, 2**70, 1.5, "", "7", "x" * 50, [], [1], {}, {"a": 1},
              float("inf")]
    statuses = []
    for _ in range(150):
        body = {key: values[rng.integers(len(values))]
                for key in rng.choice(["customer_id", "customer_ids", "features", "z"],
                                      rng.integers(0, 3), replace=False)}
        for path in ("/predict", "/predict/batch", "/predict/features"):
            answer = client.post(path, content=json.dumps(body).encode())
            assert answer.status_code < 500, (path, body, answer.text)
            statuses.append(answer.status_code)
    assert set(statuses) <= {200, 422}
    assert statuses.count(422) > 0.9 * len(statuses)


# --------------------------------------------------------------------------- arguments


def test_arguments_are_checked_before_anything_runs(served, tmp_path) -> None:
    with pytest.raises(UnknownNameError, match="accepted: 'churn_model_v1'"):
        deployment.create_app(served, lambda ids: None, feature_service="churn_model_v2")
    with pytest.raises(InvalidParameterError, match="Feast FeatureStore or a callable"):
        deployment.create_app(served, "store")
    with pytest.raises(InvalidParameterError, match="served must be a ServedModel"):
        deployment.create_app(served.model, lambda ids: None)
    with pytest.raises(InvalidParameterError, match="max_batch"):
        deployment.Limits(max_batch=0)
    with pytest.raises(InvalidParameterError, match="version must be a whole number"):
        deployment.ServedModel(model=served.model, version=0, feature_service=SERVICE)
    with pytest.raises(InvalidParameterError, match="model_uri must be 'models:/"):
        deployment.load_served_model("runs:/abc/model", "sqlite:///x.db")
    with pytest.raises(InvalidParameterError, match="tracking_uri must be an MLflow URI"):
        deployment.load_served_model("models:/lumen-churn@production", "mlflow.db")
    with pytest.raises(InvalidParameterError, match="not a loopback address"):
        deployment.serve("models:/m@a", "sqlite:///x.db", tmp_path, log_path=tmp_path / "l",
                         host="0.0.0.0")
    with pytest.raises(InvalidParameterError, match="is not a folder"):
        deployment.serve("models:/m@a", "sqlite:///x.db", tmp_path / "nope",
                         log_path=tmp_path / "l")
    assert not (tmp_path / "l").exists()


# --------------------------------------------------------------------------- for real (slow)


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    from companion.workspace import Workspace

    workspace = Workspace.create(
        "test-deployment", root=tmp_path_factory.mktemp("deployment"),
        config=SimulationConfig(n_customers=2500, months=3, seed=3, scenarios=()))
    workspace.require("baseline", "features")
    return workspace


@pytest.mark.slow
def test_the_production_model_with_feast_features_in_process(ws) -> None:
    from companion.features import model_frame, online_features

    store = ws.require("features")
    served = deployment.load_served_model("models:/lumen-churn@production", ws.tracking_uri)
    assert (served.version, served.feature_service, served.name) == (1, SERVICE, "lumen-churn")
    ids = [3, 1, 250, 2499]
    read = deployment.store_source(store, SERVICE)(ids)
    pd.testing.assert_frame_equal(read, online_features(store, ids, SERVICE), check_dtype=False)
    client = TestClient(deployment.create_app(served, store))
    answer = client.post("/predict/batch", json={"customer_ids": ids})
    assert answer.status_code == 200
    expected = served.model.predict_proba(model_frame(read)[served.features])[:, 1]
    assert [p["score"] for p in answer.json()["predictions"]] == expected.tolist()
    unknown = client.post("/predict", json={"customer_id": 10**9})
    assert unknown.status_code == 422 and "1000000000 is not in the online store" in unknown.text


@pytest.mark.slow
def test_the_service_runs_for_real_on_loopback_and_leaves_nothing(ws) -> None:
    import httpx

    from companion.features import model_frame, online_features

    served = deployment.load_served_model("models:/lumen-churn@production", ws.tracking_uri)
    expected = served.model.predict_proba(model_frame(
        online_features(ws.require("features"), [7], SERVICE))[served.features])[:, 1][0]
    server = deployment.serve("models:/lumen-churn@production", ws.tracking_uri, ws.feast_dir,
                              log_path=ws.path / "logs" / "service.log",
                              limits=deployment.Limits(max_body_bytes=1024))
    with server:
        assert server.url.startswith("http://127.0.0.1:")
        with open(f"/proc/{server.pid}/environ", "rb") as environ:
            assert b"OMP_NUM_THREADS=1" in environ.read().split(b"\0")
        with httpx.Client(base_url=server.url, timeout=10) as http:
            assert http.get("/health").json()["model_version"] == 1
            good = http.post("/predict", json={"customer_id": 7})
            assert good.status_code == 200
            assert good.json() == {"customer_id": 7, "score": float(expected),
                                   "model_version": 1, "feature_service": SERVICE}
            for body, status in [(b"", 422), (b'{"customer_id": "7"}', 422),
                                 (b'{"customer_id": 7, "x": 1}', 422),
                                 (b'{"customer_id": 123456789}', 422),
                                 (b'{"customer_id": 7, "pad": "' + b"x" * 2000 + b'"}', 413)]:
                answer = http.post("/predict", content=body)
                assert answer.status_code == status, (body[:40], answer.text)
        pid, port = server.pid, server.port
    assert not server.running
    assert server.leftover_processes() == []
    with pytest.raises(ProcessLookupError):
        import os

        os.kill(pid, 0)
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", port)) != 0
