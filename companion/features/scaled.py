"""Feast scaled out: a Spark offline store and a Redis online store, specified and validated.

The local feature store (:mod:`~companion.features.repo`) keeps its history in Parquet read by
DuckDB and its latest values in SQLite. When the history outgrows one machine, the offline
store moves to Spark (the same feature views, their sources as tables on a cluster) and the
online store to Redis (many serving pods reading at once). Only ``feature_store.yaml``
changes: the definitions and the calls (``get_historical_features``, ``materialize``,
``get_online_features``) stay.

:func:`scaled_store_config` writes that file and reads it back with Feast's own
``load_repo_config`` (its pydantic schema: project, provider, registry, and the offline store
as ``SparkOfflineStoreConfig``). No Spark session and no Redis server are started. Feast's Redis
config class imports the ``redis`` client when it loads (the book's environment has it, so Feast
validates the whole file); where that client is not installed the online section is checked
here instead (type, a ``host:port`` connection string, an optional key TTL) and the result says
which validation ran.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from companion.core.checks import check_identifier, check_int, check_path, check_text
from companion.core.files import atomic_write_text
from companion.errors import InvalidParameterError

__all__ = ["ScaledStore", "scaled_store_config"]

_HOST_PORT = re.compile(r"[A-Za-z0-9.-]+:[0-9]{1,5}")


@dataclass(frozen=True)
class ScaledStore:
    """A scaled-out ``feature_store.yaml``, read back by Feast.

    Attributes:
        path: the file.
        offline_store: the offline store's config class as Feast built it.
        online_store: ``"redis"``.
        online_validated_by: ``"feast"`` (Feast's ``RedisOnlineStoreConfig``) or
            ``"companion"`` (the ``redis`` client is missing, the section was checked here).
        spark_conf: the Spark settings the offline store will use.
    """

    path: Path
    offline_store: str
    online_store: str
    online_validated_by: str
    spark_conf: dict[str, str]


def _check_connection(connection_string: Any) -> str:
    text = check_text("redis_connection", connection_string)
    parts = text.split(",")
    if not all(_HOST_PORT.fullmatch(p) for p in parts if "=" not in p) or "=" in parts[0]:
        raise InvalidParameterError(
            f"redis_connection must be 'host:port' (then ',ssl=true' or other options), got "
            f"{connection_string!r}")
    if any("password=" in p for p in parts):
        raise InvalidParameterError("redis_connection must not hold a password; Feast reads it "
                                    "from the environment of the pods")
    return text


def scaled_store_config(
    folder: str | os.PathLike[str],
    *,
    project: str,
    registry: str,
    spark_conf: Mapping[str, str],
    redis_connection: str,
    key_ttl_seconds: int | None = None,
) -> ScaledStore:
    """Write ``<folder>/feature_store.yaml`` for Spark and Redis and validate it with Feast.

    Args:
        folder: the repo folder the file is written into.
        project: Feast's project name (letters, digits and underscores).
        registry: where the registry lives on the cluster (``s3://``, ``gs://``, ``wasbs://``
            or a ``postgresql://`` SQL registry), never a local path.
        spark_conf: Spark settings of the offline store, e.g. ``{"spark.master": ...}``.
        redis_connection: ``host:port`` of Redis (options after commas, no password).
        key_ttl_seconds: how long Redis keeps a customer's features (None: forever).

    Returns:
        The :class:`ScaledStore`.

    Raises:
        InvalidParameterError: a bad argument, or a file Feast refuses (the file is removed).
    """
    target = check_path("folder", folder)
    check_identifier("project", project, r"[A-Za-z0-9_]+", "letters, digits and '_'")
    check_text("registry", registry)
    if not registry.startswith(("s3://", "gs://", "wasbs://", "postgresql://")):
        raise InvalidParameterError(
            f"registry must be shared storage (s3://, gs://, wasbs:// or postgresql://), got "
            f"{registry!r}")
    if not isinstance(spark_conf, Mapping) or not spark_conf or not all(
            isinstance(k, str) and k.startswith("spark.") and isinstance(v, str)
            for k, v in spark_conf.items()):
        raise InvalidParameterError(
            "spark_conf must map 'spark.*' settings to strings, got " + repr(spark_conf))
    connection = _check_connection(redis_connection)
    online: dict[str, Any] = {"type": "redis", "connection_string": connection}
    if key_ttl_seconds is not None:
        online["key_ttl_seconds"] = check_int("key_ttl_seconds", key_ttl_seconds, minimum=1)
    document = {"project": project, "provider": "local", "registry": registry,
                "offline_store": {"type": "spark", "spark_conf": dict(spark_conf)},
                "online_store": online, "entity_key_serialization_version": 3}
    path = target / "feature_store.yaml"
    target.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, yaml.safe_dump(document, sort_keys=False))
    try:
        offline, validated_by = _validate(path, document)
    except InvalidParameterError:
        path.unlink(missing_ok=True)
        raise
    return ScaledStore(path, offline, "redis", validated_by, dict(spark_conf))


def _validate(path: Path, document: dict[str, Any]) -> tuple[str, str]:
    from feast.errors import FeastModuleImportError
    from feast.repo_config import get_online_config_from_type, load_repo_config
    from pydantic import ValidationError

    from companion.features.repo import quiet_feast

    with quiet_feast():
        try:
            redis_config: Any = get_online_config_from_type("redis")
        except FeastModuleImportError:
            redis_config = None
        try:
            if redis_config is not None:
                redis_config(**document["online_store"])
                config = load_repo_config(path.parent, path)
            else:  # the rest of the file through Feast, the Redis section checked above
                stand_in = path.parent / ".feature_store.offline-check.yaml"
                atomic_write_text(stand_in, yaml.safe_dump(
                    {**document, "online_store": {"type": "sqlite"}}, sort_keys=False))
                try:
                    config = load_repo_config(path.parent, stand_in)
                finally:
                    stand_in.unlink(missing_ok=True)
            offline = type(config.offline_store).__name__
        except (ValidationError, ValueError) as exc:
            raise InvalidParameterError(f"Feast refused {path.name}: {exc}") from None
    return offline, "feast" if redis_config is not None else "companion"
