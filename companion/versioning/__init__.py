"""Data versioning: DVC snapshots in git, Delta Lake time travel, snapshot manifests, lineage.

A model can only be explained if the data it was trained on can be read back, byte for byte,
long after the warehouse has moved on. This package gives a chapter's workspace three ways to
make that true:

- **DVC snapshots** (:mod:`~companion.versioning.repo`, :mod:`~companion.versioning.exports`,
  :mod:`~companion.versioning.readback`, :mod:`~companion.versioning.remote`,
  :mod:`~companion.versioning.pipeline`, :mod:`~companion.versioning.stages`): the monthly
  export is written to ``data/raw`` in a git repo, tracked with ``dvc add``, committed and
  tagged (``data-2025-04``); any tag reads back with :func:`read_bytes`, and a local DVC
  remote holds the content for :func:`push` / :func:`pull`.
  A small ``dvc.yaml`` pipeline (validate, features, train) records how a model is derived.
  The remote is committed as a relative path (the same on every machine) and also written as
  an absolute path to the uncommitted ``.dvc/config.local``: DVC resolves a relative remote URL
  against the filesystem root for revisions other than the working copy (``dvc push -T`` with
  ``url = ../remote`` writes to ``/remote``), so the local setting keeps every push inside the
  workspace. DVC's own per-repo state (its "site cache", ``/var/tmp/dvc`` by default) is kept
  in the repo too: ``core.site_cache_dir`` in ``.dvc/config.local`` (:data:`SITE_CACHE_DIR`).
  Each stage lists the source files of the companion modules it runs as dependencies
  (:data:`STAGE_CODE`), so a change of code shows in ``dvc status`` (:func:`summarize_status`
  counts it) and reruns exactly the stages that run it.
- **Delta Lake versions** (:mod:`~companion.versioning.delta`): monthly activity appended to
  a Delta table, one version per month, read as of a version or a commit time
  (:func:`append_month`, :func:`read_delta`).
- **Manifests and lineage** (:mod:`~companion.versioning.lineage`): every snapshot carries a
  JSON manifest (content hash, rows, schema, generating parameters); a training run logs its
  input dataset, the git commit and the DVC tag to MLflow, the SHA-256 of the code that
  trained it (:func:`code_version`), with the model's ROC AUC and its 95% interval
  (:func:`train_and_log`), so :func:`trace_run` can answer from the stores alone which data
  and which code produced a model.
- **Comparing data versions** (:mod:`~companion.versioning.compare`): :func:`compare_exports`
  trains the same model on several exports and scores them all on one later month none of
  them has seen, with paired intervals on the differences and the true probabilities as the
  ceiling (:func:`untouched_month`).

Git runs with a fixed identity and fixed dates, so commit hashes are the same on every run.
Nothing recorded or printed depends on the model file's bytes (they vary with the CPU's float
arithmetic): the code commit of a run is the last commit that changed the pipeline or its
parameters, never one that also records the model's hash in ``dvc.lock``.
Git failures raise :class:`GitError`, DVC failures :class:`DvcError`, and a file that does not
match its manifest, or a run without lineage, :class:`LineageError`. Lineage runs are written
to the MLflow store passed in (a workspace or a tracking URI); MLflow's process-wide URIs are
never changed. Nothing happens at import.
"""


from __future__ import annotations

from companion.errors import (
    CompanionError,
    DvcError,
    GitError,
    InvalidParameterError,
    LineageError,
    UnknownNameError,
    WorkspaceError,
)
from companion.versioning.compare import (
    ORACLE,
    ExportComparison,
    compare_exports,
    untouched_month,
)
from companion.versioning.delta import (
    append_month,
    delta_history,
    delta_storage,
    monthly_batches,
    read_delta,
    stored_rows,
)
from companion.versioning.exports import (
    Snapshot,
    build_manifest,
    file_sha256,
    snapshot_export,
    tables_as_of,
)
from companion.versioning.lineage import (
    CODE_FILES,
    code_commit,
    dataset_digest,
    describe_commit,
    trace_run,
    train_and_log,
)
from companion.versioning.pipeline import (
    CODE_MODULES,
    STAGE_CODE,
    code_files,
    code_version,
    package_root,
    pipeline_code,
    pipeline_edges,
    pipeline_mermaid,
    pipeline_spec,
    reproduce,
    stage_code_files,
    write_pipeline,
)
from companion.versioning.readback import (
    read_bytes,
    read_manifest,
    read_tables,
    verify_snapshot,
)
from companion.versioning.remote import (
    StatusSummary,
    checkout,
    drop_local_data,
    dvc_status,
    folder_bytes,
    pull,
    push,
    summarize_status,
)
from companion.versioning.repo import (
    DATA_TAG_PREFIX,
    EXPORT_TABLES,
    GIT_IDENTITY,
    MANIFEST_PATH,
    PARAMS_PATH,
    RAW_DIR,
    REMOTE_NAME,
    SITE_CACHE_DIR,
    DataRepo,
    init_data_repo,
)
from companion.versioning.stages import (
    fit_and_score,
    main,
    training_frame,
)

__all__ = [
    "CODE_FILES",
    "CODE_MODULES",
    "CompanionError",
    "DATA_TAG_PREFIX",
    "DataRepo",
    "DvcError",
    "EXPORT_TABLES",
    "ExportComparison",
    "GIT_IDENTITY",
    "GitError",
    "InvalidParameterError",
    "LineageError",
    "MANIFEST_PATH",
    "ORACLE",
    "PARAMS_PATH",
    "RAW_DIR",
    "REMOTE_NAME",
    "SITE_CACHE_DIR",
    "STAGE_CODE",
    "Snapshot",
    "StatusSummary",
    "UnknownNameError",
    "WorkspaceError",
    "append_month",
    "build_manifest",
    "checkout",
    "code_commit",
    "code_files",
    "code_version",
    "compare_exports",
    "dataset_digest",
    "delta_history",
    "delta_storage",
    "describe_commit",
    "drop_local_data",
    "dvc_status",
    "file_sha256",
    "fit_and_score",
    "folder_bytes",
    "init_data_repo",
    "main",
    "monthly_batches",
    "package_root",
    "pipeline_code",
    "pipeline_edges",
    "pipeline_mermaid",
    "pipeline_spec",
    "pull",
    "push",
    "read_bytes",
    "read_delta",
    "read_manifest",
    "read_tables",
    "reproduce",
    "snapshot_export",
    "stage_code_files",
    "stored_rows",
    "summarize_status",
    "tables_as_of",
    "trace_run",
    "train_and_log",
    "training_frame",
    "untouched_month",
    "verify_snapshot",
    "write_pipeline",
]
