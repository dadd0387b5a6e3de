"""Data versioning: DVC snapshots by revision, manifests, remotes, the pipeline, lineage, Delta."""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from companion import versioning
from companion.core.env import apply_offline_env
from companion.core.provenance import source_name
from companion.data import SimulationConfig, content_hash, generate
from companion.errors import (
    DvcError,
    GitError,
    InvalidParameterError,
    LineageError,
    UnknownNameError,
    WorkspaceError,
)
from companion.tracking import ensure_experiment
from companion.workspace import Workspace

CONFIG = SimulationConfig(n_customers=400, months=6, scenarios=(), seed=7)
MONTHS = ("2025-04-01", "2025-05-01")


@pytest.fixture(scope="module")
def dataset():
    return generate(CONFIG)


def _build_repo(root, dataset):
    apply_offline_env()
    repo = versioning.init_data_repo(root / "repo", root / "remote", date="2025-01-01")
    snapshots = {}
    for first, month in enumerate(MONTHS):
        snap = versioning.snapshot_export(repo, dataset, month)
        snapshots[snap.tag] = (snap, versioning.file_sha256(repo.path / "data/raw/activity.parquet"))
        # four files and the folder's listing; the unchanged price list is pushed only once
        assert versioning.push(repo) == (5 if first == 0 else 4)
    return repo, snapshots


@pytest.fixture(scope="module")
def built(tmp_path_factory, dataset):
    return _build_repo(tmp_path_factory.mktemp("versioning"), dataset)


@pytest.fixture
def fresh(tmp_path, dataset):
    """A repo of its own, for tests that damage or extend it."""
    return _build_repo(tmp_path, dataset)


# --------------------------------------------------------------------------- exports


def test_export_holds_only_what_was_known_at_as_of(dataset):
    as_of = pd.Timestamp("2025-04-01")
    tables = versioning.tables_as_of(dataset, as_of)
    assert tables["activity"]["created_timestamp"].max() <= as_of
    assert tables["customers"]["signup_date"].max() <= as_of
    window_end = tables["labels"]["snapshot_timestamp"] + pd.Timedelta(days=30)
    assert window_end.max() <= as_of
    assert sorted(tables["labels"]["snapshot_timestamp"].dt.strftime("%m").unique()) == ["01", "02", "03"]
    later = versioning.tables_as_of(dataset, "2025-05-01")
    assert all(len(later[name]) > len(tables[name]) for name in ("customers", "activity", "labels"))
    assert len(later["prices"]) == len(tables["prices"]) == 3  # the price rise comes later
    # the earlier export is exactly the later one cut at as_of: nothing rewritten
    cut = later["activity"][later["activity"]["created_timestamp"] <= as_of].reset_index(drop=True)
    pd.testing.assert_frame_equal(cut, tables["activity"])


@pytest.mark.parametrize(
    ("as_of", "message"),
    [("not a date", "must be a date"), ("2025-04-01 12:00", "must be a date"),
     ("2025-01-15", "outside the data"), ("2030-01-01", "outside the data"), (None, "must be a date")],
)
def test_bad_as_of_is_refused(dataset, as_of, message):
    with pytest.raises(InvalidParameterError, match=message):
        versioning.tables_as_of(dataset, as_of)


def test_manifest_records_hash_rows_schema_and_parameters(tmp_path):
    frame = pd.DataFrame({"a": [1, 2, 3], "b": ["x", "y", "z"]})
    path = tmp_path / "t.parquet"
    frame.to_parquet(path, index=False)
    manifest = versioning.build_manifest({"t": frame}, {"t": path}, {"as_of": "2025-04-01"})
    assert manifest["content_hash"] == content_hash({"t": frame})
    assert manifest["tables"]["t"] == {
        "file": "data/raw/t.parquet", "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
        "rows": 3, "schema": {"a": "int64", "b": "object"},
    }
    assert manifest["parameters"] == {"as_of": "2025-04-01"}


# --------------------------------------------------------------------------- snapshots in git + DVC


def test_init_writes_a_relative_remote_and_refuses_an_existing_repo(built, tmp_path):
    repo, _ = built
    assert repo.remotes() == {"storage": "../../remote"}
    assert (repo.path / ".dvc" / "../../remote").resolve() == (repo.path.parent / "remote")
    # the absolute path lives in the uncommitted local config, which DVC prefers
    assert repo.remotes("local") == {"storage": str(repo.path.parent / "remote")}
    assert repo.remote_url("storage") == str(repo.path.parent / "remote")
    assert ".dvc/config.local" not in repo.git("ls-files")
    assert repo.git("check-ignore", ".dvc/config.local") == ".dvc/config.local"
    with pytest.raises(InvalidParameterError, match="config level 'global' is not known"):
        repo.remotes("global")
    with pytest.raises(UnknownNameError, match="DVC remote 'backup' is not configured"):
        repo.remote_url("backup")
    with pytest.raises(WorkspaceError, match="already holds a git or DVC repo"):
        versioning.init_data_repo(repo.path, tmp_path / "r")


def test_snapshots_are_tagged_commits_dated_as_of(built):
    repo, snapshots = built
    assert repo.tags() == ["data-2025-04", "data-2025-05"]
    log = repo.git("log", "--format=%ad %s%d", "--date=short").splitlines()
    assert log[0] == "2025-05-01 Export as of 2025-05-01 (HEAD -> main, tag: data-2025-05)"
    assert log[1] == "2025-04-01 Export as of 2025-04-01 (tag: data-2025-04)"
    for tag, (snap, _) in snapshots.items():
        assert repo.resolve(tag) == snap.commit
        assert snap.manifest["parameters"]["as_of"] == f"{tag[5:]}-01"
    assert repo.git("status", "--porcelain") == ""


