"""The training pipeline for a cluster: KFP YAML with resources and retries, Azure ML compute.

The same step definitions that run in one process (:func:`~companion.pipelines.run_local`)
and under ``kfp.local`` compile, for a cluster, to a pipeline with what a cluster needs and a
laptop does not. Specified and validated offline; nothing is submitted.

- :func:`compile_for_cluster`: the KFP IR YAML of :func:`~companion.pipelines.compile_pipeline`
  with, on every task, CPU and memory requests and limits, a retry policy with exponential
  back-off (at least each step's own retries), and the data on an object store: the pipeline
  root (where KFP writes every artifact) and the default URI of each external input. The file
  is read back by KFP's protobuf schema (``PipelineSpec`` and ``PipelineDeploymentConfig``,
  strict: an unknown field is refused), by ``kfp.components.load_component_from_file`` and by
  :func:`~companion.pipelines.check_compiled` (the wiring against the definitions);
- :func:`azure_compute_cluster`: the Azure ML compute cluster the pipeline job runs on
  (``AmlCompute``: VM size, 0 to N nodes, scale-down after idle), dumped and loaded back with
  ``load_compute``. :func:`~companion.pipelines.dump_pipeline_job` then writes the job with
  ``compute=<the cluster's name>`` and loads it back with ``load_job``.

To run (not done here)::

    kfp.Client(host="https://<kfp-endpoint>").create_run_from_pipeline_package(
        "lumen-training.yaml")                     # the object-store defaults are in the file
    ml.begin_create_or_update(load_compute("cpu-cluster.yml")).result()
    ml.jobs.create_or_update(load_job("lumen-training.yml"))
"""

from __future__ import annotations

import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from companion.core.checks import check_identifier, check_int, check_path, check_text
from companion.core.env import quiet
from companion.core.files import atomic_write_text
from companion.errors import InvalidParameterError, PipelineError
from companion.pipelines.spec import Pipeline

__all__ = ["AzureCompute", "ClusterPipeline", "azure_compute_cluster", "compile_for_cluster"]

_CPU = re.compile(r"([0-9]*[.])?[0-9]+m?")
_MEMORY = re.compile(r"([0-9]*[.])?[0-9]+(E|Ei|P|Pi|T|Ti|G|Gi|M|Mi|K|Ki)?")
_STORE = ("s3://", "gs://", "minio://", "abfss://", "wasbs://")
_QUIET = ("azure", "msrest", "urllib3")


@dataclass(frozen=True)
class ClusterPipeline:
    """A pipeline compiled for a cluster and read back.

    Attributes:
        path: the KFP IR YAML.
        pipeline_root: the object-store folder of every artifact.
        inputs: external input parameter -> its default URI.
        resources: task -> its container's requests and limits.
        retries: task -> ``maxRetryCount``.
        tasks: the step tasks, in pipeline order.
    """

    path: Path
    pipeline_root: str
    inputs: dict[str, str]
    resources: dict[str, dict[str, str]]
    retries: dict[str, int]
    tasks: list[str]


def _check_store_uri(name: str, value: Any) -> str:
    check_text(name, value)
    if not value.startswith(_STORE):
        raise InvalidParameterError(
            f"{name} must be an object-store URI ({', '.join(_STORE)}), got {value!r}")
    return str(value).rstrip("/")


