"""Evaluation with uncertainty: every metric and every difference with a 95% interval.

A test month of a few thousand customers holds a few hundred churners at most, and an AUC
measured on it moves by several hundredths from one sample to the next. This module gives the
number *and* how far it can be trusted:

- :func:`auc_interval`: ROC AUC with DeLong's interval (exact, no resampling);
- :func:`auc_difference`: the paired difference of two models' AUC on the same rows, DeLong's
  interval and p-value (the two models' errors are correlated; a paired interval is far
  narrower than two separate ones);
- :func:`bootstrap_interval`: any metric, or the difference of a metric between two models,
  resampled by *customer* (a customer's rows stay together), for metrics DeLong does not cover;
- :func:`compare_models`: a table of models against a baseline, each metric and each
  difference with its interval, ready to print.

Every result is an :class:`Estimate`, which prints as ``0.812 [0.795, 0.829]``.

Example:
    >>> import numpy as np
    >>> y = np.array([0, 0, 1, 1, 0, 1, 0, 1])
    >>> s = np.array([0.1, 0.4, 0.35, 0.8, 0.2, 0.7, 0.6, 0.9])
    >>> auc_interval(y, s).value
    0.875
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from companion.errors import InvalidParameterError, check_int

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

    def __str__(self) -> str:
        return self.format()

    def format(self, digits: int = 3, signed: bool = False) -> str:
        """Return ``value [low, high]`` rounded to ``digits`` (with signs for differences)."""
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
        return self.low > threshold

    def below(self, threshold: float) -> bool:
        """Return True if the whole interval lies below ``threshold``."""
        return self.high < threshold

    def contains(self, value: float) -> bool:
        """Return True if ``value`` lies inside the interval (ends included)."""
        return self.low <= value <= self.high

    def as_dict(self, prefix: str = "") -> dict[str, float]:
        """Return ``{prefix: value, prefix_low: low, prefix_high: high}`` for a table row."""
        key = prefix or "value"
        return {key: self.value, f"{key}_low": self.low, f"{key}_high": self.high}


def _labels_scores(y: object, *scores: object) -> tuple[np.ndarray, list[np.ndarray]]:
    y = np.asarray(y)
    if y.ndim != 1 or y.size == 0:
        raise InvalidParameterError(f"labels must be a non-empty 1-D array, got shape {y.shape}")
    values = set(np.unique(y).tolist())
    if not values <= {0, 1}:
        raise InvalidParameterError(f"labels must be 0 or 1, got values {sorted(values)[:5]}")
    y = y.astype(int)
    if y.min() == y.max():
        raise InvalidParameterError(
            f"the AUC is undefined on {y.size} rows of a single class ({y[0]}); it needs "
            "churners and stayers"
        )
    arrays = []
    for s in scores:
        s = np.asarray(s, dtype="float64")
        if s.shape != y.shape:
            raise InvalidParameterError(
                f"scores must have one value per label ({y.size}), got shape {s.shape}"
            )
        if not np.isfinite(s).all():
            raise InvalidParameterError("scores must be finite numbers (no NaN or inf)")
        arrays.append(s)
    return y, arrays


def _check_level(level: float) -> float:
    if not isinstance(level, (int, float)) or isinstance(level, bool) or not 0 < level < 1:
        raise InvalidParameterError(f"level must be a number between 0 and 1, got {level!r}")
    return float(level)


def _delong_components(y: np.ndarray, scores: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Return each model's AUC and the DeLong covariance matrix (Sun and Xu's fast algorithm)."""
    m, n = int((y == 1).sum()), int((y == 0).sum())
    k = len(scores)
    v10 = np.empty((k, m))
    v01 = np.empty((k, n))
    aucs = np.empty(k)
    for i, s in enumerate(scores):
        positive, negative = s[y == 1], s[y == 0]
        rank_all = stats.rankdata(np.concatenate([positive, negative]))
        rank_pos = stats.rankdata(positive)
        rank_neg = stats.rankdata(negative)
        aucs[i] = (rank_all[:m].sum() - m * (m + 1) / 2) / (m * n)
        v10[i] = (rank_all[:m] - rank_pos) / n
        v01[i] = 1.0 - (rank_all[m:] - rank_neg) / m
    s10 = np.atleast_2d(np.cov(v10))
    s01 = np.atleast_2d(np.cov(v01))
    return aucs, s10 / m + s01 / n


