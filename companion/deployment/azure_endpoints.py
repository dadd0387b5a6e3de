"""Azure ML online endpoints for Lumen's model, as specifications validated offline. NOT DEPLOYED.

Nothing here talks to Azure: each function builds azure-ai-ml entities, writes them as YAML,
loads the YAML back with ``load_online_endpoint`` / ``load_online_deployment`` (the SDK's
schema validation), runs the deployment's own offline ``_validate()`` and checks what a rollout
depends on (traffic summing to 100, mirror traffic only to a deployment with no live traffic
and at most 50%, every deployment named in the traffic exists).

- :func:`managed_endpoint_specs`: a managed online endpoint with a ``blue`` deployment (the
  production version) and a ``green`` one (the candidate), live traffic weights and mirror
  (shadow) traffic. The models are registry references (``azureml:<name>:<version>``): an
  MLflow model needs no scoring script or environment, and no local path is written.
- :func:`kubernetes_endpoint_specs`: the same model on an AKS cluster attached to the
  workspace (a ``KubernetesOnlineEndpoint`` and ``KubernetesOnlineDeployment`` with CPU and
  memory requests and limits).

To deploy for real (not done here), with a workspace and credentials::

    from azure.ai.ml import MLClient, load_online_deployment, load_online_endpoint
    from azure.identity import DefaultAzureCredential
    ml = MLClient(DefaultAzureCredential(), "<subscription-id>", "<resource-group>", "<workspace>")
    ml.online_endpoints.begin_create_or_update(load_online_endpoint("endpoint.yml")).result()
    ml.online_deployments.begin_create_or_update(load_online_deployment("blue.yml")).result()
    ml.online_deployments.begin_create_or_update(load_online_deployment("green.yml")).result()
    # traffic and mirror traffic are applied by updating the endpoint once deployments exist:
    ml.online_endpoints.begin_create_or_update(load_online_endpoint("endpoint.yml")).result()

azure-ai-ml prints "experimental class" lines: every call into it runs inside
:func:`companion.core.env.quiet` with the output captured.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from companion.core.checks import check_identifier, check_int, check_number, check_path, check_text
from companion.core.env import quiet
from companion.core.files import atomic_write_text
from companion.errors import InvalidParameterError

__all__ = [
    "MAX_MIRROR_PERCENT",
    "AzureEndpointSpec",
    "kubernetes_endpoint_specs",
    "managed_endpoint_specs",
]

logger = logging.getLogger(__name__)

_QUIET = ("azure", "msrest", "urllib3")
_NAME = r"[A-Za-z][A-Za-z0-9-]{1,30}[A-Za-z0-9]"
_NAME_RULE = "3-32 letters, digits and '-', starting with a letter (Azure's endpoint names)"
_DEPLOYMENT = r"[A-Za-z0-9][A-Za-z0-9-]{1,30}[A-Za-z0-9]"

MAX_MIRROR_PERCENT = 50
"""Azure ML mirrors at most 50% of an endpoint's traffic to a deployment."""

SERVER_ENV = {"OMP_NUM_THREADS": "1"}
"""Environment of every deployment: one OpenMP thread per worker (one-row predictions on a
busy machine are many times slower with the default thread count)."""


@dataclass(frozen=True)
class AzureEndpointSpec:
    """An endpoint and its deployments written as YAML, loaded back and validated (never
    deployed)."""

    kind: str  # "managed" or "kubernetes"
    endpoint: Path  # the endpoint's YAML
    deployments: dict[str, Path]  # deployment name -> its YAML
    traffic: dict[str, int]  # deployment -> percent of live traffic (sums to 100)
    mirror_traffic: dict[str, int]  # deployment -> percent of traffic copied to it
    models: dict[str, str]  # deployment -> model reference, as loaded back
    validation: str  # "Succeeded"


def _plain(entity: Any) -> dict[str, Any]:
    # _to_dict gives OrderedDicts that yaml.safe_dump refuses; the SDK's own dump fails here.
    return dict(json.loads(json.dumps(entity._to_dict())))


def _write(entity: Any, path: Path) -> Path:
    return atomic_write_text(path, yaml.safe_dump(_plain(entity), sort_keys=False))


def _check_percents(name: str, values: Any) -> dict[str, int]:
    if not isinstance(values, Mapping):
        raise InvalidParameterError(f"{name} must be a mapping deployment -> percent, "
                                    f"got {values!r}")
    return {check_identifier(f"{name} deployment", k, _DEPLOYMENT, "3-32 letters, digits, '-'"):
            check_int(f"{name}[{k!r}]", v, minimum=0, maximum=100) for k, v in values.items()}


