"""The ground of the companion: checks, the offline environment, quieting, atomic writes,
provenance and the scoped MLflow store."""

from __future__ import annotations

import logging
import os
import re
import threading
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from companion.core import checks, env, files, provenance
from companion.core.mlflow_store import using_store
from companion.core.types import WorkspaceLike
from companion.errors import InvalidParameterError, UnknownNameError

ROOT = Path(__file__).resolve().parent.parent


# ----------------------------------------------------------------------------- checks


@pytest.mark.parametrize("value", [True, 1.0, "3", None, np.float64(2)])
def test_check_int_refuses_what_is_not_an_int(value):
    with pytest.raises(InvalidParameterError, match=r"n must be an int, got"):
        checks.check_int("n", value)


def test_check_int_bounds_and_numpy_ints():
    assert checks.check_int("n", np.int64(5), minimum=1, maximum=5) == 5
    assert type(checks.check_int("n", np.int64(5))) is int
    with pytest.raises(InvalidParameterError, match="n must be >= 1, got 0"):
        checks.check_int("n", 0, minimum=1)
    with pytest.raises(InvalidParameterError, match="n must be <= 5, got 6"):
        checks.check_int("n", 6, maximum=5)


@pytest.mark.parametrize("value", [float("nan"), float("inf"), True, "1", None, [1]])
def test_check_number_refuses_non_finite_and_non_numbers(value):
    with pytest.raises(InvalidParameterError, match="price must be a finite number"):
        checks.check_number("price", value)


def test_check_number_bounds():
    assert checks.check_number("p", np.float32(0.5), minimum=0, maximum=1) == 0.5
    with pytest.raises(InvalidParameterError, match="> 0, got 0"):
        checks.check_number("p", 0, positive=True)
    with pytest.raises(InvalidParameterError, match=">= 1, got 0.5"):
        checks.check_number("p", 0.5, minimum=1)


@pytest.mark.parametrize("value", [0, 1, "True", None])
def test_check_bool_wants_a_real_bool(value):
    with pytest.raises(InvalidParameterError, match="flag must be True or False"):
        checks.check_bool("flag", value)


def test_check_choice_names_the_accepted_values_and_survives_frames():
    with pytest.raises(UnknownNameError, match="kind 'svm' is not known; accepted: 'gbm', 'logistic'"):
        checks.check_choice("kind", "svm", ["gbm", "logistic"])
    with pytest.raises(UnknownNameError, match="kind of type DataFrame is not known"):
        checks.check_choice("kind", pd.DataFrame({"a": [1]}), ["gbm"])


def test_check_text_and_identifier():
    assert checks.check_text("reason", "why") == "why"
    for bad in ("", "  ", "a\x00b", 3):
        with pytest.raises(InvalidParameterError, match="reason must be a non-empty string"):
            checks.check_text("reason", bad)
    with pytest.raises(InvalidParameterError, match="alias must be a non-empty string of letters"):
        checks.check_identifier("alias", "a b", r"[a-z]+", "letters")


def test_check_path_refuses_bytes_empty_and_numbers():
    assert checks.check_path("p", Path("x")) == Path("x")
    for bad in (b"x", "", "  ", 3, None):
        with pytest.raises(InvalidParameterError, match="p must be a path"):
            checks.check_path("p", bad)


def test_check_frame_reports_missing_columns_and_rows():
    frame = pd.DataFrame({"a": [1]})
    assert checks.check_frame("f", frame, ["a"]) is frame
    with pytest.raises(InvalidParameterError, match=r"f is missing column\(s\) \['b'\]; it has \['a'\]"):
        checks.check_frame("f", frame, ["a", "b"])
    with pytest.raises(InvalidParameterError, match="f is missing .*; build it with X"):
        checks.check_frame("f", frame, ["b"], hint="build it with X")
    with pytest.raises(InvalidParameterError, match="f has no rows"):
        checks.check_frame("f", frame.iloc[:0], ["a"], non_empty=True)
    with pytest.raises(InvalidParameterError, match="f must be a pandas DataFrame, got list"):
        checks.check_frame("f", [1])


def test_check_columns():
    with pytest.raises(InvalidParameterError, match=r"repeat \['a'\]"):
        checks.check_columns("cols", ["a", "a"])
    for bad in ("a", [], [""], [1]):
        with pytest.raises(InvalidParameterError, match="cols must be"):
            checks.check_columns("cols", bad)


