"""Errors raised by the companion package.

Every error names the bad value and says what is accepted, so that a reader who passes the
wrong thing learns how to fix it from the message alone.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


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


class NotebookExecutionError(CompanionError, RuntimeError):
    """A chapter notebook failed while it was executed."""


class PromotionRefusedError(CompanionError, RuntimeError):
    """A move of a model alias was refused: a failed gate, or a version not in ``staging``."""


class RowsDroppedError(CompanionError, RuntimeError):
    """A feature store returned fewer rows than it was asked for (past-TTL rows were dropped)."""


def check_int(name: str, value: Any, *, minimum: int | None = None) -> int:
    """Return ``value`` if it is an int (not a bool) of at least ``minimum``.

    Example:
        >>> check_int("n_customers", 10, minimum=1)
        10
    """
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidParameterError(
            f"{name} must be an int, got {value!r} of type {type(value).__name__}"
        )
    if minimum is not None and value < minimum:
        raise InvalidParameterError(f"{name} must be >= {minimum}, got {value}")
    return value


def check_choice(name: str, value: Any, accepted: Iterable[str]) -> str:
    """Return ``value`` if it is one of ``accepted``; raise naming both otherwise.

    Example:
        >>> check_choice("kind", "logistic", ["logistic", "gbm"])
        'logistic'
    """
    accepted = list(accepted)
    # Compare only with values of the same type: a DataFrame or list passed by mistake must
    # get this message, not pandas' "truth value is ambiguous" or "unhashable type".
    if not any(isinstance(value, type(a)) and value == a for a in accepted):
        simple = value is None or isinstance(value, (str, bytes, int, float))
        shown = repr(value) if simple else f"of type {type(value).__name__}"
        raise UnknownNameError(
            f"{name} {shown} is not known; accepted: {', '.join(map(repr, accepted))}"
        )
    return value