def _check_traffic(traffic: Mapping[str, int], mirror: Mapping[str, int],
                   deployments: list[str]) -> None:
    problems = []
    if sum(traffic.values()) != 100:
        problems.append(f"live traffic {dict(traffic)} sums to {sum(traffic.values())}, not 100")
    for name in [*traffic, *mirror]:
        if name not in deployments:
            problems.append(f"{name!r} receives traffic but is not a deployment {deployments}")
    for name, percent in mirror.items():
        if percent > MAX_MIRROR_PERCENT:
            problems.append(f"mirror traffic to {name!r} is {percent}%; "
                            f"Azure accepts at most {MAX_MIRROR_PERCENT}%")
        if traffic.get(name, 0) > 0:
            problems.append(f"{name!r} takes live traffic ({traffic[name]}%) and mirror "
                            "traffic; Azure mirrors only to a deployment with 0% live traffic")
    if problems:
        raise InvalidParameterError("; ".join(problems))


def _check_loaded(kind: str, endpoint_path: Path, loaded_endpoint: Any,
                  loaded: Mapping[str, Any], traffic: Mapping[str, int],
                  mirror: Mapping[str, int]) -> None:
    problems = []
    if dict(loaded_endpoint.traffic or {}) != dict(traffic):
        problems.append(f"traffic read back as {loaded_endpoint.traffic}")
    if dict(loaded_endpoint.mirror_traffic or {}) != dict(mirror):
        problems.append(f"mirror traffic read back as {loaded_endpoint.mirror_traffic}")
    for name, deployment in loaded.items():
        if str(deployment.type).lower() != kind:  # the SDK reads back 'Managed'
            problems.append(f"{name} loaded as type {deployment.type!r}")
        if deployment.endpoint_name != loaded_endpoint.name:
            problems.append(f"{name} names endpoint {deployment.endpoint_name!r}")
        try:
            deployment._validate()  # the SDK's offline checks: raises, returns None
        except Exception as error:  # azure.ai.ml's ValidationException and friends
            problems.append(f"{name}: {error}")
    if problems:
        raise InvalidParameterError(f"{endpoint_path.name}: " + "; ".join(problems))


def _model_ref(model: str, version: Any) -> str:
    check_identifier("model", model, r"[A-Za-z0-9][A-Za-z0-9_.-]{0,254}",
                     "letters, digits, '_', '.', '-' (a registered model's name)")
    return f"azureml:{model}:{check_int('model version', version, minimum=1)}"


def _finish(kind: str, folder: Path, endpoint: Any, deployments: Mapping[str, Any],
            traffic: dict[str, int], mirror: dict[str, int], prefix: str) -> AzureEndpointSpec:
    from azure.ai.ml import load_online_deployment, load_online_endpoint

    endpoint_path = _write(endpoint, folder / f"{prefix}endpoint.yml")
    paths = {name: _write(d, folder / f"{prefix}{name}.yml") for name, d in deployments.items()}
    loaded_endpoint = load_online_endpoint(endpoint_path)
    loaded = {name: load_online_deployment(path) for name, path in paths.items()}
    _check_loaded(kind, endpoint_path, loaded_endpoint, loaded, traffic, mirror)
    models = {name: str(d.model) for name, d in loaded.items()}
    logger.info("%s endpoint %s: %s validated offline (not deployed)", kind,
                loaded_endpoint.name, sorted(paths))
    return AzureEndpointSpec(kind, endpoint_path, paths, dict(traffic), dict(mirror), models,
                             "Succeeded")


