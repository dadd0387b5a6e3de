"""Azure ML from the step definitions: command components, a pipeline job and its schedule,
dumped to YAML and validated offline. Nothing here is submitted to Azure.

From a :class:`~companion.pipelines.spec.Pipeline`:

- :func:`command_components`: one ``command`` component per step, whose command is the
  companion's command line (``python -m companion.pipelines step NAME --path name=${{inputs.x}}
  ... --param name=${{inputs.p}}``), with inputs and outputs typed ``uri_file``/``uri_folder``,
  parameters as inputs of type string/integer/number/boolean (a list of str as one
  comma-separated string), an environment (an image plus a conda file pinning the versions this
  machine runs) and ``code`` the folder holding the ``companion`` package;
- :func:`dump_pipeline_job`: the ``@dsl.pipeline`` built from the wiring (each node named after
  its step), dumped to ``<folder>/<name>.yml`` with ``code`` made relative to the file (the SDK
  writes it absolute), loaded back with ``load_job`` and validated (``job._validate()``, the
  SDK's offline schema and binding checks);
- :func:`dump_schedule`: a ``JobSchedule`` with a ``CronTrigger`` that creates that pipeline
  job, dumped, loaded back with ``load_schedule`` and checked.

To submit (not done here), with a workspace and credentials::

    from azure.ai.ml import MLClient, load_job
    from azure.identity import DefaultAzureCredential
    ml = MLClient(DefaultAzureCredential(), "<subscription-id>", "<resource-group>", "<workspace>")
    ml.jobs.create_or_update(load_job("lumen-training.yml"))          # one run
    ml.schedules.begin_create_or_update(load_schedule("lumen-training-schedule.yml"))

azure-ai-ml prints "experimental class" lines and anonymous-asset warnings: every call into it
runs inside :func:`companion.core.env.quiet` with the output captured.
"""

from __future__ import annotations

import importlib.metadata
import logging
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from companion.core.checks import check_path, check_text
from companion.core.env import quiet
from companion.core.files import atomic_write_text
from companion.errors import InvalidParameterError, PipelineError
from companion.pipelines.spec import Pipeline, Step

__all__ = [
    "AZURE_IMAGE",
    "STEP_EXTRAS",
    "AzureJob",
    "code_folder",
    "command_components",
    "dump_pipeline_job",
    "step_command",
    "write_conda_file",
]

logger = logging.getLogger(__name__)

AZURE_IMAGE = "mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu22.04"
"""Azure ML's base CPU image; the conda file adds the companion's dependencies on top."""

_AZURE_TYPES = {"str": "string", "int": "integer", "float": "number", "bool": "boolean",
                "list[str]": "string"}
_URI = re.compile(r"(azureml|https|wasbs|abfss)://\S+")
_QUIET = ("azure", "msrest", "urllib3")


def code_folder() -> Path:
    """The folder holding the installed ``companion`` package (what Azure ML uploads as
    ``code``; it honours ``.gitignore``/``.amlignore``)."""
    import companion

    return Path(companion.__file__).resolve().parent.parent


def _check_code(code: str | Path | None) -> Path:
    folder = code_folder() if code is None else check_path("code", code).resolve()
    if not (folder / "companion" / "__init__.py").is_file():
        raise InvalidParameterError(
            f"code folder {folder.name!r} does not hold the companion package "
            "(companion/__init__.py); give the folder the package is installed from"
        )
    return folder


def step_command(step: Step) -> str:
    """The command line of ``step`` with Azure ML's ``${{inputs.x}}``/``${{outputs.y}}``."""
    parts = ["python -m companion.pipelines step", step.name]
    parts += [f"--path {p.name}=${{{{inputs.{p.name}}}}}" for p in step.inputs]
    parts += [f"--path {p.name}=${{{{outputs.{p.name}}}}}" for p in step.outputs]
    parts += [f"--param {p.name}=${{{{inputs.{p.name}}}}}" for p in step.params]
    return " ".join(parts)


STEP_EXTRAS = ("features", "registry", "tracking", "versioning", "pipelines")
"""The companion's extras a step needs on Azure ML's compute (kfp/azure-ai-ml are harmless)."""


