"""The command line: ``python -m companion.runner run`` and ``... robustness`` (``make run``)."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Any

from companion.errors import InvalidParameterError
from companion.runner.chapters import NOTEBOOKS_DIR, list_chapters, run_all
from companion.runner.robustness import robustness

logger = logging.getLogger("companion.runner")

def parse_parameter(text: str) -> tuple[str, Any]:
    import yaml

    name, sep, value = text.partition("=")
    if not sep or not name.isidentifier():
        raise InvalidParameterError(f"parameter must look like NAME=VALUE, got {text!r}")
    return name, yaml.safe_load(value)


def main(argv: list[str] | None = None) -> None:
    """Execute the book's chapters (``python -m companion.runner run``)."""
    parser = argparse.ArgumentParser(prog="python -m companion.runner", description=main.__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="execute chapters in place with papermill")
    run.add_argument("--only", default="", help="run chapters whose file name contains this")
    run.add_argument("-p", "--param", action="append", default=[], help="NAME=VALUE (YAML)")
    run.add_argument("--dir", default=str(NOTEBOOKS_DIR), help="folder of the chapters")
    run.add_argument("--jobs", type=int, default=1,
                     help="chapters run at once, each with its own kernel (make run: 2)")
    robust = sub.add_parser(
        "robustness", help="run every chapter with other seeds and count its passing checks"
    )
    robust.add_argument("--only", default="", help="chapters whose file name contains this")
    robust.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3, 4, 5])
    robust.add_argument("--dir", default=str(NOTEBOOKS_DIR), help="folder of the chapters")
    robust.add_argument("--workspaces", default="build/robustness", help="workspace root")
    robust.add_argument("--report", default="benchmarks/results/robustness.json")
    args = parser.parse_args(argv)
    # The command line shows the runner's progress messages on stdout, as they come.
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stdout)
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    chapters = [c for c in list_chapters(args.dir) if args.only in c.name]
    if not chapters:
        raise SystemExit(f"no chapter in {args.dir} matches {args.only!r}")
    if args.command == "robustness":
        results = robustness(chapters, args.seeds, Path(args.workspaces).resolve(), args.report)
        if not all(r.ok for r in results):
            raise SystemExit("some chapter checks fail for some seed (table above)")
        return
    parameters = dict(parse_parameter(p) for p in args.param) or None
    run_all(chapters, parameters, jobs=args.jobs)
