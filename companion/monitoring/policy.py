"""The drift policy: which columns are watched, how, against what, and when an alarm is raised.

A drift test on one column answers "does this month look like the reference?". A monitor asks
it for many columns, every month, and must turn the answers into one decision a team acts on.
:class:`DriftPolicy` writes that decision rule down, so it can be reviewed, versioned and
graded:

- **columns**: the model's inputs except ``tenure_days``. Tenure is a clock: every customer
  ages by thirty days a month, so its distribution drifts by construction (PSI 0.5 by April on
  the default simulation, with nothing wrong). The signal it carries that matters, a wave of
  new customers, reaches the monitor through ``weeks_seen_4w`` (a customer who joined this
  month was seen fewer than four weeks) and through the categories the newcomers bring.
- **method**: the population stability index (PSI) for every column, numeric and categorical,
  set explicitly per column. One scale for all columns, symmetric, and an *effect size*:
  higher means more drift, and the score does not shrink as months get bigger, unlike a
  p-value (Evidently's default switches a numeric column of few distinct values to
  Jensen-Shannon silently; naming the method per column stops that).
- **threshold**: PSI >= 0.1 (the usual "moderate shift"). 0.2, the usual "major shift",
  catches the covariate shift of the default simulation one month later.
- **reference**: one stable month (January, the month the model was trained on), fixed: a
  rolling reference would absorb a slow drift and then compare the drifted months to each other.
- **multiple testing**: eleven columns times eleven months is 121 tests. With p-value tests
  at 0.05 a monitor would expect six false alarms a year from noise alone; a Bonferroni rule
  (alpha / tests) fixes that (:attr:`DriftPolicy.correction`). PSI is an effect size, not a
  p-value: its guard is a threshold far above the noise of the family, checked with
  :func:`companion.monitoring.drift.noise_floor` (the largest PSI of any column over the stable
  months, about a tenth of the threshold here). An alarm needs ``min_columns`` drifted columns
  (one: the quality incident touches a single column).

:data:`DEFAULT_POLICY` is that policy; :data:`PRESET_DEFAULT` describes Evidently's preset
left at its defaults, the contrast the chapter prints.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from companion.core.checks import check_choice, check_columns, check_int, check_number, check_text
from companion.errors import InvalidParameterError, UnknownNameError
from companion.training import CATEGORICAL_FEATURES, FEATURES, NUMERIC_FEATURES

__all__ = [
    "DEFAULT_POLICY",
    "METHOD_DIRECTION",
    "POLICY_VERSION",
    "PRESET_DEFAULT",
    "DriftPolicy",
]

POLICY_VERSION = "drift-policy/1"
"""Version of :data:`DEFAULT_POLICY`, stamped on every alert it raises."""

METHOD_DIRECTION: Mapping[str, str] = {
    "psi": "above",
    "wasserstein": "above",
    "jensenshannon": "above",
    "hellinger": "above",
    "kl_div": "above",
    "ks": "below",
    "chisquare": "below",
    "z": "below",
    "mannw": "below",
    "anderson": "below",
}
"""For each Evidently method the policy accepts, which side of the threshold means drifted:
``above`` for distances (drifted when score >= threshold), ``below`` for p-values (drifted when
score < threshold)."""

CORRECTIONS = ("none", "bonferroni")
_CATEGORICAL_METHODS = {"psi", "jensenshannon", "hellinger", "kl_div", "chisquare", "z"}

@dataclass(frozen=True)
class DriftPolicy:
    """A written drift policy: columns, method and threshold per column, alarm rule.

    Attributes:
        version: a name stamped on the alerts this policy raises.
        numeric: numeric columns watched.
        categorical: categorical columns watched.
        method: the Evidently method of every column (a key of :data:`METHOD_DIRECTION`).
        threshold: the threshold of every column (a distance or a p-value, per the method).
        methods: per-column overrides of ``method``.
        thresholds: per-column overrides of ``threshold``.
        min_columns: drifted columns needed for an alarm.
        correction: ``bonferroni`` divides a p-value threshold by columns x ``months``.
        months: the months a year of monitoring tests (for the correction).
    """

    version: str = POLICY_VERSION
    numeric: tuple[str, ...] = tuple(c for c in NUMERIC_FEATURES if c != "tenure_days")
    categorical: tuple[str, ...] = tuple(CATEGORICAL_FEATURES)
    method: str = "psi"
    threshold: float = 0.1
    methods: Mapping[str, str] = field(default_factory=dict)
    thresholds: Mapping[str, float] = field(default_factory=dict)
    min_columns: int = 1
    correction: str = "none"
    months: int = 11

    def __post_init__(self) -> None:
        check_text("version", self.version)
        numeric = check_columns("numeric", list(self.numeric)) if self.numeric else []
        categorical = (
            check_columns("categorical", list(self.categorical)) if self.categorical else []
        )
        if not numeric and not categorical:
            raise InvalidParameterError("a drift policy needs at least one column to watch")
        both = sorted(set(numeric) & set(categorical))
        if both:
            raise InvalidParameterError(f"columns {both} are listed as numeric and categorical")
        object.__setattr__(self, "numeric", tuple(numeric))
        object.__setattr__(self, "categorical", tuple(categorical))
        check_choice("method", self.method, METHOD_DIRECTION)
        check_number("threshold", self.threshold, positive=True)
        for name, table in (("methods", self.methods), ("thresholds", self.thresholds)):
            if not isinstance(table, Mapping):
                raise InvalidParameterError(f"{name} must be a mapping column -> value")
            unknown = sorted(set(table) - set(self.columns))
            if unknown:
                raise UnknownNameError(
                    f"{name} name column(s) {unknown} the policy does not watch; watched: "
                    f"{list(self.columns)}"
                )
        for column, method in self.methods.items():
            check_choice(f"method of {column}", method, METHOD_DIRECTION)
        for column, value in self.thresholds.items():
            check_number(f"threshold of {column}", value, positive=True)
        for column in self.columns:
            if self.direction(column) == "below" and self.column_threshold(column) >= 1:
                raise InvalidParameterError(
                    f"{column}'s method {self.column_method(column)!r} gives a p-value: its "
                    f"threshold must be below 1, got {self.column_threshold(column)}"
                )
        for column in categorical:
            if self.column_method(column) not in _CATEGORICAL_METHODS:
                raise InvalidParameterError(
                    f"method {self.column_method(column)!r} does not apply to categorical column "
                    f"{column!r}; accepted: {sorted(_CATEGORICAL_METHODS)}"
                )
        object.__setattr__(self, "methods", dict(self.methods))
        object.__setattr__(self, "thresholds", dict(self.thresholds))
        check_int("min_columns", self.min_columns, minimum=1, maximum=len(self.columns))
        check_choice("correction", self.correction, CORRECTIONS)
        check_int("months", self.months, minimum=1)

    @property
    def columns(self) -> tuple[str, ...]:
        """Every watched column, numeric first."""
        return (*self.numeric, *self.categorical)

    def column_method(self, column: str) -> str:
        """The Evidently method of ``column``."""
        return self.methods.get(self._known(column), self.method)

    def column_threshold(self, column: str) -> float:
        """The threshold Evidently is given for ``column`` (after the correction)."""
        value = float(self.thresholds.get(self._known(column), self.threshold))
        if self.correction == "bonferroni" and self.direction(column) == "below":
            value /= len(self.columns) * self.months
        return value

    def direction(self, column: str) -> str:
        """``above`` if a score at or above the threshold is drift, ``below`` for p-values."""
        return METHOD_DIRECTION[self.column_method(column)]

    def drifted(self, column: str, score: float) -> bool:
        """Read one column's score the way its method means it."""
        threshold = self.column_threshold(column)
        if self.direction(column) == "above":
            return bool(score >= threshold)
        return bool(score < threshold)

    def _known(self, column: str) -> str:
        if column not in self.columns:
            raise UnknownNameError(
                f"column {column!r} is not watched by policy {self.version!r}; watched: "
                f"{list(self.columns)}"
            )
        return column

    def preset_arguments(self) -> dict[str, Any]:
        """The arguments of Evidently's ``DataDriftPreset`` that apply this policy."""
        return {
            "columns": list(self.columns),
            "per_column_method": {c: self.column_method(c) for c in self.columns},
            "per_column_threshold": {c: self.column_threshold(c) for c in self.columns},
        }

    def to_dict(self) -> dict[str, Any]:
        """The policy as plain JSON values (what an alert or a report records)."""
        values = dataclasses.asdict(self)
        values["numeric"], values["categorical"] = list(self.numeric), list(self.categorical)
        return values

    def replace(self, **changes: Any) -> DriftPolicy:
        """A copy with ``changes`` applied (and checked)."""
        known = {f.name for f in dataclasses.fields(self)}
        unknown = sorted(set(changes) - known)
        if unknown:
            raise InvalidParameterError(
                f"unknown policy field(s) {unknown}; accepted: {sorted(known)}"
            )
        return dataclasses.replace(self, **changes)

DEFAULT_POLICY = DriftPolicy()
"""The book's policy: PSI >= 0.1 on every input but tenure, January as reference, one column."""

PRESET_DEFAULT = "evidently-preset-defaults"
"""Name of the contrast: ``DataDriftPreset()`` on every feature with Evidently's defaults."""

ALL_FEATURES: Sequence[str] = tuple(FEATURES)
