"""The workspace prerequisite ``"features"``: Lumen's Feast repo applied and materialised.

A workspace builds it with :func:`build_features` (``companion.features.build_features``)
the first time a chapter calls ``workspace.require("features")``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from companion.core.types import WorkspaceLike, check_workspace
from companion.features.repo import apply_feature_repo
from companion.features.serving import materialize
from companion.features.tables import history_start

if TYPE_CHECKING:
    from feast import FeatureStore


def build_features(workspace: WorkspaceLike) -> FeatureStore:
    """Apply Lumen's Feast repo in the workspace and materialise its whole history.

    The prerequisite ``"features"``: the dataset is simulated (``"data"``), the feature tables
    written into ``workspace.feast_dir``, the definitions applied, and every online view
    materialised from the oldest sign-up to the end of the simulated window.
    """
    check_workspace(workspace)
    dataset = workspace.require("data")
    _, store = apply_feature_repo(workspace.feast_dir, dataset)
    materialize(store, history_start(dataset), dataset.config.end_timestamp)
    return store
