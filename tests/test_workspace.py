"""Workspaces: isolated folders, prerequisites built once, offline set-up, nothing at import."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from companion import workspace
from companion.core.env import OFFLINE_ENV
from companion.data import SimulationConfig
from companion.errors import InvalidParameterError, UnknownNameError, WorkspaceError
from companion.tracking import ensure_experiment
from companion.workspace import Prerequisite, Workspace

SMALL = SimulationConfig(n_customers=150, months=3, scenarios=())


def test_create_makes_an_isolated_folder_with_its_places(tmp_path):
    ws = Workspace.create("05-demo", root=tmp_path, config=SMALL)
    assert ws.path == tmp_path / "05-demo" and (ws.path / workspace.MARKER).exists()
    for place in (ws.data_dir, ws.artifact_root, ws.feast_dir, ws.dvc_dir, ws.reports_dir):
        assert place.is_dir() and place.parent == ws.path
    assert ws.tracking_uri == f"sqlite:///{ws.path / 'mlflow.db'}"
    assert ws.relative(ws.reports_dir / "drift.html") == "<workspace>/reports/drift.html"


def test_two_chapters_never_share_a_folder(tmp_path):
    a = Workspace.create("03-a", root=tmp_path, config=SMALL)
    b = Workspace.create("04-b", root=tmp_path, config=SMALL)
    (a.reports_dir / "x.txt").write_text("a")
    assert not (b.reports_dir / "x.txt").exists()
    assert a.tracking_uri != b.tracking_uri


def test_fresh_wipes_a_previous_run_and_keep_does_not(tmp_path):
    ws = Workspace.create("01-x", root=tmp_path, config=SMALL)
    (ws.path / "old.txt").write_text("old")
    kept = Workspace.create("01-x", root=tmp_path, config=SMALL, fresh=False)
    assert (kept.path / "old.txt").exists()
    fresh = Workspace.create("01-x", root=tmp_path, config=SMALL)
    assert not (fresh.path / "old.txt").exists()


def test_a_folder_that_is_not_a_workspace_is_never_wiped(tmp_path):
    precious = tmp_path / "01-x"
    precious.mkdir()
    (precious / "thesis.tex").write_text("years of work")
    with pytest.raises(WorkspaceError, match="is not a workspace"):
        Workspace.create("01-x", root=tmp_path)
    assert (precious / "thesis.tex").read_text() == "years of work"


@pytest.mark.parametrize("name", ["", "../escape", "a b", None, "x/y"])
def test_bad_workspace_names_are_refused(tmp_path, name):
    with pytest.raises(InvalidParameterError, match="workspace name must be"):
        Workspace.create(name, root=tmp_path)


def test_config_must_be_a_simulation_config(tmp_path):
    with pytest.raises(InvalidParameterError, match="config must be a SimulationConfig, got dict"):
        Workspace.create("x", root=tmp_path, config={"n_customers": 5})


def test_data_prerequisite_is_built_once_and_written(tmp_path):
    ws = Workspace.create("01-x", root=tmp_path, config=SMALL)
    first = ws.require("data")
    assert ws.require("data") is first
    assert ws.built() == ["data"]
    assert sorted(p.name for p in ws.data_dir.iterdir()) == sorted(
        ["customers.parquet", "activity.parquet", "labels.parquet", "prices.parquet", "truth.parquet",
         "onsets.parquet"]
    )
    assert first.config == SMALL


def test_mlflow_prerequisite_names_the_workspace_store_and_changes_nothing_global(tmp_path):
    import mlflow

    before = (mlflow.get_tracking_uri(), mlflow.get_registry_uri(), dict(os.environ))
    ws = Workspace.create("05-x", root=tmp_path, config=SMALL)
    uri = ws.require("mlflow")
    assert uri == ws.tracking_uri
    experiment_id = ensure_experiment(ws, "churn")
    assert ensure_experiment(ws, "churn") == experiment_id
    location = mlflow.MlflowClient(uri).get_experiment(experiment_id).artifact_location
    assert location.startswith(ws.artifact_root.as_uri())
    assert ws.mlflow_db.exists()
    assert (mlflow.get_tracking_uri(), mlflow.get_registry_uri(), dict(os.environ)) == before


def test_unknown_prerequisite_lists_the_known_ones(tmp_path):
    ws = Workspace.create("x", root=tmp_path, config=SMALL)
    with pytest.raises(UnknownNameError, match=r"unknown prerequisite 'feature'; known: .*data"):
        ws.require("feature")
    with pytest.raises(InvalidParameterError, match="needs at least one prerequisite"):
        ws.require()


def test_prerequisites_build_their_requirements_first(tmp_path, monkeypatch):
    order = []

    def build(name):
        return lambda ws: order.append(name) or name

    monkeypatch.setitem(workspace.PREREQUISITES, "a", Prerequisite("a", build("a")))
    monkeypatch.setitem(workspace.PREREQUISITES, "b", Prerequisite("b", build("b"), ("a",)))
    ws = Workspace.create("x", root=tmp_path / "ws", config=SMALL)
    assert ws.require("b") == "b" and ws.require("a", "b") == ("a", "b")
    assert order == ["a", "b"] and ws.built() == ["a", "b"]


def test_each_build_gives_its_freed_memory_back(tmp_path, monkeypatch):
    """A build's leftovers go back to the system once, after the build, not on a cached read."""
    calls = []
    monkeypatch.setattr(workspace, "return_free_memory", lambda: calls.append("freed"))
    monkeypatch.setitem(workspace.PREREQUISITES, "a", Prerequisite("a", lambda ws: 1))
    monkeypatch.setitem(workspace.PREREQUISITES, "b", Prerequisite("b", lambda ws: 2, ("a",)))
    ws = Workspace.create("x", root=tmp_path / "ws", config=SMALL)
    assert ws.require("b") == 2 and calls == ["freed", "freed"]
    assert ws.require("a", "b") == (1, 2) and calls == ["freed", "freed"]


