"""Kubeflow Pipelines from the step definitions: components, the pipeline, its compiled YAML.

Nothing here is written per step. From a :class:`~companion.pipelines.spec.Pipeline`:

- :func:`component_source` writes, for each step, the source of a KFP *lightweight component*:
  an adapter function typed with ``Input[Dataset]``/``Output[Dataset]`` and the step's
  parameters, whose body imports the step's module and calls ``step.call(...)`` with the
  artifacts' paths. KFP embeds a component's *source* (``inspect.getsource``) in the task's
  command, so the adapters live in a generated module (:func:`write_components`) with no
  ``from __future__ import annotations`` (it would turn the annotations into strings KFP cannot
  read);
- :func:`load_components` imports that module and wraps each adapter with
  ``dsl.component(install_kfp_package=False)``: the task's command then has no
  ``pip install kfp`` in it, so neither the local runner nor a cluster needs the network;
- :func:`build_pipeline` builds the ``@dsl.pipeline`` from the wiring: one task per step, tasks
  connected by artifacts, the pipeline's parameters as pipeline parameters, each external input
  as a ``dsl.importer`` of a URI given as the parameter ``<name>_uri``, and each step's retry
  policy as ``task.set_retry(num_retries=step.retries)``;
- :func:`compile_pipeline` writes the KFP IR YAML a cluster runs, and :func:`check_compiled`
  loads it back and checks it against the definitions.

Every output artifact is a folder holding the step's file under its declared name
(``<task>/<output>/<filename>``), so a step writes the same file names under every runner.
:mod:`companion.pipelines.kubeflow_run` runs the pipeline with ``kfp.local``;
:mod:`companion.pipelines.kubeflow_schedule` builds the recurring run a cluster would schedule.

On a cluster (not run here), the compiled YAML is submitted with::

    kfp.Client(host="https://<kfp-endpoint>").create_run_from_pipeline_package(
        "lumen-training.yaml", arguments={"export_uri": "gs://<bucket>/exports/2025-10-01"})

with ``image`` an image in which the companion is installed (``pip install .[pipelines]``).
"""

from __future__ import annotations

import importlib.util
import logging
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from companion.core.checks import check_path, check_text
from companion.core.files import atomic_write_text
from companion.errors import InvalidParameterError, PipelineError
from companion.pipelines.spec import Param, Pipeline, Step

__all__ = [
    "DEFAULT_IMAGE",
    "CompiledCheck",
    "KfpPipeline",
    "build_pipeline",
    "check_compiled",
    "compile_pipeline",
    "component_source",
    "load_components",
    "task_name",
    "uri_param",
    "write_components",
]

logger = logging.getLogger(__name__)

DEFAULT_IMAGE = "python:3.11"
"""Base image of every task. On a cluster it must hold the companion (``pip install
.[pipelines]``); the local subprocess runner only checks that the name says ``python``."""

_KFP_TYPES = {"str": "str", "int": "int", "float": "float", "bool": "bool",
              "list[str]": "List[str]"}


def task_name(step_name: str) -> str:
    """The KFP task (and local folder) name of a step: KFP writes ``_`` as ``-``."""
    return step_name.replace("_", "-")


def uri_param(input_name: str) -> str:
    """The pipeline parameter holding the URI of the external input ``input_name``."""
    return f"{input_name}_uri"


def _signature(params: list[Param], head: list[str]) -> str:
    required = [f"{p.name}: {_KFP_TYPES[p.type]}" for p in params if p.required]
    optional = [f"{p.name}: {_KFP_TYPES[p.type]} = {p.default!r}" for p in params
                if not p.required]
    return ",\n    ".join([*head, *required, *optional])


def component_source(step: Step, pipeline: Pipeline) -> str:
    """The source of the KFP adapter of ``step``: typed artifacts and parameters, a body that
    imports the step's module and calls ``step.call`` with the artifacts' paths."""
    outputs = pipeline.outputs()
    head = [f"{p.name}: Input[Dataset]" for p in step.inputs]
    head += [f"{p.name}: Output[Dataset]" for p in step.outputs]
    paths = [f"        {p.name!r}: Path({p.name}.path),"
             if p.external else
             f"        {p.name!r}: Path({p.name}.path) / {outputs[p.name].filename!r},"
             for p in step.inputs]
    paths += [f"        {p.name!r}: Path({p.name}.path) / {p.filename!r}," for p in step.outputs]
    made = [f"    Path({p.name}.path).mkdir(parents=True, exist_ok=True)" for p in step.outputs]
    values = ", ".join(f"{p.name!r}: {p.name}" for p in step.params)
    doc = step.description or f"Step {step.name}."
    return "\n".join([
        f"def {step.name}(",
        f"    {_signature(list(step.params), head)},",
        "):",
        f'    """{doc} (Calls {step.module}.{step.name}.)"""',
        "    import importlib",
        "    import json",
        "    import time",
        "    from pathlib import Path",
        "",
        f"    function = getattr(importlib.import_module({step.module!r}), {step.name!r})",
        "    paths = {",
        *paths,
        "    }",
        *made,
        "    started = time.perf_counter()",
        f"    function.step.call(paths, {{{values}}})",
        "    seconds = time.perf_counter() - started",
        f"    print('companion-step ' + json.dumps({{'step': {step.name!r}, "
        "'seconds': seconds}), flush=True)",
        "",
    ])


