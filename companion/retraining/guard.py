"""The scoring guard of Level 3: check a month's scoring inputs, and a fallback model for them.

:func:`scoring_checks` runs chapter 10's quality checks on each month's scoring inputs;
:func:`broken_columns` names the model inputs the failed checks point at; and
:func:`fallback_model` refits the production recipe with those inputs held constant, so that a
month with broken inputs can still be scored, by a model that ignores them.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pandas as pd

from companion.core.checks import check_choice
from companion.errors import InvalidParameterError
from companion.retraining.year import Year
from companion.training import FEATURES, train

__all__ = ["RAW_TO_FEATURE", "broken_columns", "fallback_model", "scoring_checks"]

RAW_TO_FEATURE = {"minutes_watched": "minutes_4w"}
"""A raw column named by a quality check -> the model input built from it."""


def scoring_checks(year: Year, results: Iterable[Any] | None = None
                   ) -> dict[str, tuple[str, ...]]:
    """Chapter 10's quality checks of each month's scoring inputs: month -> failed checks.

    ``results`` are chapter 10's :class:`~companion.monitoring.QualityResult` records (a
    monitoring pass's ``quality``); without them the checks run here on the month's features
    (:func:`~companion.training.snapshot_features`, as chapter 10's monitoring reads them).
    """
    from companion.monitoring import QualityResult, quality_checks

    if not isinstance(year, Year):
        raise InvalidParameterError(f"year must be a Year from prepare_year(), got {year!r}")
    if results is None:
        from companion.training import snapshot_features

        dataset = year.dataset
        frame = snapshot_features(dataset)
        fees = dataset.prices["monthly_fee"]
        results = [quality_checks(frame, m, dataset.activity, fees=fees) for m in year.months]
    found = {}
    for result in results:
        if not isinstance(result, QualityResult):
            raise InvalidParameterError(f"results must be QualityResult records, got {result!r}")
        found[f"{result.month}-01"] = tuple(result.failed)
    missing = sorted(set(year.months) - set(found))
    if missing:
        raise InvalidParameterError(f"no quality check for month(s) {missing}")
    return {m: found[m] for m in year.months}


def broken_columns(failed: Iterable[str]) -> tuple[str, ...]:
    """The model inputs the failed quality checks name (``*`` checks name none)."""
    from companion.monitoring import QUALITY_RULES

    columns = set()
    for check in failed:
        check_choice("quality check", check, tuple(QUALITY_RULES))
        column = RAW_TO_FEATURE.get(QUALITY_RULES[check]["column"],
                                    QUALITY_RULES[check]["column"])
        if column in FEATURES:
            columns.add(column)
    return tuple(sorted(columns))


def fallback_model(rows: pd.DataFrame, columns: tuple[str, ...], *, kind: str = "gbm",
                   seed: int = 0) -> tuple[Any, dict[str, Any]]:
    """Refit the recipe on ``rows`` with ``columns`` held at one value; return it and the values.

    A column held constant is never split on, so the model ignores it; scoring the broken
    month with the same values makes its scores independent of the broken input.
    """
    unknown = sorted(set(columns) - set(FEATURES))
    if unknown or not columns:
        raise InvalidParameterError(f"columns must be model inputs, got {list(columns)}")
    held = {c: (rows[c].median() if pd.api.types.is_numeric_dtype(rows[c])
                else rows[c].mode().iloc[0]) for c in columns}
    from companion.retraining.deploy import _one_thread

    with _one_thread():
        model = train(rows.assign(**held), kind=kind, seed=seed)
    return model, held
