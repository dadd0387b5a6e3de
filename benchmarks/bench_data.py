"""Time the dataset generator at 10 k, 100 k and 1 M customers, beside its floor.

Each size runs in a fresh process, so its peak memory is its own. The floor, measured in the
same process right before, is the irreducible part of the work: drawing one float32 normal per
customer-week cell (the generator draws several and does much more with them). The ratio
generator / floor says how far the generator is from that bound.

Usage: python benchmarks/bench_data.py [--sizes 10000 100000 1000000]
Writes benchmarks/results/data.json.
"""

from __future__ import annotations

import argparse
import json
import sys

from _measure import machine, run_measured, write_results

CHILD = """
import json, time
import numpy as np
from companion.data import SimulationConfig, generate
from companion.data.simulate import _TimeGrid
n = {n}
config = SimulationConfig(n_customers=n)
weeks = len(_TimeGrid.from_config(config).week_end)
started = time.perf_counter()
np.random.default_rng(0).standard_normal((n, weeks), dtype=np.float32)
floor = time.perf_counter() - started
started = time.perf_counter()
ds = generate(config)
seconds = time.perf_counter() - started
# the bytes of the tables it returns: the memory floor of any generator that holds them
table_bytes = sum(int(t.memory_usage(deep=True).sum()) for t in ds.all_tables().values())
print(json.dumps({{"floor_seconds": floor, "seconds": seconds, "weeks": weeks,
                  "table_bytes": table_bytes,
                  "activity_rows": len(ds.activity), "label_rows": len(ds.labels)}}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    args = parser.parse_args()
    rows = []
    for n in args.sizes:
        measured = run_measured([sys.executable, "-c", CHILD.format(n=n)])
        inner = json.loads(measured["output"].strip().splitlines()[-1])
        row = {
            "n_customers": n,
            "seconds": round(inner["seconds"], 2),
            "activity_rows": inner["activity_rows"],
            "label_rows": inner["label_rows"],
            "activity_rows_per_second": round(inner["activity_rows"] / inner["seconds"]),
            "floor_seconds": round(inner["floor_seconds"], 3),
            "ratio_to_floor": round(inner["seconds"] / inner["floor_seconds"], 1),
            "peak_memory_mib": measured["peak_process_mib"],
        }
        rows.append(row)
        print(
            f"{n:>9,} customers: {row['seconds']:6.2f} s, "
            f"{row['activity_rows']:>11,} activity rows, "
            f"{row['ratio_to_floor']:5.1f}x floor, peak {row['peak_memory_mib']:,.0f} MiB",
            flush=True,
        )
    path = write_results(
        "data",
        {
            "benchmark": "dataset generation (companion.data.generate)",
            "machine": machine(),
            "results": rows,
        },
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
