"""Workspaces: a fresh, isolated folder per chapter, and the prerequisites a chapter asks for.

A chapter never reads what another chapter wrote. It opens its own workspace (a folder under
``build/``), which holds its MLflow SQLite store and artifact root, its Feast repo, DVC repo,
data and reports, and asks for what it needs to start from::

    ws = Workspace.create("05-experiment-tracking", root="../build", config=SimulationConfig())
    dataset = ws.require("data")

Prerequisites are named steps (``"data"``, ``"experiment"``, ...) that build on each other;
each is built at most once per workspace. Nothing happens at import: folders, environment
variables and tracking URIs change only when these functions are called.
"""

from __future__ import annotations

import logging
import os
import random
import re
import shutil
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from companion.core.checks import check_int
from companion.core.env import NOISY_LOGGERS, apply_offline_env
from companion.data import ChurnDataset, SimulationConfig, generate, write_dataset
from companion.errors import InvalidParameterError, UnknownNameError, WorkspaceError

_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_-]*")

MARKER = ".companion-workspace"
"""File that marks a folder as a workspace, so only workspaces are ever wiped."""

INHERITED_MLFLOW = ("MLFLOW_TRACKING_URI", "MLFLOW_EXPERIMENT_ID", "MLFLOW_EXPERIMENT_NAME")
"""Variables a chapter must not inherit: it tracks to its own workspace's store."""


def setup_notebook(seed: int = 0) -> None:
    """Prepare a chapter's kernel: offline and telemetry off, seeds set, quiet logs, stable display.

    Every chapter calls this first, from a hidden cell, so that all of them start alike. An
    MLflow tracking URI or experiment inherited from the shell is dropped: each chapter
    tracks to its own workspace.

    This is the one deliberately global set-up of the package: it changes the process's
    environment, random seeds, logging levels, warning filters and display options, which is
    what a notebook kernel wants and what a library user calling the other functions never gets.
    """
    check_int("seed", seed, minimum=0)
    if seed > 2**32 - 1:
        raise InvalidParameterError(f"seed must be <= 2**32 - 1 (NumPy's legacy seed), got {seed}")
    import matplotlib
    import numpy as np
    import pandas as pd

    apply_offline_env()
    for name in INHERITED_MLFLOW:
        os.environ.pop(name, None)
    random.seed(seed)
    np.random.seed(seed)
    for name in NOISY_LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)
    # Library deprecation chatter is noise to a reader, and it would make outputs unstable.
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", category=UserWarning)
    pd.set_option("display.width", 110)
    pd.set_option("display.max_columns", 20)
    pd.set_option("display.precision", 4)
    matplotlib.rcParams.update(
        {
            "figure.figsize": (7.5, 3.6),
            "figure.dpi": 96,
            "axes.spines.top": False,
            "axes.spines.right": False,
            "svg.hashsalt": "mlops-level-by-level",
        }
    )


@dataclass(frozen=True)
class Prerequisite:
    """A named step a chapter can ask for.

    Attributes:
        name: what chapters call it by, e.g. ``"data"``.
        builder: the function that builds it: takes the workspace, returns the value.
        requires: prerequisites built first.
        description: one line for readers.
    """

    name: str
    builder: Callable[[Workspace], Any]
    requires: tuple[str, ...] = ()
    description: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not _NAME.fullmatch(self.name):
            raise InvalidParameterError(
                f"prerequisite name must be letters, digits, '-' or '_' (starting with a "
                f"letter), got {self.name!r}"
            )
        if not callable(self.builder):
            raise InvalidParameterError(
                f"builder must be a function taking the workspace, got {self.builder!r}"
            )
        if isinstance(self.requires, str) or not isinstance(self.requires, (tuple, list)):
            raise InvalidParameterError(
                f"requires must be a tuple of prerequisite names, got {self.requires!r}"
            )
        for requirement in self.requires:
            if not isinstance(requirement, str):
                raise InvalidParameterError(
                    f"requires must hold prerequisite names (str), got {requirement!r}"
                )
        if len(set(self.requires)) != len(self.requires) or self.name in self.requires:
            raise InvalidParameterError(
                f"requires must name distinct prerequisites other than {self.name!r}, got "
                f"{list(self.requires)}"
            )
        object.__setattr__(self, "requires", tuple(self.requires))
        if not isinstance(self.description, str):
            raise InvalidParameterError(
                f"description must be a str, got {type(self.description).__name__}"
            )


PREREQUISITES: dict[str, Prerequisite] = {}
"""Every prerequisite a chapter may ask for, by name. Later stages add theirs here."""


