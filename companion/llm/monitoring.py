"""Quality of the assistant over time: Evidently drift reports and refusal rates, week by week.

Each week's response log (:func:`~companion.llm.stream.log_responses`) is compared with the
reference weeks (the first ``reference_weeks``) by one Evidently ``Report`` of ``ValueDrift``
metrics, read from ``snapshot.dict()``:

- **query drift** (``data_drift`` alerts): text descriptors of the questions, their length in
  words and the share of their words the corpus never uses;
- **retrieval drift** (``prediction_drift`` alerts): the best chunk's score, and the length of
  the answers;

and the week's **refusal rate** is tested against the reference weeks' (a one-sided
two-proportion z-test; ``performance`` alerts). Every finding is an
:class:`~companion.monitoring.Alert` (``alerts/1`` records, written by
:func:`companion.monitoring.write_alerts`), whose ``created_for`` is the Monday of its week.
:func:`grade_alerts` compares the alerts with the simulator's onset: detection delay in weeks,
and false alarms before the onset.

Evidently's drift score for ``ks`` is a p-value (drift below the threshold); for
``wasserstein`` a distance in standard deviations (drift at or above it): :class:`LlmPolicy`
reads each in its direction.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import pandas as pd
from scipy import stats

from companion.core.checks import check_choice, check_frame, check_int, check_number
from companion.core.env import quiet
from companion.errors import InvalidParameterError
from companion.monitoring import Alert

__all__ = ["DRIFT_COLUMNS", "LLM_POLICY", "LlmPolicy", "WeeklyMonitoring", "grade_alerts",
           "monitor_weeks"]

DRIFT_COLUMNS: dict[str, str] = {
    "query_words": "data_drift",
    "unknown_share": "data_drift",
    "top_score": "prediction_drift",
    "answer_words": "prediction_drift",
}
"""The columns whose drift is watched, and the alert kind each raises."""
LLM_POLICY = "llm-monitoring/1"
_LOWER_IS_DRIFT = ("ks", "mannw", "chisquare", "z", "anderson", "cramer_von_mises", "t_test",
                   "fisher_exact", "g_test", "empirical_mmd")


@dataclass(frozen=True)
class LlmPolicy:
    """How the assistant's weeks are judged.

    Attributes:
        reference_weeks: the first weeks, pooled, that every later week is compared with.
        method: Evidently's drift method for every watched column (``wasserstein``, ``ks``,
            ``psi``, ...).
        threshold: the method's threshold (a p-value for tests, a distance otherwise).
        refusal_alpha: one-sided level of the refusal-rate test.
        columns: the watched columns (from :data:`DRIFT_COLUMNS`).
    """

    reference_weeks: int = 4
    method: str = "wasserstein"
    threshold: float = 0.25
    refusal_alpha: float = 0.001
    columns: tuple[str, ...] = field(default=tuple(DRIFT_COLUMNS))

    def __post_init__(self) -> None:
        check_int("reference_weeks", self.reference_weeks, minimum=1, maximum=52)
        check_choice("method", self.method, ("wasserstein", "ks", "psi", "mannw", "anderson",
                                              "jensenshannon", "hellinger", "kl_div"))
        check_number("threshold", self.threshold, positive=True)
        check_number("refusal_alpha", self.refusal_alpha, positive=True, maximum=0.5)
        if isinstance(self.columns, str) or not self.columns or not all(
            c in DRIFT_COLUMNS for c in self.columns
        ):
            raise InvalidParameterError(
                f"columns must be a non-empty list from {sorted(DRIFT_COLUMNS)}, got "
                f"{self.columns!r}"
            )
        object.__setattr__(self, "columns", tuple(self.columns))

    def drifted(self, score: float) -> bool:
        """Whether a drift ``score`` of :attr:`method` means drift."""
        if self.method in _LOWER_IS_DRIFT:
            return score < self.threshold
        return score >= self.threshold


@dataclass
class WeeklyMonitoring:
    """The monitored weeks: one row per week after the reference, and the alerts raised.

    Attributes:
        table: per week: each column's drift score, ``drifted`` (the columns found drifted),
            ``refusal_rate``, ``refusal_p`` and ``refusal_alert``.
        alerts: the alerts, in week order.
        reference: the reference weeks.
        policy: the policy applied.
    """

    table: pd.DataFrame
    alerts: list[Alert]
    reference: list[str]
    policy: LlmPolicy

    def first_alert(self, kind: str | None = None) -> str | None:
        """The Monday of the first week with an alert (of ``kind``), or None."""
        weeks = [a.created_for for a in self.alerts if kind is None or a.kind == kind]
        return min(weeks) if weeks else None


def _report(reference: pd.DataFrame, current: pd.DataFrame, policy: LlmPolicy) -> dict[str, float]:
    from evidently import DataDefinition, Dataset, Report
    from evidently.metrics import ValueDrift

    columns = list(policy.columns)
    definition = DataDefinition(numerical_columns=columns)
    report = Report([ValueDrift(column=c, method=policy.method, threshold=policy.threshold)
                     for c in columns])
    with quiet("evidently"):
        snapshot = report.run(
            Dataset.from_pandas(current[columns].astype(float), data_definition=definition),
            Dataset.from_pandas(reference[columns].astype(float), data_definition=definition),
        )
    scores = {}
    for metric in snapshot.dict()["metrics"]:
        config = metric["config"]
        if config.get("method") != policy.method:
            raise InvalidParameterError(
                f"Evidently used {config.get('method')!r} for {config.get('column')!r}, the "
                f"policy asks for {policy.method!r}"
            )
        scores[config["column"]] = float(metric["value"])
    return scores


def _refusal_test(current: pd.Series, reference: pd.Series) -> tuple[float, float]:
    """Rate of the current week and the one-sided p-value of "no higher than the reference"."""
    n1, n0 = len(current), len(reference)
    p1, p0 = float(current.mean()), float(reference.mean())
    pooled = (current.sum() + reference.sum()) / (n1 + n0)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n0)) if 0 < pooled < 1 else 0.0
    if se == 0.0:
        return p1, 1.0
    return p1, float(stats.norm.sf((p1 - p0) / se))


def monitor_weeks(log: pd.DataFrame, policy: LlmPolicy | None = None) -> WeeklyMonitoring:
    """Compare every week after the reference weeks with them; raise the alerts.

    Args:
        log: a response log (:func:`~companion.llm.stream.log_responses`), with ``week``,
            ``refused`` and the watched columns.
        policy: the policy (default :class:`LlmPolicy`).

    Raises:
        InvalidParameterError: a log without the columns, or with no week after the reference.
    """
    policy = policy or LlmPolicy()
    if not isinstance(policy, LlmPolicy):
        raise InvalidParameterError(f"policy must be an LlmPolicy, got {type(policy).__name__}")
    check_frame("log", log, ["week", "refused", *policy.columns], non_empty=True)
    weeks = sorted(log["week"].unique())
    if len(weeks) <= policy.reference_weeks:
        raise InvalidParameterError(
            f"the log has {len(weeks)} week(s); the policy needs more than its "
            f"{policy.reference_weeks} reference week(s)"
        )
    reference_weeks = weeks[: policy.reference_weeks]
    reference = log[log["week"].isin(reference_weeks)]
    rows, alerts = [], []
    for week in weeks[policy.reference_weeks:]:
        current = log[log["week"] == week]
        scores = _report(reference, current, policy)
        drifted = [c for c in policy.columns if policy.drifted(scores[c])]
        rate, p_value = _refusal_test(current["refused"], reference["refused"])
        refusal_alert = p_value < policy.refusal_alpha
        rows.append({"week": week, **{c: round(scores[c], 4) for c in policy.columns},
                     "drifted": ", ".join(drifted), "refusal_rate": round(rate, 4),
                     "refusal_p": round(p_value, 6), "refusal_alert": refusal_alert})
        direction = "below" if policy.method in _LOWER_IS_DRIFT else "above"
        for kind in ("data_drift", "prediction_drift"):
            found = [c for c in drifted if DRIFT_COLUMNS[c] == kind]
            if found:
                value = (min if direction == "below" else max)(scores[c] for c in found)
                alerts.append(Alert(week[:7], kind, policy.method, value, policy.threshold,
                                    direction, tuple(found), "warning", week, LLM_POLICY))
        if refusal_alert:
            alerts.append(Alert(week[:7], "performance", "refusal_rate", rate,
                                float(reference["refused"].mean()), "above", ("refused",),
                                "critical", week, LLM_POLICY))
    table = pd.DataFrame(rows).set_index("week")
    return WeeklyMonitoring(table, alerts, list(reference_weeks), policy)


def grade_alerts(alerts: Sequence[Alert], onset: str, weeks: Sequence[str]) -> pd.DataFrame:
    """Grade alerts against the known onset, per kind: first alert, delay, false alarms.

    Args:
        alerts: the alerts raised.
        onset: the Monday of the onset week.
        weeks: the monitored weeks (Mondays), to count delays in weeks.

    Returns:
        One row per alert kind: ``first_alert`` (the first at or after the onset),
        ``delay_weeks`` (None if never), ``false_alarms`` (alerts before the onset).
    """
    if isinstance(weeks, str) or not isinstance(weeks, Sequence) or onset not in weeks:
        raise InvalidParameterError(f"onset {onset!r} must be one of the weeks {list(weeks)!r}")
    if not all(isinstance(a, Alert) for a in alerts):
        raise InvalidParameterError("alerts must be a sequence of Alert")
    order = {w: i for i, w in enumerate(weeks)}
    rows = []
    for kind in ("data_drift", "prediction_drift", "performance"):
        found = sorted(a.created_for for a in alerts if a.kind == kind)
        after = [w for w in found if w >= onset]
        first = after[0] if after else None
        rows.append({"kind": kind, "first_alert": first,
                     "delay_weeks": None if first is None else order[first] - order[onset],
                     "false_alarms": sum(w < onset for w in found)})
    return pd.DataFrame(rows).set_index("kind")
