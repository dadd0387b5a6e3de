"""Intervals by resampling, and a printable comparison of models against a baseline.

- :func:`bootstrap_interval`: any metric, or the difference of a metric between two models,
  resampled by *customer* (a customer's rows stay together), for metrics DeLong does not cover;
- :func:`compare_models`: a table of models against a baseline, each AUC and each difference
  with its interval (DeLong, paired), ready to print.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping

import numpy as np
import pandas as pd

from companion.core.checks import check_int
from companion.errors import InvalidParameterError
from companion.evaluation.auc import (
    _group_codes,
    _labels_scores,
    auc_difference,
    auc_interval,
)
from companion.evaluation.estimate import LEVEL, Estimate, _check_level


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
    given = [scores] if baseline_scores is None else [scores, baseline_scores]
    labels, arrays = _labels_scores(y, *given)
    if groups is None:
        codes = np.arange(labels.size)
    else:
        codes = _group_codes(groups, labels.size)
    n_groups = int(codes.max()) + 1
    order = np.argsort(codes, kind="mergesort")
    starts = np.searchsorted(codes[order], np.arange(n_groups))
    sizes = np.bincount(codes, minlength=n_groups)

    def value(index: np.ndarray) -> float:
        results = []
        for a in arrays:
            try:
                result = float(metric(labels[index], a[index]))
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

    point = value(np.arange(labels.size))
    rng = np.random.default_rng(seed)
    draws = []
    for _ in range(n_resamples):
        chosen = rng.integers(0, n_groups, n_groups)
        index = order[np.concatenate([np.arange(starts[g], starts[g] + sizes[g]) for g in chosen])]
        if labels[index].min() == labels[index].max():
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
                assert diff.p_value is not None  # a paired difference always has one
                row.update({
                    f"difference vs {baseline}": f"{diff.value:+.{digits}f}",
                    f"difference {pct} interval":
                        f"[{diff.low:+.{digits}f}, {diff.high:+.{digits}f}]",
                    "p-value": f"{diff.p_value:.3f}" if diff.p_value >= 0.001 else "<0.001",
                })
        rows.append(row)
    return pd.DataFrame(rows).set_index("model")
