"""Interfaces the stages program against, so that none of them imports a layer above it.

A stage function that works inside a chapter's workspace takes a :class:`WorkspaceLike`:
:class:`companion.workspace.Workspace` is the implementation chapters use, and a project that
imports the companion can pass its own object with the same attributes.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from companion.errors import InvalidParameterError

if TYPE_CHECKING:  # pragma: no cover - annotations only
    import os

__all__ = ["WorkspaceLike", "check_workspace"]


@runtime_checkable
class WorkspaceLike(Protocol):
    """A folder holding one chapter's stores, and the prerequisites it can build.

    ``require("data")`` returns the simulated dataset, ``require("mlflow")`` the tracking URI
    of the workspace's MLflow store (without touching MLflow's process-wide settings),
    ``require("features")`` the Feast store, ``require("baseline")`` the first registered model.
    """

    @property
    def name(self) -> str: ...

    @property
    def path(self) -> Path: ...

    @property
    def config(self) -> Any: ...  # a companion.data.SimulationConfig (data is a layer above)

    @property
    def data_dir(self) -> Path: ...

    @property
    def tracking_uri(self) -> str: ...

    @property
    def artifact_root(self) -> Path: ...

    @property
    def feast_dir(self) -> Path: ...

    @property
    def dvc_dir(self) -> Path: ...

    @property
    def reports_dir(self) -> Path: ...

    def relative(self, path: str | os.PathLike[str]) -> str: ...

    def require(self, *names: str) -> Any: ...


def check_workspace(workspace: Any, name: str = "workspace") -> WorkspaceLike:
    """Return ``workspace`` if it has what stages read from one; raise naming it otherwise."""
    if not isinstance(workspace, WorkspaceLike):
        raise InvalidParameterError(
            f"{name} must be a workspace (companion.workspace.Workspace.create, or an object with "
            f"the attributes of companion.core.types.WorkspaceLike), got {type(workspace).__name__}"
        )
    return workspace