def _module_name(pipeline: Pipeline) -> str:
    return "kfp_components_" + pipeline.name.replace("-", "_")


def write_components(pipeline: Pipeline, folder: str | Path) -> Path:
    """Write the adapters of every step of ``pipeline`` into one module in ``folder``.

    The module has no ``from __future__ import annotations``: KFP reads the annotations.
    """
    if not isinstance(pipeline, Pipeline):
        raise InvalidParameterError(f"pipeline must be a Pipeline, got {pipeline!r}")
    folder = check_path("folder", folder)
    clash = sorted({uri_param(p.name) for p in pipeline.external_inputs()} & set(pipeline.params()))
    if clash:
        raise InvalidParameterError(
            f"pipeline {pipeline.name!r}: parameter(s) {clash} clash with the URI parameters of "
            "its external inputs; rename them"
        )
    header = [
        f'"""KFP lightweight components of the pipeline {pipeline.name!r}.',
        "",
        "Generated by companion.pipelines.kubeflow.write_components from the step definitions:",
        'edit the steps, not this file."""',
        "",
        "from typing import List",
        "",
        "from kfp.dsl import Dataset, Input, Output",
        "",
    ]
    blocks = ["\n" + component_source(item, pipeline) for item in pipeline.steps]
    path = folder / f"{_module_name(pipeline)}.py"
    atomic_write_text(path, "\n".join(header) + "\n".join(blocks))
    return path


def load_components(
    pipeline: Pipeline, folder: str | Path, *, image: str = DEFAULT_IMAGE
) -> dict[str, Any]:
    """Write the adapters (:func:`write_components`), import them, and wrap each with
    ``dsl.component(install_kfp_package=False)``: step name -> KFP component."""
    check_text("image", image)
    path = write_components(pipeline, folder)
    from kfp import dsl

    name = f"companion_generated.{_module_name(pipeline)}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:  # pragma: no cover - a .py file always has a spec
        raise PipelineError(f"cannot import the generated components from {path.name}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # inspect.getsource finds the file through the module
    try:
        spec.loader.exec_module(module)
        return {
            item.name: dsl.component(getattr(module, item.name), base_image=image,
                                     install_kfp_package=False)
            for item in pipeline.steps
        }
    finally:
        sys.modules.pop(name, None)


@dataclass(frozen=True)
class KfpPipeline:
    """A ``@dsl.pipeline`` built from a :class:`Pipeline`, and how its tasks are named."""

    pipeline: Pipeline
    graph: Any  # kfp.dsl.graph_component.GraphComponent: call it to run under kfp.local
    tasks: Mapping[str, str]  # step name -> KFP task name


def _pipeline_signature(pipeline: Pipeline) -> Any:
    import inspect

    kinds: dict[str, Any] = {"str": str, "int": int, "float": float, "bool": bool,
                             "list[str]": list}
    kind = inspect.Parameter.POSITIONAL_OR_KEYWORD
    uris = [inspect.Parameter(uri_param(p.name), kind, annotation=str)
            for p in pipeline.external_inputs()]
    params = sorted(pipeline.params().values(), key=lambda p: not p.required)
    return inspect.Signature(uris + [
        inspect.Parameter(p.name, kind, annotation=kinds[p.type],
                          default=inspect.Parameter.empty if p.required else p.default)
        for p in params
    ])


def build_pipeline(
    pipeline: Pipeline,
    folder: str | Path,
    *,
    image: str = DEFAULT_IMAGE,
    env: Mapping[str, str] | None = None,
) -> KfpPipeline:
    """The ``@dsl.pipeline`` of ``pipeline``: tasks wired by artifacts, parameters as pipeline
    parameters, retry policies from the steps, external inputs imported from ``<name>_uri``.

    ``env``: environment variables set on every task (the local runner uses it to clear
    ``PYTHONPATH`` and forbid pip's index); leave it empty for a cluster.
    """
    env = dict(env or {})
    for key, value in env.items():
        if not isinstance(key, str) or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key) or (
            not isinstance(value, str)
        ):
            raise InvalidParameterError(f"env must map variable names to strings, got {key!r}")
    components = load_components(pipeline, folder, image=image)
    from kfp import dsl

    tasks: dict[str, str] = {}
    signature = _pipeline_signature(pipeline)

    def body(*values: Any) -> None:  # KFP passes one channel per parameter, in order
        arguments = dict(zip(signature.parameters, values, strict=True))
        produced: dict[str, Any] = {}
        for port in pipeline.external_inputs():
            importer = dsl.importer(artifact_uri=arguments[uri_param(port.name)],
                                    artifact_class=dsl.Dataset, reimport=False)
            importer.set_display_name(f"import-{task_name(port.name)}")
            importer.set_caching_options(False)
            produced[port.name] = importer.output
        for item in pipeline.steps:
            kwargs = {p.name: produced[p.name] for p in item.inputs}
            kwargs.update({p.name: arguments[p.name] for p in item.params})
            task = components[item.name](**kwargs)
            # A step reads the export behind a URI that a schedule reuses every month (the
            # latest export): KFP's cache would serve last month's outputs for it.
            task.set_caching_options(False)
            if item.retries:
                task.set_retry(num_retries=item.retries)
            for key, value in sorted(env.items()):
                task.set_env_variable(key, value)
            tasks[item.name] = task.name
            for port in item.outputs:
                produced[port.name] = task.outputs[port.name]

    body.__signature__ = signature  # type: ignore[attr-defined]
    body.__name__ = pipeline.name.replace("-", "_")
    body.__doc__ = f"Pipeline {pipeline.name!r}: steps {[s.name for s in pipeline.steps]}."
    graph = dsl.pipeline(name=pipeline.name, description=body.__doc__)(body)
    return KfpPipeline(pipeline, graph, dict(tasks))


