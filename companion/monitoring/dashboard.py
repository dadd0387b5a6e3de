"""A monitoring dashboard: an Evidently local workspace, one project, one snapshot per month.

:func:`build_dashboard` creates an Evidently workspace (``evidently.ui.workspace.Workspace``)
inside a folder the caller gives, adds one project, one snapshot per monitored month (each
stamped with its month, so the panels plot them in time order) and dashboard panels: the drift
score of every watched column and of the model's scores, and the number of drifted columns.
Each month's HTML report is saved beside it (``reports/drift-YYYY-MM.html``): about 3.7 MB
with random ids, a file to open, never a notebook output.

:func:`serve_dashboard` runs ``evidently ui`` on a free loopback port through
:class:`companion.core.process.ServerProcess` (one OpenMP thread, log file in the folder),
checks over HTTP that it answers and lists the project, and stops it when the block ends.
"""

from __future__ import annotations

import contextlib
import json
import logging
import sys
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from companion.core.checks import check_path, check_text
from companion.core.env import quiet
from companion.core.files import atomic_write
from companion.core.process import ServerProcess, free_port
from companion.errors import InvalidParameterError, ServerError
from companion.monitoring.drift import SCORE_COLUMN, DriftPass

__all__ = ["DEFAULT_PROJECT", "Dashboard", "build_dashboard", "serve_dashboard"]

logger = logging.getLogger(__name__)

DEFAULT_PROJECT = "churn model monitoring"
UI_ENV = {"OMP_NUM_THREADS": "1", "DO_NOT_TRACK": "1"}


@dataclass(frozen=True)
class Dashboard:
    """A built dashboard: where it is and what it holds (all deterministic but the ids).

    Attributes:
        folder: the Evidently workspace folder.
        project: the project's name.
        project_id: the project's id (random: never print it).
        snapshots: the month labels of the snapshots added, in order.
        panels: the panel titles.
        reports: the saved HTML reports, per month label.
    """

    folder: Path
    project: str
    project_id: str
    snapshots: tuple[str, ...]
    panels: tuple[str, ...]
    reports: dict[str, Path]


def _panels(result: DriftPass) -> list[Any]:
    from evidently.sdk.models import PanelMetric
    from evidently.sdk.panels import counter_panel, line_plot_panel

    columns = list(result.policy.columns)
    drifts = [PanelMetric(legend=c, metric="ValueDrift", metric_labels={"column": c})
              for c in columns]
    panels = [
        counter_panel(title="Drifted columns (policy)",
                      values=[PanelMetric(legend="count", metric="DriftedColumnsCount",
                                          metric_labels={"value_type": "count"})],
                      size="half"),
        line_plot_panel(title="Input drift score per column", values=drifts),
    ]
    if all(r.prediction_score is not None for r in result.readings):
        panels.append(line_plot_panel(
            title="Prediction drift (PSI of the scores)",
            values=[PanelMetric(legend=SCORE_COLUMN, metric="ValueDrift",
                                metric_labels={"column": SCORE_COLUMN})],
            size="half",
        ))
    return panels


def build_dashboard(
    folder: str | Path, result: DriftPass, *, project: str = DEFAULT_PROJECT
) -> Dashboard:
    """Write an Evidently workspace with one project holding ``result``'s monthly snapshots.

    Args:
        folder: an empty or missing folder that becomes the workspace.
        result: a :func:`~companion.monitoring.drift.drift_pass` result (its snapshots).
        project: the project's name.
    """
    target = check_path("folder", folder)
    check_text("project", project)
    if not isinstance(result, DriftPass):
        raise InvalidParameterError(f"result must be a DriftPass, got {type(result).__name__}")
    if not result.snapshots:
        raise InvalidParameterError("result holds no snapshots: run drift_pass first")
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise InvalidParameterError(
            f"folder {target.name!r} must be empty or missing: the dashboard is written whole"
        )
    from evidently.ui.workspace import Workspace

    with quiet("evidently"):
        workspace = Workspace.create(str(target))
        created = workspace.create_project(project, description="Monthly drift against the "
                                           f"reference month {result.reference.date()}")
        panels = _panels(result)
        for panel in panels:
            created.dashboard.add_panel(panel, tab="Drift")
        reports: dict[str, Path] = {}
        for month, snapshot in result.snapshots.items():
            workspace.add_run(created.id, snapshot, name=f"drift {month}")
            path = target / "reports" / f"drift-{month}.html"
            _save_html(path, snapshot)
            reports[month] = path
    logger.info("dashboard with %d snapshots in %s", len(reports), target)
    return Dashboard(target, project, str(created.id), tuple(result.snapshots),
                     tuple(p.title for p in panels), reports)


def _save_html(path: Path, snapshot: Any) -> None:
    def write(tmp: Path) -> None:
        snapshot.save_html(str(tmp))

    atomic_write(path, write)


def _get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 - loopback only
        return json.loads(response.read().decode("utf-8"))


@contextlib.contextmanager
def serve_dashboard(
    dashboard: Dashboard, *, startup_timeout: float = 60.0
) -> Iterator[ServerProcess]:
    """Run ``evidently ui`` on the dashboard's workspace, on loopback, for the block.

    On start, ``/api/projects`` must list the dashboard's project, else
    :class:`~companion.errors.ServerError` is raised (and the server stopped). The log is
    ``evidently-ui.log`` in the workspace folder. The server and its children are stopped when
    the block ends, error or not.
    """
    if not isinstance(dashboard, Dashboard):
        raise InvalidParameterError(
            f"dashboard must be a Dashboard, got {type(dashboard).__name__}"
        )
    if not dashboard.folder.is_dir():
        raise InvalidParameterError(f"no dashboard workspace at {dashboard.folder.name!r}")
    port = free_port()
    command = [sys.executable, "-m", "evidently.cli", "ui", "--workspace", str(dashboard.folder),
               "--host", "127.0.0.1", "--port", str(port)]
    server = ServerProcess(command, port=port, log_path=dashboard.folder / "evidently-ui.log",
                           health_path="/api/version", env=UI_ENV, cwd=dashboard.folder,
                           startup_timeout=startup_timeout, name="evidently ui")
    with server:
        projects = _get_json(server.url + "/api/projects")
        names = [p.get("name") for p in projects] if isinstance(projects, list) else []
        if dashboard.project not in names:
            raise ServerError(
                f"evidently ui answers but lists projects {names}, not {dashboard.project!r}"
            )
        yield server