def compile_for_cluster(
    pipeline: Pipeline,
    folder: str | os.PathLike[str],
    *,
    pipeline_root: str,
    inputs: dict[str, str],
    image: str,
    cpu: str = "1",
    memory: str = "4Gi",
    cpu_limit: str = "2",
    memory_limit: str = "8Gi",
    retries: int = 2,
    backoff: str = "60s",
) -> ClusterPipeline:
    """Compile ``pipeline`` for a cluster into ``<folder>/<name>.yaml`` and validate it.

    Args:
        pipeline: the step definitions (e.g. :data:`~companion.pipelines.LUMEN`).
        folder: where the YAML (and the generated components module) are written.
        pipeline_root: object-store folder for the artifacts, e.g. ``s3://lumen-kfp/root``.
        inputs: an object-store URI per external input (the ``<name>_uri`` defaults).
        image: the image every task runs (with the companion installed).
        cpu, memory: every task's requests (Kubernetes quantities).
        cpu_limit, memory_limit: every task's limits.
        retries: the least retry count of each task (a step's own retries win if higher).
        backoff: the first retry's delay (doubling after each failure, at most an hour).

    Returns:
        The :class:`ClusterPipeline` read back from the file.

    Raises:
        InvalidParameterError: a bad argument (nothing written).
        PipelineError: the file does not read back as built.
    """
    from companion.pipelines.kubeflow import check_compiled, compile_pipeline, task_name, uri_param

    if not isinstance(pipeline, Pipeline):
        raise InvalidParameterError(f"pipeline must be a Pipeline, got {pipeline!r}")
    target = check_path("folder", folder)
    root = _check_store_uri("pipeline_root", pipeline_root)
    expected = sorted(p.name for p in pipeline.external_inputs())
    if not isinstance(inputs, dict) or sorted(inputs) != expected:
        raise InvalidParameterError(f"inputs must give a URI for exactly {expected}, got "
                                    f"{sorted(inputs) if isinstance(inputs, dict) else inputs!r}")
    uris = {uri_param(k): _check_store_uri(f"inputs[{k!r}]", v) for k, v in inputs.items()}
    check_text("image", image)
    for name, value, pattern in (("cpu", cpu, _CPU), ("cpu_limit", cpu_limit, _CPU),
                                 ("memory", memory, _MEMORY),
                                 ("memory_limit", memory_limit, _MEMORY)):
        if not isinstance(value, str) or not pattern.fullmatch(value):
            raise InvalidParameterError(f"{name} must be a Kubernetes quantity such as '500m', "
                                        f"'2' or '4Gi', got {value!r}")
    retries = check_int("retries", retries, minimum=0, maximum=10)
    check_identifier("backoff", backoff, r"[0-9]+s", "seconds such as '60s'")
    resources = {"resourceCpuRequest": cpu, "resourceCpuLimit": cpu_limit,
                 "resourceMemoryRequest": memory, "resourceMemoryLimit": memory_limit}
    target.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="kfp-cluster-", dir=target) as scratch:
        compiled = compile_pipeline(pipeline, scratch, image=image)
        check_compiled(compiled, pipeline)  # the wiring, before the cluster's settings
        spec = yaml.safe_load(compiled.read_text(encoding="utf-8"))
    spec["defaultPipelineRoot"] = root
    parameters = spec["root"].get("inputDefinitions", {}).get("parameters", {})
    for name, uri in uris.items():
        parameters[name]["defaultValue"] = uri
        parameters[name]["isOptional"] = True
    tasks = spec["root"]["dag"]["tasks"]
    step_tasks = {task_name(s.name): s for s in pipeline.steps}
    for name, step in step_tasks.items():
        tasks[name]["retryPolicy"] = {"maxRetryCount": max(retries, step.retries),
                                      "backoffDuration": backoff, "backoffFactor": 2.0,
                                      "backoffMaxDuration": "3600s"}
        executor = spec["root"]["dag"]["tasks"][name]["componentRef"]["name"]
        executor_label = spec["components"][executor]["executorLabel"]
        spec["deploymentSpec"]["executors"][executor_label]["container"]["resources"] = dict(
            resources)
    path = target / compiled.name
    atomic_write_text(path, yaml.safe_dump(spec, sort_keys=False))
    return _read_back(path, pipeline, step_tasks)


