"""Errors raised by the companion package.

Every error names the bad value and says what is accepted, so that a reader who passes the
wrong thing learns how to fix it from the message alone. Each class is a failure a caller can
catch on its own: a bad argument, an unknown name, a git or DVC command that failed, a server
that would not start, a lineage that does not hold, a lock not acquired in time.
"""

from __future__ import annotations


class CompanionError(Exception):
    """Base class of every error the companion raises on purpose."""


class InvalidParameterError(CompanionError, ValueError):
    """A parameter has the wrong type or a value outside what is accepted."""


class UnknownNameError(CompanionError, KeyError):
    """A name (scenario, prerequisite, model kind, ...) is not one the companion knows."""

    def __str__(self) -> str:  # KeyError would otherwise wrap the message in quotes
        return str(self.args[0]) if self.args else ""


class WorkspaceError(CompanionError, RuntimeError):
    """A workspace is missing, misplaced or in a state a chapter cannot build on."""


class GitError(CompanionError, RuntimeError):
    """A git command failed; the message carries the command and git's own words."""


class DvcError(CompanionError, RuntimeError):
    """A DVC operation failed (reproduce, push, pull, checkout); the message says which."""


class LineageError(CompanionError, RuntimeError):
    """Recorded lineage does not hold: a file does not match its manifest or a run its inputs."""


class DataQualityError(CompanionError, RuntimeError):
    """Data failed validation (schema, ranges, missing values, units): nothing downstream runs."""


class PipelineError(CompanionError, RuntimeError):
    """A pipeline step failed (after its retries); the message names the step and the cause."""


class TrackingError(CompanionError, RuntimeError):
    """MLflow tracking cannot do what was asked: no active run, a run in another store, ..."""


class ServerError(CompanionError, RuntimeError):
    """A server process did not start, did not become healthy in time, or died."""


class LockTimeoutError(CompanionError, TimeoutError):
    """A lock (the registry's, a workspace's) was not acquired within its timeout."""


class NotebookExecutionError(CompanionError, RuntimeError):
    """A chapter notebook failed while it was executed."""


class PromotionRefusedError(CompanionError, RuntimeError):
    """A move of a model alias was refused: a failed gate, or a version not in ``staging``."""


class RowsDroppedError(CompanionError, RuntimeError):
    """A feature store returned fewer rows than it was asked for (past-TTL rows were dropped)."""
