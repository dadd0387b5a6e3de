"""Tests of the A/B router and the prediction log: sticky consistent hashing, weight changes
that move only the changed slice, the split passing a sample-ratio-mismatch check, shadow
scores never returned, no request dropped while weights change and arms swap under threads,
and the log's format round-tripping."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from dataclasses import fields
from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

from companion.deployment.predlog import (
    LOG_COLUMNS,
    Prediction,
    PredictionLog,
    read_log,
    srm_check,
)
from companion.deployment.router import Arm, Router, assign, hash_point
from companion.errors import InvalidParameterError, UnknownNameError

SALT = "lumen-ab-1"


def _scorer(version: int):
    return lambda customer_id: ((customer_id * 7919 + version * 104729) % 1000) / 1000.0


SCORERS = {str(v): _scorer(v) for v in (1, 2, 3)}


def _arm(version: str) -> Arm:
    return Arm(SCORERS[version], version)


def _clock():
    start = datetime(2026, 1, 1, tzinfo=UTC)
    state = {"n": 0}

    def tick() -> datetime:
        state["n"] += 1
        return start + timedelta(milliseconds=state["n"])

    return tick


def _router(tmp_path, **kwargs) -> Router:
    log = PredictionLog(tmp_path / "predictions.jsonl", clock=_clock())
    return Router(_arm("1"), _arm("2"), log=log, salt=SALT, **kwargs)


def test_assignment_is_deterministic_across_processes():
    weights = {"champion": 0.5, "challenger": 0.5}
    here = [assign(i, weights, SALT) for i in range(1, 201)]
    code = ("from companion.deployment.router import assign\n"
            f"print(','.join(assign(i, {weights!r}, {SALT!r}) for i in range(1, 201)))")
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           check=True, env={"PYTHONHASHSEED": "123", "PATH": ""}).stdout
    assert other.strip().split(",") == here
    assert hash_point(5, SALT) != hash_point(5, "another-experiment")


def test_sticky_across_restarts(tmp_path):
    weights = {"champion": 0.7, "challenger": 0.3}
    first = _router(tmp_path, weights=weights)
    arms = {i: first.route(i).arm for i in range(1, 2001)}
    again = _router(tmp_path, weights=weights)  # a "restart": a new router, same salt
    assert {i: again.route(i).arm for i in range(1, 2001)} == arms
    assert {i: again.arm_of(i) for i in arms} == arms
    rebuilt = Router(**again.arms, log=again.log, salt=again.salt, weights=weights)
    assert {i: rebuilt.arm_of(i) for i in arms} == arms
    assert again.arms["champion"].model_version == again.versions["champion"]


def test_weight_change_moves_only_the_changed_slice():
    ids = range(1, 20001)
    before = {i: assign(i, {"champion": 0.9, "challenger": 0.1}, SALT) for i in ids}
    after = {i: assign(i, {"champion": 0.8, "challenger": 0.2}, SALT) for i in ids}
    moved = [i for i in ids if before[i] != after[i]]
    assert all(before[i] == "champion" and after[i] == "challenger" for i in moved)
    assert all(0.8 <= hash_point(i, SALT) < 0.9 for i in moved)
    assert all(not 0.8 <= hash_point(i, SALT) < 0.9 for i in ids if i not in set(moved))
    assert 0.09 < len(moved) / len(ids) < 0.11


@pytest.mark.parametrize("weights", [{"champion": 0.5, "challenger": 0.5},
                                     {"champion": 0.9, "challenger": 0.1}])
def test_split_passes_srm_at_20000(tmp_path, weights):
    router = _router(tmp_path, weights=weights)
    for i in range(1, 20001):
        router.route(i)
    log = read_log(router.log.path)
    result = srm_check(log, weights)
    assert result.verdict == "ok" and result.p_value > 0.001
    assert sum(result.counts.values()) == 20000
    share = result.counts["challenger"] / 20000
    assert abs(share - weights["challenger"]) < 0.01


def test_srm_flags_a_mismatch():
    bad = srm_check({"champion": 10300, "challenger": 9700}, {"champion": 1, "challenger": 1})
    assert bad.mismatch and bad.verdict == "sample ratio mismatch"
    assert bad.chi2 == pytest.approx(18.0) and bad.p_value < 1e-4
    leak = srm_check({"champion": 100, "challenger": 1}, {"champion": 1, "challenger": 0})
    assert leak.mismatch
    with pytest.raises(InvalidParameterError, match="no weight"):
        srm_check({"champion": 1, "other": 1}, {"champion": 1})


def test_shadow_is_logged_never_returned(tmp_path):
    router = _router(tmp_path, weights={"champion": 0.5, "challenger": 0.5}, mode="shadow")
    answers = [router.route(i) for i in range(1, 1001)]
    assert {a.arm for a in answers} == {"champion"}
    assert all(a.score == SCORERS["1"](a.customer_id) for a in answers)
    log = read_log(router.log.path)
    shadow = log[log["shadow"]]
    assert len(log) == 2000 and len(shadow) == 1000
    assert set(shadow["arm"]) == {"challenger"} and set(shadow["model_version"]) == {"2"}
    assert set(shadow["request_id"]) == {a.request_id for a in answers}
    assert all(shadow["score"] == [SCORERS["2"](int(c)) for c in shadow["customer_id"]])
    assert srm_check(log, {"champion": 1, "challenger": 0}).verdict == "ok"


def test_failing_shadow_does_not_fail_the_request(tmp_path):
    def broken(customer_id: int) -> float:
        raise RuntimeError("challenger down")

    router = Router(_arm("1"), Arm(broken, "9"), log=PredictionLog(tmp_path / "p.jsonl"),
                    salt=SALT, mode="shadow")
    assert router.route(3).score == SCORERS["1"](3)
    assert len(read_log(router.log.path)) == 1


@pytest.mark.slow
def test_changes_under_load_drop_nothing(tmp_path):
    router = _router(tmp_path, weights={"champion": 0.5, "challenger": 0.5})
    errors: list[BaseException] = []
    answers: list[list] = [[] for _ in range(8)]
    stop = threading.Event()

    def client(k: int) -> None:
        try:
            for j in range(2000):
                answers[k].append(router.route(1 + (k * 2000 + j) % 5000))
        except BaseException as error:  # noqa: BLE001 - any failure fails the test
            errors.append(error)

    def operator() -> None:
        step = 0
        while not stop.is_set():
            step += 1
            router.set_weights({"champion": step % 10, "challenger": 10 - step % 10})
            router.set_arms(champion=_arm(str(1 + step % 3)))
            router.promote()
            router.set_mode("shadow" if step % 4 == 0 else "split")
            time.sleep(0.001)  # an operator, not a busy loop: a spinning thread starves clients

    threads = [threading.Thread(target=client, args=(k,)) for k in range(8)]
    changer = threading.Thread(target=operator)
    changer.start()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    stop.set()
    changer.join()
    assert errors == []
    flat = [a for batch in answers for a in batch]
    assert len(flat) == 16000 and len({a.request_id for a in flat}) == 16000
    assert all(a.score == SCORERS[a.model_version](a.customer_id) for a in flat)
    log = read_log(router.log.path)
    served = log[~log["shadow"]]
    assert len(served) == 16000 and set(served["request_id"]) == {a.request_id for a in flat}
    assert all(s == SCORERS[v](int(c)) for s, v, c in
               zip(log["score"], log["model_version"], log["customer_id"], strict=True))


def test_log_round_trips(tmp_path):
    log = PredictionLog(tmp_path / "logs" / "predictions.jsonl", clock=_clock())
    row = log.record(request_id="r1", customer_id=12, arm="champion", model_version="3",
                     score=0.25, latency_ms=1.5, shadow=False)
    assert tuple(f.name for f in fields(Prediction)) == LOG_COLUMNS
    line = (tmp_path / "logs" / "predictions.jsonl").read_text().splitlines()[0]
    assert list(json.loads(line)) == list(LOG_COLUMNS)
    assert json.loads(line)["time"] == "2026-01-01T00:00:00.001000+00:00" == row.time
    frame = log.read()
    assert frame.dtypes.astype(str).to_dict() == {
        "request_id": "string", "time": "datetime64[ns, UTC]", "customer_id": "int64",
        "arm": "string", "model_version": "string", "score": "float64",
        "latency_ms": "float64", "shadow": "bool"}
    assert frame.iloc[0]["time"] == pd.Timestamp("2026-01-01 00:00:00.001", tz="UTC")
    assert frame.iloc[0]["customer_id"] == 12 and frame.iloc[0]["score"] == 0.25
    with open(log.path, "a") as handle:  # a crash in the middle of a line
        handle.write('{"request_id": "r2", "ti')
    assert len(read_log(log.path)) == 1
    assert read_log(tmp_path / "missing.jsonl").columns.tolist() == list(LOG_COLUMNS)


def test_bad_input_is_refused_before_anything_is_written(tmp_path):
    router = _router(tmp_path)
    with pytest.raises(InvalidParameterError, match="customer_id"):
        router.route("12")  # type: ignore[arg-type]
    with pytest.raises(UnknownNameError, match="'blue'"):
        router.set_weights({"blue": 1})
    with pytest.raises(InvalidParameterError, match="positive total"):
        router.set_weights({"champion": 0, "challenger": 0})
    with pytest.raises(InvalidParameterError, match="non-negative|>= 0"):
        assign(1, {"champion": -1, "challenger": 2}, SALT)
    with pytest.raises(UnknownNameError, match="mode"):
        router.set_mode("mirror")
    with pytest.raises(InvalidParameterError, match="timezone-aware"):
        PredictionLog(tmp_path / "x.jsonl", clock=lambda: datetime(2026, 1, 1)).record(
            request_id="r", customer_id=1, arm="champion", model_version="1", score=0.1,
            latency_ms=0.1, shadow=False)
    assert not router.log.path.exists() and not (tmp_path / "x.jsonl").exists()