def compile_pipeline(
    pipeline: Pipeline, folder: str | Path, *, image: str = DEFAULT_IMAGE
) -> Path:
    """Compile ``pipeline`` to the KFP IR YAML a cluster runs: ``<folder>/<name>.yaml``."""
    built = build_pipeline(pipeline, folder, image=image)
    from kfp import compiler

    target = check_path("folder", folder) / f"{pipeline.name}.yaml"
    from companion.core.files import atomic_write

    atomic_write(target, lambda tmp: compiler.Compiler().compile(built.graph, str(tmp)))
    return target


@dataclass(frozen=True)
class CompiledCheck:
    """What the compiled YAML holds, read back from the file."""

    tasks: list[str]  # step tasks (importers excluded), in pipeline order
    edges: list[tuple[str, str, str]]  # (upstream step, downstream step, artifact)
    params: dict[str, str]  # pipeline parameter -> KFP type (uri parameters included)
    retries: dict[str, int]  # step -> maxRetryCount
    pip_installs: int  # tasks whose command would run `pip install`


def check_compiled(path: str | Path, pipeline: Pipeline) -> CompiledCheck:
    """Load the compiled YAML at ``path`` and check it against ``pipeline``: every step is a
    task, the artifact edges equal ``pipeline.edges()``, every parameter and retry policy is
    there, and no task installs anything. Raises :class:`PipelineError` naming a mismatch."""
    path = check_path("path", path)
    if not path.is_file():
        raise InvalidParameterError(f"no compiled pipeline at {path.name!r}")
    spec = yaml.safe_load(path.read_text(encoding="utf-8"))
    dag = spec["root"]["dag"]["tasks"]
    step_of = {task_name(s.name): s.name for s in pipeline.steps}
    tasks = [step_of[name] for name in dag if name in step_of]
    edges = []
    for name, task in dag.items():
        if name not in step_of:
            continue
        for artifact, source in task.get("inputs", {}).get("artifacts", {}).items():
            upstream = source.get("taskOutputArtifact", {}).get("producerTask")
            if upstream in step_of:
                edges.append((step_of[upstream], step_of[name], artifact))
    order = {s.name: i for i, s in enumerate(pipeline.steps)}
    tasks.sort(key=order.__getitem__)
    edges.sort(key=lambda e: (order[e[1]], [p.name for p in pipeline.step(e[1]).inputs]
                              .index(e[2])))
    params = {k: v["parameterType"]
              for k, v in spec["root"].get("inputDefinitions", {}).get("parameters", {}).items()}
    retries = {s.name: int(dag.get(task_name(s.name), {}).get("retryPolicy", {})
                           .get("maxRetryCount", 0)) for s in pipeline.steps}
    executors = spec["deploymentSpec"]["executors"].values()
    pips = sum("pip install" in " ".join(e.get("container", {}).get("command", []))
               for e in executors)
    found = CompiledCheck(tasks, edges, params, retries, pips)
    expected_params = {uri_param(p.name) for p in pipeline.external_inputs()} | set(
        pipeline.params())
    problems = []
    if tasks != [s.name for s in pipeline.steps]:
        problems.append(f"tasks {tasks}")
    if edges != pipeline.edges():
        problems.append(f"edges {edges} instead of {pipeline.edges()}")
    if set(params) != expected_params:
        problems.append(f"parameters {sorted(params)} instead of {sorted(expected_params)}")
    if retries != {s.name: s.retries for s in pipeline.steps}:
        problems.append(f"retries {retries}")
    if pips:
        problems.append(f"{pips} task(s) run pip install")
    if problems:
        raise PipelineError(f"compiled pipeline {path.name!r} differs from "
                            f"{pipeline.name!r}: " + "; ".join(problems))
    logger.info("compiled %s checked: %d tasks, %d edges", path.name, len(tasks), len(edges))
    return found
