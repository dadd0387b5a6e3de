"""The command line of one step: ``python -m companion.pipelines step NAME --path ... --param ...``.

Every runner that starts a step in a new process (a DVC stage, an Azure ML command component)
runs this command::

    python -m companion.pipelines step features --path raw=out/raw \\
        --path validation=out/validation.json --path features=out/features.parquet \\
        --param month=2025-10-01 --param train_months=3

``--path name=PATH`` gives each input and output of the step; ``--param name=VALUE`` its
parameters, parsed by their declared type (``bool``: true/false/1/0/yes/no; ``list[str]``:
comma-separated). ``--pipeline module:attribute`` names another pipeline than
:data:`~companion.pipelines.steps.LUMEN`. When ``COMPANION_STEP_TIMES`` names a file, the
step's seconds are appended to it as a JSON line; when ``COMPANION_STAGE_ERROR_FILE`` names
one, a failing step writes its error there (the DVC runner reads both).
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from companion.core.files import atomic_write_text
from companion.errors import CompanionError, InvalidParameterError, UnknownNameError
from companion.pipelines.spec import Param, Pipeline, Step

__all__ = ["DEFAULT_PIPELINE", "STEP_TIMES_ENV", "main", "parse_pairs", "parse_value"]

DEFAULT_PIPELINE = "companion.pipelines.steps:LUMEN"
STEP_TIMES_ENV = "COMPANION_STEP_TIMES"
STAGE_ERROR_ENV = "COMPANION_STAGE_ERROR_FILE"
_TRUE = {"true", "1", "yes"}
_FALSE = {"false", "0", "no"}


def parse_value(param: Param, text: str) -> Any:
    """Parse ``text`` as ``param``'s declared type, or raise naming the parameter."""
    try:
        if param.type == "int":
            return int(text)
        if param.type == "float":
            return float(text)
        if param.type == "bool":
            if text.lower() in _TRUE | _FALSE:
                return text.lower() in _TRUE
            raise ValueError(text)
        if param.type == "list[str]":
            return [part for part in text.split(",") if part] if text else []
        return text
    except ValueError:
        accepted = "true or false" if param.type == "bool" else f"a {param.type}"
        raise InvalidParameterError(
            f"--param {param.name}={text!r}: expected {accepted}"
        ) from None


def parse_pairs(option: str, pairs: Sequence[str]) -> dict[str, str]:
    """``["a=1", "b=x=y"]`` -> ``{"a": "1", "b": "x=y"}``; refuse a pair without ``=``, a repeat."""
    found: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise InvalidParameterError(f"{option} {pair!r}: expected name=value")
        if name in found:
            raise InvalidParameterError(f"{option} {name} is given twice")
        found[name] = value
    return found


def load_pipeline(spec: str) -> Pipeline:
    """Import ``module:attribute`` and return the :class:`Pipeline` it names."""
    module, sep, attribute = spec.partition(":")
    if not sep or not module or not attribute:
        raise InvalidParameterError(f"--pipeline {spec!r}: expected module:attribute")
    try:
        found = getattr(importlib.import_module(module), attribute)
    except (ImportError, AttributeError) as error:
        raise UnknownNameError(f"--pipeline {spec!r}: {error}") from None
    if not isinstance(found, Pipeline):
        raise InvalidParameterError(f"--pipeline {spec!r} is not a Pipeline")
    return found


def step_arguments(item: Step, paths: dict[str, str],
                   params: dict[str, str]) -> tuple[dict[str, Path], dict[str, Any]]:
    """Check the names given against the step's declaration and parse the parameter values."""
    ports = [p.name for p in (*item.inputs, *item.outputs)]
    unknown = sorted(set(paths) - set(ports))
    missing = sorted(set(ports) - set(paths))
    if unknown or missing:
        raise InvalidParameterError(
            f"step {item.name!r} takes --path for exactly {ports}; unknown: {unknown}, "
            f"missing: {missing}"
        )
    declared = {p.name: p for p in item.params}
    unknown = sorted(set(params) - set(declared))
    if unknown:
        raise UnknownNameError(
            f"step {item.name!r} has no parameter(s) {unknown}; accepted: {sorted(declared)}"
        )
    values = {name: parse_value(declared[name], text) for name, text in params.items()}
    return {name: Path(value) for name, value in paths.items()}, values


def main(argv: Sequence[str] | None = None) -> int:
    """Run one step of a pipeline; exit 0 on success, 1 with the error on stderr otherwise."""
    parser = argparse.ArgumentParser(prog="python -m companion.pipelines",
                                     description="Run one step of a pipeline.")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("step", help="run one step")
    run.add_argument("name")
    run.add_argument("--path", action="append", default=[], metavar="NAME=PATH")
    run.add_argument("--param", action="append", default=[], metavar="NAME=VALUE")
    run.add_argument("--pipeline", default=DEFAULT_PIPELINE, metavar="MODULE:ATTRIBUTE")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    try:
        item = load_pipeline(args.pipeline).step(args.name)
        paths, params = step_arguments(item, parse_pairs("--path", args.path),
                                       parse_pairs("--param", args.param))
        item.call(paths, params)
    except CompanionError as error:
        message = f"{type(error).__name__}: {error}"
        report = os.environ.get(STAGE_ERROR_ENV)
        if report:
            atomic_write_text(report, f"step {args.name}: {message}")
        print(message, file=sys.stderr)
        return 1
    times = os.environ.get(STEP_TIMES_ENV)
    if times:
        line = json.dumps({"step": args.name, "seconds": round(time.perf_counter() - start, 3)})
        with open(times, "a", encoding="utf-8") as handle:
            handle.write(line + "\n")
    return 0
