"""The command line of the data pipeline: ``python -m companion.data generate|sample``.

``data/dvc.yaml`` runs it: ``generate`` simulates the dataset of ``params.yaml`` and writes
its tables as Parquet, ``sample`` writes a small CSV sample of the same dataset. It prints
where each table went and the dataset's content hash.
"""

from __future__ import annotations

import argparse

from companion.data.files import load_params, write_dataset, write_sample
from companion.data.simulate import generate


def main(argv: list[str] | None = None) -> None:
    """Command line used by the DVC pipeline in ``data/``."""
    parser = argparse.ArgumentParser(prog="python -m companion.data", description=main.__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    gen = sub.add_parser("generate", help="simulate the dataset and write it as Parquet")
    gen.add_argument("--params", default="params.yaml")
    gen.add_argument("--out", required=True)
    sample = sub.add_parser("sample", help="write a small CSV sample of the dataset")
    sample.add_argument("--params", default="params.yaml")
    sample.add_argument("--out", required=True)
    sample.add_argument("--customers", type=int, default=50)
    args = parser.parse_args(argv)
    dataset = generate(load_params(args.params))
    if args.command == "generate":
        paths = write_dataset(dataset, args.out)
    else:
        paths = write_sample(dataset, args.out, args.customers)
    for name, path in paths.items():
        print(f"{name:>9}: {path}")
    print(f"content hash: {dataset.content_hash()}")


if __name__ == "__main__":
    main()
