"""MLflow behind a shared server: the command line of a team's tracking server, checked offline.

A laptop's SQLite store serves one person; a team shares one ``mlflow server`` whose runs and
registry live in a database (PostgreSQL, MySQL, SQL Server) and whose artifacts live in an
object store (``s3://``, ``wasbs://``, ``gs://``, ``abfss://``), proxied by the server so
clients need no storage credentials (``--artifacts-destination`` with ``--serve-artifacts``).

:func:`shared_server` builds that command line and checks it with MLflow's own code, without
starting anything or reaching any host:

- the backend URI with ``mlflow.utils.uri.extract_db_type_from_uri`` (the parser the server
  runs at start-up: ``postgres://`` is refused, ``postgresql://`` accepted);
- the artifact destination's scheme against MLflow's artifact repository registry;
- the whole argv with the ``mlflow server`` click command's own parser (``make_context``),
  which refuses an unknown option or a bad value as the real command would.

Secrets never go in the command: a password in the backend URI is refused; the server reads it
from the environment (``PGPASSWORD``, or the storage SDK's variables), which a Kubernetes
Deployment fills from a Secret (:func:`~companion.deployment.tracking_server_manifests`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from companion.core.checks import check_int, check_text
from companion.core.env import quiet
from companion.errors import InvalidParameterError

__all__ = ["OBJECT_STORE_SCHEMES", "SharedServer", "shared_server"]

OBJECT_STORE_SCHEMES = ("s3", "wasbs", "gs", "abfss")
"""Artifact destinations a shared server may proxy: object stores every pod can reach."""


@dataclass(frozen=True)
class SharedServer:
    """An ``mlflow server`` for a team, as parsed back by MLflow.

    Attributes:
        command: the argv (``mlflow server --backend-store-uri ...``).
        database: the backend's database engine (``postgresql``, ``mysql``, ``mssql``).
        artifact_scheme: the object store's scheme (``s3``, ``wasbs``, ...).
        port: the port the server listens on.
        parsed: the options as ``mlflow server``'s own parser read them (non-default ones).
    """

    command: list[str]
    database: str
    artifact_scheme: str
    port: int
    parsed: dict[str, Any]


def shared_server(
    backend_store_uri: str,
    artifacts_destination: str,
    *,
    host: str = "0.0.0.0",
    port: int = 5000,
    workers: int = 4,
) -> SharedServer:
    """Build the command line of a shared tracking server and check it with MLflow's parsers.

    Args:
        backend_store_uri: the runs and registry database, e.g.
            ``postgresql://mlflow@postgres:5432/mlflow`` (no password: it comes from the
            environment).
        artifacts_destination: the object-store folder of the artifacts, e.g.
            ``s3://lumen-mlflow/artifacts``.
        host: the address the server binds (``0.0.0.0`` inside a pod).
        port: the port it listens on.
        workers: the server's worker processes.

    Returns:
        The :class:`SharedServer`, never started.

    Raises:
        InvalidParameterError: a SQLite or file backend (one machine only), an engine MLflow
            does not support, a password in the URI, an artifact destination that is not an
            object store, or an option MLflow's parser refuses.

    Example:
        >>> server = shared_server("postgresql://mlflow@db:5432/mlflow", "s3://bucket/mlflow")
        >>> server.database, server.artifact_scheme
        ('postgresql', 's3')
    """
    check_text("backend_store_uri", backend_store_uri)
    check_text("artifacts_destination", artifacts_destination)
    check_text("host", host)
    port = check_int("port", port, minimum=1, maximum=65535)
    workers = check_int("workers", workers, minimum=1, maximum=64)
    from mlflow.exceptions import MlflowException
    from mlflow.store.artifact.artifact_repository_registry import (
        _artifact_repository_registry,
    )
    from mlflow.utils.uri import extract_db_type_from_uri

    try:
        database = extract_db_type_from_uri(backend_store_uri)
    except MlflowException as exc:
        raise InvalidParameterError(
            f"backend_store_uri {backend_store_uri!r} is not a database MLflow accepts "
            f"({exc.message})"
        ) from None
    if database == "sqlite":
        raise InvalidParameterError(
            f"backend_store_uri {backend_store_uri!r} is SQLite, a file on one machine; a "
            "shared server needs postgresql://, mysql:// or mssql://"
        )
    if urlsplit(backend_store_uri).password:
        raise InvalidParameterError(
            "backend_store_uri must not hold a password (it would show in the process list "
            "and the manifests); give the user only and set the password in the environment"
        )
    scheme = urlsplit(artifacts_destination).scheme
    known = set(getattr(_artifact_repository_registry, "_registry", {}))
    if scheme not in OBJECT_STORE_SCHEMES or (known and scheme not in known):
        raise InvalidParameterError(
            f"artifacts_destination {artifacts_destination!r} must be an object store "
            f"URI with scheme {' / '.join(OBJECT_STORE_SCHEMES)}"
        )
    arguments = ["--backend-store-uri", backend_store_uri,
                 "--artifacts-destination", artifacts_destination, "--serve-artifacts",
                 "--host", host, "--port", str(port), "--workers", str(workers)]
    parsed = _parse(arguments)
    return SharedServer(["mlflow", "server", *arguments], database, scheme, port, parsed)


def _parse(arguments: list[str]) -> dict[str, Any]:
    import click
    from mlflow.cli import server

    with quiet("mlflow"):
        try:
            context = server.make_context("server", list(arguments))
        except click.ClickException as exc:
            raise InvalidParameterError(f"mlflow server refused the options: {exc.format_message()}"
                                        ) from None
    defaults = {p.name: p.default for p in server.params}
    return {k: v for k, v in context.params.items() if v is not None and v != defaults.get(k)}