def _read_back(path: Path, pipeline: Pipeline, step_tasks: dict[str, Any]) -> ClusterPipeline:
    from google.protobuf import json_format
    from kfp.components import load_component_from_file
    from kfp.pipeline_spec import pipeline_spec_pb2

    spec = yaml.safe_load(path.read_text(encoding="utf-8"))
    try:
        json_format.ParseDict(spec, pipeline_spec_pb2.PipelineSpec())
        json_format.ParseDict(spec["deploymentSpec"],
                              pipeline_spec_pb2.PipelineDeploymentConfig())
        load_component_from_file(str(path))
    except (json_format.ParseError, ValueError, KeyError) as exc:
        raise PipelineError(f"{path.name} does not read back as a KFP pipeline: {exc}") from None
    dag = spec["root"]["dag"]["tasks"]
    executors = spec["deploymentSpec"]["executors"]
    labels = {name: spec["components"][dag[name]["componentRef"]["name"]]["executorLabel"]
              for name in step_tasks}
    parameters = spec["root"].get("inputDefinitions", {}).get("parameters", {})
    return ClusterPipeline(
        path, spec["defaultPipelineRoot"],
        {k: v["defaultValue"] for k, v in parameters.items() if "defaultValue" in v
         and k.endswith("_uri")},
        {name: executors[labels[name]]["container"]["resources"] for name in step_tasks},
        {name: int(dag[name]["retryPolicy"]["maxRetryCount"]) for name in step_tasks},
        [name for name in step_tasks if name in dag])


@dataclass(frozen=True)
class AzureCompute:
    """An Azure ML compute cluster spec, dumped and loaded back (never created).

    Attributes:
        path: the YAML.
        name: the cluster's name (a pipeline job's ``compute``).
        size: the VM size.
        min_instances, max_instances: the node range it scales in.
    """

    path: Path
    name: str
    size: str
    min_instances: int
    max_instances: int


def azure_compute_cluster(
    folder: str | os.PathLike[str],
    *,
    name: str = "cpu-cluster",
    size: str = "Standard_D4s_v3",
    min_instances: int = 0,
    max_instances: int = 4,
    idle_seconds: int = 900,
) -> AzureCompute:
    """Write the ``AmlCompute`` cluster spec ``<folder>/<name>.yml`` and load it back.

    Args:
        folder: where the YAML is written.
        name: the cluster's name (the pipeline job's ``compute``).
        size: the VM size of its nodes.
        min_instances, max_instances: the nodes it scales between (0: none when idle).
        idle_seconds: how long an idle node lives before the cluster scales down.

    Returns:
        The :class:`AzureCompute` as ``load_compute`` read it back.

    Raises:
        InvalidParameterError: a bad argument (nothing written).
        PipelineError: the file does not load back as written.
    """
    target = check_path("folder", folder)
    check_identifier("name", name, r"[A-Za-z][A-Za-z0-9-]{1,22}[A-Za-z0-9]",
                     "2-24 letters, digits and '-', starting with a letter (Azure's rule)")
    check_identifier("size", size, r"Standard_[A-Za-z0-9_]+", "an Azure VM size such as "
                     "'Standard_D4s_v3'")
    low = check_int("min_instances", min_instances, minimum=0)
    high = check_int("max_instances", max_instances, minimum=max(1, low))
    idle = check_int("idle_seconds", idle_seconds, minimum=0)
    path = target / f"{name}.yml"
    target.mkdir(parents=True, exist_ok=True)
    with quiet(*_QUIET, capture_output=True):
        from azure.ai.ml import load_compute
        from azure.ai.ml.entities import AmlCompute

        compute = AmlCompute(name=name, size=size, min_instances=low, max_instances=high,
                             idle_time_before_scale_down=idle)
        from companion.core.files import atomic_write

        atomic_write(path, lambda tmp: compute.dump(tmp))
        loaded: Any = load_compute(path)
    if (loaded.name, loaded.size, loaded.min_instances, loaded.max_instances) != (
            name, size, low, high):
        raise PipelineError(f"{path.name} loads back as {loaded.name}, {loaded.size}, "
                            f"{loaded.min_instances}-{loaded.max_instances} nodes")
    return AzureCompute(path, name, size, low, high)
