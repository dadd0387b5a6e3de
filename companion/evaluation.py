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
  difference with its interval, ready to print;
- :func:`clustered_auc_interval`: DeLong's interval when a customer has several rows;
- :func:`unpaired_difference`: the difference of two estimates from independent samples;
- :func:`monthly_auc`: a model's AUC month by month, optionally its gap to the oracle;
- :func:`scenario_contributions`: how much each drift scenario moved a deployed model's AUC,
  measured by regenerating the data without it.

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

from companion.core.checks import check_int, check_timestamps
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
            if not _is_real(number) or not math.isfinite(number):
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
            if not _is_real(self.p_value) or not 0 <= self.p_value <= 1:
                raise InvalidParameterError(
                    f"p_value must be None or a number in [0, 1], got {self.p_value!r}"
                )
            object.__setattr__(self, "p_value", float(self.p_value))

    def __str__(self) -> str:
        return self.format()

    def format(self, digits: int = 3, signed: bool = False) -> str:
        """Return ``value [low, high]`` rounded to ``digits`` (with signs for differences)."""
        check_int("digits", digits, minimum=0)
        if not isinstance(signed, bool):
            raise InvalidParameterError(f"signed must be True or False, got {signed!r}")
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
        return self.low > _finite("threshold", threshold)

    def below(self, threshold: float) -> bool:
        """Return True if the whole interval lies below ``threshold``."""
        return self.high < _finite("threshold", threshold)

    def contains(self, value: float) -> bool:
        """Return True if ``value`` lies inside the interval (ends included)."""
        return self.low <= _finite("value", value) <= self.high

    def as_dict(self, prefix: str = "") -> dict[str, float]:
        """Return ``{prefix: value, prefix_low: low, prefix_high: high}`` for a table row."""
        if not isinstance(prefix, str):
            raise InvalidParameterError(f"prefix must be a str, got {type(prefix).__name__}")
        key = prefix or "value"
        return {key: self.value, f"{key}_low": self.low, f"{key}_high": self.high}


def _is_real(value: object) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(
        value, (bool, np.bool_)
    )


def _finite(name: str, value: object) -> float:
    if not _is_real(value) or not math.isfinite(value):
        raise InvalidParameterError(f"{name} must be a finite number, got {value!r}")
    return float(value)


def _float_array(name: str, values: object) -> np.ndarray:
    try:
        return np.asarray(values, dtype="float64")
    except (ValueError, TypeError) as exc:
        raise InvalidParameterError(f"{name} must be numbers, got {exc}") from exc


def _labels_scores(y: object, *scores: object) -> tuple[np.ndarray, list[np.ndarray]]:
    if isinstance(y, (str, bytes, Mapping)) or y is None:
        raise InvalidParameterError(
            f"labels must be a 1-D array of 0 and 1, got {type(y).__name__}"
        )
    y = np.asarray(y)
    if y.ndim != 1 or y.size == 0:
        raise InvalidParameterError(f"labels must be a non-empty 1-D array, got shape {y.shape}")
    try:
        values = set(pd.unique(y.ravel()).tolist())
    except TypeError as exc:
        raise InvalidParameterError(f"labels must be 0 or 1: {exc}") from exc
    if not all(v in (0, 1) and not (isinstance(v, float) and math.isnan(v)) for v in values):
        try:
            shown = sorted(values)[:5]
        except TypeError:
            shown = sorted(map(repr, values))[:5]
        raise InvalidParameterError(f"labels must be 0 or 1, got values {shown}")
    y = y.astype(int)
    if y.min() == y.max():
        raise InvalidParameterError(
            f"the AUC is undefined on {y.size} rows of a single class ({y[0]}); it needs "
            "churners and stayers"
        )
    arrays = []
    for s in scores:
        s = _float_array("scores", s)
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


def _check_two_of_each(m: int, n: int) -> None:
    if min(m, n) < 2:
        raise InvalidParameterError(
            f"an AUC interval needs at least 2 churners and 2 stayers, got {m} and {n}: with "
            "one of a class its variance is undefined"
        )


