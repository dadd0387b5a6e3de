"""DevOps for ML (Level 1): a churn project under version control, its tests, and CI.

The chapter on Level 1 puts the Level 0 project in a git repository with its data under
DVC and its runs in MLflow, tests the data and the model, and runs a GitHub Actions workflow's
steps here, in order. The package holds:

- :mod:`~companion.cicd.datatests`: tests for data, each returning a :class:`CheckResult`:
  :func:`check_schema` (columns and dtypes), :func:`check_ranges` (physical and business
  bounds, no missing value), :func:`check_freshness` (the newest snapshot against the export
  date), :func:`data_checks` (all three);
- :mod:`~companion.cicd.modeltests`: tests for the model: :func:`check_min_auc` (the lower
  bound of the 95% interval against a threshold), :func:`check_invariance` (a change that must
  not move a score), :func:`check_direction` (a change with a known direction);
- :mod:`~companion.cicd.templates` and :mod:`~companion.cicd.project`: the project's files
  (``train.py``, ``tests/``, ``params.yaml``, ``requirements.lock``) and its repository
  (:func:`create_project`, :func:`commit_export`), what ``train.py`` calls
  (:func:`save_model`, :func:`log_training`);
- :mod:`~companion.cicd.workflow`: the workflow's YAML (:func:`workflow_yaml`,
  :func:`write_workflow`), read as YAML 1.2 (:func:`load_workflow`) and validated offline
  with check-jsonschema's bundled GitHub-workflow schema (:func:`validate_workflow`);
- :mod:`~companion.cicd.runner`: :func:`run_workflow` runs a job's ``run:`` steps in order in
  the repository and stops at the first failure.

Nothing happens at import; MLflow's process-wide URIs are never changed; git runs with a fixed
identity, fixed dates and no user or system configuration.
"""

from __future__ import annotations

from companion.cicd.datatests import (
    EXPORT_SCHEMA,
    MINUTES_IN_4_WEEKS,
    RANGES,
    CheckResult,
    check_freshness,
    check_ranges,
    check_schema,
    data_checks,
)
from companion.cicd.modeltests import (
    check_direction,
    check_invariance,
    check_min_auc,
    churn_scores,
)
from companion.cicd.project import (
    DEFAULT_PARAMS,
    commit_export,
    create_project,
    data_version,
    log_training,
    read_project_params,
    save_model,
)
from companion.cicd.runner import NOT_RUN, PROVIDED, StepResult, WorkflowRun, run_workflow
from companion.cicd.templates import LOCKED_PACKAGES, PROJECT_FILES
from companion.cicd.workflow import (
    WORKFLOW_SCHEMA,
    WorkflowCheck,
    load_workflow,
    validate_workflow,
    workflow_steps,
    workflow_yaml,
    write_workflow,
)

__all__ = [
    "DEFAULT_PARAMS",
    "EXPORT_SCHEMA",
    "LOCKED_PACKAGES",
    "MINUTES_IN_4_WEEKS",
    "NOT_RUN",
    "PROJECT_FILES",
    "PROVIDED",
    "RANGES",
    "WORKFLOW_SCHEMA",
    "CheckResult",
    "StepResult",
    "WorkflowCheck",
    "WorkflowRun",
    "check_direction",
    "check_freshness",
    "check_invariance",
    "check_min_auc",
    "check_ranges",
    "check_schema",
    "churn_scores",
    "commit_export",
    "create_project",
    "data_checks",
    "data_version",
    "load_workflow",
    "log_training",
    "read_project_params",
    "run_workflow",
    "save_model",
    "validate_workflow",
    "workflow_steps",
    "workflow_yaml",
    "write_workflow",
]
