"""Model records: which feature service and features a model was trained on, as JSON.

The record is what lets anyone serve the model later with the right features: the service
name is looked up in the Feast registry, never guessed.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from companion.core.checks import check_choice, check_identifier, check_path
from companion.core.files import atomic_write_text
from companion.errors import InvalidParameterError
from companion.features.versions import FEATURE_VERSIONS, RECORD_KEYS, version_columns

logger = logging.getLogger(__name__)


def record_model_version(
    directory: str | os.PathLike[str], name: str, version: str, details: dict[str, Any]
) -> Path:
    """Write ``directory/name.json``: which feature service and features a model was trained on.

    The record is what lets anyone serve the model later with the right features: the
    service name is looked up in the Feast registry, never guessed. ``details`` (training
    months, row counts, ...) are added beside the record's own keys (:data:`RECORD_KEYS`),
    never over them: a detail named like one of them is refused, as are non-text keys and
    values JSON cannot hold exactly (NaN, infinity).
    """
    spec = FEATURE_VERSIONS[check_choice("feature version", version, FEATURE_VERSIONS)]
    check_identifier("model name", name, r"[A-Za-z0-9_-]+", "ASCII letters, digits, '-' or '_'")
    directory = check_path("directory", directory)
    if directory.exists() and not directory.is_dir():
        raise InvalidParameterError(f"directory {str(directory)!r} is a file, not a folder")
    if not isinstance(details, Mapping):
        raise InvalidParameterError(
            f"details must be a dict of extra fields, got {type(details).__name__}"
        )
    bad_keys = [k for k in details if not isinstance(k, str) or not k]
    if bad_keys:
        raise InvalidParameterError(f"details keys must be non-empty strings, got {bad_keys!r}")
    taken = sorted(set(details) & set(RECORD_KEYS))
    if taken:
        raise InvalidParameterError(
            f"details may not overwrite the record's own key(s) {taken}; the record sets "
            f"{list(RECORD_KEYS)} itself: rename the detail"
        )
    record = {
        "model": name,
        "feature_version": version,
        "feature_service": spec["service"],
        "feature_view": spec["view"],
        "features": version_columns(version),
        **details,
    }
    try:
        text = json.dumps(record, indent=2, sort_keys=True, default=str, allow_nan=False) + "\n"
    except ValueError as exc:
        raise InvalidParameterError(
            f"details hold a value JSON cannot store exactly (NaN or infinity): {details!r}"
        ) from exc
    path = atomic_write_text(directory / f"{name}.json", text)
    logger.debug("recorded model %s: feature service %s", name, spec["service"])
    return path


def read_model_record(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a record written by :func:`record_model_version`."""
    path = check_path("path", path)
    if not path.is_file():
        raise InvalidParameterError(
            f"no model record at {str(path)!r}; write it with record_model_version()"
        )
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidParameterError(f"{str(path)!r} is not a JSON model record: {exc}") from exc
    missing = [k for k in RECORD_KEYS if not isinstance(record, dict) or k not in record]
    if missing:
        raise InvalidParameterError(
            f"{str(path)!r} is not a model record: it lacks {missing}"
        )
    return record