def test_returning_free_memory_collects_cycles_and_releases_arrow_s_pool(monkeypatch):
    import gc
    import types
    import weakref

    released = []
    pool = types.SimpleNamespace(release_unused=lambda: released.append(True))
    fake = types.SimpleNamespace(default_memory_pool=lambda: pool)
    monkeypatch.setitem(sys.modules, "pyarrow", fake)

    class Node:
        pass

    a, b = Node(), Node()
    a.other, b.other = b, a  # a cycle: only the cyclic collector frees it
    alive = weakref.ref(a)
    del a, b
    gc.disable()
    try:
        assert alive() is not None
        workspace.return_free_memory()
    finally:
        gc.enable()
    assert alive() is None and released == [True]


def test_a_prerequisite_cycle_is_reported(tmp_path, monkeypatch):
    monkeypatch.setitem(workspace.PREREQUISITES, "p", Prerequisite("p", print, ("q",)))
    monkeypatch.setitem(workspace.PREREQUISITES, "q", Prerequisite("q", print, ("p",)))
    ws = Workspace.create("x", root=tmp_path, config=SMALL)
    with pytest.raises(WorkspaceError, match="cycle: p -> q -> p"):
        ws.require("p")


def test_registering_a_prerequisite_with_unknown_requirements_fails():
    with pytest.raises(UnknownNameError, match=r"requires unknown \['nope'\]"):
        workspace.register_prerequisite(Prerequisite("z", print, ("nope",)))
    assert "z" not in workspace.PREREQUISITES


