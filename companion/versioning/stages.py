"""The pipeline's stages: build the training frame, train and score, and their entry point.

``python -m companion.versioning STAGE`` (:func:`main`) is what each stage of ``dvc.yaml``
runs: ``validate`` checks ``data/raw`` against the manifest, ``features`` builds the training
frame (:func:`training_frame`), ``train`` fits and scores the model (:func:`fit_and_score`).
The same two functions retrain a model in process from what the stores say.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import pickle
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from companion.core.checks import check_frame
from companion.core.files import atomic_write, atomic_write_text
from companion.data import ChurnDataset, SimulationConfig
from companion.errors import CompanionError, InvalidParameterError
from companion.versioning.readback import verify_snapshot
from companion.versioning.repo import EXPORT_TABLES, PARAMS_PATH, RAW_DIR, DataRepo, read_params

logger = logging.getLogger(__name__)

__all__ = ["fit_and_score", "main", "training_frame"]

STAGE_ERROR_ENV = "COMPANION_STAGE_ERROR_FILE"
"""Where a failing stage writes its error (set by :func:`companion.versioning.reproduce`)."""


def training_frame(
    tables: Mapping[str, pd.DataFrame], config: SimulationConfig
) -> pd.DataFrame:
    """Build model features for every labelled snapshot of an export (the ``features`` stage)."""
    from companion.training import snapshot_features

    if not isinstance(tables, Mapping):
        raise InvalidParameterError(
            f"tables must be a mapping of table name to DataFrame, got {type(tables).__name__}"
        )
    if not isinstance(config, SimulationConfig):
        raise InvalidParameterError(
            f"config must be a SimulationConfig, got {type(config).__name__}; accepted: "
            "SimulationConfig.from_mapping(manifest['parameters']['simulation'])"
        )
    missing = [name for name in EXPORT_TABLES if name not in tables]
    if missing:
        raise InvalidParameterError(
            f"export is missing table(s) {missing}; accepted: a mapping with {list(EXPORT_TABLES)}"
        )
    for name in EXPORT_TABLES:
        check_frame(f"table {name!r}", tables[name])
    check_frame("table 'labels'", tables["labels"], ["snapshot_timestamp"],
                hint="accepted: a frame with ['snapshot_timestamp']")
    empty = pd.DataFrame()
    dataset = ChurnDataset(config, tables["customers"], tables["activity"], tables["labels"],
                           tables["prices"], empty, empty)
    snapshots = sorted(pd.DatetimeIndex(tables["labels"]["snapshot_timestamp"].unique()))
    if not snapshots:
        raise InvalidParameterError("export has no labelled snapshot; take it at a later as_of")
    return snapshot_features(dataset, snapshots)


def fit_and_score(frame: pd.DataFrame, kind: str, seed: int) -> tuple[Any, dict[str, float]]:
    """Train on every snapshot but the last and score on the last (the ``train`` stage).

    The last labelled month is a time split: the model never saw it. Its ROC AUC comes with
    DeLong's 95% interval (``roc_auc_low``, ``roc_auc_high``), rounded to 6 decimals.
    """
    from companion.evaluation import auc_interval
    from companion.training import FEATURES, TARGET, make_model, time_split, train

    make_model(kind, seed)  # validates kind and seed
    columns = ["snapshot_timestamp", TARGET, *FEATURES]
    check_frame("frame", frame, columns, hint=f"accepted: a frame with {columns}")
    snapshots = sorted(frame["snapshot_timestamp"].unique())
    if len(snapshots) < 2:
        raise InvalidParameterError(
            f"training needs at least 2 labelled snapshots, got {len(snapshots)}"
        )
    train_rows, test_rows = time_split(frame, snapshots[:-1], snapshots[-1])
    model = train(train_rows, kind=kind, seed=seed)
    y = test_rows[TARGET].to_numpy()
    auc = auc_interval(y, model.predict_proba(test_rows[FEATURES])[:, 1])
    metrics = {
        "roc_auc": round(auc.value, 6),
        "roc_auc_low": round(auc.low, 6),
        "roc_auc_high": round(auc.high, 6),
        "test_rows": int(len(test_rows)),
        "test_churners": int(y.sum()),
        "train_rows": int(len(train_rows)),
    }
    return model, metrics


def main(argv: Sequence[str] | None = None) -> None:
    """Run one stage of the workspace pipeline (``python -m companion.versioning STAGE``)."""
    parser = argparse.ArgumentParser(
        prog="python -m companion.versioning", description=main.__doc__
    )
    sub = parser.add_subparsers(dest="stage", required=True)
    validate = sub.add_parser("validate", help="check data/raw against data/manifest.json")
    validate.add_argument("--out", required=True)
    features = sub.add_parser("features", help="build the training frame from data/raw")
    features.add_argument("--out", required=True)
    train = sub.add_parser("train", help="train and score the churn model")
    train.add_argument("--features", required=True)
    train.add_argument("--model", required=True)
    train.add_argument("--metrics", required=True)
    args = parser.parse_args(argv)
    try:
        _run_stage(args)
    except CompanionError as error:
        report = os.environ.get(STAGE_ERROR_ENV)
        if report:
            atomic_write_text(report, f"{type(error).__module__}.{type(error).__name__}: {error}")
        raise


def _run_stage(args: argparse.Namespace) -> None:
    repo = DataRepo(Path.cwd())
    params = read_params(PARAMS_PATH)
    if args.stage == "validate":
        verified = verify_snapshot(repo)
        report = json.dumps({"verified": verified}, indent=2, sort_keys=True)
        atomic_write_text(args.out, report + "\n")
    elif args.stage == "features":
        tables = {n: pd.read_parquet(Path(RAW_DIR) / f"{n}.parquet") for n in EXPORT_TABLES}
        frame = training_frame(tables, SimulationConfig.from_mapping(params["simulation"]))
        atomic_write(args.out, lambda tmp: frame.to_parquet(tmp, index=False))
    else:
        frame = pd.read_parquet(args.features)
        model, metrics = fit_and_score(frame, **params["train"])
        atomic_write(args.model, lambda tmp: tmp.write_bytes(pickle.dumps(model)))
        atomic_write_text(args.metrics, json.dumps(metrics, indent=2, sort_keys=True) + "\n")
    logger.info("stage %s done", args.stage)
