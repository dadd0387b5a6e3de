"""The minimal FastAPI app Lumen's service is measured against, and its command line.

``python -m companion.deployment.minimal --model-uri models:/lumen-churn@production
--tracking-uri sqlite:///.../mlflow.db --port 8000`` loads the same pyfunc ``mlflow models
serve`` loads, from the registry, and answers ``POST /invocations`` for one row, in MLflow's
``dataframe_split`` format or as a flat record ``{"plan": "basic", ...}``, with
``{"predictions": [[p0, p1]]}``; ``GET /ping`` answers when it is ready. Nothing else: no
validation beyond the pyfunc's signature, no feature store, no body limit. It is what a team
writes in twenty lines, the throughput a service should at least match.

:func:`companion.deployment.baselines.minimal_serve` starts it in a
:class:`~companion.core.process.ServerProcess`; the package does not import this module, so
``-m`` runs it cleanly.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from companion.core.process import check_loopback

__all__ = ["create_minimal_app", "main"]


def create_minimal_app(model: Any) -> FastAPI:
    """Return the minimal app around a loaded pyfunc model (anything with ``predict(frame)``)."""
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)

    @app.get("/ping")
    async def ping() -> Response:
        return Response(status_code=200)

    @app.post("/invocations")
    async def invocations(request: Request) -> JSONResponse:
        try:
            payload = json.loads(await request.body())
            if "dataframe_split" in payload:
                split = payload["dataframe_split"]
                frame = pd.DataFrame(split["data"], columns=split["columns"])
            else:
                frame = pd.DataFrame([payload])
            predictions = np.asarray(model.predict(frame))
        except Exception as exc:  # noqa: BLE001 - the minimal app answers 400 to anything
            return JSONResponse(status_code=400, content={"error": type(exc).__name__})
        return JSONResponse(content={"predictions": predictions.tolist()})

    return app


def main(argv: Sequence[str] | None = None) -> int:
    """Load the pyfunc from the registry, then run the minimal app until stopped."""
    parser = argparse.ArgumentParser(prog="python -m companion.deployment.minimal",
                                     description="The minimal FastAPI app around a pyfunc.")
    parser.add_argument("--model-uri", required=True)
    parser.add_argument("--tracking-uri", required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    check_loopback(args.host)
    import mlflow.pyfunc
    import uvicorn

    from companion.core.mlflow_store import using_store

    with using_store(args.tracking_uri):
        model = mlflow.pyfunc.load_model(args.model_uri)
    print(f"serving {args.model_uri} on {args.host}:{args.port}", flush=True)
    uvicorn.run(create_minimal_app(model), host=args.host, port=args.port, workers=1,
                log_level="warning", access_log=False)
    return 0


if __name__ == "__main__":  # pragma: no cover - the server process
    raise SystemExit(main())