def test_commit_hashes_are_the_same_on_every_run(built, tmp_path, dataset):
    repo, snapshots = built
    again, again_snapshots = _build_repo(tmp_path, dataset)
    assert [s.commit for s, _ in again_snapshots.values()] == [s.commit for s, _ in snapshots.values()]


def test_an_existing_tag_is_refused_and_nothing_is_written(fresh, dataset):
    repo, _ = fresh
    head, manifest = repo.head(), (repo.path / versioning.MANIFEST_PATH).read_text()
    with pytest.raises(InvalidParameterError, match="tag 'data-2025-04' already exists"):
        versioning.snapshot_export(repo, dataset, "2025-04-01")
    assert repo.head() == head and repo.git("status", "--porcelain") == ""
    assert (repo.path / versioning.MANIFEST_PATH).read_text() == manifest


def test_older_version_reads_back_byte_identical_by_revision(built):
    repo, snapshots = built
    april, april_sha = snapshots["data-2025-04"]
    payload = versioning.read_bytes(repo, "data/raw/activity.parquet", rev="data-2025-04")
    assert hashlib.sha256(payload).hexdigest() == april_sha == april.manifest["tables"]["activity"]["sha256"]
    working = versioning.file_sha256(repo.path / "data/raw/activity.parquet")
    assert working == snapshots["data-2025-05"][1] != april_sha
    tables = versioning.read_tables(repo, april.commit)
    assert content_hash(tables) == april.manifest["content_hash"]
    assert len(tables["activity"]) == april.manifest["tables"]["activity"]["rows"]


def test_a_revision_that_does_not_exist_names_the_tags(built):
    repo, _ = built
    with pytest.raises(UnknownNameError, match=r"revision 'data-2024-12' does not exist.*data-2025-04, data-2025-05"):
        versioning.read_bytes(repo, "data/raw/activity.parquet", rev="data-2024-12")
    with pytest.raises(InvalidParameterError, match="revision must be"):
        repo.resolve("--all")


def test_a_path_that_is_not_tracked_names_the_files(built):
    repo, _ = built
    with pytest.raises(UnknownNameError, match=r"'data/raw/nope.parquet' is not in the data repo.*activity.parquet"):
        versioning.read_bytes(repo, "data/raw/nope.parquet", rev="data-2025-04")


def test_a_tampered_file_fails_status_and_the_manifest_check(fresh):
    repo, snapshots = fresh
    assert versioning.dvc_status(repo) == {}
    labels = repo.path / "data/raw/labels.parquet"
    expected = snapshots["data-2025-05"][0].manifest["tables"]["labels"]["sha256"]
    labels.write_bytes(labels.read_bytes() + b"\0")
    assert versioning.dvc_status(repo) == {"data/raw.dvc": [{"changed outs": {"data/raw": "modified"}}]}
    with pytest.raises(LineageError, match=f"labels.parquet does not match its manifest.*expected sha256 {expected[:12]}"):
        versioning.verify_snapshot(repo)
    versioning.checkout(repo)
    assert versioning.dvc_status(repo) == {}
    assert versioning.verify_snapshot(repo)["data/raw/labels.parquet"] == expected
    labels.unlink()
    with pytest.raises(LineageError, match="labels.parquet is missing"):
        versioning.verify_snapshot(repo)


def test_push_then_pull_restores_data_after_cache_and_copy_are_gone(fresh):
    repo, snapshots = fresh
    assert versioning.push(repo) == 0  # each export was pushed when it was taken
    assert len([p for p in (repo.path.parent / "remote").rglob("*") if p.is_file()]) == 9
    versioning.drop_local_data(repo)
    assert not (repo.path / "data/raw").exists() and not (repo.path / ".dvc/cache").exists()
    assert versioning.pull(repo) == 5
    assert versioning.dvc_status(repo) == {}
    assert versioning.file_sha256(repo.path / "data/raw/activity.parquet") == snapshots["data-2025-05"][1]
    # the older revision is in the remote too
    versioning.drop_local_data(repo)
    payload = versioning.read_bytes(repo, "data/raw/activity.parquet", rev="data-2025-04")
    assert hashlib.sha256(payload).hexdigest() == snapshots["data-2025-04"][1]


def test_pushing_every_revision_writes_only_inside_the_remote_folder(tmp_path, dataset):
    apply_offline_env()
    root_before = set(os.listdir("/"))
    repo = versioning.init_data_repo(tmp_path / "repo", tmp_path / "remote")
    for month in MONTHS:  # neither export is pushed when it is taken
        versioning.snapshot_export(repo, dataset, month)
    outside = tmp_path.parent / f"{tmp_path.name}-outside"
    assert not outside.exists()
    # 5 files and listing of April, 4 more for May (the unchanged price list is stored once)
    assert versioning.push(repo, all_revisions=True) == 9
    assert versioning.push(repo, all_revisions=True) == 0
    assert len([p for p in (tmp_path / "remote").rglob("*") if p.is_file()]) == 9
    assert set(os.listdir("/")) == root_before  # DVC did not resolve the remote from "/"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["remote", "repo"]
    versioning.drop_local_data(repo)
    payload = versioning.read_bytes(repo, "data/raw/activity.parquet", rev="data-2025-04")
    expected = versioning.read_manifest(repo, "data-2025-04")["tables"]["activity"]["sha256"]
    assert hashlib.sha256(payload).hexdigest() == expected
    with pytest.raises(InvalidParameterError, match="all_revisions must be True or False"):
        versioning.push(repo, all_revisions="yes")


