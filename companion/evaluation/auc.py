"""ROC AUC with DeLong's intervals: one model, the paired difference of two, clustered rows.

- :func:`auc_interval`: ROC AUC with DeLong's interval (exact, no resampling);
- :func:`auc_difference`: the paired difference of two models' AUC on the same rows, with
  DeLong's interval and p-value (the two models' errors are correlated; a paired interval is
  far narrower than two separate ones);
- :func:`clustered_auc_interval`: DeLong's interval when a customer has several rows
  (Obuchowski's clustered variance).

The private helpers (label and score checks, the covariance matrices) are shared by the
bootstrap and the monthly tables of this package.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import pandas as pd
from scipy import stats

from companion.errors import InvalidParameterError
from companion.evaluation.estimate import LEVEL, Estimate, _check_level


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
