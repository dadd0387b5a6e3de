"""The baselines Lumen's service is compared with, and what they do with bad input.

Two servers of the same registry model, each a :class:`~companion.core.process.ServerProcess`
on loopback with one OpenMP thread (:data:`~companion.deployment.launch.SERVER_ENV`):

- :func:`mlflow_serve`: the zero-code baseline, ``mlflow models serve -m
  models:/lumen-churn@production --env-manager local``: MLflow's FastAPI scoring server
  (``/ping``, ``POST /invocations``) on uvicorn. It starts ``uvicorn`` by name, so the child's
  ``PATH`` starts with this interpreter's folder; the tracking URI is given to the child only.
- :func:`minimal_serve`: the minimal FastAPI app around the same pyfunc
  (:mod:`companion.deployment.minimal`).

:func:`mlflow_probe` sends named bad payloads to ``mlflow models serve`` and returns a table
(payload, status, whether the answer echoes input rows), and :func:`unknown_category_changes`
counts the scores an unknown category silently changes; :func:`service_probe` sends the same
kinds of bad input to Lumen's service. Tables hold deterministic content only (no ports, no
timings), so a chapter can print them.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from companion.core.checks import check_frame, check_int, check_text
from companion.core.process import ServerProcess, check_loopback, free_port
from companion.deployment.launch import SERVER_ENV
from companion.deployment.service import check_model_uris
from companion.errors import InvalidParameterError

__all__ = [
    "mlflow_command", "mlflow_probe", "mlflow_serve", "minimal_command", "minimal_serve",
    "service_probe", "unknown_category_changes",
]

logger = logging.getLogger(__name__)


def _check_uris(model_uri: Any, tracking_uri: Any) -> None:
    check_model_uris(model_uri, tracking_uri)


def _child_env(tracking_uri: str) -> dict[str, str]:
    """One OpenMP thread, the store for the child only, this interpreter's folder first on PATH."""
    bin_dir = str(Path(sys.executable).parent)
    path = os.pathsep.join([bin_dir, *[p for p in os.environ.get("PATH", "").split(os.pathsep)
                                       if p and p != bin_dir]])
    return {**SERVER_ENV, "MLFLOW_TRACKING_URI": tracking_uri,
            "MLFLOW_REGISTRY_URI": tracking_uri, "PATH": path}


def mlflow_command(model_uri: str, *, port: int, host: str = "127.0.0.1") -> list[str]:
    """Return the argv of ``mlflow models serve -m MODEL --env-manager local -h HOST -p PORT``."""
    _check_uris(model_uri, "sqlite://")
    check_loopback(host)
    check_int("port", port, minimum=1024, maximum=65535)
    return [sys.executable, "-m", "mlflow", "models", "serve", "-m", model_uri,
            "--env-manager", "local", "-h", host, "-p", str(port)]


def minimal_command(model_uri: str, tracking_uri: str, *, port: int,
                    host: str = "127.0.0.1") -> list[str]:
    """Return the argv of ``python -m companion.deployment.minimal ...``."""
    _check_uris(model_uri, tracking_uri)
    check_loopback(host)
    check_int("port", port, minimum=1024, maximum=65535)
    return [sys.executable, "-m", "companion.deployment.minimal", "--model-uri", model_uri,
            "--tracking-uri", tracking_uri, "--host", host, "--port", str(port)]


def mlflow_serve(
    model_uri: str,
    tracking_uri: str,
    *,
    log_path: str | os.PathLike[str],
    port: int | None = None,
    host: str = "127.0.0.1",
    startup_timeout: float = 60.0,
) -> ServerProcess:
    """Return ``mlflow models serve`` of ``model_uri`` as a :class:`ServerProcess`, not started.

    ``with mlflow_serve("models:/lumen-churn@production", ws.tracking_uri, log_path=...) as
    server:`` starts it (about 7 s: MLflow resolves the alias, copies the model, starts
    uvicorn), waits for ``/ping`` and stops the whole process group at the end of the block.
    The child gets ``MLFLOW_TRACKING_URI`` (this process's URIs are left alone), one OpenMP
    thread, and this interpreter's folder first on ``PATH`` so it finds ``uvicorn``.
    """
    _check_uris(model_uri, tracking_uri)
    check_loopback(host)
    port = free_port(host) if port is None else port
    command = mlflow_command(model_uri, port=port, host=host)
    return ServerProcess(command, port=port, host=host, log_path=log_path, health_path="/ping",
                         env=_child_env(tracking_uri), startup_timeout=startup_timeout,
                         name="mlflow-models-serve")


