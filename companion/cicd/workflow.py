"""The CI/CD workflow: a GitHub Actions YAML file, written, read back and validated offline.

:func:`workflow_yaml` writes the workflow of a Level 1 churn project: on every push, pull
request or manual dispatch, check out the code, set up Python, install from the lock, pull
the data with DVC, run the data tests, train, run the model tests and upload the model.
:func:`write_workflow` puts it at ``.github/workflows/<name>.yml`` of a repository (atomically).

:func:`load_workflow` reads a workflow as GitHub does, as YAML 1.2 (with ``ruamel.yaml``):
PyYAML's YAML 1.1 reads the key ``on`` as the boolean ``True``.

:func:`validate_workflow` checks a workflow against the GitHub-workflow JSON schema that
``check-jsonschema`` ships (``check-jsonschema --builtin-schema vendor.github-workflows``),
offline: nothing is downloaded. Each error is reported as the command line reports its "best
match": the path in the document and what the schema expected there.
"""

from __future__ import annotations

import io
import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from companion.core.checks import check_identifier, check_path, check_text
from companion.core.files import atomic_write_text
from companion.errors import InvalidParameterError

logger = logging.getLogger(__name__)

__all__ = [
    "PYTHON_VERSION",
    "WORKFLOW_SCHEMA",
    "WorkflowCheck",
    "load_workflow",
    "validate_workflow",
    "workflow_steps",
    "workflow_yaml",
    "write_workflow",
]

WORKFLOW_SCHEMA = "vendor.github-workflows"
"""The name of check-jsonschema's bundled GitHub-workflow schema."""
PYTHON_VERSION = "3.11"
_NAME = r"[A-Za-z0-9][A-Za-z0-9_-]*"


def workflow_steps() -> list[dict[str, Any]]:
    """Return the steps of the training workflow, in order, as GitHub Actions mappings."""
    return [
        {"name": "Check out the code", "uses": "actions/checkout@v4"},
        {"name": "Set up Python", "uses": "actions/setup-python@v5",
         "with": {"python-version": PYTHON_VERSION}},
        {"name": "Install from the lock", "id": "install",
         "run": "python -m pip install -r requirements.lock"},
        {"name": "Pull the data (DVC)", "run": "dvc pull"},
        {"name": "Data tests", "run": "python -m pytest tests/test_data.py"},
        {"name": "Train", "run": "python train.py"},
        {"name": "Model tests", "run": "python -m pytest tests/test_model.py"},
        {"name": "Upload the model", "uses": "actions/upload-artifact@v4",
         "with": {"name": "churn-model", "path": "model/"}},
    ]


def _step_yaml(step: Mapping[str, Any]) -> str:
    lines: list[str] = []
    for key, value in step.items():
        prefix = "      - " if not lines else "        "
        if isinstance(value, Mapping):
            lines.append(f"{prefix}{key}:")
            lines += [f'          {k}: "{v}"' for k, v in value.items()]
        else:
            lines.append(f"{prefix}{key}: {value}")
    return "\n".join(lines)


def workflow_yaml(name: str = "train", branch: str = "main") -> str:
    """Return the YAML text of the training workflow (see :func:`workflow_steps`).

    The tracking server's address comes from a repository secret, ``MLFLOW_TRACKING_URI``;
    a run of the workflow elsewhere supplies it as an environment variable.
    """
    check_identifier("name", name, _NAME, "letters, digits, '-' or '_'")
    check_identifier("branch", branch, r"[A-Za-z0-9][A-Za-z0-9._/-]*",
                     "letters, digits, '.', '_', '-' or '/'")
    steps = "\n".join(_step_yaml(step) for step in workflow_steps())
    return f"""\
# Train Lumen's churn model on every change: test the data, train, test the model.
# Written by companion.cicd.workflow_yaml; validated against the GitHub-workflow schema.
name: {name}

on:
  push:
    branches: [{branch}]
  pull_request:
  workflow_dispatch:

permissions:
  contents: read

jobs:
  train:
    runs-on: ubuntu-latest
    timeout-minutes: 30
    env:
      MLFLOW_TRACKING_URI: ${{{{ secrets.MLFLOW_TRACKING_URI }}}}
    steps:
{steps}
"""


