"""The workspace's DVC pipeline: its ``dvc.yaml``, its code dependencies, reproduce, its graph.

Three stages (validate, features, train) run ``python -m companion.versioning STAGE``
(:mod:`companion.versioning.stages`). Each lists as dependencies the source files of the
companion modules it runs (:data:`STAGE_CODE`; a package counts with every ``.py`` file in
its folder), so a change of code shows in ``dvc status`` and reruns exactly those stages.
The same files make the code version a training run records (:func:`code_version`, through
:func:`companion.core.provenance.code_version`).

:func:`reproduce` calls DVC's ``Repo.reproduce`` and returns the stages it ran;
:func:`pipeline_edges` and :func:`pipeline_mermaid` read the stage graph DVC builds
(``repo.index.graph``).
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import Any

from companion.core.files import atomic_write_text
from companion.core.provenance import PACKAGE_DIR, source_name
from companion.core.provenance import code_version as digest_files
from companion.errors import DvcError, InvalidParameterError, WorkspaceError
from companion.versioning.repo import (
    MANIFEST_PATH,
    RAW_DIR,
    DataRepo,
    check_repo,
    write_params,
)
from companion.versioning.stages import STAGE_ERROR_ENV

logger = logging.getLogger(__name__)

__all__ = [
    "CODE_MODULES",
    "STAGE_CODE",
    "code_files",
    "code_version",
    "package_root",
    "pipeline_code",
    "pipeline_edges",
    "pipeline_mermaid",
    "pipeline_spec",
    "reproduce",
    "stage_code_files",
    "write_pipeline",
]

STAGE_CODE = {
    "validate": ("errors", "core", "versioning"),
    "features": ("errors", "core", "versioning", "data", "training"),
    "train": ("errors", "core", "versioning", "training", "evaluation"),
}
"""The companion modules each pipeline stage runs (the ground, ``errors`` and ``core``, with
every stage); their files are its code dependencies."""
CODE_MODULES = ("core", "data", "errors", "evaluation", "training", "versioning")
"""Every module a model of this pipeline is built with (the code :func:`code_files` names)."""


def package_root() -> Path:
    """Return the folder that holds the imported ``companion`` package (its parent)."""
    return PACKAGE_DIR.parent


def _module_files(package: Path, module: str) -> list[Path]:
    """The source files of companion module ``module`` in ``package``: a file, or a folder's."""
    folder = package / module
    if (folder / "__init__.py").is_file():
        return sorted(p for p in folder.rglob("*.py") if "__pycache__" not in p.parts)
    single = folder.with_suffix(".py")
    return [single] if single.is_file() else []


def _check_code_root(code_root: Any) -> Path:
    if code_root is None:
        return package_root()
    if not isinstance(code_root, (str, os.PathLike)) or not str(code_root):
        raise InvalidParameterError(
            f"code_root must be a folder path, got {code_root!r}; accepted: the folder that "
            "holds the companion package"
        )
    root = Path(code_root).resolve()
    missing = [n for n in CODE_MODULES if not _module_files(root / "companion", n)]
    if missing:
        raise InvalidParameterError(
            f"code_root {str(code_root)!r} holds no companion package with {missing}; "
            f"accepted: a folder with the companion modules {list(CODE_MODULES)}"
        )
    return root


def stage_code_files(code_root: str | os.PathLike[str] | None = None) -> dict[str, list[Path]]:
    """Return each stage's code dependencies: the files of the modules it runs, in order.

    ``code_root`` is the folder holding the ``companion`` package (default: the imported
    one, :func:`package_root`).
    """
    package = _check_code_root(code_root) / "companion"
    return {
        stage: [f for module in modules for f in _module_files(package, module)]
        for stage, modules in STAGE_CODE.items()
    }


def code_files(code_root: str | os.PathLike[str] | None = None) -> list[Path]:
    """Return the companion source files a model is trained with, sorted by name.

    ``code_root`` is the folder holding the ``companion`` package (default: the imported
    one). Their bytes are the code version a training run records (:func:`code_version`),
    and each stage of the pipeline lists its own as dependencies.

    Raises:
        InvalidParameterError: ``code_root`` holds no ``companion`` package with these modules.
    """
    package = _check_code_root(code_root) / "companion"
    files = [f for module in CODE_MODULES for f in _module_files(package, module)]
    return sorted(files, key=source_name)


def code_version(code_root: str | os.PathLike[str] | None = None) -> dict[str, str]:
    """Return the code version of a training run: the SHA-256 of the modules' bytes.

    ``{"code.sha256": ..., "code.files": "data/__init__.py,..."}``, from
    :func:`companion.core.provenance.code_version` over :func:`code_files`. Any change to the
    code that builds features or trains the model changes it; nothing else does.
    """
    return digest_files(code_files(code_root))


def pipeline_spec(code: dict[str, list[str]]) -> dict[str, Any]:
    """Return the ``dvc.yaml`` of the workspace pipeline with each stage's code dependencies.

    ``code`` maps each stage to its code files as paths relative to the repo (POSIX
    separators). Each stage lists the data it reads, the parameters it uses and those files,
    so ``dvc status`` reports a stage as changed when any of them changes.
    """
    missing = sorted(set(STAGE_CODE) - set(code)) if isinstance(code, dict) else list(STAGE_CODE)
    if missing:
        raise InvalidParameterError(
            f"code must map every stage to its code files, missing {missing}; accepted: "
            f"a dict with {list(STAGE_CODE)}"
        )
    return {
        "stages": {
            "validate": {
                "cmd": "python -m companion.versioning validate --out reports/validation.json",
                "deps": [RAW_DIR, MANIFEST_PATH, *code["validate"]],
                "outs": [{"reports/validation.json": {"cache": False}}],
            },
            "features": {
                "cmd": "python -m companion.versioning features --out data/features.parquet",
                "deps": [RAW_DIR, "reports/validation.json", *code["features"]],
                "params": ["simulation"],
                "outs": ["data/features.parquet"],
            },
            "train": {
                "cmd": (
                    "python -m companion.versioning train --features data/features.parquet "
                    "--model models/churn_model.pkl --metrics metrics.json"
                ),
                "deps": ["data/features.parquet", *code["train"]],
                "params": ["train"],
                "outs": ["models/churn_model.pkl"],
                "metrics": [{"metrics.json": {"cache": False}}],
            },
        }
    }


