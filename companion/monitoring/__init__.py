"""Monitoring a deployed churn model: data drift, model drift, data quality, serving, alerts.

A model in production is watched on four fronts, each graded against the simulator's known
onsets (covariate shift in June, concept drift in September, a quality incident in November):

- :mod:`~companion.monitoring.policy`: the written drift policy (columns, PSI >= 0.1 per
  column, January as reference, tenure left out as a clock, the multiple-testing guard);
- :mod:`~companion.monitoring.drift`: Evidently reports month by month, decisions read from
  ``snapshot.dict()``; the preset at its defaults, for contrast; prediction drift;
- :mod:`~companion.monitoring.performance`: what is known when (labels 30 days late), AUC
  with 95% intervals against pooled stable months, calibration;
- :mod:`~companion.monitoring.quality`: checks before scoring; a failed month is blocked;
- :mod:`~companion.monitoring.serving`: latency and error rates from the prediction log;
- :mod:`~companion.monitoring.alerts`: alerts as JSON-lines records (``alerts/1``);
- :mod:`~companion.monitoring.monitor`: the monthly pass that runs them all;
- :mod:`~companion.monitoring.grading`: detection delays and false alarms, over seeds;
- :mod:`~companion.monitoring.dashboard`: an Evidently workspace and ``evidently ui``.

Example:
    >>> DEFAULT_POLICY.column_method("plan"), DEFAULT_POLICY.threshold
    ('psi', 0.1)
"""

from __future__ import annotations

from companion.monitoring.alerts import (
    ALERT_KINDS,
    ALERT_SCHEMA,
    SEVERITIES,
    Alert,
    alerts_frame,
    read_alerts,
    write_alerts,
)
from companion.monitoring.dashboard import (
    DEFAULT_PROJECT,
    Dashboard,
    build_dashboard,
    serve_dashboard,
)
from companion.monitoring.drift import (
    SCORE_COLUMN,
    DriftPass,
    DriftReading,
    drift_pass,
    drift_report,
    month_label,
    noise_floor,
    preset_default_pass,
    read_drift,
)
from companion.monitoring.grading import (
    MAX_DELAY,
    MAX_FALSE_ALARMS,
    SCENARIO_COLUMNS,
    drift_grading_table,
    grade_drift,
    grade_preset_defaults,
    onset_months,
)
from companion.monitoring.monitor import MonitoringRun, concept_contrast, monitor_year
from companion.monitoring.performance import (
    calibration_table,
    expected_calibration_error,
    label_calendar,
    labels_known,
    performance_by_month,
    score_frame,
)
from companion.monitoring.policy import (
    DEFAULT_POLICY,
    METHOD_DIRECTION,
    POLICY_VERSION,
    PRESET_DEFAULT,
    DriftPolicy,
)
from companion.monitoring.quality import QUALITY_RULES, QualityResult, gate_scores, quality_checks
from companion.monitoring.serving import (
    PERIODS,
    SERVING_LIMITS,
    SERVING_POLICY,
    serving_alarms,
    serving_alerts,
    serving_health,
)

__all__ = [
    "ALERT_KINDS",
    "ALERT_SCHEMA",
    "DEFAULT_POLICY",
    "DEFAULT_PROJECT",
    "MAX_DELAY",
    "MAX_FALSE_ALARMS",
    "METHOD_DIRECTION",
    "PERIODS",
    "POLICY_VERSION",
    "PRESET_DEFAULT",
    "QUALITY_RULES",
    "SCENARIO_COLUMNS",
    "SCORE_COLUMN",
    "SERVING_LIMITS",
    "SERVING_POLICY",
    "SEVERITIES",
    "Alert",
    "Dashboard",
    "DriftPass",
    "DriftPolicy",
    "DriftReading",
    "MonitoringRun",
    "QualityResult",
    "alerts_frame",
    "build_dashboard",
    "calibration_table",
    "concept_contrast",
    "drift_grading_table",
    "drift_pass",
    "drift_report",
    "expected_calibration_error",
    "gate_scores",
    "grade_drift",
    "grade_preset_defaults",
    "label_calendar",
    "labels_known",
    "month_label",
    "monitor_year",
    "noise_floor",
    "onset_months",
    "performance_by_month",
    "preset_default_pass",
    "quality_checks",
    "read_alerts",
    "read_drift",
    "score_frame",
    "serve_dashboard",
    "serving_alarms",
    "serving_alerts",
    "serving_health",
    "write_alerts",
]
