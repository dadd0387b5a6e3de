"""Kubernetes manifests for the scaled-out forms, validated offline. NOT APPLIED to any cluster.

- :func:`serving_manifests`: chapter 8's champion/challenger split on a cluster: one
  Deployment and Service per arm (``mlflow models serve`` on a registry version, one OpenMP
  thread, a readiness probe on ``/ping``), and the router in front (a Deployment with its
  weights and salt as configuration, a Service, and a HorizontalPodAutoscaler on CPU);
- :func:`tracking_server_manifests`: the shared MLflow server of
  :func:`companion.deployment.shared_server` as a Deployment (its database password and storage
  key read from a Secret, never written here) and a Service;
- :func:`validate_manifests`: loads a manifest file back and deserializes every document into
  the ``kubernetes`` client's models (``V1Deployment``, ``V1Service``,
  ``V2HorizontalPodAutoscaler``), which refuse a missing required field, then serializes each
  model again and compares: a misspelt or unknown field (dropped by the models) is refused too.

To apply for real (not done here): ``kubectl apply -f serving.yaml`` on a cluster whose image
``image`` holds the companion, with the registry reachable at ``tracking_uri``.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from companion.core.checks import check_identifier, check_int, check_path, check_text
from companion.core.files import atomic_write_text
from companion.deployment.predlog import check_weights
from companion.deployment.router import ARMS
from companion.errors import InvalidParameterError

__all__ = ["Manifest", "serving_manifests", "tracking_server_manifests", "validate_manifests"]

_KINDS = {"Deployment": "V1Deployment", "Service": "V1Service",
          "HorizontalPodAutoscaler": "V2HorizontalPodAutoscaler", "Secret": "V1Secret"}
_NAME = r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?"
_NAME_RULE = "lowercase letters, digits and '-', at most 63 (a Kubernetes name)"
_QUANTITY = re.compile(r"[0-9]+(\.[0-9]+)?(m|Ki|Mi|Gi|k|M|G)?")


@dataclass(frozen=True)
class Manifest:
    """A manifest file read back through the ``kubernetes`` client's models.

    Attributes:
        path: the YAML file (several documents).
        objects: ``(kind, name)`` of each document, in file order.
        images: the container images the Deployments run.
    """

    path: Path
    objects: list[tuple[str, str]]
    images: list[str]


class _Response:  # ApiClient.deserialize reads a response's ``data``
    def __init__(self, document: Mapping[str, Any]) -> None:
        self.data = json.dumps(document)


def validate_manifests(path: str | os.PathLike[str]) -> Manifest:
    """Load ``path`` and check every document against the ``kubernetes`` client's models.

    Args:
        path: a YAML file of one or more Deployment, Service, HorizontalPodAutoscaler or
            Secret documents.

    Returns:
        The :class:`Manifest`: each document's kind and name, the Deployments' images.

    Raises:
        InvalidParameterError: no such file, a kind the book does not write, a document the
            models refuse (a missing required field) or one they do not give back unchanged
            (an unknown or misspelt field, a wrong type).
    """
    target = check_path("path", path)
    if not target.is_file():
        raise InvalidParameterError(f"no manifest file at {target.name!r}")
    from kubernetes.client import ApiClient

    api = ApiClient()
    objects: list[tuple[str, str]] = []
    images: list[str] = []
    for index, document in enumerate(yaml.safe_load_all(target.read_text(encoding="utf-8"))):
        if not isinstance(document, dict):
            raise InvalidParameterError(f"document {index} of {target.name!r} is not a mapping")
        kind = document.get("kind")
        if kind not in _KINDS:
            raise InvalidParameterError(
                f"document {index} of {target.name!r} has kind {kind!r}; accepted: "
                f"{sorted(_KINDS)}")
        try:
            model = api.deserialize(_Response(document), _KINDS[kind])
        except (ValueError, TypeError) as exc:
            raise InvalidParameterError(f"{kind} {index} of {target.name!r}: {exc}") from None
        back = api.sanitize_for_serialization(model)
        if back != document:
            raise InvalidParameterError(
                f"{kind} {index} of {target.name!r} does not read back as written (an unknown "
                f"or misspelt field?): {_first_difference(document, back)}")
        objects.append((kind, document["metadata"]["name"]))
        if kind == "Deployment":
            images += [c.image for c in model.spec.template.spec.containers]
    return Manifest(target, objects, images)


def _first_difference(written: Any, back: Any, where: str = "") -> str:
    if isinstance(written, dict) and isinstance(back, dict):
        for key in written:
            if key not in back:
                return f"{where}.{key} is not a field"
            found = _first_difference(written[key], back[key], f"{where}.{key}")
            if found:
                return found
        return ""
    if isinstance(written, list) and isinstance(back, list) and len(written) == len(back):
        for i, (a, b) in enumerate(zip(written, back, strict=True)):
            found = _first_difference(a, b, f"{where}[{i}]")
            if found:
                return found
        return ""
    return "" if written == back else f"{where}: {written!r} read back as {back!r}"


def _check_quantity(name: str, value: Any) -> str:
    if not isinstance(value, str) or not _QUANTITY.fullmatch(value):
        raise InvalidParameterError(f"{name} must be a Kubernetes quantity such as '500m' or "
                                    f"'1Gi', got {value!r}")
    return value


def _resources(cpu: str, memory: str) -> dict[str, Any]:
    return {"requests": {"cpu": cpu, "memory": memory}, "limits": {"memory": memory}}


def _deployment(name: str, image: str, args: list[str], port: int, replicas: int,
                resources: dict[str, Any], env: list[dict[str, Any]],
                probe_path: str) -> dict[str, Any]:
    labels = {"app": name}
    probe = {"httpGet": {"path": probe_path, "port": port}, "periodSeconds": 10}
    container = {"name": name, "image": image, "args": args,
                 "ports": [{"containerPort": port}], "env": env, "resources": resources,
                 "readinessProbe": probe, "livenessProbe": {**probe, "initialDelaySeconds": 30}}
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "labels": labels},
            "spec": {"replicas": replicas, "selector": {"matchLabels": labels},
                     "template": {"metadata": {"labels": labels},
                                  "spec": {"containers": [container]}}}}


def _service(name: str, port: int) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name},
            "spec": {"selector": {"app": name},
                     "ports": [{"port": 80, "targetPort": port}]}}


def _write(folder: str | os.PathLike[str], filename: str,
           documents: list[dict[str, Any]]) -> Manifest:
    target = check_path("folder", folder) / filename
    target.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(target, yaml.safe_dump_all(documents, sort_keys=False))
    return validate_manifests(target)


def serving_manifests(
    folder: str | os.PathLike[str],
    *,
    model: str,
    champion_version: int,
    challenger_version: int,
    weights: Mapping[str, float],
    salt: str,
    tracking_uri: str,
    image: str,
    replicas: int = 2,
    max_replicas: int = 10,
    target_cpu_percent: int = 70,
    cpu: str = "500m",
    memory: str = "1Gi",
) -> Manifest:
    """Write and validate the champion/challenger split as manifests: ``<folder>/serving.yaml``.

    Args:
        folder: where ``serving.yaml`` is written.
        model: the registered model's name.
        champion_version, challenger_version: the registry versions behind each arm.
        weights: the router's split, ``{"champion": 0.8, "challenger": 0.2}``.
        salt: the experiment's salt (the router's sticky assignment).
        tracking_uri: the shared MLflow server the pods read the registry from.
        image: the container image holding MLflow and the companion.
        replicas: the replicas of each arm and the router's minimum.
        max_replicas: the router's autoscaler maximum.
        target_cpu_percent: the autoscaler's target CPU utilisation.
        cpu, memory: each container's requests (memory also its limit).

    Returns:
        The :class:`Manifest` read back by :func:`validate_manifests`.

    Raises:
        InvalidParameterError: a bad argument (nothing is written).
    """
    check_text("model", model)
    versions = [check_int(n, v, minimum=1) for n, v in (("champion_version", champion_version),
                                                         ("challenger_version",
                                                          challenger_version))]
    shares = check_weights(weights)
    if set(shares) != set(ARMS):
        raise InvalidParameterError(
            f"weights must name the arms {list(ARMS)}, got {sorted(shares)}")
    check_text("salt", salt)
    if not isinstance(tracking_uri, str) or not tracking_uri.startswith(("http://", "https://")):
        raise InvalidParameterError(
            f"tracking_uri must be the shared server's http(s):// URL, got {tracking_uri!r}")
    check_text("image", image)
    replicas = check_int("replicas", replicas, minimum=1)
    max_replicas = check_int("max_replicas", max_replicas, minimum=replicas)
    target = check_int("target_cpu_percent", target_cpu_percent, minimum=1, maximum=100)
    resources = _resources(_check_quantity("cpu", cpu), _check_quantity("memory", memory))
    env = [{"name": "MLFLOW_TRACKING_URI", "value": tracking_uri},
           {"name": "OMP_NUM_THREADS", "value": "1"}]
    documents: list[dict[str, Any]] = []
    for arm, version in zip(ARMS, versions, strict=True):
        name = f"lumen-{arm}"
        args = ["mlflow", "models", "serve", "-m", f"models:/{model}/{version}",
                "--env-manager", "local", "-h", "0.0.0.0", "-p", "8080"]
        documents += [_deployment(name, image, args, 8080, replicas, resources, env, "/ping"),
                      _service(name, 8080)]
    router_env = [*env, {"name": "ROUTER_WEIGHTS", "value": json.dumps(shares, sort_keys=True)},
                  {"name": "ROUTER_SALT", "value": salt},
                  *({"name": f"{arm.upper()}_URL", "value": f"http://lumen-{arm}"}
                    for arm in ARMS)]
    documents += [
        _deployment("lumen-router", image, ["lumen-router", "--port", "8000"], 8000, replicas,
                    resources, router_env, "/health"),
        _service("lumen-router", 8000),
        {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
         "metadata": {"name": "lumen-router"},
         "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment",
                                     "name": "lumen-router"},
                  "minReplicas": replicas, "maxReplicas": max_replicas,
                  "metrics": [{"type": "Resource", "resource": {
                      "name": "cpu", "target": {"type": "Utilization",
                                                "averageUtilization": target}}}]}},
    ]
    return _write(folder, "serving.yaml", documents)


def tracking_server_manifests(
    folder: str | os.PathLike[str],
    command: list[str],
    *,
    port: int,
    secret: str = "mlflow-secrets",
    image: str = "ghcr.io/mlflow/mlflow:v3.17.2",
    replicas: int = 2,
    cpu: str = "500m",
    memory: str = "1Gi",
) -> Manifest:
    """Write and validate the shared MLflow server as manifests: ``<folder>/tracking.yaml``.

    Args:
        folder: where ``tracking.yaml`` is written.
        command: the server's argv, from :func:`companion.deployment.shared_server`.
        port: the port in that command.
        secret: the Secret holding ``PGPASSWORD`` and the object store's key (not written).
        image: MLflow's image.
        replicas: server replicas (the database and object store make them stateless).
        cpu, memory: each container's requests (memory also its limit).

    Returns:
        The :class:`Manifest` read back by :func:`validate_manifests`.

    Raises:
        InvalidParameterError: a bad argument (nothing is written).
    """
    if not isinstance(command, list) or command[:2] != ["mlflow", "server"] or not all(
            isinstance(part, str) for part in command):
        raise InvalidParameterError(
            "command must be the argv of 'mlflow server' (shared_server(...).command), got "
            f"{command!r}")
    port = check_int("port", port, minimum=1, maximum=65535)
    if str(port) not in command:
        raise InvalidParameterError(f"port {port} is not the port of the command {command}")
    check_identifier("secret", secret, _NAME, _NAME_RULE)
    check_text("image", image)
    replicas = check_int("replicas", replicas, minimum=1)
    resources = _resources(_check_quantity("cpu", cpu), _check_quantity("memory", memory))
    env = [{"name": key, "valueFrom": {"secretKeyRef": {"name": secret, "key": key}}}
           for key in ("PGPASSWORD", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")]
    documents = [_deployment("mlflow", image, command, port, replicas, resources, env, "/health"),
                 _service("mlflow", port)]
    return _write(folder, "tracking.yaml", documents)
