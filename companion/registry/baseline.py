"""The prerequisite ``"baseline"``: Lumen's first churn model, registered and in production.

A chapter that needs a model in production (``workspace.require("baseline")``) gets it from
:func:`build_baseline`; :func:`register_baseline` does the work with a dataset and seed given.
"""

from __future__ import annotations

from datetime import datetime

from companion.core.checks import check_int
from companion.core.types import WorkspaceLike, check_workspace
from companion.data import ChurnDataset, check_dataset
from companion.errors import WorkspaceError
from companion.registry.candidates import RegisteredVersion
from companion.registry.moves import check_move
from companion.registry.names import MODEL_NAME, Clock, utc_now
from companion.registry.store import Registry

__all__ = ["build_baseline", "register_baseline"]

REASON = "baseline: first churn model"


def register_baseline(
    workspace: WorkspaceLike,
    dataset: ChurnDataset,
    *,
    seed: int = 0,
    name: str = MODEL_NAME,
    actor: str = "setup",
    clock: Clock = utc_now,
) -> RegisteredVersion:
    """Register Lumen's first churn model and take it through staging to production.

    A gradient-boosting model with model seed ``seed``, trained on the first monthly snapshot
    and gated on the second with the default :class:`~companion.registry.GatePolicy` (nothing
    is in production yet, so only the floor applies: the lower end of its ROC AUC interval
    must exceed 0.6). ``clock`` stamps the two audit lines.

    Raises:
        WorkspaceError: the dataset has fewer than 2 snapshots, or the model already has
            versions (the baseline is the first).
    """
    check_workspace(workspace)
    time = check_move(actor, REASON, name, clock)
    check_dataset(dataset)
    check_int("seed", seed, minimum=0)
    snapshots = dataset.snapshots
    if len(snapshots) < 2:
        raise WorkspaceError(
            f"the baseline needs at least 2 monthly snapshots, the dataset has {len(snapshots)}"
        )
    registry = Registry(workspace)
    if name in registry.registered_models():
        existing = [int(v.version) for v in registry.versions(name)]
        raise WorkspaceError(
            f"model {name!r} already has versions {existing}; the baseline must be its first"
        )
    baseline = registry.register_candidate(
        dataset, "gbm", [snapshots[0]], snapshots[1], name=name, seed=seed,
        note="First model of the registry (baseline).",
    )

    def stamp() -> datetime:  # both moves at one time
        return datetime.fromisoformat(time)

    registry.stage(dataset, baseline.version, actor=actor, name=name, reason=REASON, clock=stamp)
    registry.promote(baseline.version, actor=actor, name=name, reason=REASON, clock=stamp)
    return baseline


def build_baseline(workspace: WorkspaceLike) -> RegisteredVersion:
    """The prerequisite ``"baseline"``: :func:`register_baseline` with model seed 0."""
    check_workspace(workspace)
    return register_baseline(workspace, workspace.require("data"))