def managed_endpoint_specs(
    folder: str | Path,
    *,
    model: str,
    blue_version: int,
    green_version: int,
    traffic: Mapping[str, int] | None = None,
    mirror_traffic: Mapping[str, int] | None = None,
    endpoint: str = "lumen-churn",
    instance_type: str = "Standard_DS3_v2",
    instance_count: int = 1,
    request_timeout_ms: int = 5000,
) -> AzureEndpointSpec:
    """Write ``endpoint.yml``, ``blue.yml`` and ``green.yml`` for a managed online endpoint,
    load them back and validate them offline. Not deployed (see the module docstring).

    Args:
        model: the registered model.
        blue_version: the version behind ``blue`` (production).
        green_version: the version behind ``green`` (candidate).
        traffic: live traffic percent per deployment (default ``{"blue": 100, "green": 0}``).
        mirror_traffic: percent of requests copied to a deployment whose answers are discarded
            (default ``{"green": 10}``: green is shadowed before it takes live traffic).

    Raises:
        InvalidParameterError: bad names or numbers; traffic not summing to 100; mirror traffic
            above 50% or to a deployment that takes live traffic; a spec that does not read
            back as written or fails the SDK's validation.
    """
    folder = check_path("folder", folder)
    check_identifier("endpoint", endpoint, _NAME, _NAME_RULE)
    refs = {"blue": _model_ref(model, blue_version), "green": _model_ref(model, green_version)}
    live = _check_percents("traffic", {"blue": 100, "green": 0} if traffic is None else traffic)
    mirror = _check_percents("mirror_traffic",
                             {"green": 10} if mirror_traffic is None else mirror_traffic)
    _check_traffic(live, mirror, list(refs))
    check_text("instance_type", instance_type)
    check_int("instance_count", instance_count, minimum=1)
    check_number("request_timeout_ms", request_timeout_ms, minimum=1)
    with quiet(*_QUIET, capture_output=True):
        from azure.ai.ml.entities import (
            ManagedOnlineDeployment,
            ManagedOnlineEndpoint,
            OnlineRequestSettings,
        )

        made = ManagedOnlineEndpoint(
            name=endpoint, auth_mode="key", traffic=live, mirror_traffic=mirror,
            description=f"Lumen churn scores: {model} blue v{blue_version}, "
                        f"green v{green_version}",
        )
        deployments = {
            name: ManagedOnlineDeployment(
                name=name, endpoint_name=endpoint, model=ref, instance_type=instance_type,
                instance_count=instance_count, environment_variables=dict(SERVER_ENV),
                request_settings=OnlineRequestSettings(
                    request_timeout_ms=int(request_timeout_ms)),
            ) for name, ref in refs.items()
        }
        return _finish("managed", folder, made, deployments, live, mirror, "")


def kubernetes_endpoint_specs(
    folder: str | Path,
    *,
    model: str,
    version: int,
    compute: str = "aks-cluster",
    endpoint: str = "lumen-churn-aks",
    instance_count: int = 2,
    cpu: str = "1",
    memory: str = "2Gi",
) -> AzureEndpointSpec:
    """Write ``aks-endpoint.yml`` and ``aks-blue.yml``: an online endpoint on the AKS cluster
    ``compute`` (attached to the workspace), one deployment taking all traffic, with CPU and
    memory requests equal to their limits; load back and validate offline. Not deployed.

    Raises:
        InvalidParameterError: bad names or numbers, a spec that does not read back as written.
    """
    folder = check_path("folder", folder)
    check_identifier("endpoint", endpoint, _NAME, _NAME_RULE)
    check_identifier("compute", compute, r"[A-Za-z][A-Za-z0-9-]{1,30}[A-Za-z0-9]",
                     "3-32 letters, digits and '-' (an attached compute's name)")
    ref = _model_ref(model, version)
    check_int("instance_count", instance_count, minimum=1)
    check_identifier("cpu", cpu, r"\d+(\.\d+)?|\d+m", "cores ('1', '0.5') or millicores ('500m')")
    check_identifier("memory", memory, r"\d+(Ki|Mi|Gi)", "a Kubernetes quantity ('512Mi', '2Gi')")
    live = {"blue": 100}
    with quiet(*_QUIET, capture_output=True):
        from azure.ai.ml.entities import (
            KubernetesOnlineDeployment,
            KubernetesOnlineEndpoint,
            ResourceRequirementsSettings,
            ResourceSettings,
        )

        made = KubernetesOnlineEndpoint(name=endpoint, compute=compute, auth_mode="key",
                                        traffic=live,
                                        description=f"Lumen churn scores on AKS: {model} "
                                                    f"v{version}")
        resources = ResourceRequirementsSettings(
            requests=ResourceSettings(cpu=cpu, memory=memory),
            limits=ResourceSettings(cpu=cpu, memory=memory))
        deployment = KubernetesOnlineDeployment(
            name="blue", endpoint_name=endpoint, model=ref, instance_type="defaultinstancetype",
            instance_count=instance_count, environment_variables=dict(SERVER_ENV),
            resources=resources)
        return _finish("kubernetes", folder, made, {"blue": deployment}, live, {}, "aks-")