def minimal_serve(
    model_uri: str,
    tracking_uri: str,
    *,
    log_path: str | os.PathLike[str],
    port: int | None = None,
    host: str = "127.0.0.1",
    startup_timeout: float = 60.0,
) -> ServerProcess:
    """Return the minimal FastAPI app of ``model_uri`` as a :class:`ServerProcess`, not started.

    Same pyfunc, same environment as :func:`mlflow_serve`; health path ``/ping``.
    """
    _check_uris(model_uri, tracking_uri)
    check_loopback(host)
    port = free_port(host) if port is None else port
    command = minimal_command(model_uri, tracking_uri, port=port, host=host)
    return ServerProcess(command, port=port, host=host, log_path=log_path, health_path="/ping",
                         env=_child_env(tracking_uri), startup_timeout=startup_timeout,
                         name="minimal-fastapi")


# --------------------------------------------------------------------------- bad input

_SENTINEL = 98765.5
"""Put in the first column of every probe row: an answer holding it echoes the request's rows
(MLflow's errors print the rows as a pandas frame, whose first column is always shown)."""


def _marked(value: Any) -> Any:
    """The sentinel, as a number or a string like the value it replaces."""
    return str(_SENTINEL) if isinstance(value, str) else _SENTINEL


def _echoes(text: str) -> bool:
    return str(_SENTINEL) in text

_UNKNOWN = {"acquisition_channel": "partner_bundle"}


def _split(frame: pd.DataFrame) -> dict[str, Any]:
    return {"dataframe_split": {"columns": [str(c) for c in frame.columns],
                                "data": frame.astype(object).to_numpy().tolist()}}


def _post(url: str, body: bytes, content_type: str = "application/json",
          timeout: float = 120.0) -> tuple[int | str, str]:
    import httpx

    try:
        answer = httpx.post(url, content=body, headers={"content-type": content_type},
                            timeout=timeout)
    except httpx.HTTPError as exc:  # e.g. the server closed the connection mid-body
        return f"no answer ({type(exc).__name__})", ""
    return answer.status_code, answer.text


def _check_url(url: Any) -> str:
    import httpx

    if not isinstance(url, str) or not url.startswith("http://"):
        raise InvalidParameterError(f"url must be an http:// URL, got {url!r}")
    check_loopback(httpx.URL(url).host)
    return url.rstrip("/")


def mlflow_probe(url: str, rows: pd.DataFrame, *, big_rows: int = 125_000) -> pd.DataFrame:
    """Send named bad payloads to ``mlflow models serve`` at ``url``; return what it answered.

    Every payload is MLflow's ``dataframe_split`` format built from ``rows`` (the model's
    input columns), with one thing wrong. Each probe row's first column holds ``98765.5`` so
    an answer that echoes the rows is seen.

    Returns:
        One row per payload: ``payload``, ``status`` (or ``"no answer (...)"``) and
        ``echoes_rows`` (whether the answer holds the rows' values).
    """
    url = _check_url(url)
    check_frame("rows", rows, ["plan", "acquisition_channel", "tenure_days", "region"],
                non_empty=True)
    big_rows = check_int("big_rows", big_rows, minimum=1, maximum=2_000_000)
    sample = rows.head(3).reset_index(drop=True)
    first = str(sample.columns[0])
    sample[first] = [_marked(v) for v in sample[first]]
    big = rows.iloc[np.arange(big_rows) % len(rows)].reset_index(drop=True)

    def body(frame: pd.DataFrame) -> bytes:
        return json.dumps(_split(frame)).encode()

    payloads: list[tuple[str, bytes, str]] = [
        ("valid rows", body(sample), "application/json"),
        ("unknown category value", body(sample.assign(**_UNKNOWN)), "application/json"),
        ("int in a string column", body(sample.assign(plan=2)), "application/json"),
        ("number sent as a string", body(sample.assign(tenure_days="300")), "application/json"),
        ("missing column", body(sample.drop(columns=["region"])), "application/json"),
        ("empty body", b"", "application/json"),
        ("non-JSON body", b"{not json", "application/json"),
        ("JSON sent as text/plain", body(sample), "text/plain"),
        (f"{big_rows:,} rows ({len(body(big)) / 2**20:.0f} MB)", body(big), "application/json"),
    ]
    table = []
    for name, content, kind in payloads:
        status, text = _post(url + "/invocations", content, kind)
        table.append({"payload": name, "status": status, "echoes_rows": _echoes(text)})
        logger.info("mlflow probe %s: %s", name, status)
    return pd.DataFrame(table)


