"""Experiment tracking with MLflow: a local tracking server, runs, sweeps and their cost.

The chapter on experiment tracking (and the ones after it) log to MLflow through this module:

* :class:`TrackingServer` starts a real ``mlflow server`` on a free loopback port, with its
  own SQLite store and proxied artifacts in the workspace, and stops it (and every process it
  started) at the end, when the object is garbage-collected, at interpreter exit, and, on
  Linux, when the parent process dies.
* :func:`log_sklearn_model` logs a fitted :mod:`companion.training` pipeline with a
  signature, an input example and pinned pip requirements (fast: nothing is inferred).
* :func:`log_training_run` trains one model, evaluates it on a later snapshot and logs
  parameters, tags (code version, data digest), the dataset input, the validation ROC AUC
  with its 95% DeLong interval, the boosting or solver iterations fitted, wall time, CPU
  time and an estimated cost; :func:`run_sweep` does it for a grid under one parent run.
* :func:`prefer_simpler` picks between two models by a stated rule (the simpler one unless
  the other is better by a margin the paired interval clears); :func:`work_cost` prices an
  experiment from a deterministic amount of work (rows x iterations), where measured CPU
  seconds vary from one machine and one execution to the next.

Nothing happens at import: no server, no tracking URI, no environment change.

Example:
    >>> round(estimate_cost(cpu_seconds=1800.0, price_per_cpu_hour=0.10), 4)
    0.05
"""

from __future__ import annotations

import ast
import contextlib
import ctypes
import hashlib
import importlib.metadata
import math
import numbers
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import warnings
import weakref
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from companion.core.checks import check_choice, check_int
from companion.errors import InvalidParameterError, UnknownNameError, WorkspaceError
from companion.evaluation import LEVEL, Estimate, auc_difference, auc_interval
from companion.training import FEATURES, MODEL_KINDS, TARGET, evaluate, make_model, train
from companion.workspace import QUIET_LOGS

if TYPE_CHECKING:  # pragma: no cover - imports for type hints only
    import mlflow.models.model
    from sklearn.pipeline import Pipeline


MODEL_REQUIREMENTS = ("mlflow", "scikit-learn", "pandas", "numpy", "scipy", "cloudpickle")
"""Distributions a logged churn model needs to load and predict, pinned at their installed
versions by :func:`pinned_requirements`."""


# --------------------------------------------------------------------------- checks
# Every public function checks all of its input here, before its first side effect (a run
# opened, a file written), so a bad call leaves nothing behind.

_FORBIDDEN_NAME_CHARS = set("'\"`\\")


def _check_number(label: str, value: Any, *, positive: bool = False) -> float:
    """Return ``value`` as a float if it is a finite real number >= 0 (> 0 if ``positive``)."""
    if (
        isinstance(value, bool) or not isinstance(value, numbers.Real)
        or not math.isfinite(float(value)) or float(value) < 0
        or (positive and float(value) == 0)
    ):
        bound = "> 0" if positive else ">= 0"
        raise InvalidParameterError(f"{label} must be a finite number {bound}, got {value!r}")
    return float(value)


def _check_name(label: str, value: Any, *, optional: bool = False) -> str | None:
    """Return a name (run, experiment, model) that MLflow stores and queries can quote."""
    if value is None and optional:
        return None
    if (
        not isinstance(value, str) or not value.strip() or len(value) > 250
        or set(value) & _FORBIDDEN_NAME_CHARS or not value.isprintable()
    ):
        raise InvalidParameterError(
            f"{label} must be a non-empty printable string of at most 250 characters without "
            f"quotes or backslashes, got {value!r}"
        )
    return value


