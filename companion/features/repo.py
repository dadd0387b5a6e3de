"""Lumen's Feast repo: where it lives, its definitions, and applying them to a feature store.

The store runs on the local machine: Parquet sources, the DuckDB offline store (Feast's file
store is available to show how it drops rows past the TTL), a SQLite online store, and no
YAML (a ``RepoConfig`` built in code). :func:`quiet_feast` keeps Feast's progress output and
logs out of a chapter.
"""

from __future__ import annotations

import contextlib
import functools
import io
import logging
import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from companion.core.checks import check_choice
from companion.core.env import quiet
from companion.core.files import atomic_write
from companion.data import ChurnDataset, check_dataset
from companion.errors import InvalidParameterError, UnknownNameError
from companion.features.tables import activity_feature_table, profile_feature_table
from companion.features.versions import (
    ACTIVITY_SOURCE_FILE,
    ACTIVITY_TTL,
    CREATED_TIMESTAMP,
    ENTITY_KEY,
    EVENT_TIMESTAMP,
    FEATURE_VERSIONS,
    OFFLINE_STORES,
    PROFILE_SOURCE_FILE,
    PROFILE_VIEW,
    PROJECT,
)
from companion.training import CATEGORICAL_FEATURES

if TYPE_CHECKING:
    from feast import FeatureStore

logger = logging.getLogger(__name__)

FEAST_LOGGERS = ("feast", "ibis", "duckdb", "pyarrow")
"""The loggers Feast's calls speak through: Feast itself and the engines it drives."""


def quiet_feast() -> contextlib.AbstractContextManager[io.StringIO]:
    """Keep Feast's progress prints, logs and warnings out of stdout and stderr for a block.

    :func:`companion.core.env.quiet` over :data:`FEAST_LOGGERS`, with printed output captured.
    """
    return quiet(*FEAST_LOGGERS, capture_output=True)


@dataclass(frozen=True)
class FeatureRepo:
    """Where a Feast repo lives and what it was built from.

    Attributes:
        path: the repo folder; the registry, the online store and the source files
            (``data/``) live inside it.
    """

    path: Path

    def __post_init__(self) -> None:
        if isinstance(self.path, bool) or not isinstance(self.path, (str, os.PathLike)) \
                or not str(self.path):
            raise InvalidParameterError(
                f"a feature repo's path must be a folder path (str or Path), got {self.path!r}"
            )
        object.__setattr__(self, "path", Path(self.path))

    @property
    def registry(self) -> Path:
        """The Feast registry file."""
        return self.path / "registry.db"

    @property
    def online_store(self) -> Path:
        """The SQLite online store."""
        return self.path / "online_store.db"

    @property
    def activity_source(self) -> Path:
        """The weekly activity feature table (Parquet) the activity views read."""
        return self.path / "data" / ACTIVITY_SOURCE_FILE

    @property
    def profile_source(self) -> Path:
        """The customer profile feature table (Parquet)."""
        return self.path / "data" / PROFILE_SOURCE_FILE


def repo_config(repo: FeatureRepo | str | os.PathLike[str], offline_store: str = "duckdb") -> Any:
    """Return the Feast ``RepoConfig`` of ``repo``: local provider, SQLite online store.

    Args:
        repo: the repo folder (or a :class:`FeatureRepo`).
        offline_store: ``"duckdb"`` (keeps entity rows past the TTL, with nulls) or ``"file"``
            (Feast's pandas/dask store, which drops them).
    """
    from feast.repo_config import RepoConfig

    check_choice("offline store", offline_store, OFFLINE_STORES)
    repo = _as_repo(repo)
    return RepoConfig(
        project=PROJECT,
        provider="local",
        registry=str(repo.registry),
        online_store={"type": "sqlite", "path": str(repo.online_store)},
        offline_store={"type": offline_store},
        entity_key_serialization_version=3,
        repo_path=str(repo.path),
    )


