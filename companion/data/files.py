"""The dataset on disk: Parquet tables, a CSV sample, and the parameters file of the pipeline.

Writes are all or nothing for the whole folder (:func:`_write_files`): an interrupted call
leaves neither a half-written table nor a mix of old and new tables.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path

import pandas as pd

from companion.core.checks import check_choice, check_int, check_path, check_text
from companion.data.config import SimulationConfig
from companion.data.tables import TABLE_FILES, ChurnDataset, check_dataset
from companion.errors import InvalidParameterError, UnknownNameError

logger = logging.getLogger(__name__)


def _check_directory(directory: object) -> Path:
    path = check_path("directory", directory)
    if path.exists() and not path.is_dir():
        raise InvalidParameterError(f"{path} exists and is not a folder; give a folder path")
    return path


def _write_files(directory: Path, writers: Mapping[str, Callable[[Path], None]]) -> dict[str, Path]:
    """Write ``writers``' files into ``directory``, all or nothing.

    Every file is first written into a temporary folder beside ``directory``. A new
    ``directory`` is then renamed into place in one step; in an existing one (which may hold
    other files) each file is swapped in, and if a swap fails the files already swapped are put
    back as they were. Either way, a failure leaves no half-written file and no mix of old and
    new tables.
    """
    directory.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f".{directory.name}-new-", dir=directory.parent))
    backup: Path | None = None
    try:
        for filename, write in writers.items():
            write(scratch / filename)
        if not directory.exists():
            os.chmod(scratch, 0o755)
            os.replace(scratch, directory)
        else:
            backup = Path(tempfile.mkdtemp(prefix=f".{directory.name}-old-", dir=directory.parent))
            saved, placed = [], []
            try:
                for filename in writers:
                    target = directory / filename
                    if target.exists():
                        os.replace(target, backup / filename)
                        saved.append(filename)
                    os.replace(scratch / filename, target)
                    placed.append(filename)
            except BaseException:
                for filename in placed:
                    (directory / filename).unlink(missing_ok=True)
                for filename in saved:
                    os.replace(backup / filename, directory / filename)
                raise
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
        if backup is not None:
            shutil.rmtree(backup, ignore_errors=True)
    return {filename: directory / filename for filename in writers}


def write_dataset(dataset: ChurnDataset, directory: str | os.PathLike[str]) -> dict[str, Path]:
    """Write every table as Parquet into ``directory``, all or nothing.

    The files are written to a temporary folder beside ``directory`` and moved into place only
    when all of them are written, so an interrupted call leaves no half-written dataset (and
    no mix of old and new tables). Returns the path of each table by name.
    """
    check_dataset(dataset)
    directory = _check_directory(directory)
    tables = dataset.all_tables()

    def writer(frame: pd.DataFrame) -> Callable[[Path], None]:
        return lambda path: frame.to_parquet(path, index=False)

    paths = _write_files(
        directory, {TABLE_FILES[name]: writer(frame) for name, frame in tables.items()}
    )
    logger.debug("wrote %d tables to %s", len(paths), directory)
    return {name: paths[TABLE_FILES[name]] for name in tables}


def read_table(directory: str | os.PathLike[str], name: str) -> pd.DataFrame:
    """Read one table written by :func:`write_dataset`."""
    check_choice("table", name, TABLE_FILES)
    directory = _check_directory(directory)
    path = directory / TABLE_FILES[name]
    if not path.is_file():
        found = sorted(p.name for p in directory.glob("*.parquet")) if directory.is_dir() else []
        raise InvalidParameterError(
            f"no {name} table at {path}; found {found or 'no tables'}: write the dataset there "
            "first with write_dataset()"
        )
    return pd.read_parquet(path)


def write_sample(
    dataset: ChurnDataset, directory: str | os.PathLike[str], n_customers: int = 50
) -> dict[str, Path]:
    """Write a small CSV sample (the first ``n_customers`` customers), all or nothing."""
    check_dataset(dataset)
    check_int("n_customers", n_customers, minimum=1)
    directory = _check_directory(directory)
    keep = set(dataset.customers["customer_id"].head(n_customers))
    frames = {}
    for name, frame in dataset.all_tables().items():
        if "customer_id" in frame.columns:
            frame = frame[frame["customer_id"].isin(keep)]
        frames[name] = frame

    def writer(frame: pd.DataFrame) -> Callable[[Path], None]:
        return lambda path: frame.to_csv(path, index=False, lineterminator="\n")

    paths = _write_files(directory, {f"{name}.csv": writer(f) for name, f in frames.items()})
    logger.debug("wrote a sample of %d customers to %s", len(keep), directory)
    return {name: paths[f"{name}.csv"] for name in frames}


def load_params(path: str | os.PathLike[str], section: str = "simulation") -> SimulationConfig:
    """Read a :class:`SimulationConfig` from the ``section`` of a YAML params file."""
    import yaml

    path = check_path("path", path)
    check_text("section", section)
    if not Path(path).is_file():
        raise InvalidParameterError(f"no params file at {path}; give the path of a YAML file")
    try:
        with open(path, encoding="utf-8") as handle:
            params = yaml.safe_load(handle) or {}
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise InvalidParameterError(f"{path} is not valid YAML: {exc}") from exc
    if not isinstance(params, Mapping):
        raise InvalidParameterError(
            f"{path} must hold a mapping of sections, got {type(params).__name__}"
        )
    if section not in params:
        raise UnknownNameError(
            f"{path} has no {section!r} section; found {sorted(map(str, params))}"
        )
    if not isinstance(params[section], Mapping):
        raise InvalidParameterError(
            f"section {section!r} of {path} must be a mapping of simulation parameters, got "
            f"{params[section]!r}"
        )
    return SimulationConfig.from_mapping(params[section])

