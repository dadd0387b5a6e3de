"""Deployment: Lumen's churn model served online, scored in batch, and routed between arms.

The online service (:mod:`~companion.deployment.service`) answers ``POST /predict`` for a
customer id: it reads the customer's current features from the Feast online store, scores
them with the production model from the registry, and returns the score with the model
version and the feature service. It validates every request beyond the model signature
(strict types, unknown fields, unknown customers and categories, body size) and answers 422
or 413, never 5xx, to bad input. :func:`serve` runs it with uvicorn in a child process owned
by :class:`companion.core.process.ServerProcess`.

The package, one concern per module:

- :mod:`~companion.deployment.schemas`: the request and response bodies and the limits;
- :mod:`~companion.deployment.service`: the served model and the FastAPI app;
- :mod:`~companion.deployment.server`: the command line that runs the app, and :func:`serve`.

Nothing happens at import: FastAPI, MLflow and Feast are imported when called.
"""

from __future__ import annotations

from companion.deployment.schemas import Limits
from companion.deployment.server import serve, server_command
from companion.deployment.service import (
    FeatureSource,
    ServedModel,
    create_app,
    known_categories,
    load_served_model,
    store_source,
)

__all__ = [
    "FeatureSource",
    "Limits",
    "ServedModel",
    "create_app",
    "known_categories",
    "load_served_model",
    "serve",
    "server_command",
    "store_source",
]