def test_a_missing_remote_is_named(fresh):
    repo, _ = fresh
    with pytest.raises(UnknownNameError, match=r"DVC remote 'backup' is not configured; accepted: \['storage'\]"):
        versioning.pull(repo, remote="backup")
    with pytest.raises(UnknownNameError, match="'backup' is not configured"):
        versioning.push(repo, remote="backup")
    shutil.rmtree(repo.path.parent / "remote")
    with pytest.raises(WorkspaceError, match=r"DVC remote 'storage' \(url '../../remote'.*does not exist"):
        versioning.pull(repo)


# --------------------------------------------------------------------------- the pipeline


def test_git_and_dvc_failures_raise_their_own_errors(built):
    repo, _ = built
    with pytest.raises(GitError, match="git log --no-such-option failed"):
        repo.git("log", "--no-such-option")
    with pytest.raises(DvcError, match="DVC failed in the data repo"):
        with repo.dvc() as dvc:
            dvc.add("no-such-file.csv")
    assert repo.git("status", "--porcelain") == ""


def test_write_pipeline_refuses_an_unknown_model_before_writing(fresh):
    repo, _ = fresh
    with pytest.raises(UnknownNameError, match="model kind 'forest'"):
        versioning.write_pipeline(repo, kind="forest")
    assert not (repo.path / "dvc.yaml").exists() and repo.git("status", "--porcelain") == ""


@pytest.mark.slow
def test_pipeline_reproduces_once_draws_its_dag_and_matches_in_process_training(fresh):
    repo, _ = fresh
    versioning.write_pipeline(repo, kind="logistic", seed=0)
    assert versioning.reproduce(repo) == ["validate", "features", "train"]
    assert versioning.reproduce(repo) == []
    edges = versioning.pipeline_edges(repo)
    assert edges == {("data/raw.dvc", "validate"), ("data/raw.dvc", "features"),
                     ("validate", "features"), ("features", "train")}
    metrics = json.loads((repo.path / "metrics.json").read_text())
    tables = versioning.read_tables(repo)
    frame = versioning.training_frame(tables, CONFIG)
    _, in_process = versioning.fit_and_score(frame, "logistic", 0)
    assert metrics == in_process
    # the flowchart built from DVC's stage graph is the one `dvc dag --mermaid` prints
    cli = subprocess.run([sys.executable, "-m", "dvc", "dag", "--mermaid"], cwd=repo.path,
                         capture_output=True, text=True, check=True).stdout.strip()
    assert versioning.pipeline_mermaid(repo) == cli
    assert 0.5 < metrics["roc_auc"] <= 1 and metrics["test_rows"] == (frame["snapshot_timestamp"] == "2025-04-01").sum()
    assert metrics["roc_auc_low"] < metrics["roc_auc"] < metrics["roc_auc_high"]
    test_rows = frame[frame["snapshot_timestamp"] == "2025-04-01"]
    assert metrics["test_churners"] == test_rows["churned_30d"].sum() > 0
    # tampered data makes the validate stage fail the pipeline
    labels = repo.path / "data/raw/labels.parquet"
    labels.write_bytes(labels.read_bytes() + b"\0")
    with pytest.raises(DvcError, match=r"dvc repro failed in the data repo: companion.errors.LineageError: data/raw/labels.parquet does not match its manifest.*ERROR: failed to reproduce 'validate'"):
        versioning.reproduce(repo)


def test_training_needs_an_export_with_two_labelled_months(built):
    repo, _ = built
    tables = versioning.read_tables(repo, "data-2025-04")
    with pytest.raises(InvalidParameterError, match=r"missing table\(s\) \['labels'\]"):
        versioning.training_frame({k: v for k, v in tables.items() if k != "labels"}, CONFIG)
    frame = versioning.training_frame(tables, CONFIG)
    one_month = frame[frame["snapshot_timestamp"] == frame["snapshot_timestamp"].min()]
    with pytest.raises(InvalidParameterError, match="at least 2 labelled snapshots, got 1"):
        versioning.fit_and_score(one_month, "logistic", 0)


# --------------------------------------------------------------------------- lineage in MLflow


@pytest.mark.slow
def test_a_training_run_traces_back_to_its_data_and_code(fresh, tmp_path):
    repo, snapshots = fresh
    ws = Workspace.create("03-lineage", root=tmp_path / "ws", config=CONFIG)
    experiment = ensure_experiment(ws, "lineage")
    run_id = versioning.train_and_log(repo, "data-2025-04", experiment, kind="logistic", seed=3,
                                      store=ws)
    trace = versioning.trace_run(run_id, store=ws)
    april = snapshots["data-2025-04"][0]
    assert trace["dvc_tag"] == "data-2025-04" and trace["data_commit"] == april.commit
    assert trace["code_commit"] == repo.head() and (trace["kind"], trace["seed"]) == ("logistic", 3)
    assert trace["content_hash"] == april.manifest["content_hash"]
    frame = versioning.training_frame(versioning.read_tables(repo, trace["data_commit"]), CONFIG)
    assert trace["digest"] == versioning.dataset_digest(frame) and trace["rows"] == len(frame)
    assert trace["dataset"] == "lumen-churn-export@data-2025-04"
    assert trace["code_sha256"] == versioning.code_version()["code.sha256"]
    assert trace["code_files"] == ",".join(source_name(p) for p in versioning.code_files())
    assert trace == versioning.trace_run(run_id, store=ws.tracking_uri)
    with pytest.raises(InvalidParameterError, match="32 hex digits"):
        versioning.trace_run("f00d", store=ws)
    with pytest.raises(UnknownNameError, match="no MLflow run '0{32}'"):
        versioning.trace_run("0" * 32, store=ws)
    (repo.path / "notes.txt").write_text("uncommitted")
    with pytest.raises(WorkspaceError, match="uncommitted changes"):
        versioning.train_and_log(repo, "data-2025-04", experiment, store=ws)