def _delong_components(y: np.ndarray, scores: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Return each model's AUC and the DeLong covariance matrix (Sun and Xu's fast algorithm)."""
    m, n = int((y == 1).sum()), int((y == 0).sum())
    _check_two_of_each(m, n)
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
    if not callable(metric):
        raise InvalidParameterError(
            f"metric must be a function metric(y, scores) -> float, got {type(metric).__name__}"
        )
    check_int("n_resamples", n_resamples, minimum=20)
    check_int("seed", seed, minimum=0)
    arrays = [scores] if baseline_scores is None else [scores, baseline_scores]
    y, arrays = _labels_scores(y, *arrays)
    if groups is None:
        codes = np.arange(y.size)
    else:
        codes = _group_codes(groups, y.size)
    n_groups = int(codes.max()) + 1
    order = np.argsort(codes, kind="mergesort")
    starts = np.searchsorted(codes[order], np.arange(n_groups))
    sizes = np.bincount(codes, minlength=n_groups)

    def value(index: np.ndarray) -> float:
        results = []
        for a in arrays:
            try:
                result = float(metric(y[index], a[index]))
            except (TypeError, ValueError) as exc:
                raise InvalidParameterError(
                    f"metric {getattr(metric, '__name__', metric)!r} must take (y, scores) and "
                    f"return a number: {exc}"
                ) from exc
            if not math.isfinite(result):
                raise InvalidParameterError(
                    f"metric {getattr(metric, '__name__', metric)!r} returned {result} on a "
                    "resample; it must return a finite number"
                )
            results.append(result)
        return results[0] - results[1] if len(results) == 2 else results[0]

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
    # A percentile interval of a skewed metric can, rarely, miss the point estimate itself;
    # widen it to hold the estimate so that every interval contains what it estimates.
    low, high = min(float(low), point), max(float(high), point)
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
    level = _check_level(level)
    check_int("digits", digits, minimum=0)
    for name in scores:
        if not isinstance(name, str) or not name:
            raise InvalidParameterError(f"model names must be non-empty str, got {name!r}")
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


def _clustered_components(
    y: np.ndarray, scores: list[np.ndarray], codes: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Return each model's AUC and Obuchowski's clustered DeLong covariance matrix.

    A customer seen in several months is one cluster: the placement values of its rows are
    summed before their variance is taken, so repeated rows of one customer do not count as
    independent evidence (Obuchowski 1997). With one row per cluster this is DeLong's.
    """
    m, n = int((y == 1).sum()), int((y == 0).sum())
    _check_two_of_each(m, n)
    n_clusters = int(codes.max()) + 1
    if n_clusters < 2:
        raise InvalidParameterError(
            f"a clustered interval needs at least 2 groups, got {n_clusters}"
        )
    k = len(scores)
    aucs = np.empty(k)
    v10 = np.empty((k, n_clusters))
    v01 = np.empty((k, n_clusters))
    m_k = np.bincount(codes[y == 1], minlength=n_clusters)
    n_k = np.bincount(codes[y == 0], minlength=n_clusters)
    for i, s in enumerate(scores):
        positive, negative = s[y == 1], s[y == 0]
        rank_all = stats.rankdata(np.concatenate([positive, negative]))
        place10 = (rank_all[:m] - stats.rankdata(positive)) / n
        place01 = 1.0 - (rank_all[m:] - stats.rankdata(negative)) / m
        aucs[i] = place10.mean()
        v10[i] = np.bincount(codes[y == 1], weights=place10, minlength=n_clusters) - m_k * aucs[i]
        v01[i] = np.bincount(codes[y == 0], weights=place01, minlength=n_clusters) - n_k * aucs[i]
    factor = n_clusters / (n_clusters - 1)
    s10 = factor * (v10 @ v10.T) / m
    s01 = factor * (v01 @ v01.T) / n
    s11 = factor * (v10 @ v01.T)
    cov = s10 / m + s01 / n + (s11 + s11.T) / (m * n)
    return aucs, cov


def _group_codes(groups: object, size: int) -> np.ndarray:
    groups = np.asarray(groups)
    if groups.shape != (size,):
        raise InvalidParameterError(
            f"groups must have one value per label ({size}), got shape {groups.shape}"
        )
    try:
        codes = pd.factorize(groups, sort=True)[0]
    except TypeError as exc:
        raise InvalidParameterError(f"groups must be sortable ids: {exc}") from exc
    if (codes < 0).any():
        raise InvalidParameterError(
            f"groups must not be missing: {int((codes < 0).sum())} row(s) have no group"
        )
    return codes


