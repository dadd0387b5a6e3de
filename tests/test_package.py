"""The companion as a library: its core (the ground, data, training, evaluation) needs only the
core dependencies pyproject declares."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())

# Stacks that only an extra installs: the core modules must work without any of them.
EXTRA_ONLY = ("mlflow", "feast", "dvc", "deltalake", "evidently", "kfp", "azure", "statsmodels", "croniter",
              "papermill", "nbformat", "matplotlib", "psutil", "duckdb")

BLOCKER = f"""
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {EXTRA_ONLY!r}:
            raise ImportError("blocked: " + name + " is not a core dependency")
        return None
sys.meta_path.insert(0, Block())
"""


def test_core_dependencies_are_what_the_core_modules_need():
    core = {d.split(">")[0].split("<")[0].split("=")[0].split("[")[0] for d in
            PYPROJECT["project"]["dependencies"]}
    assert core == {"numpy", "pandas", "pyarrow", "scipy", "scikit-learn", "pyyaml"}
    extras = PYPROJECT["project"]["optional-dependencies"]
    assert {"versioning", "features", "tracking", "registry", "runner", "book", "test"} <= set(extras)
    assert any("feast" in d for d in extras["features"])


def test_data_training_and_evaluation_run_without_any_extra(tmp_path):
    script = BLOCKER + """
import companion.core.checks, companion.core.env, companion.core.files, companion.core.process
import companion.core.provenance, companion.core.types, companion.core.mlflow_store
from companion.data import generate, write_dataset
from companion.training import snapshot_features, train
from companion.evaluation import auc_interval
ds = generate(n_customers=400, months=3, scenarios=())
write_dataset(ds, r"%s")
frame = snapshot_features(ds)
model = train(frame[frame.snapshot_timestamp < ds.snapshots[2]], kind="logistic")
test = frame[frame.snapshot_timestamp == ds.snapshots[2]]
print(auc_interval(test.churned_30d, model.predict_proba(test)[:, 1]).value > 0.5)
try:
    import mlflow
except ImportError as exc:
    print(exc)
""" % (tmp_path / "data")
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["True", "blocked: mlflow is not a core dependency"]


def test_importing_the_package_has_no_global_side_effects():
    script = """
import sys, warnings, logging
import numpy, pandas, scipy.stats, sklearn.ensemble, sklearn.linear_model  # their own filters
filters = list(warnings.filters)
level = logging.getLogger().level
import companion.data, companion.training, companion.evaluation, companion.errors, companion.core
import companion.core.checks, companion.core.env, companion.core.files, companion.core.process
assert warnings.filters == filters, "a warning filter was installed on import"
assert logging.getLogger().level == level
print("ok")
"""
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr


def test_every_data_file_of_the_package_ships_in_its_wheel():
    """A file the companion reads at run time is package data, or a built wheel leaves it out."""
    import fnmatch

    patterns = PYPROJECT["tool"]["setuptools"].get("package-data", {}).get("companion", [])
    package = ROOT / "companion"
    data = sorted(str(p.relative_to(package)) for p in package.rglob("*")
                  if p.is_file() and p.suffix not in {".py", ".pyc"} and "__pycache__" not in p.parts)
    assert data, "the companion ships its recorded answers"
    missing = [f for f in data if not any(fnmatch.fnmatch(f, pattern) for pattern in patterns)]
    assert not missing, f"add these to [tool.setuptools.package-data] in pyproject.toml: {missing}"
