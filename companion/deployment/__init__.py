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
- :mod:`~companion.deployment.launch`: :func:`serve`, the service in a child process, and
  :func:`start_together` and :func:`stop_together` for several servers at once;
- :mod:`~companion.deployment.server`: the command line that runs the app (not imported here);
- :mod:`~companion.deployment.baselines`: what the service is compared with: ``mlflow models
  serve`` (:func:`mlflow_serve`) and a minimal FastAPI app (:func:`minimal_serve`, its command
  line in :mod:`~companion.deployment.minimal`, not imported here), and the bad-input probes;
- :mod:`~companion.deployment.load`: the bounded load test and the in-process floor;
- :mod:`~companion.deployment.batch`: a month's customer base scored from the registry, written
  as partitioned Parquet; :mod:`~companion.deployment.spark`: the same on local Spark;
- :mod:`~companion.deployment.router`: the A/B router (sticky :func:`assign`, :class:`Router`
  with weighted split and shadow mode);
- :mod:`~companion.deployment.remote`: the router in front of running services
  (:func:`http_arm`, :func:`route_all`);
- :mod:`~companion.deployment.predlog`: the prediction log chapters 9 and 10 read, and
  :func:`srm_check`;
- :mod:`~companion.deployment.azure_endpoints`: Azure ML managed (blue/green) and AKS online
  endpoint specs, validated offline, not deployed;
- :mod:`~companion.deployment.kubernetes`: the router and its arms, and a shared MLflow server,
  as Kubernetes manifests validated with the ``kubernetes`` client's models, not applied;
- :mod:`~companion.deployment.scaled`: batch scoring at any size (:func:`resample_rows`,
  :func:`pyfunc_scores`) and the engines' scores compared (:func:`score_differences`);
- :mod:`~companion.deployment.team_server`: the command line of a team's MLflow server
  (database backend, object-store artifacts), checked with MLflow's own parsers.

Nothing happens at import: FastAPI, MLflow, Feast and Spark are imported when called.
"""

from __future__ import annotations

from companion.deployment.azure_endpoints import (
    AzureEndpointSpec,
    kubernetes_endpoint_specs,
    managed_endpoint_specs,
)
from companion.deployment.baselines import (
    minimal_serve,
    mlflow_probe,
    mlflow_serve,
    service_probe,
    unknown_category_changes,
)
from companion.deployment.batch import (
    SCORE_COLUMNS,
    Throughput,
    active_customers,
    batch_throughput,
    month_features,
    read_scores,
    score_base,
    score_month,
    write_features,
    write_scores,
)
from companion.deployment.kubernetes import (
    Manifest,
    serving_manifests,
    tracking_server_manifests,
    validate_manifests,
)
from companion.deployment.launch import serve, server_command, start_together, stop_together
from companion.deployment.load import LoadResult, in_process_floor, load_test
from companion.deployment.predlog import (
    LOG_COLUMNS,
    LOG_DTYPES,
    Prediction,
    PredictionLog,
    SrmResult,
    read_log,
    srm_check,
)
from companion.deployment.remote import HttpScorer, Traffic, http_arm, route_all
from companion.deployment.router import Arm, Routed, Router, assign, hash_point
from companion.deployment.scaled import pyfunc_scores, resample_rows, score_differences
from companion.deployment.schemas import Limits
from companion.deployment.service import (
    FeatureSource,
    ServedModel,
    create_app,
    known_categories,
    load_served_model,
    store_source,
)
from companion.deployment.spark import local_spark, spark_score_frame, spark_scores
from companion.deployment.team_server import OBJECT_STORE_SCHEMES, SharedServer, shared_server

__all__ = [
    "LOG_COLUMNS",
    "LOG_DTYPES",
    "OBJECT_STORE_SCHEMES",
    "SCORE_COLUMNS",
    "Arm",
    "AzureEndpointSpec",
    "FeatureSource",
    "HttpScorer",
    "Limits",
    "LoadResult",
    "Manifest",
    "Prediction",
    "PredictionLog",
    "Routed",
    "Router",
    "ServedModel",
    "SharedServer",
    "SrmResult",
    "Throughput",
    "Traffic",
    "active_customers",
    "assign",
    "batch_throughput",
    "create_app",
    "hash_point",
    "http_arm",
    "in_process_floor",
    "known_categories",
    "kubernetes_endpoint_specs",
    "load_served_model",
    "load_test",
    "local_spark",
    "managed_endpoint_specs",
    "minimal_serve",
    "mlflow_probe",
    "mlflow_serve",
    "month_features",
    "pyfunc_scores",
    "read_log",
    "read_scores",
    "resample_rows",
    "route_all",
    "score_base",
    "score_differences",
    "score_month",
    "serve",
    "server_command",
    "service_probe",
    "serving_manifests",
    "shared_server",
    "spark_score_frame",
    "spark_scores",
    "srm_check",
    "start_together",
    "stop_together",
    "store_source",
    "tracking_server_manifests",
    "unknown_category_changes",
    "validate_manifests",
    "write_features",
    "write_scores",
]