def register_prerequisite(prerequisite: Prerequisite) -> None:
    """Add ``prerequisite`` to :data:`PREREQUISITES`, checking its requirements exist.

    Registering the same definition again does nothing; another definition under a name that
    is already taken is refused.
    """
    if not isinstance(prerequisite, Prerequisite):
        raise InvalidParameterError(
            f"expected a Prerequisite, got {prerequisite!r} of type {type(prerequisite).__name__}"
        )
    existing = PREREQUISITES.get(prerequisite.name)
    if existing is not None:
        if existing == prerequisite:
            return
        raise InvalidParameterError(
            f"prerequisite {prerequisite.name!r} is already registered as {existing}; "
            "choose another name"
        )
    missing = [r for r in prerequisite.requires if r not in PREREQUISITES]
    if missing:
        raise UnknownNameError(
            f"prerequisite {prerequisite.name!r} requires unknown {missing}; "
            f"known: {sorted(PREREQUISITES)}"
        )
    PREREQUISITES[prerequisite.name] = prerequisite


class Workspace:
    """An isolated folder for one chapter, with the places its tools keep their state.

    Use :meth:`create` rather than the constructor: it makes the folder and its marker.
    """

    def __init__(self, path: Path, config: SimulationConfig) -> None:
        if not isinstance(path, (str, os.PathLike)) or not Path(path).is_dir():
            raise WorkspaceError(
                f"path must be an existing workspace folder (use Workspace.create), got {path!r}"
            )
        if not isinstance(config, SimulationConfig):
            raise InvalidParameterError(
                f"config must be a SimulationConfig, got {type(config).__name__}"
            )
        path = Path(path).resolve()
        if not (path / MARKER).exists():
            raise WorkspaceError(f"{path} is not a workspace (no {MARKER} file); use create()")
        self.path = path
        self.config = config
        self._built: dict[str, Any] = {}

    # ----------------------------------------------------------------------------- creation
    @classmethod
    def create(
        cls,
        name: str,
        root: str | os.PathLike[str] = "build",
        config: SimulationConfig | None = None,
        fresh: bool = True,
    ) -> Workspace:
        """Create (by default: wipe and recreate) the workspace ``root/name``.

        Args:
            name: the chapter's slug, e.g. ``"01-level-0-manual"``; letters, digits, ``-``, ``_``.
            root: folder that holds all workspaces.
            config: the simulated dataset this chapter works on (defaults if None).
            fresh: wipe an existing workspace of that name first. A folder that is not a
                workspace (no marker file) is never wiped: that raises instead.
        """
        if not isinstance(name, str) or not name or not all(c.isalnum() or c in "-_" for c in name):
            raise InvalidParameterError(
                f"workspace name must be non-empty letters, digits, '-' or '_', got {name!r}"
            )
        if name in (".", "..") or name.startswith("."):
            raise InvalidParameterError(f"workspace name must not start with '.', got {name!r}")
        if config is None:
            config = SimulationConfig()
        if not isinstance(config, SimulationConfig):
            raise InvalidParameterError(
                f"config must be a SimulationConfig, got {type(config).__name__}"
            )
        if isinstance(root, bytes) or not isinstance(root, (str, os.PathLike)) or str(root) == "":
            raise InvalidParameterError(
                f"root must be a folder path (str or os.PathLike), got {root!r}"
            )
        if not isinstance(fresh, bool):
            raise InvalidParameterError(f"fresh must be True or False, got {fresh!r}")
        root = Path(root).resolve()
        if root.exists() and not root.is_dir():
            raise WorkspaceError(f"root {root} exists and is not a folder; choose a folder")
        path = root / name
        if path.exists() and not path.is_dir():
            raise WorkspaceError(f"{path} exists and is a file, not a workspace; choose another")
        if path.exists():
            if not (path / MARKER).exists() and any(path.iterdir()):
                raise WorkspaceError(
                    f"{path} exists and is not a workspace (no {MARKER} file); "
                    "refusing to wipe it: choose another root or name"
                )
            if fresh:
                shutil.rmtree(path)
        path.mkdir(parents=True, exist_ok=True)
        (path / MARKER).write_text(f"workspace {name}\n", encoding="utf-8")
        return cls(path, config)

    # ----------------------------------------------------------------------------- places
    @property
    def name(self) -> str:
        return self.path.name

    def _dir(self, name: str) -> Path:
        folder = self.path / name
        folder.mkdir(exist_ok=True)
        return folder

    @property
    def data_dir(self) -> Path:
        """Where the simulated tables are written."""
        return self._dir("data")

    @property
    def mlflow_db(self) -> Path:
        """The MLflow SQLite store."""
        return self.path / "mlflow.db"

    @property
    def tracking_uri(self) -> str:
        """MLflow tracking URI of this workspace's SQLite store."""
        return f"sqlite:///{self.mlflow_db}"

    @property
    def artifact_root(self) -> Path:
        """Where MLflow keeps this workspace's artifacts."""
        return self._dir("mlartifacts")

    @property
    def feast_dir(self) -> Path:
        """Room for the Feast repo."""
        return self._dir("feature_repo")

    @property
    def dvc_dir(self) -> Path:
        """Room for the DVC (and git) repo."""
        return self._dir("dvc_repo")

    @property
    def reports_dir(self) -> Path:
        """Room for reports (Evidently HTML, JSON summaries)."""
        return self._dir("reports")

    def relative(self, path: str | os.PathLike[str]) -> str:
        """Return ``path`` relative to the workspace, for output that is the same everywhere.

        A path outside the workspace is returned as it is (absolute): do not print those.
        """
        if isinstance(path, bytes) or not isinstance(path, (str, os.PathLike)):
            raise InvalidParameterError(
                f"path must be a str or os.PathLike, got {path!r} of type {type(path).__name__}"
            )
        path = Path(path).resolve()
        try:
            return f"<workspace>/{path.relative_to(self.path).as_posix()}"
        except ValueError:
            return str(path)

    # ----------------------------------------------------------------------------- prerequisites
    def require(self, *names: str) -> Any:
        """Build the named prerequisites (and what they require) once; return their values.

        Returns the value of the single prerequisite asked for, or a tuple for several.
        """
        if not names:
            raise InvalidParameterError(
                f"require() needs at least one prerequisite; known: {sorted(PREREQUISITES)}"
            )
        for name in names:
            if not isinstance(name, str):
                raise InvalidParameterError(
                    f"prerequisite names must be str, got {name!r}; known: "
                    f"{sorted(PREREQUISITES)}"
                )
            if name not in PREREQUISITES:
                raise UnknownNameError(
                    f"unknown prerequisite {name!r}; known: {', '.join(sorted(PREREQUISITES))}"
                )
        values = tuple(self._build(name, ()) for name in names)
        return values[0] if len(values) == 1 else values

    def built(self) -> list[str]:
        """Return the prerequisites built so far, in the order they were built."""
        return list(self._built)

    def _build(self, name: str, chain: tuple[str, ...]) -> Any:
        if name not in PREREQUISITES:
            raise UnknownNameError(
                f"unknown prerequisite {name!r}; known: {', '.join(sorted(PREREQUISITES))}"
            )
        if name in chain:
            raise WorkspaceError(f"prerequisites form a cycle: {' -> '.join((*chain, name))}")
        if name not in self._built:
            prerequisite = PREREQUISITES[name]
            for requirement in prerequisite.requires:
                self._build(requirement, (*chain, name))
            self._built[name] = prerequisite.builder(self)
            return_free_memory()
        return self._built[name]

    def __repr__(self) -> str:
        return f"Workspace({self.name!r}, built={self.built()})"