def test_importing_the_companion_changes_nothing(tmp_path):
    """Import every companion module in a clean interpreter: no env var set, no file created."""
    code = (
        "import os, pkgutil, importlib\n"
        # third-party libraries set variables of their own on import; load them first
        "import sklearn, mlflow, feast, dvc.api, evidently, deltalake, matplotlib, nbformat\n"
        "import companion\n"
        "before = dict(os.environ)\n"
        "for m in pkgutil.walk_packages(companion.__path__, 'companion.'):\n"
        "    if not m.name.endswith('__main__'):\n"
        "        importlib.import_module(m.name)\n"
        "assert dict(os.environ) == before, set(os.environ) ^ set(before)\n"
        "print(sorted(os.listdir('.')))\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in OFFLINE_ENV}
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"


def test_setup_notebook_drops_inherited_mlflow_targets(monkeypatch):
    monkeypatch.setenv("MLFLOW_EXPERIMENT_ID", "4")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://example.invalid")
    workspace.setup_notebook()
    assert "MLFLOW_EXPERIMENT_ID" not in os.environ and "MLFLOW_TRACKING_URI" not in os.environ
    assert os.environ["MLFLOW_LOGGING_LEVEL"] == "ERROR"
    assert os.environ["MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT"] == "true"


# --------------------------------------------------------------------------- bad input, everywhere


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"name": "", "builder": print}, "prerequisite name must be letters"),
        ({"name": "a b", "builder": print}, "prerequisite name must be letters"),
        ({"name": 3, "builder": print}, "got 3"),
        ({"name": "a", "builder": "module:function"}, "builder must be a function taking the workspace"),
        ({"name": "a", "builder": print, "requires": "data"}, "requires must be a tuple"),
        ({"name": "a", "builder": print, "requires": ("data", "data")}, "distinct prerequisites"),
        ({"name": "a", "builder": print, "requires": ("a",)}, "other than 'a'"),
        ({"name": "a", "builder": print, "requires": (None,)}, "got None"),
        ({"name": "a", "builder": print, "description": 5}, "description must be a str"),
    ],
)
def test_a_prerequisite_is_checked_when_it_is_defined(kwargs, message):
    with pytest.raises(InvalidParameterError, match=message):
        Prerequisite(**kwargs)


def test_registering_twice_is_idempotent_and_a_clash_is_refused(monkeypatch):
    monkeypatch.setattr(workspace, "PREREQUISITES", dict(workspace.PREREQUISITES))
    before = dict(workspace.PREREQUISITES)
    workspace.register_prerequisite(workspace.PREREQUISITES["data"])  # same definition: no-op
    assert workspace.PREREQUISITES == before
    with pytest.raises(InvalidParameterError, match="prerequisite 'data' is already registered"):
        workspace.register_prerequisite(Prerequisite("data", print))
    with pytest.raises(InvalidParameterError, match="expected a Prerequisite, got 'data' of type str"):
        workspace.register_prerequisite("data")
    assert workspace.PREREQUISITES == before


def test_create_refuses_bad_roots_and_flags_before_touching_disk(tmp_path):
    afile = tmp_path / "file.txt"
    afile.write_text("x")
    with pytest.raises(InvalidParameterError, match="root must be a folder path"):
        Workspace.create("a", root=None, config=SMALL)
    with pytest.raises(WorkspaceError, match="exists and is not a folder"):
        Workspace.create("a", root=afile, config=SMALL)
    with pytest.raises(InvalidParameterError, match="fresh must be True or False, got 'yes'"):
        Workspace.create("a", root=tmp_path, config=SMALL, fresh="yes")
    with pytest.raises(InvalidParameterError, match="workspace name must"):
        Workspace.create("..", root=tmp_path, config=SMALL)
    (tmp_path / "taken").write_text("a file")
    with pytest.raises(WorkspaceError, match="exists and is a file"):
        Workspace.create("taken", root=tmp_path, config=SMALL)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file.txt", "taken"]


def test_the_constructor_only_opens_an_existing_workspace(tmp_path):
    with pytest.raises(WorkspaceError, match="use Workspace.create"):
        Workspace(tmp_path / "missing", SMALL)
    with pytest.raises(WorkspaceError, match="is not a workspace"):
        Workspace(tmp_path, SMALL)
    ws = Workspace.create("a", root=tmp_path, config=SMALL)
    with pytest.raises(InvalidParameterError, match="config must be a SimulationConfig, got NoneType"):
        Workspace(ws.path, None)
    assert Workspace(ws.path, SMALL).path == ws.path


def test_require_checks_every_name_before_building_any(tmp_path):
    ws = Workspace.create("a", root=tmp_path, config=SMALL)
    with pytest.raises(UnknownNameError, match="unknown prerequisite 'nope'"):
        ws.require("data", "nope")
    with pytest.raises(InvalidParameterError, match=r"prerequisite names must be str, got \['data'\]"):
        ws.require(["data"])
    assert ws.built() == [] and list(ws.data_dir.iterdir()) == []
    with pytest.raises(InvalidParameterError, match="path must be a str or os.PathLike, got None"):
        ws.relative(None)


def test_setup_notebook_refuses_a_bad_seed_before_changing_anything():
    before = dict(os.environ)
    for seed in (-1, 2**32, 1.5, True):
        with pytest.raises(InvalidParameterError, match="seed must be"):
            workspace.setup_notebook(seed)
    assert dict(os.environ) == before
