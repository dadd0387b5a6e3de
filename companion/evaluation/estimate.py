"""A number with its interval: :class:`Estimate`, and tables and differences of estimates.

Every result of :mod:`companion.evaluation` is an :class:`Estimate`, which prints as
``0.812 [0.795, 0.829]``. :func:`interval_table` prints several side by side;
:func:`unpaired_difference` subtracts two estimates from independent samples.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import pandas as pd
from scipy import stats

from companion.core.checks import check_bool, check_int, check_number, is_real
from companion.errors import InvalidParameterError

LEVEL = 0.95
"""Confidence level of every interval in the book."""


@dataclass(frozen=True)
class Estimate:
    """A measured number with its interval.

    Attributes:
        value: the point estimate.
        low: lower end of the interval.
        high: upper end of the interval.
        level: confidence level of the interval (0.95).
        method: how the interval was computed (``"DeLong"``, ``"bootstrap"``, ...).
        p_value: for a difference, the two-sided p-value of "no difference" (else None).
    """

    value: float
    low: float
    high: float
    level: float = LEVEL
    method: str = "DeLong"
    p_value: float | None = None

    def __post_init__(self) -> None:
        for name in ("value", "low", "high"):
            number = getattr(self, name)
            if not is_real(number) or not math.isfinite(number):
                raise InvalidParameterError(
                    f"Estimate {name} must be a finite number, got {number!r}"
                )
            object.__setattr__(self, name, float(number))
        tolerance = 1e-9 * max(1.0, abs(self.value))
        if not self.low - tolerance <= self.value <= self.high + tolerance:
            raise InvalidParameterError(
                f"an Estimate's interval must hold its value: low <= value <= high, got "
                f"{self.value!r} [{self.low!r}, {self.high!r}]"
            )
        _check_level(self.level)
        if not isinstance(self.method, str):
            raise InvalidParameterError(f"method must be a str, got {type(self.method).__name__}")
        if self.p_value is not None:
            if not is_real(self.p_value) or not 0 <= self.p_value <= 1:
                raise InvalidParameterError(
                    f"p_value must be None or a number in [0, 1], got {self.p_value!r}"
                )
            object.__setattr__(self, "p_value", float(self.p_value))

    def __str__(self) -> str:
        return self.format()

    def format(self, digits: int = 3, signed: bool = False) -> str:
        """Return ``value [low, high]`` rounded to ``digits`` (with signs for differences)."""
        check_int("digits", digits, minimum=0)
        check_bool("signed", signed)
        sign = "+" if signed else ""
        return (
            f"{self.value:{sign}.{digits}f} [{self.low:{sign}.{digits}f}, "
            f"{self.high:{sign}.{digits}f}]"
        )

    @property
    def half_width(self) -> float:
        """Half the interval's width: the "plus or minus" of the estimate."""
        return (self.high - self.low) / 2

    def above(self, threshold: float) -> bool:
        """Return True if the whole interval lies above ``threshold``."""
        return self.low > check_number("threshold", threshold)

    def below(self, threshold: float) -> bool:
        """Return True if the whole interval lies below ``threshold``."""
        return self.high < check_number("threshold", threshold)

    def contains(self, value: float) -> bool:
        """Return True if ``value`` lies inside the interval (ends included)."""
        return self.low <= check_number("value", value) <= self.high

    def as_dict(self, prefix: str = "") -> dict[str, float]:
        """Return ``{prefix: value, prefix_low: low, prefix_high: high}`` for a table row."""
        if not isinstance(prefix, str):
            raise InvalidParameterError(f"prefix must be a str, got {type(prefix).__name__}")
        key = prefix or "value"
        return {key: self.value, f"{key}_low": self.low, f"{key}_high": self.high}


def _check_level(level: float) -> float:
    if not is_real(level) or not 0 < level < 1:
        raise InvalidParameterError(f"level must be a number between 0 and 1, got {level!r}")
    return float(level)


def interval_table(estimates: Mapping[str, Estimate], digits: int = 3) -> pd.DataFrame:
    """Return a printable table of named estimates: value, low, high (rounded)."""
    if not isinstance(estimates, Mapping):
        raise InvalidParameterError(
            f"estimates must be a mapping of name to Estimate, got {type(estimates).__name__}"
        )
    check_int("digits", digits, minimum=0)
    for name, e in estimates.items():
        if not isinstance(e, Estimate):
            raise InvalidParameterError(
                f"estimate {name!r} must be an Estimate, got {type(e).__name__}"
            )
    rows = [
        {"": name, "estimate": round(e.value, digits), "low": round(e.low, digits),
         "high": round(e.high, digits)}
        for name, e in estimates.items()
    ]
    return pd.DataFrame(rows).set_index("")


def unpaired_difference(a: Estimate, b: Estimate) -> Estimate:
    """Return ``a - b`` for two estimates from independent samples (normal approximation).

    Each interval's half-width gives its standard error; the two add in quadrature. For
    samples that are positively correlated (the same customers in two months) the interval
    is conservative: wider than a paired one would be.

    Example:
        >>> d = unpaired_difference(Estimate(0.80, 0.78, 0.82), Estimate(0.75, 0.73, 0.77))
        >>> round(d.value, 3), round(d.half_width, 4)
        (0.05, 0.0283)
    """
    for name, e in (("a", a), ("b", b)):
        if not isinstance(e, Estimate):
            raise InvalidParameterError(f"{name} must be an Estimate, got {type(e).__name__}")
    if a.level != b.level:
        raise InvalidParameterError(
            f"both estimates must share one level, got {a.level} and {b.level}"
        )
    diff = a.value - b.value
    half = math.hypot(a.half_width, b.half_width)
    z = stats.norm.ppf(0.5 + a.level / 2)
    se = half / z
    p_value = 1.0 if se == 0 else float(2 * stats.norm.sf(abs(diff) / se))
    return Estimate(diff, diff - half, diff + half, a.level, "unpaired", p_value)