@pytest.mark.slow
def test_recorded_and_printed_lineage_does_not_depend_on_the_model_files_bytes(fresh, tmp_path):
    repo, _ = fresh
    versioning.write_pipeline(repo, kind="logistic", seed=0)
    pipeline = repo.commit("Add the training pipeline", "2025-05-02T06:00:00+00:00")
    assert versioning.reproduce(repo) == ["validate", "features", "train"]
    first_head = repo.commit("Train the churn model", "2025-05-02T07:00:00+00:00")
    ws = Workspace.create("03-bytes", root=tmp_path / "ws", config=CONFIG)
    experiment = ensure_experiment(ws, "bytes")

    def recorded():
        run_id = versioning.train_and_log(repo, "data-2025-05", experiment, kind="logistic",
                                          seed=0, store=ws)
        trace = versioning.trace_run(run_id, store=ws)
        return trace, versioning.describe_commit(repo, trace["code_commit"])

    before = recorded()
    assert before[0]["code_commit"] == pipeline != first_head
    assert before[1].endswith("2025-05-02 Add the training pipeline")
    # Another machine: the same model pickled to other bytes, so dvc.lock and HEAD differ
    model_file = repo.path / "models/churn_model.pkl"
    model = pickle.loads(model_file.read_bytes())
    model_file.write_bytes(pickle.dumps(model, protocol=2))
    with repo.dvc() as dvc:
        dvc.commit("train", force=True)
    second_head = repo.commit("Train the churn model", "2025-05-02T07:00:00+00:00")
    lock_diff = repo.git("diff", "-U6", first_head, "--", "dvc.lock")
    assert second_head != first_head and "models/churn_model.pkl" in lock_diff
    assert recorded() == before


def test_code_commit_is_the_last_change_to_the_pipeline_or_its_parameters(fresh):
    repo, snapshots = fresh
    assert versioning.code_commit(repo) == snapshots["data-2025-05"][0].commit  # params.yaml
    versioning.write_pipeline(repo, kind="logistic", seed=0)
    pipeline = repo.commit("Add the training pipeline", "2025-05-02T06:00:00+00:00")
    (repo.path / "notes.txt").write_text("not code")
    later = repo.commit("Notes", "2025-05-03T06:00:00+00:00")
    assert versioning.code_commit(repo) == pipeline != later
    assert versioning.code_commit(repo, "data-2025-04") == snapshots["data-2025-04"][0].commit
    assert versioning.describe_commit(repo, pipeline, hash_digits=0) == (
        "2025-05-02 Add the training pipeline"
    )
    assert versioning.describe_commit(repo, "data-2025-04").endswith("(tag: data-2025-04)")
    with pytest.raises(InvalidParameterError, match="hash_digits must be an integer 0 to 40"):
        versioning.describe_commit(repo, pipeline, hash_digits=-1)


# --------------------------------------------------------------------------- comparing exports


def test_untouched_month_is_the_last_labelled_month_with_its_truth(dataset):
    month = versioning.untouched_month(dataset, "2025-06-01")
    assert month["snapshot_timestamp"].unique().tolist() == [pd.Timestamp("2025-05-01")]
    truth = dataset.truth[dataset.truth["snapshot_timestamp"] == "2025-05-01"]
    merged = month.merge(truth, on=["customer_id", "snapshot_timestamp"])
    assert len(merged) == len(month) == len(truth)
    assert (merged["true_probability"] == merged["churn_probability"]).all()
    full = versioning.training_frame(versioning.tables_as_of(dataset, "2025-06-01"), CONFIG)
    expected = full[full["snapshot_timestamp"] == "2025-05-01"].reset_index(drop=True)
    pd.testing.assert_frame_equal(month.drop(columns="true_probability"), expected)


@pytest.mark.slow
def test_exports_are_compared_on_an_untouched_month_with_paired_intervals(built, dataset):
    from companion.evaluation import auc_difference, auc_interval
    from companion.training import FEATURES

    repo, _ = built
    evaluation = versioning.untouched_month(dataset, "2025-06-01")
    result = versioning.compare_exports(repo, ["data-2025-04", "data-2025-05"], evaluation,
                                        kind="logistic", seed=0)
    assert result.month == pd.Timestamp("2025-05-01") and result.rows == len(evaluation)
    assert result.churners == evaluation["churned_30d"].sum() > 0
    assert list(result.auc) == ["trained on data-2025-04", "trained on data-2025-05",
                                versioning.ORACLE]
    # the May model is the pipeline's model on the May export, scored on the untouched month
    frame = versioning.training_frame(versioning.read_tables(repo, "data-2025-05"), CONFIG)
    model, metrics = versioning.fit_and_score(frame, "logistic", 0)
    scores = model.predict_proba(evaluation[FEATURES])[:, 1]
    y = evaluation["churned_30d"]
    assert result.auc["trained on data-2025-05"] == auc_interval(y, scores)
    assert result.validation["trained on data-2025-05"].value == metrics["roc_auc"]
    oracle = auc_interval(y, evaluation["true_probability"])
    assert result.auc[versioning.ORACLE] == oracle
    assert result.gap_to_truth["trained on data-2025-05"] == auc_difference(
        y, scores, evaluation["true_probability"])
    diff = result.difference["trained on data-2025-05"]
    assert list(result.difference) == ["trained on data-2025-05"]
    assert diff.value == pytest.approx(
        result.auc["trained on data-2025-05"].value - result.auc["trained on data-2025-04"].value)
    assert diff.low < diff.value < diff.high and diff.method == "DeLong paired"
    assert list(result.table.index) == list(result.auc)
    assert result.table.loc["trained on data-2025-05", "ROC AUC"] == round(
        result.auc["trained on data-2025-05"].value, 3)


