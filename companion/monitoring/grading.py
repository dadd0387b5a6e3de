"""Grading monitors against the simulator's known onsets: detection delay and false alarms.

The simulation knows when each drift starts (``dataset.onsets``): a monitor can be graded like
a model. For each scenario, the *detection delay* is the number of months from its onset to the
first month a column it moves is flagged; a *false alarm* is an alarm in a stable month (after
the reference, before the first onset). Once a drift has started, a data drift alarm stays on
(the drifted population stays), so later scenarios are graded on *their* columns:

- covariate shift (June by default): ``acquisition_channel``, ``age_band``, ``plan``;
- price rise of the concept drift (September): ``monthly_fee``, the only input it moves
  (who churns is not an input: performance must catch that, see
  :mod:`~companion.monitoring.performance`);
- quality incident (November): ``minutes_4w``.

:func:`grade_drift` grades one :class:`~companion.monitoring.drift.DriftPass`;
:func:`drift_grading_table` runs a policy on several seeds (the chapter's robustness table).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from companion.core.checks import check_int
from companion.data import ChurnDataset, SimulationConfig, check_dataset, generate
from companion.errors import InvalidParameterError
from companion.monitoring.drift import DriftPass, drift_pass, month_label
from companion.monitoring.policy import DEFAULT_POLICY, DriftPolicy
from companion.training import snapshot_features

__all__ = [
    "MAX_DELAY",
    "MAX_FALSE_ALARMS",
    "SCENARIO_COLUMNS",
    "drift_grading_table",
    "grade_drift",
    "grade_preset_defaults",
    "onset_months",
]

logger = logging.getLogger(__name__)

SCENARIO_COLUMNS: Mapping[str, tuple[str, ...]] = {
    "covariate": ("acquisition_channel", "age_band", "plan"),
    "concept": ("monthly_fee",),
    "quality": ("minutes_4w",),
}
"""The monitored inputs each scenario moves (what a detection of it must flag)."""
MAX_DELAY = 1
"""The grade: a drift must be flagged within one month of its onset..."""
MAX_FALSE_ALARMS = 1
"""... with at most one false alarm over the stable months."""


def onset_months(dataset: ChurnDataset) -> dict[str, pd.Timestamp]:
    """The onset month of each scenario the dataset holds."""
    check_dataset(dataset)
    onsets = {}
    for scenario in SCENARIO_COLUMNS:
        when = dataset.config.onset(scenario)
        if when is not None:
            onsets[scenario] = when
    return onsets


def _months_between(start: pd.Timestamp, end: pd.Timestamp) -> int:
    return (end.year - start.year) * 12 + end.month - start.month


def grade_drift(result: DriftPass, onsets: Mapping[str, Any]) -> dict[str, Any]:
    """Grade a drift pass: each scenario's delay (None if never flagged) and the false alarms.

    Returns ``{"<scenario>_delay": int | None, ..., "false_alarms": int, "stable_months": int,
    "passed": bool}``; ``passed`` holds when covariate and quality delays are at most
    :data:`MAX_DELAY` and false alarms at most :data:`MAX_FALSE_ALARMS`.
    """
    if not isinstance(result, DriftPass):
        raise InvalidParameterError(f"result must be a DriftPass, got {type(result).__name__}")
    if not isinstance(onsets, Mapping) or not onsets:
        raise InvalidParameterError("onsets must be a non-empty mapping scenario -> month")
    unknown = sorted(set(onsets) - set(SCENARIO_COLUMNS))
    if unknown:
        raise InvalidParameterError(
            f"unknown scenario(s) {unknown}; accepted: {sorted(SCENARIO_COLUMNS)}"
        )
    when = {name: pd.Timestamp(value) for name, value in onsets.items()}
    first_onset = min(when.values())
    grades: dict[str, Any] = {}
    for scenario, onset in when.items():
        watched = [c for c in SCENARIO_COLUMNS[scenario] if c in result.policy.columns]
        delay = None
        for month, reading in zip(result.months, result.readings, strict=True):
            if month >= onset and any(c in reading.drifted for c in watched):
                delay = _months_between(onset, month)
                break
        grades[f"{scenario}_delay"] = delay
    stable = [(m, r) for m, r in zip(result.months, result.readings, strict=True)
              if m < first_onset]
    grades["false_alarms"] = sum(r.alarm for _, r in stable)
    grades["false_alarm_months"] = ", ".join(month_label(m) for m, r in stable if r.alarm) or "-"
    grades["stable_months"] = len(stable)
    grades["passed"] = bool(
        all(grades.get(f"{s}_delay") is not None and grades[f"{s}_delay"] <= MAX_DELAY
            for s in ("covariate", "quality") if s in when)
        and grades["false_alarms"] <= MAX_FALSE_ALARMS
    )
    return grades


def drift_grading_table(
    seeds: Sequence[int],
    *,
    n_customers: int = 5_000,
    policy: DriftPolicy = DEFAULT_POLICY,
    datasets: Mapping[int, ChurnDataset] | None = None,
) -> pd.DataFrame:
    """Run ``policy`` over twelve months for each seed and grade it against the onsets.

    Args:
        seeds: the simulation seeds (the chapter's 42 and 1-4).
        n_customers: customers per simulation.
        policy: the drift policy graded.
        datasets: already generated datasets by seed (others are generated with the
            default scenarios and onsets).

    Returns:
        One row per seed: delays per scenario (months), false alarms over the stable months,
        and whether the grade passed.
    """
    if isinstance(seeds, (str, bytes)) or not isinstance(seeds, Sequence) or not seeds:
        raise InvalidParameterError(f"seeds must be a non-empty list of ints, got {seeds!r}")
    for seed in seeds:
        check_int("seed", seed, minimum=0)
    check_int("n_customers", n_customers, minimum=100)
    if not isinstance(policy, DriftPolicy):
        raise InvalidParameterError(f"policy must be a DriftPolicy, got {type(policy).__name__}")
    given = dict(datasets or {})
    for dataset in given.values():
        check_dataset(dataset)
    rows = []
    for seed in seeds:
        dataset = given.get(seed) or generate(SimulationConfig(n_customers=n_customers, seed=seed))
        result = drift_pass(snapshot_features(dataset), policy)
        grades = grade_drift(result, onset_months(dataset))
        logger.info("seed %d: %s", seed, grades)
        rows.append({"seed": seed, **grades})
    return pd.DataFrame(rows)


def grade_preset_defaults(table: pd.DataFrame, onsets: Mapping[str, Any]) -> dict[str, Any]:
    """Grade :func:`~companion.monitoring.drift.preset_default_pass`: what the defaults miss.

    Returns the months the preset's dataset alarm fired, the stable months where "any column
    drifted" fired (false alarms) and the columns behind them.
    """
    if not isinstance(table, pd.DataFrame) or not {"month", "dataset_alarm", "any_column",
                                                   "drifted"} <= set(table.columns):
        raise InvalidParameterError("table must come from preset_default_pass()")
    if not isinstance(onsets, Mapping) or not onsets:
        raise InvalidParameterError("onsets must be a non-empty mapping scenario -> month")
    first = month_label(min(pd.Timestamp(v) for v in onsets.values()))
    stable = table[table["month"] < first]
    false = stable[stable["any_column"]]
    columns = sorted({c for cell in false["drifted"] for c in cell.split(", ") if c != "-"})
    return {
        "dataset_alarm_months": ", ".join(table.loc[table["dataset_alarm"], "month"]) or "-",
        "any_column_false_alarms": len(false),
        "false_alarm_months": ", ".join(false["month"]) or "-",
        "false_alarm_columns": ", ".join(columns) or "-",
    }