def auc_interval(y: object, scores: object, level: float = LEVEL) -> Estimate:
    """Return ROC AUC with DeLong's ``level`` interval (clipped to [0, 1]).

    Example:
        >>> est = auc_interval([0, 0, 1, 1, 0, 1], [0.1, 0.3, 0.7, 0.8, 0.4, 0.35])
        >>> round(est.value, 3), est.low <= est.value <= est.high
        (0.889, True)
    """
    level = _check_level(level)
    y, (s,) = _labels_scores(y, scores)
    aucs, cov = _delong_components(y, [s])
    z = stats.norm.ppf(0.5 + level / 2)
    se = math.sqrt(max(float(cov[0, 0]), 0.0))
    value = float(aucs[0])
    return Estimate(value, max(0.0, value - z * se), min(1.0, value + z * se), level, "DeLong")


def auc_difference(
    y: object, scores_a: object, scores_b: object, level: float = LEVEL
) -> Estimate:
    """Return AUC(a) - AUC(b) on the same rows, with DeLong's paired interval and p-value.

    Example:
        >>> y = [0, 0, 1, 1, 0, 1, 0, 1]
        >>> a = [0.1, 0.2, 0.8, 0.9, 0.3, 0.7, 0.4, 0.6]
        >>> auc_difference(y, a, a).value
        0.0
    """
    level = _check_level(level)
    y, (a, b) = _labels_scores(y, scores_a, scores_b)
    aucs, cov = _delong_components(y, [a, b])
    diff = float(aucs[0] - aucs[1])
    var = float(cov[0, 0] + cov[1, 1] - 2 * cov[0, 1])
    se = math.sqrt(max(var, 0.0))
    z = stats.norm.ppf(0.5 + level / 2)
    p_value = 1.0 if se == 0 else float(2 * stats.norm.sf(abs(diff) / se))
    return Estimate(diff, diff - z * se, diff + z * se, level, "DeLong paired", p_value)


def bootstrap_interval(
    metric: Callable[..., float],
    y: object,
    scores: object,
    baseline_scores: object | None = None,
    *,
    groups: object | None = None,
    n_resamples: int = 400,
    seed: int = 0,
    level: float = LEVEL,
) -> Estimate:
    """Return ``metric(y, scores)``, or its difference from a baseline, with a bootstrap interval.

    Rows are resampled by ``groups`` (e.g. ``customer_id``) when given, so a customer's rows
    stay together; with ``baseline_scores`` both models are scored on the same resample (a
    paired interval of ``metric(scores) - metric(baseline)``). Percentile interval, seeded.

    Example:
        >>> from sklearn.metrics import roc_auc_score
        >>> rng = np.random.default_rng(0)
        >>> y = rng.integers(0, 2, 300); s = y + rng.normal(0, 1, 300)
        >>> est = bootstrap_interval(roc_auc_score, y, s, n_resamples=100)
        >>> est.low < est.value < est.high
        True
    """
    level = _check_level(level)
    check_int("n_resamples", n_resamples, minimum=20)
    check_int("seed", seed, minimum=0)
    arrays = [scores] if baseline_scores is None else [scores, baseline_scores]
    y, arrays = _labels_scores(y, *arrays)
    if groups is None:
        codes = np.arange(y.size)
    else:
        groups = np.asarray(groups)
        if groups.shape != y.shape:
            raise InvalidParameterError(
                f"groups must have one value per label ({y.size}), got shape {groups.shape}"
            )
        codes = pd.factorize(groups, sort=True)[0]
    n_groups = int(codes.max()) + 1
    order = np.argsort(codes, kind="mergesort")
    starts = np.searchsorted(codes[order], np.arange(n_groups))
    sizes = np.bincount(codes, minlength=n_groups)

    def value(index: np.ndarray) -> float:
        result = float(metric(y[index], arrays[0][index]))
        if len(arrays) == 2:
            result -= float(metric(y[index], arrays[1][index]))
        return result

    point = value(np.arange(y.size))
    rng = np.random.default_rng(seed)
    draws = []
    for _ in range(n_resamples):
        chosen = rng.integers(0, n_groups, n_groups)
        index = order[np.concatenate([np.arange(starts[g], starts[g] + sizes[g]) for g in chosen])]
        if y[index].min() == y[index].max():
            continue  # a resample with one class has no AUC; skip it
        draws.append(value(index))
    if len(draws) < n_resamples // 2:
        raise InvalidParameterError(
            f"only {len(draws)} of {n_resamples} resamples held both classes; the sample is "
            "too small for a bootstrap interval"
        )
    low, high = np.quantile(draws, [0.5 - level / 2, 0.5 + level / 2])
    method = "bootstrap" + (" paired" if len(arrays) == 2 else "")
    p_value = None
    if len(arrays) == 2:
        draws_arr = np.asarray(draws)
        p_value = float(min(1.0, 2 * min((draws_arr <= 0).mean(), (draws_arr >= 0).mean())))
    return Estimate(point, float(low), float(high), level, method, p_value)