def unknown_category_changes(
    url: str, rows: pd.DataFrame, column: str = "acquisition_channel",
    value: str = "partner_bundle",
) -> int:
    """Return how many of ``rows``' scores change when ``column`` is set to ``value``.

    Both versions are scored by the server at ``url`` (``mlflow models serve`` answers 200 to
    a category the model never saw: its one-hot columns are all zero, silently). A score
    counts as changed when it moves by more than 1e-9.
    """
    import httpx

    url = _check_url(url)
    check_text("column", column)
    check_text("value", value)
    check_frame("rows", rows, [column], non_empty=True)
    scores = []
    for frame in (rows, rows.assign(**{column: value})):
        answer = httpx.post(url + "/invocations", json=_split(frame), timeout=120.0)
        if answer.status_code != 200:
            raise InvalidParameterError(
                f"the server at {url} refused the rows with {answer.status_code}; rows must "
                "hold the model's input columns"
            )
        scores.append(np.asarray(answer.json()["predictions"], dtype=float)[:, -1])
    return int(np.sum(np.abs(scores[0] - scores[1]) > 1e-9))


def service_probe(url: str, customer_id: int, features: Mapping[str, Any], *,
                  big_bytes: int = 10 * 2**20) -> pd.DataFrame:
    """Send the same kinds of bad input to Lumen's service at ``url``; return its answers.

    ``customer_id`` is a customer the online store holds and ``features`` a valid row of the
    model's inputs for ``/predict/features`` (its first value is replaced by ``98765.5`` to see
    whether an answer echoes it).

    Returns:
        One row per payload: ``endpoint``, ``payload``, ``status``, ``echoes_input`` (whether
        the answer holds a value of the request other than the offending one) and ``detail``
        (the service's message, cut to 90 characters).
    """
    url = _check_url(url)
    customer_id = check_int("customer_id", customer_id, minimum=0)
    if not isinstance(features, Mapping) or not features:
        raise InvalidParameterError(
            f"features must be a non-empty dict of the model's inputs, got {features!r:.80}")
    big_bytes = check_int("big_bytes", big_bytes, minimum=1024, maximum=2**30)
    row = dict(features)
    first = next(iter(row))
    row[first] = _marked(row[first])

    def direct(change: Mapping[str, Any] | None = None, drop: str | None = None) -> bytes:
        values = {k: v for k, v in {**row, **(change or {})}.items() if k != drop}
        return json.dumps({"customer_id": customer_id, "features": values}).encode()

    pad = b'{"customer_id": %d, "pad": "' % customer_id + b"x" * big_bytes + b'"}'
    payloads = [
        ("/predict", "valid customer", b'{"customer_id": %d}' % customer_id),
        ("/predict", "unknown customer", b'{"customer_id": 999999999}'),
        ("/predict", "id sent as a string", b'{"customer_id": "%d"}' % customer_id),
        ("/predict", "unknown field", b'{"customer_id": %d, "plan": "basic"}' % customer_id),
        ("/predict", "empty body", b""),
        ("/predict", "non-JSON body", b"{not json"),
        ("/predict", f"{big_bytes / 2**20:.0f} MB body", pad),
        ("/predict/features", "valid features", direct()),
        ("/predict/features", "unknown category value", direct(_UNKNOWN)),
        ("/predict/features", "int in a string column", direct({"plan": 2})),
        ("/predict/features", "number sent as a string", direct({"tenure_days": "300"})),
        ("/predict/features", "missing column", direct(drop="region")),
    ]
    table = []
    for endpoint, name, content in payloads:
        status, text = _post(url + endpoint, content)
        try:
            detail = str(json.loads(text).get("detail", ""))[:90] if status != 200 else ""
        except (ValueError, AttributeError):
            detail = ""
        table.append({"endpoint": endpoint, "payload": name, "status": status,
                      "echoes_input": _echoes(text), "detail": detail})
        logger.info("service probe %s %s: %s", endpoint, name, status)
    return pd.DataFrame(table)