def clustered_auc_interval(
    y: object, scores: object, groups: object, level: float = LEVEL
) -> Estimate:
    """Return ROC AUC with a DeLong interval clustered by ``groups`` (e.g. ``customer_id``).

    Use it when a customer has several rows (several months pooled): the plain DeLong
    interval would treat them as independent and come out too narrow.

    Example:
        >>> y = [0, 0, 1, 1, 0, 1, 0, 1]
        >>> s = [0.1, 0.4, 0.35, 0.8, 0.2, 0.7, 0.6, 0.9]
        >>> clustered_auc_interval(y, s, [1, 1, 2, 2, 3, 3, 4, 4]).value
        0.875
    """
    level = _check_level(level)
    y, (s,) = _labels_scores(y, scores)
    aucs, cov = _clustered_components(y, [s], _group_codes(groups, y.size))
    z = stats.norm.ppf(0.5 + level / 2)
    se = math.sqrt(max(float(cov[0, 0]), 0.0))
    value = float(aucs[0])
    return Estimate(
        value, max(0.0, value - z * se), min(1.0, value + z * se), level, "DeLong clustered"
    )


def monthly_auc(
    y: object,
    scores: object,
    months: object,
    *,
    baseline_scores: object | None = None,
    level: float = LEVEL,
) -> pd.DataFrame:
    """Return one row per month: rows, churners, AUC and its DeLong interval.

    ``months`` gives each row's month (e.g. ``snapshot_timestamp``). With ``baseline_scores``
    (another model, or the true probabilities, on the same rows) the table adds the paired
    difference ``AUC(baseline) - AUC(scores)`` with DeLong's paired interval and p-value:
    how far the model is from the baseline, month by month.

    Example:
        >>> y = [0, 1, 0, 1, 0, 1, 0, 1]
        >>> s = [0.1, 0.9, 0.2, 0.8, 0.3, 0.4, 0.6, 0.7]
        >>> monthly_auc(y, s, ["a"] * 4 + ["b"] * 4)["auc"].tolist()
        [1.0, 0.75]
    """
    level = _check_level(level)
    arrays = [scores] if baseline_scores is None else [scores, baseline_scores]
    y_all = np.asarray(y)
    months = np.asarray(months)
    if months.ndim != 1 or months.shape != y_all.shape:
        raise InvalidParameterError(
            f"months must have one value per label ({y_all.size}), got shape {months.shape}"
        )
    if pd.isna(months).any():
        raise InvalidParameterError(
            f"months must not be missing: {int(pd.isna(months).sum())} row(s) have no month"
        )
    score_arrays = [_float_array("scores", a) for a in arrays]
    for a in score_arrays:
        if a.shape != y_all.shape:
            raise InvalidParameterError(
                f"scores must have one value per label ({y_all.size}), got shape {a.shape}"
            )
    rows = []
    for month in pd.unique(months):
        mask = months == month
        y_m = y_all[mask]
        try:
            est = auc_interval(y_m, score_arrays[0][mask], level)
        except InvalidParameterError as exc:
            raise InvalidParameterError(f"month {month}: {exc}") from exc
        row = {"month": month, "rows": int(mask.sum()), "churners": int(np.sum(y_m == 1)),
               **est.as_dict("auc")}
        if baseline_scores is not None:
            diff = auc_difference(y_m, score_arrays[1][mask], score_arrays[0][mask], level)
            row.update({**diff.as_dict("gap"), "p_value": diff.p_value})
        rows.append(row)
    return pd.DataFrame(rows).set_index("month").sort_index()


def scenario_worlds(scenarios: Sequence[str]) -> dict[str, tuple[str, ...]]:
    """Return the counterfactual worlds that add ``scenarios`` one at a time, in that order.

    Example:
        >>> scenario_worlds(("covariate", "concept"))
        {'no drift': (), '+ covariate': ('covariate',), '+ concept': ('covariate', 'concept')}
    """
    from companion.data import SCENARIOS

    if isinstance(scenarios, str) or not isinstance(scenarios, Sequence):
        raise InvalidParameterError(
            f"scenarios must be a sequence of names from {SCENARIOS}, got {scenarios!r}"
        )
    unknown = [s for s in scenarios if s not in SCENARIOS]
    if unknown or len(set(scenarios)) != len(scenarios):
        raise InvalidParameterError(
            f"scenarios must be distinct names from {SCENARIOS}, got {list(scenarios)!r}"
        )
    worlds = {"no drift": ()}
    for i, name in enumerate(scenarios):
        worlds[f"+ {name}"] = tuple(scenarios[: i + 1])
    return worlds