def feature_store(
    repo: FeatureRepo | str | os.PathLike[str], offline_store: str = "duckdb"
) -> FeatureStore:
    """Open the Feast ``FeatureStore`` of ``repo`` with the given offline store."""
    from feast import FeatureStore

    config = repo_config(repo, offline_store)
    with quiet_feast():
        return FeatureStore(config=config)


def feature_definitions(repo: FeatureRepo | str | os.PathLike[str]) -> dict[str, Any]:
    """Return Lumen's Feast objects by name: entity, sources, feature views, feature services.

    ``customer_activity_v1`` and ``customer_activity_v2`` read the same weekly source with a
    TTL of :data:`ACTIVITY_TTL`; ``customer_profile`` never expires. Each feature service
    (``churn_model_v1``, ``churn_model_v2``) names the exact features one model version reads.
    """
    from feast import Entity, FeatureService, FeatureView, Field, FileSource, ValueType
    from feast.types import Float64, String

    repo = _as_repo(repo)
    customer = Entity(
        name="customer", join_keys=[ENTITY_KEY], value_type=ValueType.INT64,
        description="A Lumen subscriber.",
    )
    activity = FileSource(
        name="customer_activity_weekly", path=str(repo.activity_source),
        timestamp_field=EVENT_TIMESTAMP, created_timestamp_column=CREATED_TIMESTAMP,
    )
    profile = FileSource(
        name="customer_profile_source", path=str(repo.profile_source),
        timestamp_field=EVENT_TIMESTAMP,
    )
    objects: dict[str, Any] = {"customer": customer, activity.name: activity, profile.name: profile}
    profile_view = FeatureView(
        name=PROFILE_VIEW, entities=[customer], ttl=timedelta(0), source=profile, online=True,
        schema=[Field(name="monthly_fee", dtype=Float64)]
        + [Field(name=c, dtype=String) for c in CATEGORICAL_FEATURES],
        description="Plan, fee and profile; a row at sign-up and at each price change.",
    )
    objects[PROFILE_VIEW] = profile_view
    for version, spec in FEATURE_VERSIONS.items():
        view = FeatureView(
            name=spec["view"], entities=[customer], ttl=ACTIVITY_TTL, source=activity,
            online=True, schema=[Field(name=c, dtype=Float64) for c in spec["activity"]],
            tags={"version": version}, description=f"Weekly activity aggregates, {version}.",
        )
        objects[view.name] = view
        objects[spec["service"]] = FeatureService(
            name=spec["service"], features=[view, profile_view], tags={"version": version},
            description=f"The features churn model {version} reads.",
        )
    return objects


def definition_signature(definition: Any) -> dict[str, Any]:
    """Return what a Feast definition declares, as plain values that compare with ``==``.

    For an ``Entity``: its join key and value type; a ``FileSource``: its file, timestamp
    and created-timestamp columns; a ``FeatureView``: its entities, source, TTL (seconds),
    features with their types, and whether it is online; a ``FeatureService``: the features
    of each view it serves. Two definitions with equal signatures register the same thing.
    """
    from feast import Entity, FeatureService, FeatureView, FileSource

    if isinstance(definition, Entity):
        return {"kind": "entity", "name": definition.name,
                "join_key": definition.join_key,
                "value_type": str(definition.value_type)}
    if isinstance(definition, FileSource):
        return {"kind": "source", "name": definition.name, "path": str(definition.path),
                "timestamp": definition.timestamp_field,
                "created": definition.created_timestamp_column or None}
    if isinstance(definition, FeatureView):
        ttl = definition.ttl or timedelta(0)
        return {"kind": "feature view", "name": definition.name,
                "entities": sorted(definition.entities),
                "source": definition.batch_source.name if definition.batch_source else None,
                "ttl_seconds": int(ttl.total_seconds()),
                "features": [(f.name, str(f.dtype)) for f in definition.features],
                "online": bool(definition.online)}
    if isinstance(definition, FeatureService):
        return {"kind": "feature service", "name": definition.name,
                "features": [(p.name, [f.name for f in p.features])
                             for p in definition.feature_view_projections]}
    raise InvalidParameterError(
        "definition must be a Feast Entity, FileSource, FeatureView or FeatureService, "
        f"got {type(definition).__name__}"
    )


