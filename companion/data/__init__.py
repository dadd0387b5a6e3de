"""The sample dataset: a simulated subscription video service whose truth is known.

Customers sign up, watch, open support tickets, fail payments and churn. Because the data is
simulated, we know what no real business knows: each customer's true churn probability at every
monthly snapshot, and the exact day each drift scenario starts. That truth is kept apart from
the tables a model may read (``customers``, ``activity``, ``labels``) so a chapter can grade its
models and monitors against it without leaking it into training.

The generator is vectorised over customers (NumPy arrays of customers x weeks, in fixed blocks
of customers with their own random streams), seeded, and byte-for-byte deterministic: the same
:class:`SimulationConfig` gives the same tables on any machine.

The package holds:

- :mod:`companion.data.config`: the constants of the business and :class:`SimulationConfig`;
- :mod:`companion.data.simulate`: the vectorised simulator, :func:`generate`;
- :mod:`companion.data.tables`: :class:`ChurnDataset`, :func:`content_hash`,
  :func:`check_dataset` and :func:`monthly_fee_at`;
- :mod:`companion.data.files`: Parquet tables, CSV samples and ``params.yaml`` on disk;
- ``python -m companion.data``: the command line the DVC pipeline in ``data/`` runs.

Example:
    >>> ds = generate(SimulationConfig(n_customers=200, months=3, scenarios=()))
    >>> sorted(ds.tables())
    ['activity', 'customers', 'labels', 'prices']
"""

from __future__ import annotations

from companion.data.config import (
    AGE_BANDS,
    CHANNELS,
    HISTORY_WEEKS,
    LABEL_WINDOW_DAYS,
    PLAN_FEES,
    PLANS,
    RAISED_FEES,
    REGIONS,
    SCENARIOS,
    SimulationConfig,
)
from companion.data.files import load_params, read_table, write_dataset, write_sample
from companion.data.simulate import BLOCK_SIZE, generate
from companion.data.tables import (
    TABLE_FILES,
    ChurnDataset,
    check_dataset,
    content_hash,
    monthly_fee_at,
)

__all__ = [
    "AGE_BANDS",
    "BLOCK_SIZE",
    "CHANNELS",
    "HISTORY_WEEKS",
    "LABEL_WINDOW_DAYS",
    "PLANS",
    "PLAN_FEES",
    "RAISED_FEES",
    "REGIONS",
    "SCENARIOS",
    "TABLE_FILES",
    "ChurnDataset",
    "SimulationConfig",
    "check_dataset",
    "content_hash",
    "generate",
    "load_params",
    "monthly_fee_at",
    "read_table",
    "write_dataset",
    "write_sample",
]
