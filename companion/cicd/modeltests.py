"""Tests for the model: a minimum ROC AUC with its interval, invariance and direction.

Each function scores a fitted churn pipeline on a labelled frame and returns a
:class:`~companion.cicd.datatests.CheckResult`:

- :func:`check_min_auc`: the *lower bound* of DeLong's 95% interval
  (:func:`companion.evaluation.auc_interval`) must clear the threshold. A point value above the
  threshold on a few dozen churners proves little; the lower bound is what the test month
  supports.
- :func:`check_invariance`: a change that must not move any score (a customer's id, the
  calendar date of the snapshot) moves none by more than ``tolerance``. It catches a training
  script that lets an identifier or the date into the features.
- :func:`check_direction`: a change with a known direction (one more payment failure) moves
  the scores that way on average, and no row the other way by more than ``tolerance`` beyond
  a small share ``max_share``. It catches a model that learnt a relation backwards (a sign
  error in a feature, a label flipped) even when its AUC looks fine.

The model is given every column of the frame but the label (:func:`churn_scores`), as a
served model would be: a pipeline that reads a column it should not is then caught.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from companion.cicd.datatests import CheckResult
from companion.core.checks import check_frame, check_number
from companion.errors import InvalidParameterError
from companion.evaluation import auc_interval
from companion.training import FEATURES, TARGET

__all__ = ["check_direction", "check_invariance", "check_min_auc", "churn_scores"]


def _check_model(model: Any) -> None:
    if not callable(getattr(model, "predict_proba", None)):
        raise InvalidParameterError(
            f"model must be a fitted classifier with predict_proba, got {type(model).__name__}"
        )


def churn_scores(model: Any, frame: pd.DataFrame) -> np.ndarray:
    """Return the churn probability ``model`` gives each row of ``frame`` (every column but
    the label is passed, so a model that reads an extra column is caught by the tests)."""
    _check_model(model)
    check_frame("frame", frame, FEATURES, non_empty=True,
                hint="build it with companion.training.snapshot_features()")
    inputs = frame.drop(columns=[TARGET], errors="ignore")
    return np.asarray(model.predict_proba(inputs), dtype="float64")[:, 1]


def check_min_auc(model: Any, frame: pd.DataFrame, threshold: float) -> CheckResult:
    """Pass if the lower bound of the 95% DeLong interval of ROC AUC on ``frame`` clears
    ``threshold``; the detail says whether the point value alone would have passed."""
    _check_model(model)
    check_frame("frame", frame, [*FEATURES, TARGET], non_empty=True)
    check_number("threshold", threshold, minimum=0.0, maximum=1.0)
    auc = auc_interval(frame[TARGET].to_numpy(), churn_scores(model, frame))
    passed = bool(auc.low >= threshold)
    detail = f"ROC AUC {auc} on {len(frame):,} rows; lower bound vs {threshold:.3f}"
    failures = () if passed else (
        f"lower bound {auc.low:.3f} < {threshold:.3f}"
        + (" (the point value alone would pass)" if auc.value >= threshold else ""),
    )
    return CheckResult("minimum AUC", passed, detail, failures)


def _perturbed(
    frame: pd.DataFrame, column: str, change: Callable[[pd.Series], Any]
) -> pd.DataFrame:
    if not isinstance(column, str) or column not in frame.columns:
        raise InvalidParameterError(
            f"column {column!r} is not in the frame; accepted: {list(frame.columns)}"
        )
    if not callable(change):
        raise InvalidParameterError(
            f"change must be a function of the column (a pandas Series), got {change!r}"
        )
    changed = frame.copy()
    changed[column] = change(frame[column].copy())
    if len(changed[column]) != len(frame):
        raise InvalidParameterError(f"change of {column!r} must keep every row")
    return changed


def check_invariance(
    model: Any,
    frame: pd.DataFrame,
    column: str,
    change: Callable[[pd.Series], Any],
    tolerance: float = 1e-9,
) -> CheckResult:
    """Pass if changing ``column`` with ``change`` moves no score by more than ``tolerance``.

    Example: ``check_invariance(model, frame, "customer_id", lambda ids: ids + 1_000_000)``.
    """
    _check_model(model)
    check_frame("frame", frame, FEATURES, non_empty=True)
    check_number("tolerance", tolerance, minimum=0.0)
    changed = _perturbed(frame, column, change)
    moved = np.abs(churn_scores(model, changed) - churn_scores(model, frame))
    over = int((moved > tolerance).sum())
    detail = (f"{column} changed: largest score change {moved.max():.2g}, "
              f"{over:,} of {len(frame):,} rows over {tolerance:g}")
    failures = () if over == 0 else (f"{column}: {over:,} rows moved over {tolerance:g}",)
    return CheckResult(f"invariance to {column}", over == 0, detail, failures)


def check_direction(
    model: Any,
    frame: pd.DataFrame,
    column: str,
    change: Callable[[pd.Series], Any],
    expect: str = "increase",
    tolerance: float = 0.01,
    max_share: float = 0.02,
) -> CheckResult:
    """Pass if changing ``column`` moves the mean score the ``expect``-ed way and at most
    ``max_share`` of the rows the other way by more than ``tolerance``.

    Example: ``check_direction(model, frame, "payment_failures_4w", lambda n: n + 1)``.
    """
    _check_model(model)
    check_frame("frame", frame, FEATURES, non_empty=True)
    if expect not in ("increase", "decrease"):
        raise InvalidParameterError(
            f"expect must be 'increase' or 'decrease', got {expect!r}"
        )
    check_number("tolerance", tolerance, minimum=0.0)
    check_number("max_share", max_share, minimum=0.0, maximum=1.0)
    changed = _perturbed(frame, column, change)
    delta = churn_scores(model, changed) - churn_scores(model, frame)
    if expect == "decrease":
        delta = -delta
    wrong = float((delta < -tolerance).mean())
    mean = float(delta.mean())
    failures = []
    if mean <= 0:
        failures.append(f"mean score change {mean:+.4f} does not {expect}")
    if wrong > max_share:
        failures.append(f"{wrong:.1%} of rows move the other way by over {tolerance:g} "
                        f"(at most {max_share:.0%})")
    sign = 1 if expect == "increase" else -1
    detail = (f"{column} changed: mean score change {sign * mean:+.4f}, "
              f"{wrong:.1%} of rows the other way by over {tolerance:g}")
    return CheckResult(f"direction of {column}", not failures, detail, tuple(failures))
