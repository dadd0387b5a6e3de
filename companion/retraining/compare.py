"""Every policy over the same year: the result table, the figure's data, and who wins.

:func:`compare_policies` runs each policy through :func:`~companion.retraining.loop.run_year`
on one shared :class:`~companion.retraining.year.Year` (in memory, seconds per policy). The
:class:`Comparison` gives the table (yearly cost, mean served ROC AUC, retrains, deployments,
rollbacks, training work priced with chapter 5's :func:`work_cost`), the months side by side
for a figure (with the simulator's onsets), the *ceiling* (offers targeted by the true churn
probability, which no model reaches), and the yearly cost difference of any two policies with
a bootstrap interval over customers.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import pandas as pd

from companion.errors import InvalidParameterError, UnknownNameError
from companion.evaluation import Estimate
from companion.retraining.costs import TARGET_SHARE, cost_difference, customer_costs
from companion.retraining.deploy import Fault
from companion.retraining.loop import PolicyYear, run_year
from companion.retraining.policy import RetrainPolicy, standard_policies
from companion.retraining.year import Year

__all__ = ["Comparison", "compare_policies"]


@dataclass
class Comparison:
    """The policies' years on one dataset (see the module docstring)."""

    year: Year = field(repr=False)
    results: dict[str, PolicyYear]

    def __getitem__(self, name: str) -> PolicyYear:
        if name not in self.results:
            raise UnknownNameError(f"no policy {name!r}; accepted: {', '.join(self.results)}")
        return self.results[name]

    def ceiling_cost(self) -> pd.Series:
        """Each month's cost when offers follow the true churn probability (no model can)."""
        out = {}
        for month in self.year.months:
            rows = self.year.rows(month)
            p = rows["churn_probability"].to_numpy()
            out[month[:7]] = float(customer_costs(
                p * rows["offer_effect"].to_numpy() * rows["value"].to_numpy()
                - rows["offer_cost"].to_numpy(), p, rows["value"].to_numpy(),
                rows["offer_effect"].to_numpy(), rows["offer_cost"].to_numpy(),
                TARGET_SHARE).sum())
        return pd.Series(out, name="ceiling")

    def table(self, digits: int = 3) -> pd.DataFrame:
        """One row per policy: yearly cost, gap to the ceiling, AUC, retrains, work."""
        ceiling = self.ceiling_cost().sum()
        rows = []
        for name, result in self.results.items():
            months = result.months
            work = result.compute()
            rows.append({
                "policy": name,
                "yearly_cost": round(float(months["cost"].sum()), 1),
                "above_ceiling": round(float(months["cost"].sum() - ceiling), 1),
                "mean_roc_auc": round(float(months["roc_auc"].mean()), digits),
                "retrains": result.count("retrain", "done"),
                "refused": result.count("gate", "refused") + result.count("canary", "refused"),
                "deployed": result.count("promote", "done"),
                "rolled_back": result.count("rollback", "done"),
                "quality_stops": result.count("retrain", "failed"),
                "train_row_iterations": int(work["row_iterations"]),
                "compute_usd": float(f"{work['cost_usd']:.3g}"),
            })
        return pd.DataFrame(rows).set_index("policy")

    def monthly(self, column: str = "roc_auc") -> pd.DataFrame:
        """Months as rows, policies as columns (``roc_auc``, ``cost``, ``deployed``...)."""
        if column not in {"roc_auc", "roc_auc_low", "roc_auc_high", "cost", "retrained",
                          "deployed", "rolled_back", "production"}:
            raise InvalidParameterError(f"column {column!r} is not a monthly column")
        return pd.DataFrame({name: r.months.set_index("month")[column]
                             for name, r in self.results.items()})

    def onsets(self) -> dict[str, str]:
        """The simulator's drift onsets, scenario -> ``YYYY-MM``."""
        config = self.year.dataset.config
        return {s: self.year.months[getattr(config, f"{s}_onset")][:7]
                for s in config.scenarios}

    def difference(self, a: str, b: str, *, n_boot: int = 2000, seed: int = 0) -> Estimate:
        """Yearly cost of policy ``a`` minus ``b``, bootstrap 95% interval over customers."""
        return cost_difference(self[a].costs, self[b].costs, n_boot=n_boot, seed=seed)

    def best(self, exclude: Sequence[str] = ("oracle",)) -> str:
        """The policy with the lowest yearly cost, benchmarks excluded."""
        costs = {n: float(r.months["cost"].sum()) for n, r in self.results.items()
                 if n not in exclude}
        return min(costs, key=lambda n: costs[n])


def compare_policies(
    year: Year, policies: Iterable[RetrainPolicy] | None = None, *,
    faults: Iterable[Fault] = (),
) -> Comparison:
    """Run each policy (default: :func:`standard_policies`) over ``year`` in memory."""
    chosen = tuple(standard_policies() if policies is None else policies)
    names = [p.name for p in chosen if isinstance(p, RetrainPolicy)]
    if len(names) != len(chosen) or not chosen:
        raise InvalidParameterError("policies must be a non-empty list of RetrainPolicy")
    if len(set(names)) != len(names):
        raise InvalidParameterError(f"policy names must differ, got {names}")
    faults = tuple(faults)
    return Comparison(year, {p.name: run_year(year, p, faults=faults) for p in chosen})