def write_conda_file(folder: str | Path) -> Path:
    """Write ``<folder>/conda.yml``: Python 3.11 and the companion's dependencies (with the
    :data:`STEP_EXTRAS`) pinned to the versions installed here."""
    folder = check_path("folder", folder)
    dist = importlib.metadata.packages_distributions().get("companion", ["mlops-level-by-level"])
    pins = []
    for requirement in importlib.metadata.requires(dist[0]) or []:
        extra = re.search(r"extra == ['\"](\w+)['\"]", requirement)
        name = re.split(r"[\s<>=!~;\[]", requirement, maxsplit=1)[0]
        if (extra and extra.group(1) not in STEP_EXTRAS) or name == dist[0]:
            continue
        try:
            pins.append(f"{name}=={importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError:  # pragma: no cover - extra not installed
            continue
    spec = {"name": "companion", "channels": ["conda-forge"],
            "dependencies": ["python=3.11", "pip", {"pip": sorted(set(pins))}]}
    return atomic_write_text(folder / "conda.yml", yaml.safe_dump(spec, sort_keys=False))


def command_components(
    pipeline: Pipeline, folder: str | Path, *, code: str | Path | None = None,
    image: str = AZURE_IMAGE,
) -> dict[str, Any]:
    """One Azure ML ``command`` component per step: step name -> component."""
    if not isinstance(pipeline, Pipeline):
        raise InvalidParameterError(f"pipeline must be a Pipeline, got {pipeline!r}")
    check_text("image", image)
    source = _check_code(code)
    conda = write_conda_file(folder)
    with quiet(*_QUIET, capture_output=True):
        from azure.ai.ml import Input, Output, command
        from azure.ai.ml.entities import Environment

        environment = Environment(image=image, conda_file=str(conda))
        made = {}
        for item in pipeline.steps:
            inputs: dict[str, Any] = {
                p.name: Input(type="uri_folder" if p.folder else "uri_file") for p in item.inputs
            }
            for param in item.params:
                default = param.default
                if param.required:
                    default = None
                elif param.type == "list[str]":
                    default = ",".join(default)
                inputs[param.name] = Input(type=_AZURE_TYPES[param.type], default=default,
                                           optional=False)
            made[item.name] = command(
                name=item.name,
                display_name=item.name,
                description=item.description or None,
                command=step_command(item),
                inputs=inputs,
                outputs={p.name: Output(type="uri_folder" if p.folder else "uri_file")
                         for p in item.outputs},
                environment=environment,
                code=str(source),
            )
    return made


def _check_uris(pipeline: Pipeline, inputs: Mapping[str, str] | None) -> dict[str, str]:
    given = dict(inputs or {})
    expected = {p.name for p in pipeline.external_inputs()}
    unknown = sorted(set(given) - expected)
    if unknown:
        raise InvalidParameterError(f"{sorted(unknown)} are not external inputs of "
                                    f"{pipeline.name!r}; accepted: {sorted(expected)}")
    for name, uri in given.items():
        if not isinstance(uri, str) or not _URI.fullmatch(uri):
            raise InvalidParameterError(
                f"input {name!r} must be a cloud URI (azureml://, https://, wasbs://, abfss://), "
                f"not a local folder outside the job's code: got {uri!r}"
            )
    return {p.name: given.get(p.name, f"azureml://datastores/workspaceblobstore/paths/"
                                      f"{pipeline.name}/{p.name}/") for p in
            pipeline.external_inputs()}


@dataclass(frozen=True)
class AzureJob:
    """A pipeline job dumped to YAML, loaded back and validated (never submitted)."""

    path: Path  # the job's YAML
    steps: list[str]  # node names, in pipeline order
    bindings: dict[str, dict[str, str]]  # node -> input -> what feeds it (${{parent...}})
    code: dict[str, str]  # node -> code path as written in the YAML (relative)
    validation: str  # the SDK's verdict ("Succeeded")


def _pipeline_function(pipeline: Pipeline, components: Mapping[str, Any]) -> Any:
    import inspect

    from azure.ai.ml import Input

    kind = inspect.Parameter.KEYWORD_ONLY

    def body(**arguments: Any) -> None:  # azure-ai-ml passes every input by name
        produced: dict[str, Any] = {p.name: arguments[p.name] for p in pipeline.external_inputs()}
        for item in pipeline.steps:
            kwargs = {p.name: produced[p.name] for p in item.inputs}
            kwargs.update({p.name: arguments[p.name] for p in item.params})
            node = components[item.name](**kwargs)
            node.name = item.name  # otherwise the node is named after a local variable
            for port in item.outputs:
                produced[port.name] = node.outputs[port.name]

    kinds = {"str": str, "int": int, "float": float, "bool": bool, "list[str]": str}
    params = [inspect.Parameter(p.name, kind, annotation=Input(
        type="uri_folder" if p.folder else "uri_file")) for p in pipeline.external_inputs()]
    params += [inspect.Parameter(p.name, kind, annotation=kinds[p.type])
               for p in pipeline.params().values()]
    body.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    # The SDK reads __annotations__ too: real objects, not this module's postponed strings.
    body.__annotations__ = {p.name: p.annotation for p in params}
    body.__name__ = pipeline.name.replace("-", "_")
    return body


def dump_pipeline_job(
    pipeline: Pipeline,
    folder: str | Path,
    *,
    params: Mapping[str, Any] | None = None,
    inputs: Mapping[str, str] | None = None,
    code: str | Path | None = None,
    compute: str = "cpu-cluster",
    image: str = AZURE_IMAGE,
) -> AzureJob:
    """Build the Azure ML pipeline job of ``pipeline``, dump it to ``<folder>/<name>.yml`` with
    relative code paths, load it back with ``load_job`` and validate it. Not submitted.

    Args:
        params: the job's parameter values (defaults for the rest).
        inputs: a cloud URI per external input (default: a folder of the workspace's blob store).
        code: the folder holding the companion package (default: where it is installed).
        compute: the compute cluster the job would run on.

    Raises:
        InvalidParameterError: bad parameters, inputs that are not URIs, a code folder without
            the companion.
        PipelineError: the dumped job does not load back as built, or the SDK rejects it.
    """
    if not isinstance(pipeline, Pipeline):
        raise InvalidParameterError(f"pipeline must be a Pipeline, got {pipeline!r}")
    folder = check_path("folder", folder).resolve()
    values = pipeline.resolve_params(params)
    values = {k: ",".join(v) if isinstance(v, list) else v for k, v in values.items()}
    uris = _check_uris(pipeline, inputs)
    check_text("compute", compute)
    source = _check_code(code)
    components = command_components(pipeline, folder, code=source, image=image)
    target = folder / f"{pipeline.name}.yml"
    with quiet(*_QUIET, capture_output=True):
        from azure.ai.ml import Input, dsl, load_job

        function = _pipeline_function(pipeline, components)
        decorate: Any = dsl.pipeline
        built = decorate(name=pipeline.name, description=f"{pipeline.name}: "
                             f"{[s.name for s in pipeline.steps]}",
                             default_compute=compute)(function)
        job = built(**values, **{p.name: Input(type="uri_folder" if p.folder else "uri_file",
                                               path=uris[p.name])
                                 for p in pipeline.external_inputs()})
        job.settings.default_compute = compute
        scratch = folder / f".{pipeline.name}.absolute.yml"
        job.dump(scratch)
        try:
            document = yaml.safe_load(scratch.read_text(encoding="utf-8"))
        finally:
            scratch.unlink(missing_ok=True)
        document["jobs"] = {s.name: document["jobs"][s.name] for s in pipeline.steps}  # in order
        for node in document["jobs"].values():
            node["component"]["code"] = os.path.relpath(source, folder)
            environment = node["component"].get("environment", {})
            if "conda_file" in environment:
                environment["conda_file"] = "conda.yml"
        atomic_write_text(target, yaml.safe_dump(document, sort_keys=False))
        loaded: Any = load_job(target)
        verdict = loaded._validate()
    return _check_job(pipeline, target, loaded, verdict, source)


def _check_job(pipeline: Pipeline, target: Path, loaded: Any, verdict: Any,
               source: Path) -> AzureJob:
    document = yaml.safe_load(target.read_text(encoding="utf-8"))
    steps = list(loaded.jobs)
    bindings = {name: {k: str(v.get("path", v)) if isinstance(v, dict) else str(v)
                       for k, v in node.get("inputs", {}).items()}
                for name, node in document["jobs"].items()}
    code = {name: node["component"]["code"] for name, node in document["jobs"].items()}
    problems = []
    if steps != [s.name for s in pipeline.steps]:
        problems.append(f"nodes {steps}")
    for upstream, downstream, artifact in pipeline.edges():
        want = "${{parent.jobs." + upstream + ".outputs." + artifact + "}}"
        if bindings[downstream].get(artifact) != want:
            problems.append(f"{downstream}.{artifact} is bound to "
                            f"{bindings[downstream].get(artifact)!r}")
    for name, path in code.items():
        if Path(path).is_absolute() or (target.parent / path).resolve() != source:
            problems.append(f"code of {name} is {path!r}")
    if not verdict.passed:
        problems.append(f"SDK validation: {verdict.error_messages}")
    if problems:
        raise PipelineError(f"Azure ML job {target.name!r} of {pipeline.name!r}: "
                            + "; ".join(problems))
    logger.info("Azure ML job %s: %d nodes, validated", target.name, len(steps))
    return AzureJob(target, steps, bindings, code, "Succeeded")
