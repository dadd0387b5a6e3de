"""Grading a deployed model month by month, and splitting its AUC among drift scenarios.

- :func:`monthly_auc`: a model's AUC month by month, optionally its gap to a baseline (the
  oracle's true probabilities, or another model);
- :func:`scenario_worlds` and :func:`scenario_contributions`: how much each drift scenario
  moved a deployed model's AUC, measured by regenerating the data without it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from companion.core.checks import check_timestamps
from companion.data import SCENARIOS, check_dataset, generate
from companion.errors import InvalidParameterError
from companion.evaluation.auc import (
    _clustered_components,
    _float_array,
    _group_codes,
    _labels_scores,
    auc_difference,
    auc_interval,
)
from companion.evaluation.estimate import LEVEL, Estimate, _check_level
from companion.training import FEATURES, TARGET, snapshot_features


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
    if isinstance(scenarios, str) or not isinstance(scenarios, Sequence):
        raise InvalidParameterError(
            f"scenarios must be a sequence of names from {SCENARIOS}, got {scenarios!r}"
        )
    unknown = [s for s in scenarios if s not in SCENARIOS]
    if unknown or len(set(scenarios)) != len(scenarios):
        raise InvalidParameterError(
            f"scenarios must be distinct names from {SCENARIOS}, got {list(scenarios)!r}"
        )
    worlds: dict[str, tuple[str, ...]] = {"no drift": ()}
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
    level = _check_level(level)
    dataset = check_dataset(dataset)
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