def test_a_comparison_needs_two_exports_and_a_month_they_have_not_seen(built, dataset):
    repo, _ = built
    seen = versioning.untouched_month(dataset, "2025-05-01")  # the May export's last month
    with pytest.raises(InvalidParameterError, match=r"export data-2025-05 already holds the month 2025-04-01"):
        versioning.compare_exports(repo, ["data-2025-04", "data-2025-05"], seen)
    later = versioning.untouched_month(dataset, "2025-06-01")
    with pytest.raises(InvalidParameterError, match="at least two different exports"):
        versioning.compare_exports(repo, ["data-2025-04", "data-2025-04"], later)
    with pytest.raises(InvalidParameterError, match="at least two different exports"):
        versioning.compare_exports(repo, "data-2025-04", later)
    with pytest.raises(InvalidParameterError, match=r"missing column\(s\) \['true_probability'\]"):
        versioning.compare_exports(repo, ["data-2025-04", "data-2025-05"],
                                   later.drop(columns="true_probability"))
    with pytest.raises(UnknownNameError, match="revision 'data-2024-01' does not exist"):
        versioning.compare_exports(repo, ["data-2024-01", "data-2025-05"], later)


# --------------------------------------------------------------------------- Delta Lake

DELTA_MONTHS = ("2025-02-01", "2025-03-01", "2025-04-01", "2025-05-01")


def test_monthly_batches_partition_activity_like_the_exports(dataset):
    batches = versioning.monthly_batches(dataset, DELTA_MONTHS)
    assert [label for label, _ in batches] == ["2025-01", "2025-02", "2025-03", "2025-04"]
    through_april = pd.concat([rows for _, rows in batches[:3]])
    assert len(through_april) == len(versioning.tables_as_of(dataset, "2025-04-01")["activity"])
    with pytest.raises(InvalidParameterError, match="distinct and increasing"):
        versioning.monthly_batches(dataset, ["2025-03-01", "2025-02-01"])


def test_delta_versions_read_by_number_and_by_time(tmp_path, dataset):
    table = tmp_path / "activity"
    batches = versioning.monthly_batches(dataset, DELTA_MONTHS)
    versions = [versioning.append_month(table, rows, label) for label, rows in batches[:-1]]
    assert versions == [0, 1, 2]
    label, rows = batches[-1]
    rows = rows.assign(minutes_per_session=1.0)
    with pytest.raises(InvalidParameterError, match=r"new column\(s\) \['minutes_per_session'\].*merge_schema=True"):
        versioning.append_month(table, rows, label)
    assert versioning.delta_history(table)["version"].tolist() == [0, 1, 2]  # nothing written
    assert versioning.append_month(table, rows, label, merge_schema=True) == 3
    history = versioning.delta_history(table)
    assert history["month"].tolist() == ["2025-01", "2025-02", "2025-03", "2025-04"]
    assert history["rows_added"].tolist() == [len(r) for _, r in batches]
    assert (history["operation"] == "WRITE").all()
    cumulative = 0
    for entry in history.itertuples():
        cumulative += entry.rows_added
        version, by_version = versioning.read_delta(table, version=entry.version)
        at, by_time = versioning.read_delta(table, as_of=entry.latest_at)
        assert version == at == entry.version and len(by_version) == len(by_time) == cumulative
        assert ("minutes_per_session" in by_version.columns) == (entry.version == 3)
    _, april = versioning.read_delta(table, version=2)
    export = versioning.tables_as_of(dataset, "2025-04-01")["activity"]
    assert april["customer_id"].tolist() == export.sort_values(["event_timestamp", "customer_id"])["customer_id"].tolist()
    assert versioning.stored_rows(table) == cumulative


def test_delta_reads_outside_the_history_are_refused(tmp_path, dataset):
    table = tmp_path / "activity"
    label, rows = versioning.monthly_batches(dataset, DELTA_MONTHS[:1])[0]
    versioning.append_month(table, rows, label)
    with pytest.raises(UnknownNameError, match="version 5 does not exist; accepted: 0 to 0"):
        versioning.read_delta(table, version=5)
    with pytest.raises(UnknownNameError, match="precedes the table's first commit"):
        versioning.read_delta(table, as_of=pd.Timestamp("2000-01-01"))
    with pytest.raises(InvalidParameterError, match="not both"):
        versioning.read_delta(table, version=0, as_of=pd.Timestamp("2000-01-01"))