def _relative(path: Path, start: Path) -> str:
    try:
        return Path(os.path.relpath(path, start)).as_posix()
    except ValueError:  # another drive (Windows): no relative path exists
        return path.as_posix()


def write_pipeline(
    repo: DataRepo,
    kind: str = "gbm",
    seed: int = 0,
    code_root: str | os.PathLike[str] | None = None,
) -> Path:
    """Write ``dvc.yaml`` and the ``train`` parameters into the repo; return the dvc.yaml path.

    The stages run the ``companion`` package found in ``code_root`` (default: the imported
    one) and list its source files as dependencies, by a path relative to the repo, so the
    committed pipeline is the same wherever the book sits as long as the workspace sits at
    the same place relative to the package (``build/`` beside ``companion/`` in the book).
    :func:`reproduce` runs the stages with that package first on the import path.
    """
    import yaml

    from companion.training import make_model

    check_repo(repo)
    make_model(kind, seed)  # validates kind and seed before anything is written
    files = stage_code_files(code_root)
    code = {stage: [_relative(f, repo.path) for f in fs] for stage, fs in files.items()}
    write_params(repo, {"train": {"kind": kind, "seed": seed}})
    path = repo.path / "dvc.yaml"
    atomic_write_text(path, yaml.safe_dump(pipeline_spec(code), sort_keys=False))
    return path


def pipeline_code(repo: DataRepo) -> dict[str, list[str]]:
    """Return each stage's code dependencies as ``dvc.yaml`` lists them (paths from the repo)."""
    import yaml

    check_repo(repo)
    path = repo.path / "dvc.yaml"
    if not path.exists():
        raise WorkspaceError("the data repo has no dvc.yaml; accepted: call write_pipeline first")
    stages = (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("stages", {})
    return {
        name: [d for d in stage.get("deps", []) if str(d).endswith(".py")]
        for name, stage in stages.items()
    }


def _code_root_of(repo: DataRepo) -> Path | None:
    """Return the folder holding the package the pipeline's code dependencies name."""
    for deps in pipeline_code(repo).values():
        for dep in deps:
            for folder in (repo.path / dep).resolve().parents:
                if folder.name == "companion":
                    return folder.parent
    return None


def reproduce(repo: DataRepo) -> list[str]:
    """Run the pipeline (``dvc repro``); return the stages that ran, in order.

    Stages already up to date are skipped. The stages run with this Python first on ``PATH``
    and, when ``dvc.yaml`` names a companion package as code, that package first on
    ``PYTHONPATH``: they run exactly the files ``dvc status`` watches.

    Raises:
        DvcError: a stage failed; the message holds the stage's own error and DVC's.
    """
    check_repo(repo)
    error_file = repo.path / ".dvc" / "tmp" / "stage-error.txt"
    run_env = {
        "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]),
        "DVC_NO_ANALYTICS": "1",
        STAGE_ERROR_ENV: str(error_file),
    }
    root = _code_root_of(repo) if (repo.path / "dvc.yaml").exists() else None
    if root is not None:
        run_env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(root), os.environ.get("PYTHONPATH", "")) if p
        )
    error_file.unlink(missing_ok=True)
    try:
        with repo.dvc() as dvc:
            ran = [stage.addressing for stage in dvc.reproduce(run_env=run_env)]
    except DvcError as error:
        cause = error.__cause__ or error
        reason = error_file.read_text(encoding="utf-8").strip() if error_file.exists() else ""
        raise DvcError(
            "dvc repro failed in the data repo: "
            + " | ".join(part for part in (reason, f"ERROR: {cause}") if part)
        ) from error
    finally:
        error_file.unlink(missing_ok=True)
    logger.info("dvc repro ran %s", ran or "nothing")
    return ran


def pipeline_edges(repo: DataRepo) -> set[tuple[str, str]]:
    """Return the pipeline's ``(upstream, downstream)`` edges from DVC's stage graph."""
    check_repo(repo)
    with repo.dvc() as dvc:
        graph = dvc.index.graph  # an edge runs from a stage to a stage it depends on
        return {(upstream.addressing, stage.addressing) for stage, upstream in graph.edges}


def pipeline_mermaid(repo: DataRepo) -> str:
    """Return the pipeline's lineage as a mermaid flowchart, as ``dvc dag --mermaid`` draws it.

    Built from DVC's stage graph: per connected pipeline, its stages sorted by name as
    ``nodeN["name"]``, then its edges sorted, upstream ``-->`` downstream.
    """
    from dvc.repo.graph import get_pipelines

    check_repo(repo)
    with repo.dvc() as dvc:
        pipelines = get_pipelines(dvc.index.graph)
        lines, count = ["flowchart TD"], 0
        for pipeline in pipelines:
            ids = {}
            for name in sorted(stage.addressing for stage in pipeline.nodes):
                count += 1
                ids[name] = f"node{count}"
                lines.append(f'\t{ids[name]}["{name}"]')
            edges = sorted((up.addressing, down.addressing) for down, up in pipeline.edges)
            lines.extend(f"\t{ids[up]}-->{ids[down]}" for up, down in edges)
    return "\n".join(lines)