def write_workflow(repo_dir: str | os.PathLike[str], text: str, name: str = "train") -> Path:
    """Write ``text`` to ``repo_dir/.github/workflows/<name>.yml`` atomically; return the path."""
    folder = check_path("repo_dir", repo_dir)
    if not folder.is_dir():
        raise InvalidParameterError(f"repo_dir {str(folder)!r} is not a folder")
    check_text("text", text)
    check_identifier("name", name, _NAME, "letters, digits, '-' or '_'")
    path = folder / ".github" / "workflows" / f"{name}.yml"
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, text)
    return path


def _text_of(source: Any) -> str:
    if isinstance(source, Path):
        if not source.is_file():
            raise InvalidParameterError(f"no workflow file at {str(source)!r}")
        return source.read_text(encoding="utf-8")
    if isinstance(source, str):
        return check_text("workflow", source)
    raise InvalidParameterError(
        f"workflow must be YAML text (str) or a file (pathlib.Path), got {type(source).__name__}"
    )


def load_workflow(source: str | Path) -> dict[str, Any]:
    """Read a workflow (YAML text, or a :class:`~pathlib.Path` to a file) as YAML 1.2.

    Raises:
        InvalidParameterError: not YAML, or not a mapping at the top.

    Example:
        >>> sorted(load_workflow("on: push\\njobs: {}\\n"))
        ['jobs', 'on']
    """
    from ruamel.yaml import YAML
    from ruamel.yaml.error import YAMLError

    text = _text_of(source)
    try:
        data = YAML(typ="safe", pure=True).load(io.StringIO(text))
    except YAMLError as error:
        raise InvalidParameterError(f"workflow is not valid YAML: {error}") from None
    if not isinstance(data, dict):
        raise InvalidParameterError(
            f"a workflow must be a YAML mapping at the top, got {type(data).__name__}"
        )
    return data


@dataclass(frozen=True)
class WorkflowCheck:
    """The result of validating a workflow against the GitHub-workflow schema.

    Attributes:
        valid: no error.
        errors: one line per error, ``$.path: what was expected``, sorted by path.
        schema: the schema's name and the check-jsonschema version that ships it.
    """

    valid: bool
    errors: tuple[str, ...]
    schema: str

    def __str__(self) -> str:
        if self.valid:
            return f"valid against {self.schema}"
        return "\n".join([f"refused by {self.schema}:", *(f"  {e}" for e in self.errors)])


def _validator() -> Any:
    from check_jsonschema.formats import FormatOptions
    from check_jsonschema.regex_variants import RegexImplementation, RegexVariantName
    from check_jsonschema.schema_loader import BuiltinSchemaLoader

    regex = RegexImplementation(RegexVariantName.default)
    return BuiltinSchemaLoader(WORKFLOW_SCHEMA).get_validator(
        "workflow.yml", {}, FormatOptions(regex_impl=regex), regex, False
    )


def _messages(errors: Sequence[Any]) -> list[str]:
    import jsonschema

    lines = []
    for error in errors:
        best = jsonschema.exceptions.best_match(error.context) if error.context else error
        lines.append(f"{best.json_path}: {best.message}")
    return sorted(dict.fromkeys(lines))


def validate_workflow(source: str | Path) -> WorkflowCheck:
    """Validate a workflow (text or file) offline with check-jsonschema's bundled schema."""
    import importlib.metadata

    version = importlib.metadata.version("check-jsonschema")
    schema = f"{WORKFLOW_SCHEMA} (check-jsonschema {version})"
    try:
        data = load_workflow(source)
    except InvalidParameterError as error:
        if isinstance(source, Path) and not source.is_file():
            raise
        return WorkflowCheck(False, (str(error),), schema)
    errors = list(_validator().iter_errors(data))
    check = WorkflowCheck(not errors, tuple(_messages(errors)), schema)
    logger.info("workflow %s", "valid" if check.valid else f"refused: {check.errors}")
    return check