def return_free_memory() -> None:
    """Give the memory a finished build no longer uses back to the operating system.

    Building a prerequisite (simulating, training, materialising features through Arrow)
    leaves freed memory that the allocators keep for later: Arrow's memory pool and the C
    library's heap. A chapter that goes on to start servers or Spark beside its kernel needs
    that memory back, so each build ends here. Unused cyclic garbage is collected first.
    """
    import ctypes
    import gc
    import sys

    gc.collect()
    pyarrow = sys.modules.get("pyarrow")
    if pyarrow is not None:
        pyarrow.default_memory_pool().release_unused()
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL("libc.so.6").malloc_trim(0)
        except (OSError, AttributeError):  # not glibc (e.g. musl): nothing to trim
            pass


# --------------------------------------------------------------------------- builders


def build_data(workspace: Workspace) -> ChurnDataset:
    """Simulate the workspace's dataset and write its tables to ``data/``."""
    dataset = generate(workspace.config)
    write_dataset(dataset, workspace.data_dir)
    return dataset


def build_experiment_store(workspace: Workspace) -> str:
    """Return the URI of the workspace's MLflow SQLite store (created on first use).

    Nothing global changes: MLflow is not pointed at the store. A chapter that uses MLflow's
    fluent API says so itself, visibly: ``mlflow.set_tracking_uri(ws.require("mlflow"))``.
    """
    workspace.artifact_root  # noqa: B018 - creates the folder
    return workspace.tracking_uri


def _build_features(workspace: Workspace) -> Any:
    from companion.features import build_features

    return build_features(workspace)


def _build_baseline(workspace: Workspace) -> Any:
    from companion.registry import build_baseline

    return build_baseline(workspace)


# The stages are imported when a prerequisite is built, not when a chapter imports this
# module: setup_notebook() must run before MLflow or Feast are imported (they read the
# environment it sets at import).
register_prerequisite(Prerequisite("data", build_data, (), "dataset simulated and written"))
register_prerequisite(
    Prerequisite("mlflow", build_experiment_store, (), "MLflow SQLite store ready")
)
register_prerequisite(
    Prerequisite(
        "baseline",
        _build_baseline,
        ("data", "mlflow"),
        "a first churn model registered and promoted through staging to production",
    )
)
register_prerequisite(
    Prerequisite(
        "features",
        _build_features,
        ("data",),
        "Feast repo applied in feature_repo/ and its history materialized online",
    )
)