def _check_bool(label: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise InvalidParameterError(f"{label} must be True or False, got {value!r}")
    return value


def _check_params(kind: str, params: Any, label: str = "params") -> dict[str, Any]:
    """Return ``params`` as a dict if the estimator of ``kind`` accepts every name and value."""
    check_choice("model kind", kind, MODEL_KINDS)
    if params is None:
        return {}
    if not isinstance(params, Mapping):
        raise InvalidParameterError(
            f"{label} must be a mapping of estimator parameter names to values, got "
            f"{type(params).__name__}"
        )
    params = dict(params)
    for key, value in params.items():
        if not isinstance(key, str) or not key.isidentifier():
            raise InvalidParameterError(
                f"{label} keys must be estimator parameter names, got {key!r}"
            )
        if key == "random_state":
            raise InvalidParameterError(
                f"{label} must not set random_state; accepted: the seed= argument, which is "
                "logged as the run's seed"
            )
        if (
            isinstance(value, numbers.Real) and not isinstance(value, bool)
            and not math.isfinite(float(value))
        ):
            raise InvalidParameterError(f"{label}[{key!r}] must be a finite number, got {value!r}")
    estimator = make_model(kind)[-1]
    try:
        estimator.set_params(**params)
        estimator._validate_params()  # scikit-learn's own check of every value, without a fit
    except (ValueError, TypeError) as exc:
        raise InvalidParameterError(
            f"{kind} model does not accept {label} {params}: {exc}"
        ) from exc
    return params


def _check_tags(tags: Any, reserved: Sequence[str] = ()) -> dict[str, str]:
    """Return ``tags`` as a dict of non-empty string keys to string values."""
    if tags is None:
        return {}
    if not isinstance(tags, Mapping):
        raise InvalidParameterError(
            f"tags must be a mapping of names to strings, got {type(tags).__name__}"
        )
    for key, value in tags.items():
        if not isinstance(key, str) or not key.strip() or len(key) > 250:
            raise InvalidParameterError(f"tag names must be non-empty strings, got {key!r}")
        if key.startswith("mlflow.") or key in reserved:
            raise InvalidParameterError(
                f"tag {key!r} is set by MLflow or by the companion itself; accepted: other names"
            )
        if not isinstance(value, str):
            raise InvalidParameterError(
                f"tag {key!r} must be a string, got {value!r}; accepted: strings (str(x) a "
                "number first)"
            )
    return dict(tags)


def _with_code_tags(tags: dict[str, str], code: Mapping[str, str]) -> dict[str, str]:
    """Add the code version to ``tags``; refuse a caller's tag that says otherwise."""
    for key in ("code.sha256", "code.files"):
        if key in tags and tags[key] != code[key]:
            raise InvalidParameterError(
                f"tag {key}={tags[key]!r} contradicts the code that trains the run "
                f"({code[key]!r}); accepted: leave it out, the run records it itself"
            )
    return {**tags, "code.sha256": code["code.sha256"], "code.files": code["code.files"]}


def _check_training_frames(train_frame: Any, val_frame: Any) -> tuple[list[str], list[str]]:
    """Check the training and validation frames; return their snapshot dates."""
    needed = ["snapshot_timestamp", *FEATURES, TARGET]
    dates = []
    for label, frame in (("train_frame", train_frame), ("val_frame", val_frame)):
        if not isinstance(frame, pd.DataFrame):
            raise InvalidParameterError(
                f"{label} must be a pandas DataFrame from snapshot_features(), got "
                f"{type(frame).__name__}"
            )
        missing = [c for c in needed if c not in frame.columns]
        if missing:
            raise InvalidParameterError(
                f"{label} is missing column(s) {missing}; build it with snapshot_features()"
            )
        if frame.empty:
            raise InvalidParameterError(f"{label} has no rows; accepted: a non-empty frame")
        if not pd.api.types.is_datetime64_any_dtype(frame["snapshot_timestamp"]):
            raise InvalidParameterError(
                f"{label}'s snapshot_timestamp must be datetimes, got "
                f"{frame['snapshot_timestamp'].dtype}"
            )
        labels = frame[TARGET]
        values = set(pd.unique(labels.dropna()).tolist())
        if labels.isna().any() or not values <= {0, 1}:
            raise InvalidParameterError(
                f"{label}'s {TARGET} must be 0 or 1 with no missing value, got "
                f"{sorted(map(str, values))[:5]}"
                + (" and missing values" if labels.isna().any() else "")
            )
        if len(values) < 2:
            raise InvalidParameterError(
                f"{label} has a single class ({TARGET}={values.pop()}) in {len(frame)} rows; "
                "accepted: frames with both churners and stayers"
            )
        dates.append(sorted(str(t.date()) for t in frame["snapshot_timestamp"].unique()))
    if dates[1][0] <= dates[0][-1]:
        raise InvalidParameterError(
            f"val_frame's snapshots {dates[1]} must all come after the training snapshots "
            f"(latest {dates[0][-1]}); accepted: a later month, e.g. from time_split()"
        )
    return dates[0], dates[1]


def _check_experiment(experiment_id: Any) -> str | None:
    """Return ``experiment_id`` if it names an active experiment of the current store."""
    if experiment_id is None:
        return None
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    if not isinstance(experiment_id, str) or not experiment_id.strip():
        raise InvalidParameterError(
            f"experiment_id must be an MLflow experiment id string, got {experiment_id!r}"
        )
    try:
        experiment = MlflowClient().get_experiment(experiment_id)
    except MlflowException as exc:
        raise UnknownNameError(
            f"experiment {experiment_id!r} does not exist in the current tracking store; "
            "accepted: ids from ensure_experiment_at()"
        ) from exc
    if experiment is None or experiment.lifecycle_stage != "active":
        raise UnknownNameError(
            f"experiment {experiment_id!r} is not an active experiment of the current tracking "
            "store; accepted: ids from ensure_experiment_at()"
        )
    return experiment_id


def _check_experiment_ids(experiment_ids: Any) -> list[str]:
    if isinstance(experiment_ids, (str, bytes)) or not isinstance(experiment_ids, Iterable):
        raise InvalidParameterError(
            f"experiment_ids must be a list of experiment id strings, got {experiment_ids!r}"
        )
    ids = list(experiment_ids)
    if not ids or len(set(map(repr, ids))) != len(ids):
        raise InvalidParameterError(
            f"experiment_ids must list one or more distinct experiment ids, got {ids!r}"
        )
    for experiment_id in ids:
        if experiment_id is None:
            raise InvalidParameterError("experiment_ids must not hold None")
        _check_experiment(experiment_id)
    return ids


def _check_kinds(kinds: Any) -> list[str]:
    if isinstance(kinds, (str, bytes)) or not isinstance(kinds, Iterable):
        raise InvalidParameterError(
            f"kinds must be a list of model kinds such as {list(MODEL_KINDS)}, got {kinds!r}"
        )
    kinds = list(kinds)
    if not kinds or len(set(kinds)) != len(kinds):
        raise InvalidParameterError(
            f"kinds must list one or more distinct model kinds, got {kinds}"
        )
    for kind in kinds:
        check_choice("model kind", kind, MODEL_KINDS)
    return kinds


def _check_metric(metric: Any) -> str:
    if not isinstance(metric, str) or not metric or not metric.replace("_", "").isalnum():
        raise InvalidParameterError(
            f"metric must be a logged metric name such as 'val_roc_auc', got {metric!r}"
        )
    return metric


def _delete_runs(run_ids: Iterable[str]) -> None:
    """Delete runs left by a failed call (MLflow's delete: they leave every query)."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient()
    for run_id in run_ids:
        with contextlib.suppress(Exception):
            client.delete_run(run_id)


# --------------------------------------------------------------------------- models


def pinned_requirements(packages: Iterable[str] = MODEL_REQUIREMENTS) -> list[str]:
    """Return ``name==version`` for each installed distribution in ``packages``.

    Reading the versions with :mod:`importlib.metadata` takes microseconds, where MLflow's own
    inference of requirements starts a subprocess that takes seconds per model.

    Example:
        >>> pinned_requirements(["pandas"])[0].startswith("pandas==")
        True
    """
    if isinstance(packages, (str, bytes)) or not isinstance(packages, Iterable):
        raise InvalidParameterError(
            f"packages must be a list of distribution names such as ['pandas'], got {packages!r}"
        )
    packages = list(packages)
    for package in packages:
        if not isinstance(package, str) or not package.strip():
            raise InvalidParameterError(
                f"package names must be non-empty strings, got {package!r}"
            )
    if len({p.lower() for p in packages}) != len(packages):
        raise InvalidParameterError(f"packages lists a name twice: {packages}")
    pins = []
    for package in packages:
        try:
            version = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError as exc:
            raise InvalidParameterError(
                f"package {package!r} is not installed, so it cannot be pinned; accepted: "
                "names of installed distributions such as 'scikit-learn'"
            ) from exc
        pins.append(f"{package}=={version}")
    return pins


def log_sklearn_model(
    model: Pipeline,
    frame: pd.DataFrame,
    name: str = "model",
    registered_model_name: str | None = None,
) -> mlflow.models.model.ModelInfo:
    """Log a fitted churn pipeline to the active MLflow run and return its ``ModelInfo``.

    The model is saved with cloudpickle (the default skops format refuses the gradient-boosting
    model's types), a signature inferred from ``frame[FEATURES]`` and the churn
    probabilities the model gives them (categorical columns as strings, see
    :func:`model_input`), the first three rows as input example, and pip
    requirements pinned from the installed versions (see :func:`pinned_requirements`). The
    pyfunc flavour predicts with ``predict_proba``, so a served or loaded model returns
    ``[p(stay), p(churn)]`` per row, as the signature says.

    Args:
        model: a pipeline fitted by :func:`companion.training.train`.
        frame: rows with the model's features (e.g. the training frame).
        name: the logged model's name inside the run.
        registered_model_name: also register a new version of this registered model.
    """
    import mlflow
    import mlflow.sklearn
    from mlflow.models import infer_signature

    if mlflow.active_run() is None:
        raise WorkspaceError(
            "log_sklearn_model() needs an active MLflow run; call it inside "
            "`with mlflow.start_run():`"
        )
    if not isinstance(name, str) or not name or "/" in name:
        raise InvalidParameterError(
            f"model name must be a non-empty string without '/', got {name!r}"
        )
    _check_name("registered_model_name", registered_model_name, optional=True)
    if not hasattr(model, "predict_proba"):
        raise InvalidParameterError(
            f"expected a fitted classifier with predict_proba, got {type(model).__name__}"
        )
    example = model_input(frame).head(3)
    try:
        probabilities = model.predict_proba(example)
    except Exception as exc:  # sklearn raises NotFittedError, ValueError, ...
        raise InvalidParameterError(
            f"the model cannot score the frame's features ({type(exc).__name__}: {exc}); "
            "pass a pipeline fitted by companion.training.train"
        ) from exc
    signature = infer_signature(example, probabilities)
    return mlflow.sklearn.log_model(
        model,
        name=name,
        signature=signature,
        input_example=example,
        pip_requirements=pinned_requirements(),
        serialization_format="cloudpickle",
        pyfunc_predict_fn="predict_proba",
        registered_model_name=registered_model_name,
    )


def model_input(frame: pd.DataFrame) -> pd.DataFrame:
    """Return the model's feature columns of ``frame`` as a logged model expects them.

    Categorical columns become plain strings: that is what a client sends to a served model,
    and MLflow's schema check refuses pandas ``category`` columns for a ``string`` input.
    Use it before ``mlflow.pyfunc.load_model(...).predict(...)``.
    """
    _check_feature_frame(frame)
    features = frame[FEATURES].copy()
    for column in features.columns:
        if isinstance(features[column].dtype, pd.CategoricalDtype):
            features[column] = features[column].astype(str).astype(object)
    return features


def _check_feature_frame(frame: Any) -> None:
    if not isinstance(frame, pd.DataFrame):
        raise InvalidParameterError(f"expected a pandas DataFrame, got {type(frame).__name__}")
    missing = [c for c in FEATURES if c not in frame.columns]
    if missing:
        raise InvalidParameterError(
            f"frame is missing feature column(s) {missing}; build it with snapshot_features()"
        )
    if frame.empty:
        raise InvalidParameterError("frame has no rows; the model needs rows to infer a signature")


# --------------------------------------------------------------------------- quiet logging

QUIET_MLFLOW = {
    **QUIET_LOGS,
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
}
"""Environment that keeps MLflow from printing run links, progress bars and INFO logs."""


def quiet_mlflow() -> dict[str, str]:
    """Stop MLflow printing "View run" links, progress bars and INFO logs in this process.

    Chapters get this from :func:`companion.workspace.setup_notebook`; this is for scripts
    and projects that import the companion without it.

    MLflow re-applies its own log level when it is imported, so this sets the environment it
    reads and lowers the level of its loggers that already exist. Returns what was set.
    """
    import logging

    os.environ.update(QUIET_MLFLOW)
    for name in ("mlflow", "alembic", "huey", "urllib3"):
        logging.getLogger(name).setLevel(logging.ERROR)
    return dict(QUIET_MLFLOW)


# --------------------------------------------------------------------------- the server


LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")
"""Addresses the companion's servers listen on: this machine only."""


def free_port(host: str = "127.0.0.1") -> int:
    """Return a TCP port on ``host`` that nothing listens on right now."""
    if host not in LOOPBACK_HOSTS:
        raise InvalidParameterError(
            f"host {host!r} is not a loopback address; accepted: {', '.join(LOOPBACK_HOSTS)}"
        )
    family = socket.AF_INET6 if host == "::1" else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def _die_with_parent() -> None:  # pragma: no cover - runs in the forked child
    """Ask Linux to send SIGTERM to this (child) process when its parent dies."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            pr_set_pdeathsig = 1
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


def _stop_process_group(process: subprocess.Popen[bytes], grace_seconds: float) -> None:
    """Terminate ``process`` and every process in its group; kill what outlives the grace."""
    if process.poll() is None or _group_alive(process.pid):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + grace_seconds
        while time.monotonic() < deadline:
            if process.poll() is not None and not _group_alive(process.pid):
                break
            time.sleep(0.05)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=grace_seconds)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # pragma: no cover - a process we may not signal still exists
        return True
    return True


SERVER_ENV = {
    "PYTHONUNBUFFERED": "1",
    # No background job runner (a dozen huey processes for GenAI evaluation jobs): a tracking
    # server for runs, metrics and models does not need it.
    "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
}
"""Environment of the server process, on top of the caller's and :data:`QUIET_MLFLOW`."""


@dataclass
class TrackingServer:
    """A real ``mlflow server`` on a loopback port, owned by this process.

    It keeps runs in ``<directory>/server.db`` (SQLite) and serves artifacts from
    ``<directory>/server-artifacts`` through the server (clients never touch that folder
    directly, as with a remote server). Its output goes to ``<directory>/server.log``.

    The server runs in its own process group; :meth:`stop` ends the whole group (the ``mlflow``
    command, its uvicorn worker and job runner). It is also stopped when the object is
    garbage-collected or the interpreter exits (:func:`weakref.finalize`), and, on Linux, the
    server gets SIGTERM if the process that started it dies (``PR_SET_PDEATHSIG``), which it
    forwards to its worker. Use it as a context manager::

        with TrackingServer(ws.path / "server") as server:
            mlflow.set_tracking_uri(server.url)

    Attributes:
        directory: folder for the store, the artifacts and the log.
        host: loopback address to listen on.
        port: TCP port; a free one is chosen when None.
        startup_timeout: seconds to wait for ``/health`` before giving up.
    """

    directory: Path
    host: str = "127.0.0.1"
    port: int | None = None
    startup_timeout: float = 90.0
    _process: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)
    _finalizer: Any = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        if not isinstance(self.directory, (str, os.PathLike)) or not str(self.directory):
            raise InvalidParameterError(
                f"directory must be a folder path (str or Path), got {self.directory!r}"
            )
        self.directory = Path(self.directory)
        if self.directory.exists() and not self.directory.is_dir():
            raise InvalidParameterError(
                f"directory {self.directory.name!r} exists and is not a folder; accepted: a "
                "folder or a path where one can be created"
            )
        if self.host not in LOOPBACK_HOSTS:
            raise InvalidParameterError(
                f"host {self.host!r} is not a loopback address; accepted: '127.0.0.1', "
                "'localhost', '::1' (the companion never opens a server to the network)"
            )
        if self.port is not None and (
            isinstance(self.port, bool) or not isinstance(self.port, int)
            or not 1024 <= self.port <= 65535
        ):
            raise InvalidParameterError(
                f"port must be an int between 1024 and 65535 or None for a free one, "
                f"got {self.port!r}"
            )
        if (
            isinstance(self.startup_timeout, bool)
            or not isinstance(self.startup_timeout, numbers.Real)
            or not math.isfinite(float(self.startup_timeout)) or self.startup_timeout <= 0
        ):
            raise InvalidParameterError(
                "startup_timeout must be a positive finite number of seconds, got "
                f"{self.startup_timeout!r}"
            )

    # ------------------------------------------------------------------ places
    @property
    def backend_store_uri(self) -> str:
        """SQLite URI of the server's run store."""
        return f"sqlite:///{self.directory.resolve() / 'server.db'}"

    @property
    def artifacts_destination(self) -> Path:
        """Folder where the server stores the artifacts clients upload through it."""
        return self.directory.resolve() / "server-artifacts"

    @property
    def log_path(self) -> Path:
        """File that receives the server's stdout and stderr."""
        return self.directory.resolve() / "server.log"

    @property
    def url(self) -> str:
        """HTTP tracking URI of the running server, e.g. ``http://127.0.0.1:5000``."""
        if self.port is None:
            raise WorkspaceError("the tracking server has no port yet; call start() first")
        return f"http://{self.host}:{self.port}"

    @property
    def running(self) -> bool:
        """Whether the server process is alive."""
        return self._process is not None and self._process.poll() is None

    @property
    def pid(self) -> int | None:
        """Process id of the ``mlflow server`` command (also its process group id)."""
        return None if self._process is None else self._process.pid

    def command(self) -> list[str]:
        """Return the command line that starts the server with this interpreter's MLflow."""
        if self.port is None:
            raise WorkspaceError("the tracking server has no port yet; call start() first")
        return [
            sys.executable, "-m", "mlflow", "server",
            "--backend-store-uri", self.backend_store_uri,
            "--artifacts-destination", str(self.artifacts_destination),
            "--host", self.host, "--port", str(self.port), "--workers", "1",
        ]

    # ------------------------------------------------------------------ life cycle
    def start(self) -> TrackingServer:
        """Start the server and wait until ``/health`` answers; return self.

        Raises:
            WorkspaceError: the server is already running, exited during start-up (the
                message quotes the end of its log), or did not answer in time (it is stopped).
        """
        if self.running:
            raise WorkspaceError(f"the tracking server is already running at {self.url}")
        self.directory.mkdir(parents=True, exist_ok=True)
        self.artifacts_destination.mkdir(exist_ok=True)
        if self.port is None:
            self.port = free_port(self.host)
        env = {**os.environ, **QUIET_MLFLOW, **SERVER_ENV}
        with open(self.log_path, "ab") as log:
            self._process = subprocess.Popen(  # noqa: S603 - fixed argv, no shell
                self.command(), stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                env=env, cwd=self.directory, start_new_session=True,
                preexec_fn=_die_with_parent,  # noqa: PLW1509 - only calls prctl
            )
        self._finalizer = weakref.finalize(self, _stop_process_group, self._process, 10.0)
        try:
            self._wait_healthy()
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_healthy(self) -> None:
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self._process is None or self._process.poll() is not None:
                code = None if self._process is None else self._process.returncode
                raise WorkspaceError(
                    f"mlflow server exited with code {code} "
                    f"during start-up; end of {self.log_path.name}:\n{self.log_tail()}"
                )
            try:
                with urllib.request.urlopen(f"{self.url}/health", timeout=2) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
                pass
            time.sleep(0.2)
        raise WorkspaceError(
            f"mlflow server did not answer /health within {self.startup_timeout} s; "
            f"end of {self.log_path.name}:\n{self.log_tail()}"
        )

    def log_tail(self, lines: int = 20) -> str:
        """Return the last ``lines`` lines of the server's log."""
        check_int("lines", lines, minimum=1)
        if not self.log_path.exists():
            return ""
        text = self.log_path.read_text(encoding="utf-8", errors="replace")
        return "\n".join(text.splitlines()[-lines:])

    def stop(self, grace_seconds: float = 10.0) -> None:
        """Stop the server and every process of its group; safe to call twice."""
        _check_number("grace_seconds", grace_seconds)
        if self._process is None:
            return
        if self._finalizer is not None:
            self._finalizer.detach()
        _stop_process_group(self._process, grace_seconds)

    def leftover_processes(self) -> list[int]:
        """Return the ids of processes still alive in the server's process group."""
        import psutil

        if self._process is None:
            return []
        group = self._process.pid
        alive = []
        for process in psutil.process_iter(["pid"]):
            with contextlib.suppress(psutil.Error):
                if os.getpgid(process.pid) == group and process.status() != psutil.STATUS_ZOMBIE:
                    alive.append(process.pid)
        return alive

    def __enter__(self) -> TrackingServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


# --------------------------------------------------------------------------- experiments


def ensure_experiment_at(
    tracking_uri: str, name: str, artifact_location: str | None = None
) -> str:
    """Return the id of experiment ``name`` at ``tracking_uri``, creating it if needed.

    With a tracking server, leave ``artifact_location`` None: the server then stores the
    experiment's artifacts under its ``--artifacts-destination`` and proxies every upload.
    With a local SQLite store, pass a ``file://`` location (see
    :func:`companion.workspace.ensure_experiment`).
    """
    from mlflow.tracking import MlflowClient

    if not isinstance(tracking_uri, str) or "://" not in tracking_uri:
        raise InvalidParameterError(
            f"tracking_uri must be an MLflow tracking URI such as 'sqlite:///path/mlflow.db' "
            f"or 'http://127.0.0.1:5000', got {tracking_uri!r}"
        )
    _check_name("experiment name", name)
    if artifact_location is not None and (
        not isinstance(artifact_location, str) or "://" not in artifact_location
    ):
        raise InvalidParameterError(
            f"artifact_location must be None or a URI such as 'file:///path/artifacts', got "
            f"{artifact_location!r}"
        )
    client = MlflowClient(tracking_uri)
    experiment = client.get_experiment_by_name(name)
    if experiment is not None:
        return experiment.experiment_id
    return client.create_experiment(name, artifact_location=artifact_location)


# --------------------------------------------------------------------------- provenance


CODE_ROOTS = ("training", "tracking")
"""Companion modules that train and log a run; :func:`training_modules` adds what they import."""


def training_modules() -> list[Path]:
    """Return the companion source files a training run executes, sorted by name.

    They are the modules of :data:`CODE_ROOTS` and every companion module they import at
    module level, followed transitively (read from the source with :mod:`ast`, nothing is
    imported): today ``data.py``, ``errors.py``, ``evaluation.py``, ``tracking.py``,
    ``training.py`` and ``workspace.py``.

    Example:
        >>> [p.name for p in training_modules()][:3]
        ['data.py', 'errors.py', 'evaluation.py']
    """
    package = Path(__file__).resolve().parent
    seen: set[str] = set()
    todo = list(CODE_ROOTS)
    while todo:
        name = todo.pop()
        source = package / f"{name}.py"
        if name in seen or not source.is_file():
            continue
        seen.add(name)
        for node in ast.parse(source.read_text(encoding="utf-8")).body:
            if isinstance(node, ast.ImportFrom):
                module = node.module or ""
                if node.level == 0 and module.split(".")[0] != "companion":
                    continue
                parts = module.split(".")[1:] if node.level == 0 else module.split(".")
                parts = [part for part in parts if part]
                todo.extend(parts[:1] if parts else [alias.name for alias in node.names])
            elif isinstance(node, ast.Import):
                todo.extend(
                    alias.name.split(".")[1] for alias in node.names
                    if alias.name.startswith("companion.")
                )
    return sorted((package / f"{name}.py" for name in seen), key=lambda path: path.name)


def code_version(
    repo_dir: str | os.PathLike[str] | None = None,
    files: Sequence[str | os.PathLike[str]] | None = None,
) -> dict[str, str]:
    """Return tags that name the code a run used: a SHA-256 of its source, and a git commit.

    The digest covers each file's name and bytes, with Windows line ends read as Unix ones,
    so the same code gives the same digest on any machine and checkout, git or not. A
    commit alone would not do: it misses uncommitted changes.

    Args:
        repo_dir: the root folder of a git repository (its ``.git`` is right there); when it
            has a ``HEAD`` commit, that commit is added as ``code.git_commit``.
        files: the source files to digest (default: :func:`training_modules`, every companion
            module a training run executes).

    Returns:
        ``{"code.sha256": digest, "code.files": "a.py,b.py"}``, plus ``"code.git_commit"``.

    Example:
        >>> sorted(code_version())
        ['code.files', 'code.sha256']
    """
    if repo_dir is not None and (
        not isinstance(repo_dir, (str, os.PathLike)) or not Path(repo_dir).is_dir()
    ):
        raise InvalidParameterError(
            f"repo_dir must be None or an existing folder, got {repo_dir!r}"
        )
    if files is None:
        paths = training_modules()
    else:
        if isinstance(files, (str, bytes, os.PathLike)) or not isinstance(files, Iterable):
            raise InvalidParameterError(
                f"files must be a list of paths, got {files!r}; accepted: e.g. ['train.py']"
            )
        paths = []
        for entry in files:
            if not isinstance(entry, (str, os.PathLike)):
                raise InvalidParameterError(f"files must hold paths, got {entry!r}")
            paths.append(Path(entry))
        missing = [p.name for p in paths if not p.is_file()]
        if not paths or missing:
            raise InvalidParameterError(
                f"cannot digest code files {missing or '[]'}; accepted: paths of existing files"
            )
        resolved = [p.resolve() for p in paths]
        if len(set(resolved)) != len(resolved):
            raise InvalidParameterError(
                f"files lists a file twice: {[p.name for p in paths]}"
            )
    digest = hashlib.sha256()
    for path in paths:
        digest.update(path.name.encode() + b"\0")
        digest.update(path.read_bytes().replace(b"\r\n", b"\n") + b"\0")
    tags = {"code.sha256": digest.hexdigest(), "code.files": ",".join(p.name for p in paths)}
    if repo_dir is not None and (Path(repo_dir) / ".git").exists():
        result = subprocess.run(  # noqa: S603
            ["git", "-C", str(repo_dir), "rev-parse", "--verify", "--quiet", "HEAD"],
            capture_output=True, text=True, check=False,
        )
        if result.returncode == 0 and result.stdout.strip():
            tags["code.git_commit"] = result.stdout.strip()
    return tags


# --------------------------------------------------------------------------- cost


def estimate_cost(cpu_seconds: float, price_per_cpu_hour: float) -> float:
    """Return the cost of ``cpu_seconds`` of compute at ``price_per_cpu_hour``.

    ``cost = cpu_seconds / 3600 * price_per_cpu_hour``, in the price's currency.
    """
    cpu_seconds = _check_number("cpu_seconds", cpu_seconds)
    price_per_cpu_hour = _check_number("price_per_cpu_hour", price_per_cpu_hour)
    return cpu_seconds / 3600.0 * price_per_cpu_hour


@dataclass
class Stopwatch:
    """Wall-clock and CPU seconds of the code inside a ``with`` block.

    CPU time is this process's (every thread, so OpenMP threads of the gradient-boosting model
    count), read with :func:`time.process_time`.
    """

    wall_seconds: float = 0.0
    cpu_seconds: float = 0.0

    def __post_init__(self) -> None:
        self.wall_seconds = _check_number("wall_seconds", self.wall_seconds)
        self.cpu_seconds = _check_number("cpu_seconds", self.cpu_seconds)

    def __enter__(self) -> Stopwatch:
        self._wall = time.perf_counter()
        self._cpu = time.process_time()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.wall_seconds = time.perf_counter() - self._wall
        self.cpu_seconds = time.process_time() - self._cpu


DEFAULT_PRICE_PER_CPU_HOUR = 0.05
"""A typical on-demand price of one cloud vCPU for an hour, in US dollars."""

DEFAULT_CPU_SECONDS_PER_MILLION_ROW_ITERATIONS = 0.15
"""CPU seconds one thread spends per million (training row x iteration) of the churn models,
measured on the book's 2-core reference machine: 0.09 to 0.23 across the chapter's sweep
(small trees and long fits at the low end, fixed costs weigh more in short fits)."""


def fitted_iterations(model: Any) -> int:
    """Return how many iterations a fitted churn model ran: boosting rounds or solver steps.

    The gradient-boosting model stops early, so its number of trees is an outcome of the fit
    (``n_iter_``), like the logistic solver's steps. It is deterministic for a given seed,
    data and library version, unlike the seconds the fit took.
    """
    estimator = model.steps[-1][1] if hasattr(model, "steps") else model
    n_iter = getattr(estimator, "n_iter_", None)
    if n_iter is None:
        raise InvalidParameterError(
            f"expected a fitted model with n_iter_ (HistGradientBoostingClassifier, "
            f"LogisticRegression or a pipeline ending in one), got {type(estimator).__name__}"
        )
    return int(max(int(n) for n in (n_iter if hasattr(n_iter, "__len__") else [n_iter])))


def work_cost(
    row_iterations: float,
    cpu_seconds_per_million: float = DEFAULT_CPU_SECONDS_PER_MILLION_ROW_ITERATIONS,
    price_per_cpu_hour: float = DEFAULT_PRICE_PER_CPU_HOUR,
) -> dict[str, float]:
    """Price an amount of training work, ``training rows x iterations``, at a calibrated rate.

    ``cpu_seconds = row_iterations / 1e6 * cpu_seconds_per_million`` and
    ``cost_usd = cpu_seconds / 3600 * price_per_cpu_hour`` (:func:`estimate_cost`). The work is
    deterministic, so the estimate is the same on every machine; the measured CPU seconds a
    run logs are not (they move with the processor and the machine's load).

    Example:
        >>> work_cost(1e6 * 3600, cpu_seconds_per_million=1.0, price_per_cpu_hour=0.05)
        {'row_iterations': 3600000000.0, 'cpu_seconds': 3600.0, 'cost_usd': 0.05}
    """
    row_iterations = _check_number("row_iterations", row_iterations)
    cpu_seconds_per_million = _check_number("cpu_seconds_per_million", cpu_seconds_per_million)
    _check_number("price_per_cpu_hour", price_per_cpu_hour)
    cpu_seconds = row_iterations / 1e6 * cpu_seconds_per_million
    return {
        "row_iterations": row_iterations,
        "cpu_seconds": cpu_seconds,
        "cost_usd": estimate_cost(cpu_seconds, price_per_cpu_hour),
    }


def significant(value: float, digits: int = 4) -> str:
    """Format ``value`` with ``digits`` significant digits (``0.0001234`` for 4 digits)."""
    check_int("digits", digits, minimum=1)
    if (
        isinstance(value, bool) or not isinstance(value, numbers.Real)
        or not math.isfinite(float(value))
    ):
        raise InvalidParameterError(f"value must be a finite number, got {value!r}")
    return f"{float(value):#.{digits}g}".rstrip(".") if value else "0"


# --------------------------------------------------------------------------- runs and sweeps


def log_training_run(
    train_frame: pd.DataFrame,
    val_frame: pd.DataFrame,
    kind: str,
    params: Mapping[str, Any] | None = None,
    *,
    experiment_id: str | None = None,
    run_name: str | None = None,
    nested: bool = False,
    tags: Mapping[str, str] | None = None,
    dataset_source: str | None = None,
    price_per_cpu_hour: float = DEFAULT_PRICE_PER_CPU_HOUR,
    log_model: bool = True,
    seed: int = 0,
    threads: int | None = 1,
) -> dict[str, Any]:
    """Train one model, validate it on a later snapshot and log everything to one MLflow run.

    The run gets the parameters (``kind``, the estimator's ``params``, ``seed``, the training
    and validation snapshots), the ``tags``, the training and validation frames as dataset
    inputs, the validation metrics (``val_roc_auc`` with its 95% DeLong interval
    ``val_roc_auc_low`` and ``val_roc_auc_high``, ``val_average_precision``, ``val_brier``),
    the iterations the fit ran (``n_iter``, see :func:`fitted_iterations`) and the work
    ``row_iterations`` (training rows x ``n_iter``), the measured ``wall_seconds``,
    ``cpu_seconds`` and ``cost_usd`` of training plus validation, and, with ``log_model``, the
    model (:func:`log_sklearn_model`).

    Training runs on ``threads`` threads (1 by default, None for the libraries' default): on
    a shared machine, OpenMP threads that wait for each other burn CPU time for nothing, and
    one thread per run makes CPU seconds, and so the cost, a property of the run rather than
    of the machine's load. A sweep scales out by running several runs at once instead.

    The run is tagged with the code version, ``code.sha256`` over every companion module a
    training run executes (:func:`code_version`), whatever ``tags`` say.

    Every argument is checked before the run is opened: frames without both classes, a
    validation month that is not later than the training months, parameters the estimator
    refuses, non-finite numbers, an unknown experiment raise a companion error and leave no
    run behind. A run whose training fails anyway is deleted.

    Returns:
        ``run_id``, ``kind``, ``params``, the metrics, the costs and the fitted ``model``.
    """
    plan = _RunPlan.checked(
        train_frame, val_frame, kind, params, run_name=run_name, nested=nested,
        price_per_cpu_hour=price_per_cpu_hour, log_model=log_model, seed=seed, threads=threads,
    )
    common = _SweepCommon.checked(experiment_id, tags, dataset_source, reserved=("sweep.role",))
    return _log_run(train_frame, val_frame, plan, common)


@dataclass(frozen=True)
class _RunPlan:
    """The checked settings of one run (everything but the frames and where it is logged)."""

    kind: str
    params: dict[str, Any]
    run_name: str | None
    nested: bool
    price_per_cpu_hour: float
    log_model: bool
    seed: int
    threads: int | None
    train_snapshots: tuple[str, ...]
    val_snapshots: tuple[str, ...]

    @classmethod
    def checked(cls, train_frame: Any, val_frame: Any, kind: Any, params: Any, *,
                run_name: Any, nested: Any, price_per_cpu_hour: Any, log_model: Any,
                seed: Any, threads: Any) -> _RunPlan:
        check_choice("model kind", kind, MODEL_KINDS)
        params = _check_params(kind, params)
        check_int("seed", seed, minimum=0)
        if threads is not None:
            check_int("threads", threads, minimum=1)
        train_snapshots, val_snapshots = _check_training_frames(train_frame, val_frame)
        return cls(
            kind=kind, params=params, run_name=_check_name("run_name", run_name, optional=True),
            nested=_check_bool("nested", nested),
            price_per_cpu_hour=_check_number("price_per_cpu_hour", price_per_cpu_hour),
            log_model=_check_bool("log_model", log_model), seed=seed, threads=threads,
            train_snapshots=tuple(train_snapshots), val_snapshots=tuple(val_snapshots),
        )


@dataclass(frozen=True)
class _SweepCommon:
    """Checked settings shared by the runs of a call: experiment, tags (with the code version)
    and the data source."""

    experiment_id: str | None
    tags: dict[str, str]
    dataset_source: str | None

    @classmethod
    def checked(cls, experiment_id: Any, tags: Any, dataset_source: Any,
                reserved: Sequence[str] = ()) -> _SweepCommon:
        tags = _with_code_tags(_check_tags(tags, reserved), code_version())
        if dataset_source is not None and (
            not isinstance(dataset_source, str) or not dataset_source.strip()
        ):
            raise InvalidParameterError(
                f"dataset_source must be None or a URI such as 'file:///path/data', got "
                f"{dataset_source!r}"
            )
        return cls(_check_experiment(experiment_id), tags, dataset_source)


def _log_run(
    train_frame: pd.DataFrame, val_frame: pd.DataFrame, plan: _RunPlan, common: _SweepCommon,
    extra_tags: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Open, fill and close one run from checked settings; delete it if anything fails."""
    import mlflow
    from threadpoolctl import threadpool_limits

    run_id = None
    try:
        with mlflow.start_run(experiment_id=common.experiment_id, run_name=plan.run_name,
                              nested=plan.nested) as run:
            run_id = run.info.run_id
            mlflow.log_params(
                {"kind": plan.kind, **plan.params, "seed": plan.seed,
                 "train_snapshots": ",".join(plan.train_snapshots),
                 "val_snapshot": ",".join(plan.val_snapshots)}
            )
            mlflow.set_tags({**common.tags, **(extra_tags or {})})
            for frame, context in ((train_frame, "training"), (val_frame, "validation")):
                mlflow.log_input(
                    frame_dataset(frame, source=common.dataset_source, name=f"churn-{context}"),
                    context=context,
                )
            with Stopwatch() as watch, threadpool_limits(limits=plan.threads):
                model = train(train_frame, plan.kind, seed=plan.seed, **plan.params)
                metrics = evaluate(model, val_frame)
            cost = estimate_cost(watch.cpu_seconds, plan.price_per_cpu_hour)
            auc = auc_interval(val_frame[TARGET], model.predict_proba(val_frame[FEATURES])[:, 1])
            n_iter = fitted_iterations(model)
            logged = {
                "val_roc_auc": metrics["roc_auc"],
                "val_roc_auc_low": auc.low,
                "val_roc_auc_high": auc.high,
                "n_iter": float(n_iter),
                "row_iterations": float(n_iter * len(train_frame)),
                "val_average_precision": metrics["average_precision"],
                "val_brier": metrics["brier"],
                "wall_seconds": watch.wall_seconds,
                "cpu_seconds": watch.cpu_seconds,
                "cost_usd": cost,
            }
            mlflow.log_metrics(logged)
            mlflow.log_params({"price_per_cpu_hour": plan.price_per_cpu_hour,
                               "threads": plan.threads})
            if plan.log_model:
                log_sklearn_model(model, train_frame)
    except BaseException:
        if run_id is not None:
            _delete_runs([run_id])
        raise
    return {"run_id": run_id, "kind": plan.kind, "params": plan.params, **logged,
            "model": model}


def frame_dataset(frame: pd.DataFrame, source: str | None = None, name: str | None = None):
    """Return an MLflow dataset of ``frame`` for ``mlflow.log_input``, with a fast schema.

    ``mlflow.data.from_pandas(frame, source=..., targets=..., name=...)`` is the library's
    call; it infers the schema value by value, 2-3 s per 50,000 rows with category columns.
    Column types are the frame's dtypes, so this takes them from the first rows and whether a
    column may hold missing values from all of them (vectorised); the digest still covers
    every row. The result is a :class:`mlflow.data.pandas_dataset.PandasDataset` whose
    ``schema`` is that one (MLflow's ``from_pandas`` has no schema argument).
    """
    import mlflow.data
    from mlflow.data.pandas_dataset import PandasDataset

    if not isinstance(frame, pd.DataFrame) or frame.empty or TARGET not in frame.columns:
        raise InvalidParameterError(
            f"frame must be a non-empty DataFrame with a {TARGET!r} column, got "
            f"{type(frame).__name__}"
        )
    if source is not None and (not isinstance(source, str) or not source.strip()):
        raise InvalidParameterError(f"source must be None or a URI string, got {source!r}")
    _check_name("dataset name", name, optional=True)
    schema = _frame_schema(frame)

    class _Dataset(PandasDataset):
        @property
        def schema(self):  # noqa: D401 - MLflow's property, computed once above
            return schema

    # from_pandas resolves the source (a URI, or the code that runs when None); an empty
    # frame makes that free. The dataset itself is built on the whole frame.
    resolved = mlflow.data.from_pandas(frame.iloc[:0], source=source).source
    return _Dataset(df=frame, source=resolved, targets=TARGET, name=name)


def _frame_schema(frame: pd.DataFrame, rows: int = 1000) -> Any:
    """Return the MLflow schema of ``frame``: types from its first ``rows`` rows, whether each
    column is required (has no missing value) from all of them."""
    from mlflow.models import infer_signature
    from mlflow.types import ColSpec, Schema

    with warnings.catch_warnings():
        # A local filter, restored on exit: MLflow hints that integer columns (ids, the label)
        # cannot hold missing values, a hint for model signatures, not for datasets.
        warnings.filterwarnings("ignore", message="Hint: Inferred schema contains integer")
        head = infer_signature(frame.head(rows)).inputs
    missing = frame.isna().any()
    return Schema([
        ColSpec(type=spec.type, name=spec.name, required=not bool(missing[spec.name]))
        for spec in head.inputs
    ])


EARLY_STOPPING: dict[str, Any] = {
    "early_stopping": True,
    "validation_fraction": 0.2,
    "n_iter_no_change": 20,
    "max_iter": 2000,
}
"""The gradient-boosting runs' budget: as many trees as improve the loss on a held-out fifth
of the training rows, stopping after 20 rounds without improvement. Every learning rate gets
the trees it needs, so a comparison of learning rates is not a comparison of budgets."""


def sweep_grid(
    logistic_c: Sequence[float] = (0.01, 1.0),
    gbm_learning_rates: Sequence[float] = (0.05, 0.1, 0.2),
    gbm_leaf_counts: Sequence[int] = (4, 16),
    gbm_budget: Mapping[str, Any] | None = None,
) -> list[tuple[str, dict[str, Any]]]:
    """Return the (kind, params) pairs of a sweep over two model families.

    ``logistic`` runs vary the inverse regularisation strength ``C``; ``gbm`` runs vary the
    learning rate and the number of leaves per tree (every combination), each with the same
    ``gbm_budget`` (default :data:`EARLY_STOPPING`; pass ``{}`` for the estimator's defaults).

    Example:
        >>> len(sweep_grid())
        8
        >>> sweep_grid()[2][1]["early_stopping"]
        True
    """
    if gbm_budget is not None and not isinstance(gbm_budget, Mapping):
        raise InvalidParameterError(
            f"gbm_budget must be None or a mapping of HistGradientBoostingClassifier "
            f"parameters, got {type(gbm_budget).__name__}"
        )
    budget = dict(EARLY_STOPPING if gbm_budget is None else gbm_budget)
    clash = sorted(set(budget) & {"learning_rate", "max_leaf_nodes"})
    if clash:
        raise InvalidParameterError(
            f"gbm_budget must not set {clash}: the grid varies them; accepted: other "
            "HistGradientBoostingClassifier parameters such as max_iter or early_stopping"
        )
    _check_params("gbm", budget, label="gbm_budget")
    for label, values in (
        ("logistic_c", logistic_c), ("gbm_learning_rates", gbm_learning_rates),
        ("gbm_leaf_counts", gbm_leaf_counts),
    ):
        if isinstance(values, (str, bytes)) or not isinstance(values, Iterable):
            raise InvalidParameterError(f"{label} must be a list of numbers, got {values!r}")
    logistic_c, gbm_learning_rates = list(logistic_c), list(gbm_learning_rates)
    gbm_leaf_counts = list(gbm_leaf_counts)
    for label, values in (("logistic_c", logistic_c), ("gbm_learning_rates", gbm_learning_rates)):
        if not values or any(
            isinstance(v, bool) or not isinstance(v, numbers.Real)
            or not math.isfinite(float(v)) or v <= 0 for v in values
        ):
            raise InvalidParameterError(
                f"{label} must be positive finite numbers, got {values!r}"
            )
    if not gbm_leaf_counts or any(
        isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < 2
        for v in gbm_leaf_counts
    ):
        raise InvalidParameterError(f"gbm_leaf_counts must be ints >= 2, got {gbm_leaf_counts!r}")
    for label, values in (
        ("logistic_c", logistic_c), ("gbm_learning_rates", gbm_learning_rates),
        ("gbm_leaf_counts", gbm_leaf_counts),
    ):
        if len({float(v) for v in values}) != len(values):
            raise InvalidParameterError(
                f"{label} lists a value twice, got {values!r}; a repeated setting would "
                "train the same model twice"
            )
    grid: list[tuple[str, dict[str, Any]]] = [("logistic", {"C": float(c)}) for c in logistic_c]
    grid += [
        ("gbm", {"learning_rate": float(rate), "max_leaf_nodes": int(leaves), **budget})
        for leaves in gbm_leaf_counts
        for rate in gbm_learning_rates
    ]
    return grid


def run_sweep(
    train_frame: pd.DataFrame,
    val_frame: pd.DataFrame,
    grid: Sequence[tuple[str, Mapping[str, Any]]],
    *,
    experiment_id: str | None = None,
    parent_name: str = "sweep",
    tags: Mapping[str, str] | None = None,
    dataset_source: str | None = None,
    price_per_cpu_hour: float = DEFAULT_PRICE_PER_CPU_HOUR,
    log_models: bool = True,
    seed: int = 0,
) -> pd.DataFrame:
    """Log one nested run per (kind, params) of ``grid`` under a parent run; return the results.

    Every child trains with the same model ``seed``. The parent run records the grid size,
    the best validation ROC AUC and the sweep's total work (``row_iterations``), CPU seconds
    and cost. Child runs are named ``<kind>-<n>`` in grid order.

    The whole grid and every argument are checked before the parent run is opened; if a run
    fails anyway, the parent and every child logged so far are deleted: a sweep is logged
    whole or not at all. The parent and every child carry the code version ``code.sha256``.

    Returns:
        One row per child run: ``parent_run_id``, ``run`` (its name), ``run_id``, ``kind``,
        ``params``, the logged metrics and costs, and the fitted ``model``.
    """
    import mlflow

    if isinstance(grid, (str, bytes, Mapping)) or not isinstance(grid, Iterable):
        raise InvalidParameterError(
            f"grid must be a list of (kind, params) pairs from sweep_grid(), got {grid!r}"
        )
    grid = list(grid)
    if not grid:
        raise InvalidParameterError("grid is empty; build one with sweep_grid()")
    plans, seen, counters = [], set(), dict.fromkeys(MODEL_KINDS, 0)
    for entry in grid:
        if not (isinstance(entry, tuple) and len(entry) == 2 and isinstance(entry[1], Mapping)):
            raise InvalidParameterError(
                f"grid entries must be (kind, params) pairs, got {entry!r}"
            )
        kind, params = entry
        check_choice("model kind", kind, MODEL_KINDS)
        key = (kind, repr(sorted(dict(params).items(), key=lambda item: str(item[0]))))
        if key in seen:
            raise InvalidParameterError(
                f"grid holds ({kind!r}, {dict(params)}) twice; accepted: distinct settings"
            )
        seen.add(key)
        counters[kind] += 1
        plans.append(_RunPlan.checked(
            train_frame, val_frame, kind, params, run_name=f"{kind}-{counters[kind]}",
            nested=True, price_per_cpu_hour=price_per_cpu_hour, log_model=log_models, seed=seed,
            threads=1,
        ))
    _check_name("parent_name", parent_name)
    common = _SweepCommon.checked(experiment_id, tags, dataset_source, reserved=("sweep.role",))

    results: list[dict[str, Any]] = []
    parent_id = None
    try:
        with mlflow.start_run(experiment_id=common.experiment_id, run_name=parent_name) as parent:
            parent_id = parent.info.run_id
            mlflow.set_tags({**common.tags, "sweep.role": "parent"})
            for plan in plans:
                result = _log_run(train_frame, val_frame, plan, common,
                                  extra_tags={"sweep.role": "child"})
                results.append({"run": plan.run_name, **result})
            table = pd.DataFrame(results)
            mlflow.log_params({"grid_size": len(grid), "price_per_cpu_hour": price_per_cpu_hour})
            mlflow.log_metrics(
                {
                    "best_val_roc_auc": float(table["val_roc_auc"].max()),
                    "sweep_row_iterations": float(table["row_iterations"].sum()),
                    "sweep_cpu_seconds": float(table["cpu_seconds"].sum()),
                    "sweep_cost_usd": float(table["cost_usd"].sum()),
                }
            )
    except BaseException:
        _delete_runs([r["run_id"] for r in results] + ([parent_id] if parent_id else []))
        raise
    table.insert(0, "parent_run_id", parent_id)
    return table


# --------------------------------------------------------------------------- queries

RUN_TABLE_PARAMS = ("kind", "C", "learning_rate", "max_leaf_nodes")
RUN_TABLE_METRICS = ("val_roc_auc", "val_roc_auc_low", "val_roc_auc_high", "n_iter")


def runs_table(experiment_ids: Sequence[str], decimals: int = 3) -> pd.DataFrame:
    """Return the sweep's child runs as a table with nothing volatile in it.

    Columns: run name, the parameters of :data:`RUN_TABLE_PARAMS` and the metrics of
    :data:`RUN_TABLE_METRICS` (the validation ROC AUC with its 95% interval, rounded to
    ``decimals``, and the iterations fitted), sorted by run name. Run ids, times and costs
    (which vary from one execution to the next) are left out.
    """
    import mlflow

    experiment_ids = _check_experiment_ids(experiment_ids)
    check_int("decimals", decimals, minimum=0)
    runs = mlflow.search_runs(
        experiment_ids=experiment_ids, filter_string="tags.`sweep.role` = 'child'",
        output_format="pandas",
    )
    if runs.empty:
        return pd.DataFrame(columns=["run", *RUN_TABLE_PARAMS, *RUN_TABLE_METRICS])
    table = pd.DataFrame({"run": runs["tags.mlflow.runName"]})
    for name in RUN_TABLE_PARAMS:
        column = runs.get(f"params.{name}")
        table[name] = column.fillna("") if column is not None else ""
    for name in RUN_TABLE_METRICS:
        column = runs[f"metrics.{name}"]
        table[name] = column.astype(int) if name == "n_iter" else column.round(decimals)
    order = table["run"].str.extract(r"^(\w+)-(\d+)$")
    table = table.assign(_kind=order[0], _n=order[1].astype(float)).sort_values(["_kind", "_n"])
    return table.drop(columns=["_kind", "_n"]).reset_index(drop=True)


def best_run(experiment_ids: Sequence[str], metric: str = "val_roc_auc", kind: str | None = None):
    """Return the child run with the highest ``metric`` (of one model ``kind`` if given).

    The choice is a query, ``search_runs(order_by=[f"metrics.{metric} DESC"], max_results=1)``,
    the same one any colleague can run against the tracking server.
    """
    import mlflow

    _check_metric(metric)
    experiment_ids = _check_experiment_ids(experiment_ids)
    query = "tags.`sweep.role` = 'child'"
    if kind is not None:
        check_choice("model kind", kind, MODEL_KINDS)
        query += f" and params.kind = '{kind}'"
    runs = mlflow.search_runs(
        experiment_ids=experiment_ids, filter_string=query,
        order_by=[f"metrics.{metric} DESC"], max_results=1, output_format="list",
    )
    if not runs:
        raise WorkspaceError(
            f"no sweep run in experiment(s) {list(experiment_ids)} matches {query!r}"
        )
    return runs[0]


def estimator_params(run: Any) -> dict[str, Any]:
    """Return the estimator parameters a sweep run logged, with their types restored.

    MLflow stores parameters as strings; numbers come back as ``int`` or ``float``, ``True``,
    ``False`` and ``None`` as themselves. The bookkeeping parameters (``kind``, ``seed``,
    snapshots, price, threads) are left out.
    """
    bookkeeping = {
        "kind", "seed", "train_snapshots", "val_snapshot", "price_per_cpu_hour", "threads",
    }
    params: dict[str, Any] = {}
    literals = {"True": True, "False": False, "None": None}
    for key, text in _run_params(run).items():
        if key in bookkeeping:
            continue
        if text in literals:
            params[key] = literals[text]
            continue
        for cast in (int, float):
            try:
                params[key] = cast(text)
                break
            except ValueError:
                continue
        else:
            params[key] = text
    return params


def _run_params(run: Any) -> Mapping[str, str]:
    """Return the parameters of a run logged by :func:`log_training_run`, or raise."""
    params = getattr(getattr(run, "data", None), "params", None)
    if not isinstance(params, Mapping) or "kind" not in params:
        raise InvalidParameterError(
            f"expected an MLflow run logged by log_training_run (with a 'kind' parameter), "
            f"got {type(run).__name__}"
        )
    return params


def rebuild_model(run: Any, train_frame: pd.DataFrame) -> Pipeline:
    """Train again the model a sweep run describes, from nothing but what the run logged.

    The kind, the estimator parameters (:func:`estimator_params`), the seed and the number of
    threads come from the run; ``train_frame`` must be the frame it trained on (the run's
    ``train_snapshots`` parameter and dataset input say which).
    """
    from threadpoolctl import threadpool_limits

    params = _run_params(run)
    try:
        seed = int(params.get("seed", "0"))
        threads = params.get("threads", "None")
        threads = None if threads == "None" else int(threads)
    except ValueError as exc:
        raise InvalidParameterError(
            f"run logged seed={params.get('seed')!r}, threads={params.get('threads')!r}; "
            "accepted: integers (as log_training_run logs them)"
        ) from exc
    kind = check_choice("model kind", params["kind"], MODEL_KINDS)
    estimator = _check_params(kind, estimator_params(run))
    if not isinstance(train_frame, pd.DataFrame):
        raise InvalidParameterError(
            f"train_frame must be a pandas DataFrame, got {type(train_frame).__name__}"
        )
    with threadpool_limits(limits=threads):
        return train(train_frame, kind, seed=seed, **estimator)


def log_best_models(
    experiment_ids: Sequence[str],
    train_frame: pd.DataFrame,
    val_frame: pd.DataFrame,
    kinds: Sequence[str] = MODEL_KINDS,
    metric: str = "val_roc_auc",
) -> dict[str, dict[str, Any]]:
    """Rebuild the best run of each model kind from its logged parameters and log its model.

    For each kind, the best run is found by :func:`best_run`, the model is trained again from
    the parameters that run logged, its validation ROC AUC is recomputed, and the model is
    logged into that same run (:func:`log_sklearn_model`). A rebuilt model that does not
    reproduce the logged ROC AUC raises: the run's record would not be enough to rebuild it.

    Returns:
        For each kind: ``run`` (the MLflow run), ``model`` (the fitted pipeline),
        ``model_info`` and ``val_roc_auc`` (the recomputed value).
    """
    import mlflow

    experiment_ids = _check_experiment_ids(experiment_ids)
    kinds = _check_kinds(kinds)
    _check_metric(metric)
    _check_training_frames(train_frame, val_frame)
    # Find, rebuild and check every kind's model first: nothing is logged unless all rebuild.
    best: dict[str, dict[str, Any]] = {}
    for kind in kinds:
        run = best_run(experiment_ids, metric=metric, kind=kind)
        model = rebuild_model(run, train_frame)
        recomputed = evaluate(model, val_frame)["roc_auc"]
        logged = run.data.metrics[metric] if metric == "val_roc_auc" else None
        if logged is not None and abs(recomputed - logged) > 1e-9:
            raise WorkspaceError(
                f"run {run.info.run_name!r} logged {metric}={logged:.6f} but its parameters "
                f"rebuild a model scoring {recomputed:.6f}: the frames differ from the run's"
            )
        best[kind] = {"run": run, "model": model, "val_roc_auc": recomputed}
    for entry in best.values():
        with mlflow.start_run(run_id=entry["run"].info.run_id):
            entry["model_info"] = log_sklearn_model(entry["model"], train_frame)
    return best


def experiment_cost(experiment_ids: Sequence[str]) -> dict[str, float]:
    """Sum the work, wall seconds, CPU seconds and cost of every run of ``experiment_ids`` that
    logged a cost (sweep children and single runs; a sweep's parent only logs their total).

    ``row_iterations`` (training rows x iterations, see :func:`work_cost`) is deterministic;
    the seconds and the cost were measured and vary from one execution to the next.
    """
    import mlflow

    experiment_ids = _check_experiment_ids(experiment_ids)
    runs = mlflow.search_runs(
        experiment_ids=experiment_ids, filter_string="metrics.cost_usd >= 0",
        output_format="pandas",
    )
    work = runs.get("metrics.row_iterations")
    return {
        "runs": int(len(runs)),
        "row_iterations": float(work.sum()) if work is not None and len(runs) else 0.0,
        "wall_seconds": float(runs["metrics.wall_seconds"].sum()) if len(runs) else 0.0,
        "cpu_seconds": float(runs["metrics.cpu_seconds"].sum()) if len(runs) else 0.0,
        "cost_usd": float(runs["metrics.cost_usd"].sum()) if len(runs) else 0.0,
    }


# --------------------------------------------------------------------------- choosing a model


@dataclass(frozen=True)
class Choice:
    """The outcome of :func:`prefer_simpler`.

    Attributes:
        chosen: name of the chosen model.
        simpler: name of the simpler (cheaper) model.
        other: name of the other model.
        difference: AUC(other) - AUC(simpler) with its paired 95% DeLong interval.
        margin: how much better the other model had to be (the interval's lower end above it).
        reason: one sentence that says why.
    """

    chosen: str
    simpler: str
    other: str
    difference: Estimate
    margin: float
    reason: str

    def __post_init__(self) -> None:
        for label in ("chosen", "simpler", "other", "reason"):
            if not isinstance(getattr(self, label), str):
                raise InvalidParameterError(
                    f"{label} must be a string, got {getattr(self, label)!r}"
                )
        if self.simpler == self.other or self.chosen not in (self.simpler, self.other):
            raise InvalidParameterError(
                f"chosen {self.chosen!r} must be one of two different models, simpler "
                f"{self.simpler!r} or other {self.other!r}"
            )
        if not isinstance(self.difference, Estimate):
            raise InvalidParameterError(
                f"difference must be an Estimate, got {type(self.difference).__name__}"
            )
        _check_number("margin", self.margin)


def prefer_simpler(
    y: object,
    simpler: tuple[str, object],
    other: tuple[str, object],
    margin: float = 0.0,
    level: float = LEVEL,
) -> Choice:
    """Keep the simpler model unless the other one's ROC AUC is higher by a margin that holds.

    The rule: the other (costlier, harder to explain) model is chosen only if the whole paired
    DeLong interval of ``AUC(other) - AUC(simpler)`` on the rows ``y`` lies above ``margin``.
    A difference whose interval holds the margin is not evidence enough to pay for the other
    model. Apply it on the validation month; report the chosen model on a later month.

    Args:
        y: the labels (0 or 1) of the selection rows.
        simpler: ``(name, scores)`` of the simpler model.
        other: ``(name, scores)`` of the other model, on the same rows.
        margin: the improvement, in ROC AUC, the other model must clear (>= 0).

    Example:
        >>> y = [0, 0, 1, 1, 0, 1, 0, 1]
        >>> prefer_simpler(y, ("a", [.1, .2, .8, .9, .3, .7, .4, .6]),
        ...                ("b", [.1, .2, .8, .9, .3, .7, .4, .6])).chosen
        'a'
    """
    margin = _check_number("margin (in ROC AUC)", margin)
    for label, entry in (("simpler", simpler), ("other", other)):
        if not (isinstance(entry, tuple) and len(entry) == 2 and isinstance(entry[0], str)
                and entry[0]):
            raise InvalidParameterError(
                f"{label} must be a (name, scores) pair, got {type(entry).__name__}"
            )
    if simpler[0] == other[0]:
        raise InvalidParameterError(f"the two models need different names, both are {simpler[0]!r}")
    difference = auc_difference(y, other[1], simpler[1], level)
    if difference.low > margin:
        chosen = other[0]
        reason = (f"{other[0]} is better than {simpler[0]} by more than {margin:g} ROC AUC: its "
                  f"whole paired interval {difference.format(3, signed=True)} lies above it")
    else:
        chosen = simpler[0]
        reason = (f"{other[0]} minus {simpler[0]} is {difference.format(3, signed=True)}: the "
                  f"interval does not clear {margin:g}, so the simpler {simpler[0]} is kept")
    return Choice(chosen, simpler[0], other[0], difference, float(margin), reason)


def oracle_scores(dataset: Any, frame: pd.DataFrame) -> pd.Series:
    """Return the simulator's true churn probability of each row of ``frame``.

    A model that scored customers with these would reach the best ROC AUC the data allows:
    the yardstick a measured model is graded against. Never a model input.
    """
    truth = getattr(dataset, "truth", None)
    if not isinstance(truth, pd.DataFrame) or "churn_probability" not in truth.columns:
        raise InvalidParameterError(
            "dataset must be a simulated ChurnDataset with a truth table (churn_probability)"
        )
    if not isinstance(frame, pd.DataFrame) or not {"customer_id", "snapshot_timestamp"} <= set(
        frame.columns
    ):
        raise InvalidParameterError(
            "frame must have customer_id and snapshot_timestamp columns; build it with "
            "snapshot_features()"
        )
    keys = ["customer_id", "snapshot_timestamp"]
    joined = frame[keys].merge(truth[[*keys, "churn_probability"]], on=keys, how="left")
    if joined["churn_probability"].isna().any():
        missing = int(joined["churn_probability"].isna().sum())
        raise InvalidParameterError(
            f"{missing} row(s) of frame have no true probability; accepted: rows of the "
            "dataset's own snapshots"
        )
    return pd.Series(joined["churn_probability"].to_numpy(), index=frame.index,
                     name="churn_probability")


# --------------------------------------------------------------------------- Azure ML

_AZURE_NAME_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.()")


def azureml_tracking_uri(
    subscription_id: str, resource_group: str, workspace: str, region: str = "westeurope"
) -> str:
    """Build the ``azureml://`` MLflow tracking URI of an Azure Machine Learning workspace.

    With the ``azureml-mlflow`` plugin installed and an Azure login, ``mlflow.set_tracking_uri``
    with this URI sends the same runs, parameters, metrics and models to the workspace. This
    only builds the string: nothing is contacted.

    Example:
        >>> azureml_tracking_uri("00000000-0000-0000-0000-000000000000", "rg", "ws").split("/")[2]
        'westeurope.api.azureml.ms'
    """
    import uuid

    try:
        if not isinstance(subscription_id, str) or str(uuid.UUID(subscription_id)) != (
            subscription_id.lower()
        ):
            raise ValueError(subscription_id)
    except ValueError as exc:
        raise InvalidParameterError(
            f"subscription_id must be a GUID like '00000000-0000-0000-0000-000000000000', "
            f"got {subscription_id!r}"
        ) from exc
    for label, value in (("resource_group", resource_group), ("workspace", workspace)):
        if not isinstance(value, str) or not value or not set(value) <= _AZURE_NAME_CHARS:
            raise InvalidParameterError(
                f"{label} must be a non-empty Azure resource name (letters, digits, '-', '_', "
                f"'.', '(', ')'), got {value!r}"
            )
    if not isinstance(region, str) or not region.isalnum() or not region.islower():
        raise InvalidParameterError(
            f"region must be an Azure region name such as 'westeurope', got {region!r}"
        )
    return (
        f"azureml://{region}.api.azureml.ms/mlflow/v1.0/subscriptions/{subscription_id}"
        f"/resourceGroups/{resource_group}/providers/Microsoft.MachineLearningServices"
        f"/workspaces/{workspace}"
    )
