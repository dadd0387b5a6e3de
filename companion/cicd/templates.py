"""The files of a Level 1 churn project, as templates: the code CI runs on every change.

:data:`PROJECT_FILES` maps each path of the project repository to its text: ``train.py``
(train on the versioned export, save the model, track the run in MLflow), ``tests/test_data.py``
and ``tests/test_model.py`` (the data and model tests of :mod:`companion.cicd`, as pytest
files), ``pytest.ini`` and ``.gitignore``. ``params.yaml`` and ``requirements.lock`` are
written by :func:`companion.cicd.create_project` from the project's parameters and the
installed versions. The files call the companion; nothing in them depends on the machine.
"""

from __future__ import annotations

__all__ = ["LOCKED_PACKAGES", "PROJECT_FILES"]

TRAIN_PY = '''\
"""Train Lumen's churn model on the versioned export and track the run in MLflow.

CI runs it on every change (.github/workflows/train.yml), after the data tests:
    python train.py
"""

import os
from pathlib import Path

import pandas as pd
import yaml

from companion import cicd, versioning

params = yaml.safe_load(Path("params.yaml").read_text())
frame = pd.read_parquet(params["data"]["path"])

# train on every month but the newest, score the newest (a split by time)
model, metrics = versioning.fit_and_score(frame, **params["train"])
cicd.save_model(model, metrics, "model")

run = cicd.log_training(
    model, frame, metrics, params,
    tracking_uri=os.environ.get("MLFLOW_TRACKING_URI") or "sqlite:///mlflow.db",
)
print(f"ROC AUC {metrics['roc_auc']:.3f} [{metrics['roc_auc_low']:.3f}, "
      f"{metrics['roc_auc_high']:.3f}] on {metrics['test_rows']:,} rows; run logged")
'''

TEST_DATA_PY = '''\
"""Data tests: the export is checked before any model is trained on it."""

from pathlib import Path

import pandas as pd
import pytest
import yaml

from companion import cicd

PARAMS = yaml.safe_load(Path("params.yaml").read_text())


@pytest.fixture(scope="module")
def export():
    return pd.read_parquet(PARAMS["data"]["path"])


def test_schema(export):
    result = cicd.check_schema(export)
    assert result.passed, result.detail


def test_ranges(export):
    result = cicd.check_ranges(export)
    assert result.passed, result.detail


def test_freshness(export):
    result = cicd.check_freshness(export, PARAMS["data"]["as_of"],
                                  PARAMS["tests"]["freshness_days"])
    assert result.passed, result.detail
'''

TEST_MODEL_PY = '''\
"""Model tests: the model just trained, on the month it never saw."""

import pickle
from pathlib import Path

import pandas as pd
import pytest
import yaml

from companion import cicd

PARAMS = yaml.safe_load(Path("params.yaml").read_text())
LIMITS = PARAMS["tests"]


@pytest.fixture(scope="module")
def model():
    return pickle.loads(Path("model/model.pkl").read_bytes())


@pytest.fixture(scope="module")
def held_out():
    frame = pd.read_parquet(PARAMS["data"]["path"])
    return frame[frame["snapshot_timestamp"] == frame["snapshot_timestamp"].max()]


def test_minimum_auc_with_its_interval(model, held_out):
    result = cicd.check_min_auc(model, held_out, LIMITS["min_auc"])
    assert result.passed, result.detail


def test_the_customer_id_does_not_move_the_score(model, held_out):
    result = cicd.check_invariance(model, held_out, "customer_id",
                                   lambda ids: ids + 1_000_000)
    assert result.passed, result.detail


def test_the_calendar_date_does_not_move_the_score(model, held_out):
    result = cicd.check_invariance(model, held_out, "snapshot_timestamp",
                                   lambda days: days + pd.DateOffset(years=1))
    assert result.passed, result.detail


def test_more_payment_failures_do_not_lower_the_score(model, held_out):
    result = cicd.check_direction(model, held_out, "payment_failures_4w",
                                  lambda n: n + 1, tolerance=LIMITS["tolerance"],
                                  max_share=LIMITS["max_share"])
    assert result.passed, result.detail
'''

PYTEST_INI = """\
[pytest]
addopts = -q -p no:cacheprovider
testpaths = tests
filterwarnings =
    ignore::DeprecationWarning
    ignore::FutureWarning
"""

GITIGNORE = """\
# outputs of a CI run: uploaded as artifacts, never committed
/model/
/mlflow.db
/mlartifacts/
__pycache__/
"""

PROJECT_FILES: dict[str, str] = {
    "train.py": TRAIN_PY,
    "tests/test_data.py": TEST_DATA_PY,
    "tests/test_model.py": TEST_MODEL_PY,
    "pytest.ini": PYTEST_INI,
    ".gitignore": GITIGNORE,
}
"""Every file of the project written from a template, by its path in the repository."""

LOCKED_PACKAGES = (
    "dvc", "mlflow", "scikit-learn", "pandas", "numpy", "scipy", "pyarrow", "cloudpickle",
    "pyyaml", "pytest",
)
"""What the project's ``requirements.lock`` pins (with the companion itself)."""
