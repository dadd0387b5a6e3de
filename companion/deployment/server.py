"""The service's command line: ``python -m companion.deployment.server --model-uri ... --port N``.

Loads the model version an alias points at from an explicit tracking URI
(:func:`~companion.deployment.load_served_model`), opens the Feast repo, and runs the app
(:func:`~companion.deployment.create_app`) on one uvicorn worker on a loopback address until
stopped. :func:`companion.deployment.serve` starts it in a
:class:`~companion.core.process.ServerProcess`; the package does not import this module, so
``-m`` runs it cleanly.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from companion.core.process import check_loopback
from companion.deployment.schemas import Limits

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Load the model and the feature store, then run the app until stopped."""
    parser = argparse.ArgumentParser(prog="python -m companion.deployment.server",
                                     description="Lumen's online churn service.")
    parser.add_argument("--model-uri", required=True)
    parser.add_argument("--tracking-uri", required=True)
    parser.add_argument("--feast-repo", required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--max-body-bytes", type=int, default=Limits.max_body_bytes)
    parser.add_argument("--max-batch", type=int, default=Limits.max_batch)
    args = parser.parse_args(argv)
    import uvicorn

    from companion.deployment.service import create_app, load_served_model
    from companion.features import feature_store

    check_loopback(args.host)
    limits = Limits(max_body_bytes=args.max_body_bytes, max_batch=args.max_batch)
    served = load_served_model(args.model_uri, args.tracking_uri)
    app = create_app(served, feature_store(args.feast_repo), limits=limits)
    print(f"serving {served.name} version {served.version} ({served.feature_service}) "
          f"on {args.host}:{args.port}", flush=True)
    # asyncio's loop, not uvloop: the routes score on the loop, and under uvloop a connection
    # opened while others are busy waited one pass of every busy one per connection ahead of
    # it (measured: the 32nd of 32 new clients waited 4 s; 0.3 s with asyncio's loop)
    uvicorn.run(app, host=args.host, port=args.port, workers=1, loop="asyncio",
                log_level="warning", access_log=False)
    return 0


if __name__ == "__main__":  # pragma: no cover - the server process
    raise SystemExit(main())