def test_check_date_accepts_dates_and_refuses_numbers_and_zones():
    assert checks.check_date("d", "2025-03-01") == pd.Timestamp("2025-03-01")
    assert checks.check_date("d", np.datetime64("2025-03-01")) == pd.Timestamp("2025-03-01")
    aware = pd.Timestamp("2025-03-01 02:00", tz="Europe/Paris")
    assert checks.check_date("d", aware, aware="utc") == pd.Timestamp("2025-03-01 01:00")
    with pytest.raises(InvalidParameterError, match="d must have no time zone"):
        checks.check_date("d", aware)
    for bad in (20250301, True, None, "not a date", float("nan"), pd.NaT, b"2025"):
        with pytest.raises(InvalidParameterError, match="d must be a date like '2025-01-01'"):
            checks.check_date("d", bad)
    with pytest.raises(InvalidParameterError, match="aware must be"):
        checks.check_date("d", "2025-03-01", aware="local")


def test_check_timestamps_refuses_repeats_and_zones():
    with pytest.raises(InvalidParameterError, match=r"repeats \['2025-02-01'\]"):
        checks.check_timestamps("s", ["2025-02-01", "2025-02-01"])
    with pytest.raises(InvalidParameterError, match="without a time zone"):
        checks.check_timestamps("s", [pd.Timestamp("2025-02-01", tz="UTC")])
    with pytest.raises(InvalidParameterError, match="at least one snapshot"):
        checks.check_timestamps("s", [])
    assert len(checks.check_timestamps("s", [], allow_empty=True)) == 0


def test_datetime_column_converts_aware_to_utc_and_names_bad_text():
    frame = pd.DataFrame({"t": pd.to_datetime(["2025-01-01 01:00"]).tz_localize("Europe/Paris")})
    assert checks.datetime_column("f", frame, "t")[0] == np.datetime64("2025-01-01T00:00")
    with pytest.raises(InvalidParameterError, match="f column 't' must hold timestamps"):
        checks.datetime_column("f", pd.DataFrame({"t": ["soon"]}), "t")


# ----------------------------------------------------------------------------- environment


def test_the_makefile_exports_exactly_the_offline_environment():
    exported = dict(re.findall(r"^export (\w+) := (.*)$", (ROOT / "Makefile").read_text(), re.M))
    exported.pop("PATH")
    assert exported == dict(env.OFFLINE_ENV)


def test_apply_offline_env_sets_every_variable(monkeypatch):
    for name in env.OFFLINE_ENV:
        monkeypatch.delenv(name, raising=False)
    assert env.apply_offline_env() == dict(env.OFFLINE_ENV)
    assert all(os.environ[k] == v for k, v in env.OFFLINE_ENV.items())


def test_quiet_nests_and_restores_the_level_it_found():
    logger = logging.getLogger("companion-test-quiet")
    logger.setLevel(logging.INFO)
    with env.quiet("companion-test-quiet"):
        assert logger.level == logging.ERROR
        with env.quiet("companion-test-quiet", level=logging.CRITICAL):
            assert logger.level == logging.CRITICAL
        assert logger.level == logging.ERROR
        with env.quiet("companion-test-quiet", level=logging.WARNING):
            assert logger.level == logging.ERROR  # never louder than an outer block
        assert logger.level == logging.ERROR
    assert logger.level == logging.INFO


def test_quiet_restores_after_an_error_and_works_as_a_decorator():
    logger = logging.getLogger("companion-test-quiet-2")
    logger.setLevel(logging.DEBUG)

    @env.quiet("companion-test-quiet-2")
    def fails():
        assert logger.level == logging.ERROR
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        fails()
    assert logger.level == logging.DEBUG


def test_quiet_is_reference_counted_across_threads():
    logger = logging.getLogger("companion-test-quiet-3")
    logger.setLevel(logging.INFO)
    inside, release = threading.Barrier(2), threading.Event()

    def hold():
        with env.quiet("companion-test-quiet-3"):
            inside.wait()
            release.wait()

    thread = threading.Thread(target=hold)
    thread.start()
    with env.quiet("companion-test-quiet-3"):
        inside.wait()
    assert logger.level == logging.ERROR  # the other thread is still inside
    release.set()
    thread.join()
    assert logger.level == logging.INFO


def test_quiet_captures_output_when_asked(capsys):
    with env.quiet("companion-test-quiet-4", capture_output=True) as sink:
        print("hidden")
    assert sink.getvalue() == "hidden\n"
    assert capsys.readouterr().out == ""


# ----------------------------------------------------------------------------- files


