"""The cost of an experiment: measured wall and CPU seconds, and a deterministic estimate.

Measured CPU seconds vary from one machine and one execution to the next; the work a fit does
(training rows x iterations, :func:`fitted_iterations`) does not. :func:`work_cost` prices that
work at a calibrated rate, :func:`estimate_cost` prices measured seconds.

Example:
    >>> round(estimate_cost(cpu_seconds=1800.0, price_per_cpu_hour=0.10), 4)
    0.05
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from companion.core.checks import check_int, check_number
from companion.errors import InvalidParameterError


def estimate_cost(cpu_seconds: float, price_per_cpu_hour: float) -> float:
    """Return the cost of ``cpu_seconds`` of compute at ``price_per_cpu_hour``.

    ``cost = cpu_seconds / 3600 * price_per_cpu_hour``, in the price's currency.
    """
    cpu_seconds = check_number("cpu_seconds", cpu_seconds, minimum=0)
    price_per_cpu_hour = check_number("price_per_cpu_hour", price_per_cpu_hour, minimum=0)
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
        self.wall_seconds = check_number("wall_seconds", self.wall_seconds, minimum=0)
        self.cpu_seconds = check_number("cpu_seconds", self.cpu_seconds, minimum=0)

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
    row_iterations = check_number("row_iterations", row_iterations, minimum=0)
    cpu_seconds_per_million = check_number(
        "cpu_seconds_per_million", cpu_seconds_per_million, minimum=0
    )
    check_number("price_per_cpu_hour", price_per_cpu_hour, minimum=0)
    cpu_seconds = row_iterations / 1e6 * cpu_seconds_per_million
    return {
        "row_iterations": row_iterations,
        "cpu_seconds": cpu_seconds,
        "cost_usd": estimate_cost(cpu_seconds, price_per_cpu_hour),
    }


def significant(value: float, digits: int = 4) -> str:
    """Format ``value`` with ``digits`` significant digits (``0.0001234`` for 4 digits)."""
    check_int("digits", digits, minimum=1)
    value = check_number("value", value)
    return f"{value:#.{digits}g}".rstrip(".") if value else "0"