def compare_models(
    y: object,
    scores: Mapping[str, object],
    baseline: str | None = None,
    level: float = LEVEL,
    digits: int = 3,
) -> pd.DataFrame:
    """Return a table: each model's AUC with its interval, and its difference from ``baseline``.

    ``scores`` maps model names to their scores on the same rows ``y``. The difference uses
    DeLong's paired interval and p-value: a difference whose interval holds zero is not
    evidence that one model is better.

    Example:
        >>> y = [0, 0, 1, 1, 0, 1, 0, 1]
        >>> table = compare_models(y, {"a": [.1, .2, .8, .9, .3, .7, .4, .6],
        ...                            "b": [.2, .1, .7, .8, .5, .6, .3, .4]}, baseline="b")
        >>> list(table.columns)
        ['ROC AUC', '95% interval', 'difference vs b', 'difference 95% interval', 'p-value']
    """
    if not isinstance(scores, Mapping) or not scores:
        raise InvalidParameterError("scores must be a non-empty mapping of model name to scores")
    if baseline is not None and baseline not in scores:
        raise InvalidParameterError(
            f"baseline {baseline!r} is not among the models; accepted: {sorted(scores)}"
        )
    pct = f"{round(level * 100)}%"
    rows = []
    for name, s in scores.items():
        est = auc_interval(y, s, level)
        row = {"model": name, "ROC AUC": round(est.value, digits),
               f"{pct} interval": f"[{est.low:.{digits}f}, {est.high:.{digits}f}]"}
        if baseline is not None:
            if name == baseline:
                row.update({f"difference vs {baseline}": "", f"difference {pct} interval": "",
                            "p-value": ""})
            else:
                diff = auc_difference(y, s, scores[baseline], level)
                row.update({
                    f"difference vs {baseline}": f"{diff.value:+.{digits}f}",
                    f"difference {pct} interval":
                        f"[{diff.low:+.{digits}f}, {diff.high:+.{digits}f}]",
                    "p-value": f"{diff.p_value:.3f}" if diff.p_value >= 0.001 else "<0.001",
                })
        rows.append(row)
    return pd.DataFrame(rows).set_index("model")


def interval_table(estimates: Mapping[str, Estimate], digits: int = 3) -> pd.DataFrame:
    """Return a printable table of named estimates: value, low, high (rounded)."""
    rows = [
        {"": name, "estimate": round(e.value, digits), "low": round(e.low, digits),
         "high": round(e.high, digits)}
        for name, e in estimates.items()
    ]
    return pd.DataFrame(rows).set_index("")


__all__: Sequence[str] = (
    "LEVEL",
    "Estimate",
    "auc_interval",
    "auc_difference",
    "bootstrap_interval",
    "compare_models",
    "interval_table",
)
