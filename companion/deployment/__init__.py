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
- :mod:`~companion.deployment.service`: the served model, its feature source, the app factory;
- :mod:`~companion.deployment.app`: the routes: body limit, strict validation, scoring, errors;
- :mod:`~companion.deployment.launch`: :func:`serve`, the service in a child process;
- :mod:`~companion.deployment.server`: the command line that runs the app (not imported here);
- :mod:`~companion.deployment.router`: the A/B router (sticky :func:`assign`, :class:`Router`
  with weighted split and shadow mode);
- :mod:`~companion.deployment.predlog`: the prediction log chapters 9 and 10 read, and
  :func:`srm_check`;
- :mod:`~companion.deployment.azure_endpoints`: Azure ML managed (blue/green) and AKS online
  endpoint specs, validated offline, not deployed.

Nothing happens at import: FastAPI, MLflow and Feast are imported when called.
"""

from __future__ import annotations

from companion.deployment.azure_endpoints import (
    AzureEndpointSpec,
    kubernetes_endpoint_specs,
    managed_endpoint_specs,
)
from companion.deployment.launch import serve, server_command
from companion.deployment.predlog import (
    LOG_COLUMNS,
    Prediction,
    PredictionLog,
    SrmResult,
    read_log,
    srm_check,
)
from companion.deployment.router import Arm, Routed, Router, assign
from companion.deployment.schemas import Limits
from companion.deployment.service import (
    FeatureSource,
    ServedModel,
    create_app,
    known_categories,
    load_served_model,
    store_source,
)

__all__ = [
    "LOG_COLUMNS",
    "Arm",
    "AzureEndpointSpec",
    "FeatureSource",
    "Limits",
    "Prediction",
    "PredictionLog",
    "Routed",
    "Router",
    "ServedModel",
    "SrmResult",
    "assign",
    "kubernetes_endpoint_specs",
    "managed_endpoint_specs",
    "read_log",
    "srm_check",
    "create_app",
    "known_categories",
    "load_served_model",
    "serve",
    "server_command",
    "store_source",
]
