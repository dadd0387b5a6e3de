"""The simulated year the loop runs through, built once and shared by every policy.

:func:`prepare_year` computes, from one dataset, everything the loop reads month after month:

- the feature rows of every monthly snapshot, built as chapter 7's pipeline builds them
  (:func:`pipeline_features`: the companion's point-in-time join of feature version ``v1``,
  rows that had arrived by the snapshot only), each with the simulator's true churn
  probability, the offer's true effect and cost (:mod:`companion.data.offers`) and the
  customer's value. A model the in-memory loop trains therefore sees the features the
  pipeline's would, late-arriving weeks included;
- the data-quality verdict of each month's export (chapter 7's :func:`quality_checks` on what
  the warehouse knew when the export closed): a month that fails never trains a model;
- what is known when (:func:`companion.monitoring.label_calendar`: labels 30 days late);
- chapter 10's alerts (``alerts/1`` records), given by the caller.

Every policy reads the same :class:`Year`, so the comparison differs only by the policy.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from companion.core.checks import check_int
from companion.data import ChurnDataset, check_dataset
from companion.errors import InvalidParameterError
from companion.monitoring import Alert, label_calendar
from companion.training import FEATURES, TARGET

__all__ = ["VALUE_MONTHS", "Year", "pipeline_features", "prepare_year"]

logger = logging.getLogger(__name__)

VALUE_MONTHS = 12
"""A churner is worth this many months of fees lost (the value a retention offer protects)."""


@dataclass(frozen=True)
class Year:
    """One simulated year, ready for the loop (see :func:`prepare_year`).

    Attributes:
        dataset: the simulated business.
        frame: one row per customer and snapshot: features, label, ``churn_probability``
            (truth), ``offer_effect``, ``offer_cost``, ``value``.
        months: the snapshots, ``YYYY-MM-DD``.
        quality: export month -> names of the data-quality checks its export failed.
        alerts: chapter 10's alert records.
    """

    dataset: ChurnDataset
    frame: pd.DataFrame = field(repr=False)
    months: tuple[str, ...]
    quality: dict[str, tuple[str, ...]]
    alerts: tuple[Alert, ...] = ()

    def rows(self, month: str) -> pd.DataFrame:
        """The rows of snapshot ``month`` (``YYYY-MM-DD``)."""
        if month not in self.months:
            raise InvalidParameterError(f"month {month!r} is not a snapshot; accepted: "
                                        f"{', '.join(self.months)}")
        return self._by_month[month]

    @property
    def _by_month(self) -> dict[str, pd.DataFrame]:
        cached: dict[str, pd.DataFrame] | None = self.__dict__.get("_cache")
        if cached is None:
            cached = {str(pd.Timestamp(k).date()): g.reset_index(drop=True)
                      for k, g in self.frame.groupby("snapshot_timestamp", sort=True)}
            object.__setattr__(self, "_cache", cached)
        return cached

    def labelled(self, as_of: str) -> list[str]:
        """The snapshots whose labels are known at ``as_of`` (30 days after each)."""
        calendar = label_calendar(list(self.months), as_of)
        return [m for m, known in zip(self.months, calendar["labels_known"], strict=True)
                if known]


def pipeline_features(dataset: ChurnDataset) -> pd.DataFrame:
    """Return every snapshot's feature rows as chapter 7's pipeline builds a training set.

    One row per labelled customer and snapshot: ``customer_id``, ``snapshot_timestamp``, the
    label and the model's features, from the companion's point-in-time join of feature
    version ``v1`` (:func:`companion.features.training_set` with ``arrived_only=True``). A
    week's activity row that reached the warehouse after the snapshot is not used: the join
    falls back to the latest row that had arrived, as the pipeline's ``features`` step does
    on a monthly export. (:func:`companion.training.snapshot_features` sums the activity by
    event time, late rows included: the reference for a warehouse that is complete.)
    """
    from companion.features import (
        activity_feature_table,
        model_frame,
        profile_feature_table,
        training_set,
    )

    check_dataset(dataset)
    entities = dataset.labels.rename(columns={"snapshot_timestamp": "event_timestamp"})
    frame = training_set(entities.reset_index(drop=True), activity_feature_table(dataset),
                         profile_feature_table(dataset), "v1", arrived_only=True)
    frame = model_frame(frame).rename(columns={"event_timestamp": "snapshot_timestamp"})
    frame = frame.sort_values(["snapshot_timestamp", "customer_id"], kind="mergesort")
    return frame[["customer_id", "snapshot_timestamp", *FEATURES, TARGET]].reset_index(drop=True)


def prepare_year(
    dataset: ChurnDataset, alerts: Iterable[Alert] = (), *, value_months: int = VALUE_MONTHS
) -> Year:
    """Build the shared :class:`Year` of ``dataset`` with chapter 10's ``alerts``."""
    from companion.data import offers
    from companion.pipelines import quality_checks
    from companion.pipelines.exports import export_as_of
    from companion.versioning.exports import tables_as_of

    check_dataset(dataset)
    check_int("value_months", value_months, minimum=1, maximum=120)
    records = tuple(alerts)
    for alert in records:
        if not isinstance(alert, Alert):
            raise InvalidParameterError(f"alerts must be companion.monitoring.Alert records, "
                                        f"got {alert!r}")
    frame = pipeline_features(dataset)
    frame = frame.merge(dataset.truth, on=["customer_id", "snapshot_timestamp"], how="left")
    if frame["churn_probability"].isna().any():
        raise InvalidParameterError("the dataset's truth misses rows of its snapshots")
    ids = frame["customer_id"].to_numpy()
    effect, cost = np.empty(len(frame)), np.empty(len(frame))
    for stamp, index in frame.groupby("snapshot_timestamp").indices.items():
        effect[index] = offers.offer_effect(dataset, ids[index])
        cost[index] = offers.offer_cost(dataset, stamp, ids[index])
    frame["offer_effect"] = effect
    frame["offer_cost"] = cost
    frame["value"] = frame["offer_cost"] / offers.OFFER_COST_SHARE * value_months
    months = tuple(str(pd.Timestamp(s).date()) for s in dataset.snapshots)
    last = pd.Timestamp(dataset.snapshots[-1]) + pd.Timedelta(days=31)
    quality = {}
    for month in months:
        as_of = export_as_of(month)
        if as_of > last:
            continue
        checks = quality_checks(tables_as_of(dataset, as_of), month)
        quality[month] = tuple(c["check"] for c in checks if not c["passed"])
    logger.info("year prepared: %d rows over %d months, %d alerts", len(frame), len(months),
                len(records))
    if TARGET not in frame:
        raise InvalidParameterError(f"the feature rows have no {TARGET} column")
    return Year(dataset, frame, months, quality, records)
