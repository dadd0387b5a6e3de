"""Parameters of the simulation: the plans, regions and scenarios, and :class:`SimulationConfig`.

Everything the simulator reads before it draws a single random number lives here: the
constants of the simulated business (plans and their prices, regions, channels, age bands),
the drift scenarios with their descriptions, and the validated, hashable configuration of one
dataset.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd

from companion.core.checks import check_choice, check_date, check_int
from companion.errors import InvalidParameterError

SCENARIOS: tuple[str, ...] = ("covariate", "concept", "quality")
"""Drift scenarios the simulation knows, each with a known onset."""

PLANS = ("basic", "standard", "premium")
PLAN_FEES = (7.99, 12.99, 17.99)
RAISED_FEES = (7.99, 14.99, 21.99)
"""Plan prices from the concept-drift onset on: the price rise of standard and premium."""
REGIONS = ("north", "south", "east", "west")
CHANNELS = ("organic", "search", "social", "referral", "partner_bundle")
AGE_BANDS = ("18-24", "25-34", "35-44", "45-54", "55+")

HISTORY_WEEKS = 8
"""Weeks of activity generated before the first snapshot, so early snapshots have history."""

LABEL_WINDOW_DAYS = 30

_SCENARIO_DESCRIPTIONS = {
    "covariate": (
        "acquisition_channel, age_band, plan",
        "A partner bundle starts bringing many younger, lighter-watching customers on the "
        "basic plan: the population changes, the rules of churn do not.",
    ),
    "concept": (
        "churned_30d",
        "A price rise on the standard (12.99 -> 14.99) and premium (17.99 -> 21.99) plans: "
        "customers aged 45+ on those plans, loyal until then, start to churn. monthly_fee "
        "rises for everyone on those plans; who churns changes far more than the inputs.",
    ),
    "quality": (
        "minutes_watched",
        "A new TV app reports minutes_watched in seconds for about a third of customers, and "
        "8% of minutes_watched values arrive empty. Behaviour is unchanged; the data is wrong.",
    ),
}


@dataclass(frozen=True)
class SimulationConfig:
    """Parameters of one simulated dataset.

    Attributes:
        n_customers: customers in the population (existing ones plus those who sign up).
        start: date of the first monthly snapshot, ``YYYY-MM-DD``. Activity starts
            ``HISTORY_WEEKS`` weeks earlier.
        months: number of monthly snapshots (one per month from ``start``).
        seed: seed of every random draw.
        scenarios: which drift scenarios happen, a subset of :data:`SCENARIOS`.
        covariate_onset: snapshot index (months after ``start``) where covariate drift starts.
        concept_onset: snapshot index where concept drift (the price rise) starts.
        quality_onset: snapshot index where the data-quality incident starts.
    """

    n_customers: int = 20_000
    start: str = "2025-01-01"
    months: int = 12
    seed: int = 42
    scenarios: tuple[str, ...] = SCENARIOS
    covariate_onset: int = 5
    concept_onset: int = 8
    quality_onset: int = 10

    def __post_init__(self) -> None:
        check_int("n_customers", self.n_customers, minimum=1)
        check_int("months", self.months, minimum=1)
        check_int("seed", self.seed, minimum=0)
        if not isinstance(self.start, str):
            raise InvalidParameterError(
                f"start must be a date string like '2025-01-01', got {self.start!r} "
                f"of type {type(self.start).__name__}"
            )
        start = check_date("start", self.start)
        if start != start.normalize():
            raise InvalidParameterError(f"start must be a date without a time, got {self.start!r}")
        if isinstance(self.scenarios, str) or not isinstance(self.scenarios, (tuple, list)):
            raise InvalidParameterError(
                f"scenarios must be a tuple of names from {SCENARIOS}, got {self.scenarios!r}"
            )
        for name in self.scenarios:
            check_choice("scenario", name, SCENARIOS)
        if len(set(self.scenarios)) != len(self.scenarios):
            raise InvalidParameterError(f"scenarios must not repeat, got {self.scenarios!r}")
        # Keep a canonical order so that equal configs compare and hash equal.
        object.__setattr__(self, "scenarios", tuple(s for s in SCENARIOS if s in self.scenarios))
        for name in ("covariate_onset", "concept_onset", "quality_onset"):
            value = check_int(name, getattr(self, name), minimum=1)
            scenario = name.removesuffix("_onset")
            if scenario in self.scenarios and value >= self.months:
                raise InvalidParameterError(
                    f"{name} must be a snapshot index between 1 and months - 1 = "
                    f"{self.months - 1}, got {value}; drop {scenario!r} from scenarios "
                    f"or raise months"
                )

    @classmethod
    def between(cls, start: Any, end: Any, **params: Any) -> SimulationConfig:
        """Build a config whose monthly snapshots run from ``start`` up to, not including, ``end``.

        Example:
            >>> SimulationConfig.between("2025-01-01", "2025-07-01", scenarios=()).months
            6
        """
        clash = sorted({"start", "months"} & set(params))
        if clash:
            raise InvalidParameterError(
                f"between() sets {clash} itself from start and end; drop them from the "
                f"other parameters {sorted(params)}"
            )
        first, last = check_date("start", start), check_date("end", end)
        if last <= first:
            raise InvalidParameterError(
                f"end {end!r} must be after start {start!r}: the window needs at least one month"
            )
        months = (last.year - first.year) * 12 + (last.month - first.month)
        if months < 1:
            raise InvalidParameterError(
                f"end {end!r} must be at least one month after start {start!r}"
            )
        if not isinstance(start, str):  # a Timestamp, datetime or date: kept as text
            start = str(first.date()) if first == first.normalize() else first.isoformat()
        known = [f.name for f in dataclasses.fields(cls)]
        unknown = sorted(set(params) - set(known))
        if unknown:
            raise InvalidParameterError(
                f"unknown simulation parameter(s) {unknown}; accepted: {known}"
            )
        return cls(start=start, months=months, **params)

    @property
    def start_timestamp(self) -> pd.Timestamp:
        """The first snapshot, as a timestamp."""
        return pd.Timestamp(self.start)

    @property
    def end_timestamp(self) -> pd.Timestamp:
        """The end of the simulated window (one month after the last snapshot)."""
        return self.start_timestamp + pd.DateOffset(months=self.months)

    @property
    def snapshots(self) -> list[pd.Timestamp]:
        """The monthly snapshot timestamps, first to last."""
        return [self.start_timestamp + pd.DateOffset(months=m) for m in range(self.months)]

    def onset(self, scenario: str) -> pd.Timestamp | None:
        """Return when ``scenario`` starts, or None if it is not in this dataset."""
        check_choice("scenario", scenario, SCENARIOS)
        if scenario not in self.scenarios:
            return None
        return self.snapshots[getattr(self, f"{scenario}_onset")]

    def to_dict(self) -> dict[str, Any]:
        """Return the parameters as plain JSON-friendly values."""
        values = dataclasses.asdict(self)
        values["scenarios"] = list(self.scenarios)
        return values

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> SimulationConfig:
        """Build a config from a mapping (e.g. ``params.yaml``), rejecting unknown keys."""
        if not isinstance(values, Mapping):
            raise InvalidParameterError(
                f"values must be a mapping of simulation parameters, got {values!r} "
                f"of type {type(values).__name__}"
            )
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(map(str, set(values) - known))
        if unknown:
            raise InvalidParameterError(
                f"unknown simulation parameter(s) {unknown}; accepted: {sorted(known)}"
            )
        values = dict(values)
        if isinstance(values.get("scenarios"), list):
            values["scenarios"] = tuple(values["scenarios"])
        return cls(**values)