def test_importing_the_module_does_nothing():
    code = ("import os, sys; before = set(os.listdir('.')); import companion.versioning; "
            "assert set(os.listdir('.')) == before; assert 'dvc' not in sys.modules "
            "and 'mlflow' not in sys.modules and 'deltalake' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)


# --------------------------------------------------------------------------- nothing outside


def _listing(folder):
    return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


@pytest.mark.slow
def test_dvc_writes_nothing_outside_the_workspace(tmp_path, dataset, monkeypatch):
    site = Path("/var/tmp/dvc/repo")
    home, cwd = tmp_path / "home", tmp_path / "cwd"
    home.mkdir(), cwd.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(cwd)
    before = set(_listing(site))
    repo = versioning.init_data_repo(tmp_path / "ws" / "repo", tmp_path / "ws" / "remote")
    for month in MONTHS:
        versioning.snapshot_export(repo, dataset, month)
    versioning.push(repo, all_revisions=True)
    versioning.read_tables(repo, "data-2025-04")
    versioning.write_pipeline(repo, kind="logistic")
    assert versioning.reproduce(repo) == ["validate", "features", "train"]
    versioning.drop_local_data(repo)
    assert versioning.pull(repo) > 0
    local = (repo.path / ".dvc" / "config.local").read_text()
    own = set(_listing(repo.path / versioning.SITE_CACHE_DIR / "repo"))
    assert f"site_cache_dir = {repo.path / versioning.SITE_CACHE_DIR}" in local
    assert own and not own & set(_listing(site))  # DVC's state for this repo is in the repo
    assert set(_listing(site)) - before <= set(_listing(site)) - own  # others' runs at most
    assert _listing(home) == [] and _listing(cwd) == []
    assert "site_cache_dir" not in (repo.path / ".dvc" / "config").read_text()


def test_the_books_data_repo_keeps_its_site_cache_inside():
    from configobj import ConfigObj

    root = Path(__file__).resolve().parent.parent
    config = ConfigObj(str(root / "data" / ".dvc" / "config"))
    assert config["core"]["site_cache_dir"] == ".dvc/tmp/site_cache"
    assert "/tmp" in (root / "data" / ".dvc" / ".gitignore").read_text().split()


# --------------------------------------------------------------------------- code as a dependency


@pytest.mark.slow
def test_the_pipeline_reruns_exactly_the_stages_whose_code_changed(fresh, tmp_path):
    repo, _ = fresh
    package = tmp_path / "pkg" / "companion"
    shutil.copytree(versioning.package_root() / "companion", package,
                    ignore=shutil.ignore_patterns("__pycache__"))
    stages_file = package / "versioning" / "stages.py"
    marked = stages_file.read_text().replace(
        '{"verified": verified}', '{"verified": verified, "ran": "the copy"}')
    stages_file.write_text(marked)
    versioning.write_pipeline(repo, kind="logistic", code_root=package.parent)
    assert versioning.pipeline_code(repo) == {
        stage: [Path(os.path.relpath(f, repo.path)).as_posix() for f in files]
        for stage, files in versioning.stage_code_files(package.parent).items()
    }
    assert versioning.reproduce(repo) == ["validate", "features", "train"]
    # the stages ran the package their dependencies name, not the installed one
    assert json.loads((repo.path / "reports/validation.json").read_text())["ran"] == "the copy"
    clean = versioning.summarize_status(versioning.dvc_status(repo))
    assert str(clean) == "0 stages changed, 0 files modified"
    before = versioning.code_version(package.parent)
    evaluation = _module_file(package, "evaluation")
    with open(evaluation, "a") as handle:
        handle.write("\n# a comment is a change of the code\n")
    assert versioning.code_version(package.parent) != before
    changed = versioning.summarize_status(versioning.dvc_status(repo), repo.path)
    assert changed.stages_changed == ("train",)
    assert changed.paths_changed == (Path(os.path.relpath(evaluation, repo.path)).as_posix(),)
    assert versioning.reproduce(repo) == ["train"]
    with open(_module_file(package, "data"), "a") as handle:
        handle.write("\n# and so is this\n")
    # DVC reports the stage whose own dependency changed; train follows only if features do
    assert versioning.summarize_status(versioning.dvc_status(repo)).stages_changed == (
        "features",)


def _module_file(package, module):
    """A source file of ``module`` in a copy of the companion package (a package's __init__)."""
    single = package / f"{module}.py"
    return single if single.is_file() else package / module / "__init__.py"


def test_code_version_digests_the_modules_that_train_the_model(tmp_path):
    from companion.core.provenance import code_version

    version = versioning.code_version()
    assert version == code_version(versioning.code_files())
    names = version["code.files"].split(",")
    assert names == sorted(names) and "versioning/__init__.py" in names
    assert {n.split("/")[0].removesuffix(".py") for n in names} == set(versioning.CODE_MODULES)
    # the stages' code dependencies together are exactly the files of the code version
    stage_files = {f for fs in versioning.stage_code_files().values() for f in fs}
    assert sorted(source_name(f) for f in stage_files) == names
    assert len(version["code.sha256"]) == 64
    copy = tmp_path / "pkg" / "companion"
    shutil.copytree(versioning.package_root() / "companion", copy,
                    ignore=shutil.ignore_patterns("__pycache__"))
    assert versioning.code_version(copy.parent) == version
    with open(copy / "training.py", "a") as handle:
        handle.write("\n")
    assert versioning.code_version(copy.parent)["code.sha256"] != version["code.sha256"]
    with pytest.raises(InvalidParameterError, match="holds no companion package"):
        versioning.code_version(tmp_path)


def test_status_summary_counts_stages_and_paths():
    status = {
        "validate": [{"changed deps": {"data/raw": "modified"}}],
        "features": [{"changed deps": {"data/raw": "modified"}}, "changed command"],
        "data/raw.dvc": [{"changed outs": {"data/raw": "modified"}}],
    }
    summary = versioning.summarize_status(status)
    assert summary.stages_changed == ("features", "validate")
    assert summary.paths_changed == ("data/raw",)
    assert str(summary) == "2 stages changed (features, validate), 1 file modified (data/raw)"
    for bad in (None, [], {"train": "modified"}):
        with pytest.raises(InvalidParameterError):
            versioning.summarize_status(bad)


def test_delta_storage_keeps_each_version_once(tmp_path, dataset):
    table = tmp_path / "activity"
    batches = versioning.monthly_batches(dataset, ["2025-02-01", "2025-03-01", "2025-04-01"])
    for month, rows in batches:
        versioning.append_month(table, rows, month)
    storage = versioning.delta_storage(table)
    assert storage["version"].tolist() == [0, 1, 2]
    data_files = [f for f in table.rglob("*.parquet")]
    assert storage["stored_bytes"].iloc[-1] == sum(f.stat().st_size for f in data_files)
    assert (storage["table_bytes"] == storage["stored_bytes"]).all()  # appends only
    assert storage["full_copies_bytes"].tolist() == storage["table_bytes"].cumsum().tolist()
    assert storage["full_copies_bytes"].iloc[-1] > storage["stored_bytes"].iloc[-1]
    assert versioning.folder_bytes(tmp_path / "missing") == 0


# --------------------------------------------------------------------------- bad input


def test_bad_input_to_every_public_function_raises_a_named_error(built, dataset, tmp_path):
    repo, _ = built
    state = (repo.git("status", "--porcelain"), repo.tags(), repo.head())
    not_a_repo = versioning.DataRepo(tmp_path)
    frame = pd.DataFrame({"x": [1]})
    cases = [
        (lambda: versioning.tables_as_of("dataset", "2025-04-01"), "ChurnDataset"),
        (lambda: versioning.tables_as_of(dataset, float("nan")), "as_of must be a date"),
        (lambda: versioning.snapshot_export(repo, None, "2025-06-01"), "ChurnDataset"),
        (lambda: versioning.snapshot_export("repo", dataset, "2025-06-01"), "DataRepo"),
        (lambda: versioning.snapshot_export(not_a_repo, dataset, "2025-06-01"), "not a data repo"),
        (lambda: versioning.file_sha256(tmp_path / "nope"), "no file at"),
        (lambda: versioning.file_sha256(None), "must be a path"),
        (lambda: versioning.build_manifest({"t": frame}, {}, {}), "map exactly the tables"),
        (lambda: versioning.build_manifest({"t": [1]}, {"t": "f"}, {}), "DataFrame"),
        (lambda: versioning.build_manifest({}, {}, {}), "non-empty mapping"),
        (lambda: versioning.read_bytes(repo, None), "relative to the repo"),
        (lambda: versioning.read_bytes(repo, "/etc/passwd"), "relative to the repo"),
        (lambda: versioning.read_bytes(repo, versioning.MANIFEST_PATH, rev="--all"),
         "tag, branch or commit"),
        (lambda: versioning.read_manifest(42), "DataRepo"),
        (lambda: versioning.read_tables(repo, "data-1999-01"), "does not exist"),
        (lambda: versioning.verify_snapshot(not_a_repo), "not a data repo"),
        (lambda: versioning.dvc_status(None), "DataRepo"),
        (lambda: versioning.push(repo, all_revisions="yes"), "True or False"),
        (lambda: versioning.push(repo, remote=""), "remote's name"),
        (lambda: versioning.pull(repo, remote="backup"), "not configured"),
        (lambda: versioning.checkout("repo"), "DataRepo"),
        (lambda: versioning.drop_local_data(not_a_repo), "not a data repo"),
        (lambda: versioning.write_pipeline(repo, seed=-1), "seed"),
        (lambda: versioning.write_pipeline(repo, seed=float("nan")), "seed"),
        (lambda: versioning.write_pipeline(repo, code_root=tmp_path), "no companion package"),
        (lambda: versioning.write_pipeline(repo, code_root=3), "folder path"),
        (lambda: versioning.pipeline_code(repo), "no dvc.yaml"),
        (lambda: versioning.reproduce("repo"), "DataRepo"),
        (lambda: versioning.pipeline_mermaid(None), "DataRepo"),
        (lambda: versioning.pipeline_edges(None), "DataRepo"),
        (lambda: versioning.training_frame(None, CONFIG), "mapping"),
        (lambda: versioning.training_frame({}, {"seed": 1}), "SimulationConfig"),
        (lambda: versioning.training_frame(
            {n: (None if n == "labels" else frame) for n in versioning.EXPORT_TABLES}, CONFIG),
         "DataFrame"),
        (lambda: versioning.fit_and_score(frame, "logistic", 0), "missing column"),
        (lambda: versioning.fit_and_score("frame", "logistic", 0), "DataFrame"),
        (lambda: versioning.fit_and_score(frame, "forest", 0), "forest"),
        (lambda: versioning.train_and_log(repo, "data-2025-04", "1", kind="forest", store="x"),
         "forest"),
        (lambda: versioning.train_and_log(repo, "data-2025-04", None, store="x"),
         "experiment id"),
        (lambda: versioning.train_and_log(repo, "data-2025-04", "1", store=42), "tracking URI"),
        (lambda: versioning.trace_run(None, store="x"), "32 hex digits"),
        (lambda: versioning.trace_run("0" * 32, store=None), "tracking URI"),
        (lambda: versioning.code_commit(None), "DataRepo"),
        (lambda: versioning.describe_commit(repo, "HEAD", hash_digits=True), "hash_digits"),
        (lambda: versioning.dataset_digest([1, 2]), "DataFrame"),
        (lambda: versioning.untouched_month(None, "2025-06-01"), "ChurnDataset"),
        (lambda: versioning.compare_exports(repo, ["data-2025-04", "data-2025-05"], frame,
                                            kind="forest"), "forest"),
        (lambda: versioning.compare_exports(repo, [1, 2], frame), "strings"),
        (lambda: versioning.compare_exports(repo, ["data-2025-04", "nope"], frame),
         "missing column|does not exist"),
        (lambda: versioning.monthly_batches(dataset, "2025-02-01"), "list of dates"),
        (lambda: versioning.monthly_batches(dataset, ["2025-02-01", "soon"]), "dates like"),
        (lambda: versioning.monthly_batches(dataset, [None]), "dates like"),
        (lambda: versioning.monthly_batches([], ["2025-02-01"]), "ChurnDataset"),
        (lambda: versioning.append_month(tmp_path / "t", "rows", "2025-01"), "DataFrame"),
        (lambda: versioning.append_month(tmp_path / "t", frame, "Jan'25"), "label like"),
        (lambda: versioning.append_month(tmp_path / "t", frame.iloc[:0], "2025-01"), "empty"),
        (lambda: versioning.append_month(tmp_path / "t", frame, "2025-01", merge_schema=1),
         "True or False"),
        (lambda: versioning.append_month(repo.path, frame, "2025-01"), "not a Delta table"),
        (lambda: versioning.delta_history(tmp_path / "none"), "no Delta table"),
        (lambda: versioning.read_delta(tmp_path / "none"), "no Delta table"),
        (lambda: versioning.stored_rows(None), "must be a path"),
        (lambda: versioning.delta_storage(tmp_path), "no Delta table"),
        (lambda: versioning.folder_bytes(3.5), "must be a path"),
        (lambda: repo.commit("", "2025-06-01"), "non-empty"),
        (lambda: repo.commit("msg", "someday"), "ISO date"),
        (lambda: repo.commit("msg", "2025-06-01T00:00:00+00:00", tag="a'b"), "plain name"),
        (lambda: repo.commit("msg", "2025-06-01T00:00:00+00:00", tag="data-2025-04"),
         "already exists"),
        (lambda: repo.remotes("global"), "not known"),
        (lambda: repo.remote_url("backup"), "not configured"),
        (lambda: versioning.init_data_repo(tmp_path / "r", tmp_path / "r" / "remote"),
         "inside the repo"),
        (lambda: versioning.init_data_repo(tmp_path / "r2", tmp_path / "rem", date="soon"),
         "date must be a day"),
        (lambda: versioning.init_data_repo(repo.path, tmp_path / "rem"), "already holds"),
    ]
    for call, message in cases:
        with pytest.raises(versioning.CompanionError, match=message):
            call()
    assert (repo.git("status", "--porcelain"), repo.tags(), repo.head()) == state
    assert not (tmp_path / "t").exists() and not (tmp_path / "r").exists()
    assert not (tmp_path / "r2").exists() and not (tmp_path / "rem").exists()


def test_a_bad_training_call_leaves_no_mlflow_run(built, tmp_path):
    from mlflow.tracking import MlflowClient

    repo, _ = built
    ws = Workspace.create("03-bad", root=tmp_path / "ws", config=CONFIG)
    experiment = ensure_experiment(ws, "bad")
    for call in (
        lambda: versioning.train_and_log(repo, "data-2025-04", experiment, seed=-3, store=ws),
        lambda: versioning.train_and_log(repo, "data-1999-01", experiment, store=ws),
        lambda: versioning.train_and_log(repo, "data-2025-04", "987654", store=ws),
    ):
        with pytest.raises(versioning.CompanionError):
            call()
    assert MlflowClient(ws.tracking_uri).search_runs([experiment]) == []


def test_lineage_runs_go_to_the_store_passed_and_leave_mlflows_uris_alone(built, tmp_path):
    import mlflow
    from mlflow.tracking import MlflowClient

    from companion.core.mlflow_store import using_store

    repo, _ = built
    ws = Workspace.create("03-store", root=tmp_path / "ws", config=CONFIG)
    experiment = ensure_experiment(ws, "store")
    elsewhere = f"sqlite:///{tmp_path / 'elsewhere.db'}"
    with using_store(elsewhere):
        env = {k: os.environ.get(k) for k in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")}
        run_id = versioning.train_and_log(repo, "data-2025-04", experiment, kind="logistic",
                                          store=ws)
        trace = versioning.trace_run(run_id, store=ws)
        assert mlflow.get_tracking_uri() == elsewhere == mlflow.get_registry_uri()
        assert {k: os.environ.get(k) for k in env} == env
        assert mlflow.active_run() is None
    assert trace["dvc_tag"] == "data-2025-04"
    run = MlflowClient(ws.tracking_uri).get_run(run_id)
    assert run.info.status == "FINISHED" and run.info.experiment_id == experiment
    assert not (tmp_path / "elsewhere.db").exists() or MlflowClient(elsewhere).search_runs(
        [experiment]) == []