@dataclass(frozen=True)
class ScenarioContributions:
    """What :func:`scenario_contributions` measured.

    Attributes:
        worlds: world name -> the scenarios it holds (each adds one to the previous).
        monthly: one row per world and month: rows, churners, the model's AUC and the
            oracle's (true probabilities) with DeLong intervals.
        contributions: one row per scenario and period: the change in the model's AUC that
            adding the scenario causes, with its interval and how it was computed.
    """

    worlds: dict[str, tuple[str, ...]]
    monthly: pd.DataFrame
    contributions: pd.DataFrame

    def estimate(self, scenario: str, period: str) -> Estimate:
        """Return one contribution as an :class:`Estimate`."""
        table = self.contributions
        hit = table[(table["scenario"] == scenario) & (table["period"] == period)]
        if hit.empty:
            raise InvalidParameterError(
                f"no contribution for scenario {scenario!r} and period {period!r}; accepted "
                f"scenarios {sorted(set(table['scenario']))}, periods "
                f"{list(dict.fromkeys(table['period']))}"
            )
        row = hit.iloc[0]
        return Estimate(float(row["difference"]), float(row["low"]), float(row["high"]),
                        self.level, str(row["method"]), float(row["p_value"]))

    @property
    def level(self) -> float:
        """Confidence level of the intervals."""
        return float(self.monthly.attrs.get("level", LEVEL))


def _period_auc(frame: pd.DataFrame, columns: list[str]) -> tuple[np.ndarray, np.ndarray]:
    y, arrays = _labels_scores(frame["churned_30d"].to_numpy(), *[frame[c] for c in columns])
    codes = _group_codes(frame["customer_id"].to_numpy(), y.size)
    return _clustered_components(y, arrays, codes)