def test_atomic_write_leaves_nothing_when_the_writer_fails(tmp_path):
    target = tmp_path / "sub" / "table.parquet"
    files.atomic_write_text(target, "old")

    def broken(tmp: Path) -> None:
        tmp.write_text("half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        files.atomic_write(target, broken)
    assert target.read_text() == "old"
    assert sorted(p.name for p in target.parent.iterdir()) == ["table.parquet"]


def test_atomic_writes_of_the_same_file_use_distinct_temporaries(tmp_path):
    seen = []
    target = tmp_path / "x.txt"
    files.atomic_write(target, lambda tmp: seen.append(tmp.name) or tmp.write_text("1"))
    files.atomic_write(target, lambda tmp: seen.append(tmp.name) or tmp.write_text("2"))
    assert len(set(seen)) == 2 and target.read_text() == "2"


def test_file_sha256_matches_hashlib_on_a_file_larger_than_a_chunk(tmp_path):
    import hashlib

    data = os.urandom(3 * 2**20 + 7)
    path = files.atomic_write_bytes(tmp_path / "blob", data)
    assert files.file_sha256(path) == hashlib.sha256(data).hexdigest()


# ----------------------------------------------------------------------------- provenance


def test_module_files_follow_imports_through_packages():
    names = [provenance.source_name(p) for p in provenance.module_files("companion.core.checks")]
    assert names == ["core/__init__.py", "core/checks.py", "errors.py"]
    with pytest.raises(InvalidParameterError, match="not part of the companion package"):
        provenance.module_files("numpy")


def test_code_version_changes_with_one_byte_and_not_with_line_ends(tmp_path):
    first = tmp_path / "companion" / "a.py"
    first.parent.mkdir()
    first.write_bytes(b"x = 1\n")
    before = provenance.code_version([first])
    assert before["code.files"] == "a.py"
    first.write_bytes(b"x = 1\r\n")
    assert provenance.code_version([first]) == before
    first.write_bytes(b"x = 2\n")
    assert provenance.code_version([first])["code.sha256"] != before["code.sha256"]
    with pytest.raises(InvalidParameterError, match="lists a file twice"):
        provenance.code_version([first, first])
    with pytest.raises(InvalidParameterError, match="cannot digest"):
        provenance.code_version([tmp_path / "missing.py"])


# ----------------------------------------------------------------------------- MLflow store


def test_using_store_restores_uris_and_environment(monkeypatch, tmp_path):
    import mlflow

    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:///outer.db")
    mlflow.set_tracking_uri(None)
    before = (mlflow.get_tracking_uri(), mlflow.get_registry_uri())
    uri = (tmp_path / "inner.db").as_uri().replace("file:", "sqlite:")
    with using_store(uri):
        assert mlflow.get_tracking_uri() == uri == mlflow.get_registry_uri()
    assert (mlflow.get_tracking_uri(), mlflow.get_registry_uri()) == before
    assert os.environ["MLFLOW_TRACKING_URI"] == "sqlite:///outer.db"
    assert "MLFLOW_REGISTRY_URI" not in os.environ
    with pytest.raises(InvalidParameterError, match="tracking_uri must be a non-empty URI"):
        with using_store(""):
            pass


def test_the_workspace_satisfies_the_interface_stages_use(tmp_path):
    from companion.data import SimulationConfig
    from companion.workspace import Workspace

    ws = Workspace.create("iface", root=tmp_path, config=SimulationConfig(n_customers=100))
    assert isinstance(ws, WorkspaceLike)
    assert not isinstance(object(), WorkspaceLike)


def test_quiet_drops_named_warnings_only_inside_the_block():
    import warnings

    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        with env.quiet("companion-test-quiet-5", ignore=(env.MLFLOW_INTEGER_HINT, DeprecationWarning)):
            warnings.warn(env.MLFLOW_INTEGER_HINT + ". Integer columns ...", UserWarning, stacklevel=1)
            warnings.warn("old", DeprecationWarning, stacklevel=1)
            warnings.warn("kept", UserWarning, stacklevel=1)
        warnings.warn(env.MLFLOW_INTEGER_HINT, UserWarning, stacklevel=1)
    assert [str(w.message) for w in seen] == ["kept", env.MLFLOW_INTEGER_HINT]


def test_module_files_everywhere_follows_imports_inside_functions_but_not_type_checking(tmp_path):
    top = {provenance.source_name(p) for p in provenance.module_files("companion.pipelines.steps")}
    deep = {provenance.source_name(p)
            for p in provenance.module_files("companion.pipelines.steps", everywhere=True)}
    assert "training.py" not in top and "training.py" in deep  # the train step imports it
    assert not any(name.startswith("pipelines/kubeflow") for name in deep)  # TYPE_CHECKING only


def test_atomic_write_gives_the_permissions_of_any_new_file(tmp_path):
    plain = tmp_path / "plain.txt"
    plain.write_text("x")
    written = files.atomic_write_text(tmp_path / "atomic.txt", "x")
    assert (written.stat().st_mode & 0o777) == (plain.stat().st_mode & 0o777)