def compare_definitions(
    mine: Sequence[Any], repo: FeatureRepo | str | os.PathLike[str]
) -> pd.DataFrame:
    """Compare Feast definitions written by hand with :func:`feature_definitions`'s.

    Returns one row per definition in ``mine``: its kind, TTL in days (views), number of
    features, and how many declared fields differ from the companion's definition of the same
    name (0: it registers exactly the same thing).
    """
    if isinstance(mine, (str, bytes)) or not isinstance(mine, Sequence) or not mine:
        raise InvalidParameterError(
            f"mine must be a non-empty list of Feast definitions, got {mine!r}"
        )
    signatures = [definition_signature(d) for d in mine]
    names = [s["name"] for s in signatures]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise InvalidParameterError(f"definitions repeat the name(s) {repeated}")
    reference = feature_definitions(repo)
    unknown = [n for n in names if n not in reference]
    if unknown:
        raise UnknownNameError(
            f"definition(s) {unknown} are not among the companion's; known: "
            f"{', '.join(sorted(reference))}"
        )
    rows = []
    for signature in signatures:
        theirs = definition_signature(reference[signature["name"]])
        differ = sum(signature.get(k) != theirs.get(k) for k in set(signature) | set(theirs))
        rows.append({"definition": signature["name"], "kind": signature["kind"],
                     "ttl (days)": (signature["ttl_seconds"] // 86400
                                    if "ttl_seconds" in signature else None),
                     "features": (sum(len(f) for _, f in signature["features"])
                                  if signature["kind"] == "feature service"
                                  else len(signature.get("features", []))),
                     "fields differing": int(differ)})
    table = pd.DataFrame(rows).set_index("definition")
    table["ttl (days)"] = table["ttl (days)"].astype("Int64")
    return table


def apply_feature_repo(
    repo_dir: str | os.PathLike[str],
    dataset: ChurnDataset,
    until: pd.Timestamp | str | None = None,
) -> tuple[FeatureRepo, FeatureStore]:
    """Write the feature tables into ``repo_dir/data`` and apply the definitions to Feast.

    ``until`` limits the weekly activity source to the weeks stamped up to then (a chapter
    that only serves its first months need not load the rest); the profile source is always
    whole. The source files are written to a temporary name, then moved into place, so a
    failure leaves no half-written source behind. Returns the repo and its (DuckDB) store.
    """
    check_dataset(dataset)
    repo = _as_repo(repo_dir)
    if repo.path.exists() and not repo.path.is_dir():
        raise InvalidParameterError(
            f"repo_dir {str(repo_dir)!r} is a file; a feature repo needs a folder"
        )
    weekly = activity_feature_table(dataset, until=until)
    profile = profile_feature_table(dataset)
    created = [p for p in (repo.path, repo.path / "data") if not p.exists()]
    try:
        for frame, path in ((weekly, repo.activity_source), (profile, repo.profile_source)):
            atomic_write(path, functools.partial(_to_parquet, frame))
        store = feature_store(repo)
        with quiet_feast():
            store.apply(list(feature_definitions(repo).values()))
    except BaseException:
        if created:  # the folders this call made go; a repo that was there stays
            shutil.rmtree(created[0], ignore_errors=True)
        raise
    return repo, store


def _to_parquet(frame: pd.DataFrame, path: Path) -> None:
    frame.to_parquet(path, index=False)


def _as_repo(repo: FeatureRepo | str | os.PathLike[str]) -> FeatureRepo:
    if isinstance(repo, FeatureRepo):
        return repo
    if isinstance(repo, bool) or not isinstance(repo, (str, os.PathLike)) or not str(repo):
        raise InvalidParameterError(
            f"repo must be a folder path (str or Path) or a FeatureRepo, got {repo!r}"
        )
    return FeatureRepo(Path(repo).resolve())