def scenario_contributions(
    model: object,
    dataset: object,
    snapshots: Sequence[object],
    *,
    periods: Mapping[str, Sequence[object]] | None = None,
    level: float = LEVEL,
) -> ScenarioContributions:
    """Split the deployed model's monthly AUC into each drift scenario's contribution.

    The dataset is regenerated with the same configuration and seed, adding the scenarios of
    ``dataset.config`` one at a time in their order (no drift, + covariate, + concept, ...).
    The model is scored on every world's ``snapshots`` and graded against that world's own
    labels; the oracle (the world's true probabilities) is graded too. A scenario's
    contribution in a period is the AUC with it minus the AUC without it.

    Intervals are DeLong's, clustered by customer when a period pools several months. When
    the two worlds hold the same rows and labels (a data-quality incident changes inputs,
    not churn) the difference is paired and exact to the rows; otherwise the two AUCs are
    combined as independent, which is exact for unrelated draws and conservative (too wide)
    for worlds that share their random numbers.

    Args:
        model: a fitted model with ``predict_proba`` over :data:`companion.training.FEATURES`.
        dataset: the :class:`companion.data.ChurnDataset` the model was deployed on.
        snapshots: the months to grade (snapshot timestamps of the dataset).
        periods: name -> snapshots pooled into one contribution (default: each month alone,
            named ``YYYY-MM``).
        level: confidence level of the intervals.
    """
    from companion.data import ChurnDataset, generate
    from companion.training import FEATURES, TARGET, snapshot_features

    level = _check_level(level)
    if not isinstance(dataset, ChurnDataset):
        raise InvalidParameterError(
            f"dataset must be a ChurnDataset, got {type(dataset).__name__}"
        )
    if not hasattr(model, "predict_proba"):
        raise InvalidParameterError(
            f"model must have predict_proba, got {type(model).__name__}"
        )
    wanted = list(check_timestamps("snapshots", snapshots, allow_empty=True))
    if not wanted:
        raise InvalidParameterError("snapshots must name at least one month")
    unknown = [str(s.date()) for s in wanted if s not in dataset.snapshots]
    if unknown:
        raise InvalidParameterError(
            f"snapshot(s) {unknown} are not in the dataset; accepted: "
            f"{[str(s.date()) for s in dataset.snapshots]}"
        )
    if periods is None:
        periods = {s.strftime("%Y-%m"): [s] for s in wanted}
    if not isinstance(periods, Mapping) or not periods:
        raise InvalidParameterError(
            f"periods must be a non-empty mapping of name to snapshots, got {periods!r}"
        )
    pooled = {}
    for name, months in periods.items():
        if not isinstance(name, str) or not name:
            raise InvalidParameterError(f"period names must be non-empty str, got {name!r}")
        stamps = list(check_timestamps(f"period {name!r}", months, allow_empty=True))
        outside = [str(s.date()) for s in stamps if s not in wanted]
        if not stamps or outside:
            raise InvalidParameterError(
                f"period {name!r} must hold months among the graded snapshots "
                f"{[str(s.date()) for s in wanted]}, got {[str(s.date()) for s in stamps]}"
            )
        pooled[name] = stamps
    z = stats.norm.ppf(0.5 + level / 2)
    worlds = scenario_worlds(dataset.config.scenarios)
    frames: dict[str, pd.DataFrame] = {}
    monthly_rows = []
    for world, scenarios in worlds.items():
        data = dataset if scenarios == dataset.config.scenarios else generate(
            dataset.config, scenarios=scenarios
        )
        frame = snapshot_features(data, wanted)
        frame = frame.merge(data.truth, on=["customer_id", "snapshot_timestamp"], how="left")
        frame["score"] = model.predict_proba(frame[FEATURES])[:, 1]
        frames[world] = frame[["customer_id", "snapshot_timestamp", TARGET, "score",
                               "churn_probability"]]
        model_auc = monthly_auc(frame[TARGET], frame["score"], frame["snapshot_timestamp"],
                                level=level)
        oracle_auc = monthly_auc(frame[TARGET], frame["churn_probability"],
                                 frame["snapshot_timestamp"], level=level)
        table = model_auc.join(oracle_auc[["auc", "auc_low", "auc_high"]].rename(
            columns=lambda c: c.replace("auc", "oracle")))
        table.insert(0, "world", world)
        monthly_rows.append(table)
    monthly = pd.concat(monthly_rows).reset_index()
    monthly.attrs["level"] = level

    rows = []
    names = list(worlds)
    for before, after in zip(names[:-1], names[1:], strict=True):
        scenario = worlds[after][-1]
        for period, stamps in pooled.items():
            a = frames[before][frames[before]["snapshot_timestamp"].isin(stamps)]
            b = frames[after][frames[after]["snapshot_timestamp"].isin(stamps)]
            keys = ["customer_id", "snapshot_timestamp", TARGET]
            same = len(a) == len(b) and (
                a[keys].reset_index(drop=True).equals(b[keys].reset_index(drop=True))
            )
            if same:
                joined = a.reset_index(drop=True).assign(score_after=b["score"].to_numpy())
                aucs, cov = _period_auc(joined, ["score_after", "score"])
                diff = float(aucs[0] - aucs[1])
                var = float(cov[0, 0] + cov[1, 1] - 2 * cov[0, 1])
                method = "DeLong paired"
            else:
                auc_a, cov_a = _period_auc(a, ["score"])
                auc_b, cov_b = _period_auc(b, ["score"])
                diff = float(auc_b[0] - auc_a[0])
                var = float(cov_a[0, 0] + cov_b[0, 0])
                method = "DeLong unpaired"
            if len(stamps) > 1:
                method += ", clustered"
            se = math.sqrt(max(var, 0.0))
            p_value = 1.0 if se == 0 else float(2 * stats.norm.sf(abs(diff) / se))
            rows.append({"scenario": scenario, "period": period, "difference": diff,
                         "low": diff - z * se, "high": diff + z * se, "p_value": p_value,
                         "method": method})
    contributions = pd.DataFrame(rows)
    return ScenarioContributions(dict(worlds), monthly, contributions)


__all__: Sequence[str] = (
    "LEVEL",
    "Estimate",
    "auc_interval",
    "auc_difference",
    "bootstrap_interval",
    "compare_models",
    "interval_table",
    "clustered_auc_interval",
    "unpaired_difference",
    "monthly_auc",
    "scenario_worlds",
    "ScenarioContributions",
    "scenario_contributions",
)
