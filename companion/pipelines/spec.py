"""Step definitions written once: plain typed functions whose signatures say what they read,
write and take.

A step is an ordinary Python function. Its signature is its declaration:

- a parameter annotated ``Annotated[Path, Input()]`` is a file or folder it reads, produced by
  an earlier step's output of the same name (or, with ``Input(external=True)``, handed to the
  pipeline from outside, such as a monthly export);
- a parameter annotated ``Annotated[Path, Output("features.parquet")]`` is a file (or, with
  ``folder=True``, a folder) it writes, under that name in the run's folder;
- every keyword-only parameter (after ``*``) is a parameter of the pipeline, with the type
  its annotation gives (``str``, ``int``, ``float``, ``bool``, or a list of ``str``).

:func:`step` reads the signature once and attaches a :class:`Step`; the function itself is
returned unchanged, so a test or a notebook calls it directly. A :class:`Pipeline` is an ordered
list of steps wired by those names. Every runner (:mod:`companion.pipelines.local`, DVC, Kubeflow
Pipelines, Azure ML) is generated from the same :class:`Pipeline`: nothing about a step is
written twice.
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from companion.core.checks import check_identifier, check_int
from companion.errors import InvalidParameterError, UnknownNameError

__all__ = [
    "PARAM_TYPES",
    "Input",
    "Output",
    "Param",
    "Pipeline",
    "Port",
    "Step",
    "step",
]

NAME = r"[a-z][a-z0-9_]{0,39}"
"""Step, artifact and parameter names: lowercase Python identifiers, valid in every runner."""

PARAM_TYPES: dict[str, type] = {"str": str, "int": int, "float": float, "bool": bool}
"""Parameter types every runner can pass on its command line (plus ``list[str]``)."""


@dataclass(frozen=True)
class Input:
    """Marks a step parameter as a file or folder the step reads.

    ``external=True``: the pipeline receives it from outside (e.g. the monthly export folder);
    otherwise an earlier step's output of the same name provides it.
    """

    external: bool = False
    folder: bool = False


@dataclass(frozen=True)
class Output:
    """Marks a step parameter as the file (``folder=True``: folder) it writes, as ``filename``."""

    filename: str
    folder: bool = False


@dataclass(frozen=True)
class Port:
    """One input or output of a step: its name, and whether it is a folder."""

    name: str
    folder: bool = False
    filename: str = ""  # outputs only: where in the run's folder it is written
    external: bool = False  # inputs only: provided from outside the pipeline


@dataclass(frozen=True)
class Param:
    """One parameter of a step: its name, type (``str``, ``int``, ``float``, ``bool``,
    ``list[str]``) and default (``inspect.Parameter.empty`` when it has none)."""

    name: str
    type: str
    default: Any = inspect.Parameter.empty

    @property
    def required(self) -> bool:
        return self.default is inspect.Parameter.empty


@dataclass(frozen=True)
class Step:
    """A step's declaration, read from its function's signature by :func:`step`."""

    name: str
    function: Callable[..., Any] = field(repr=False, compare=False)
    inputs: tuple[Port, ...]
    outputs: tuple[Port, ...]
    params: tuple[Param, ...]
    retries: int = 0
    description: str = ""

    @property
    def module(self) -> str:
        """Dotted module of the function (runners import it from there)."""
        return self.function.__module__

    def call(self, paths: Mapping[str, Path], params: Mapping[str, Any]) -> Any:
        """Call the function with ``paths`` for its inputs and outputs and its own ``params``."""
        missing = [p.name for p in (*self.inputs, *self.outputs) if p.name not in paths]
        if missing:
            raise InvalidParameterError(f"step {self.name!r} needs paths for {missing}")
        ports = (*self.inputs, *self.outputs)
        kwargs: dict[str, Any] = {p.name: Path(paths[p.name]) for p in ports}
        for param in self.params:
            if param.name in params:
                kwargs[param.name] = params[param.name]
            elif param.required:
                raise InvalidParameterError(
                    f"step {self.name!r} needs parameter {param.name!r} ({param.type}); "
                    f"given: {sorted(params)}"
                )
        return self.function(**kwargs)


def _param_type(step_name: str, name: str, annotation: Any) -> str:
    if annotation in PARAM_TYPES.values():
        return annotation.__name__
    if typing.get_origin(annotation) is list and typing.get_args(annotation) == (str,):
        return "list[str]"
    raise InvalidParameterError(
        f"step {step_name!r}: parameter {name!r} has type {annotation!r}; accepted: str, int, "
        "float, bool, list[str] (what every runner can pass on a command line)"
    )


def _declare(function: Callable[..., Any], retries: int) -> Step:
    name = function.__name__
    check_identifier("step name", name, NAME, "lowercase letters, digits and '_'")
    hints = typing.get_type_hints(function, include_extras=True)
    inputs: list[Port] = []
    outputs: list[Port] = []
    params: list[Param] = []
    for parameter in inspect.signature(function).parameters.values():
        check_identifier(f"step {name!r}: parameter name", parameter.name, NAME,
                         "lowercase letters, digits and '_'")
        hint = hints.get(parameter.name, inspect.Parameter.empty)
        marks = [m for m in getattr(hint, "__metadata__", ()) if isinstance(m, (Input, Output))]
        if parameter.kind is inspect.Parameter.KEYWORD_ONLY:
            if marks:
                raise InvalidParameterError(
                    f"step {name!r}: {parameter.name!r} is keyword-only, so it is a parameter; "
                    "inputs and outputs come before the '*'"
                )
            params.append(Param(parameter.name, _param_type(name, parameter.name, hint),
                                parameter.default))
        elif len(marks) == 1 and typing.get_args(hint)[0] is Path:
            mark = marks[0]
            if isinstance(mark, Input):
                inputs.append(Port(parameter.name, mark.folder, external=mark.external))
            else:
                plain = mark.filename.strip("/")
                if not plain or "/" in plain or plain in (".", ".."):
                    raise InvalidParameterError(
                        f"step {name!r}: output {parameter.name!r} needs a plain file name, "
                        f"got {mark.filename!r}"
                    )
                outputs.append(Port(parameter.name, mark.folder, filename=mark.filename.strip("/")))
        else:
            raise InvalidParameterError(
                f"step {name!r}: parameter {parameter.name!r} must be Annotated[Path, Input()] or "
                "Annotated[Path, Output('file')], or keyword-only (after '*') to be a parameter"
            )
    if not outputs:
        raise InvalidParameterError(
            f"step {name!r} declares no output; a step must write something"
        )
    doc = inspect.getdoc(function) or ""
    return Step(name, function, tuple(inputs), tuple(outputs), tuple(params), retries,
                doc.splitlines()[0] if doc else "")


def step(
    function: Callable[..., Any] | None = None, *, retries: int = 0
) -> Any:
    """Declare ``function`` a pipeline step (``@step`` or ``@step(retries=2)``).

    The function is returned unchanged, with its :class:`Step` as ``function.step``.
    ``retries``: how many times a runner calls it again after it raises (a flaky source).
    """
    check_int("retries", retries, minimum=0, maximum=5)

    def wrap(fn: Callable[..., Any]) -> Callable[..., Any]:
        fn.step = _declare(fn, retries)  # type: ignore[attr-defined]
        return fn

    return wrap(function) if function is not None else wrap


def _as_step(item: Any) -> Step:
    found = item if isinstance(item, Step) else getattr(item, "step", None)
    if not isinstance(found, Step):
        raise InvalidParameterError(
            f"a pipeline holds steps (functions decorated with @step), got {item!r}"
        )
    return found


class Pipeline:
    """Steps in the order they run, wired by the names of their inputs and outputs.

    Example:
        >>> from typing import Annotated
        >>> @step
        ... def hello(greeting: Annotated[Path, Output("hello.txt")], *, who: str = "world"):
        ...     greeting.write_text(f"hello {who}")
        >>> Pipeline("demo", [hello]).params()
        {'who': Param(name='who', type='str', default='world')}
    """

    def __init__(self, name: str, steps: Sequence[Any]) -> None:
        check_identifier("pipeline name", name, r"[a-z][a-z0-9-]{0,39}",
                         "lowercase letters, digits and '-'")
        if isinstance(steps, (str, bytes)) or not isinstance(steps, Iterable) or not steps:
            raise InvalidParameterError(f"steps must be a non-empty list of steps, got {steps!r}")
        self.name = name
        self.steps: tuple[Step, ...] = tuple(_as_step(s) for s in steps)
        produced: dict[str, str] = {}
        seen: set[str] = set()
        params: dict[str, Param] = {}
        for item in self.steps:
            if item.name in seen:
                raise InvalidParameterError(f"step {item.name!r} appears twice in {name!r}")
            seen.add(item.name)
            for port in item.inputs:
                if not port.external and port.name not in produced:
                    raise InvalidParameterError(
                        f"step {item.name!r} reads {port.name!r}, which no earlier step writes; "
                        f"written so far: {sorted(produced)}"
                    )
            for port in item.outputs:
                if port.name in produced:
                    raise InvalidParameterError(
                        f"{port.name!r} is written by both {produced[port.name]!r} and "
                        f"{item.name!r}"
                    )
                produced[port.name] = item.name
            for param in item.params:
                other = params.get(param.name)
                if other is not None and (other.type, other.default) != (param.type, param.default):
                    raise InvalidParameterError(
                        f"parameter {param.name!r} is declared differently by two steps: "
                        f"{other} and {param}"
                    )
                params[param.name] = param
        self._producer = produced
        self._params = params

    def __repr__(self) -> str:
        return f"Pipeline({self.name!r}, steps={[s.name for s in self.steps]})"

    def step(self, name: str) -> Step:
        """The step called ``name``."""
        for item in self.steps:
            if item.name == name:
                return item
        raise UnknownNameError(
            f"pipeline {self.name!r} has no step {name!r}; steps: {[s.name for s in self.steps]}"
        )

    def params(self) -> dict[str, Param]:
        """Every parameter of the pipeline, by name (a parameter shared by steps is one)."""
        return dict(self._params)

    def external_inputs(self) -> list[Port]:
        """Inputs handed to the pipeline from outside, in the order steps read them."""
        found: dict[str, Port] = {}
        for item in self.steps:
            for port in item.inputs:
                if port.external:
                    found.setdefault(port.name, port)
        return list(found.values())

    def outputs(self) -> dict[str, Port]:
        """Every output of every step, by name."""
        return {port.name: port for item in self.steps for port in item.outputs}

    def edges(self) -> list[tuple[str, str, str]]:
        """``(upstream step, downstream step, artifact)`` for every artifact passed on."""
        return [
            (self._producer[port.name], item.name, port.name)
            for item in self.steps for port in item.inputs if not port.external
        ]

    def upstream(self, name: str) -> list[str]:
        """Steps whose outputs ``name`` reads, directly."""
        self.step(name)
        return sorted({a for a, b, _ in self.edges() if b == name})

    def downstream_of_param(self, param: str) -> list[str]:
        """Steps that must run again when ``param`` changes: the ones taking it, and every step
        after them that reads what they wrote (in pipeline order)."""
        if param not in self._params:
            raise UnknownNameError(
                f"pipeline {self.name!r} has no parameter {param!r}; accepted: "
                f"{sorted(self._params)}"
            )
        dirty = {s.name for s in self.steps if any(p.name == param for p in s.params)}
        for a, b, _ in self.edges():  # edges come in pipeline order: one pass suffices
            if a in dirty:
                dirty.add(b)
        return [s.name for s in self.steps if s.name in dirty]

    def resolve_params(self, given: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Defaults overridden by ``given``; refuse unknown names, wrong types, missing values."""
        given = dict(given or {})
        unknown = sorted(set(given) - set(self._params))
        if unknown:
            raise UnknownNameError(
                f"pipeline {self.name!r} has no parameter(s) {unknown}; accepted: "
                f"{sorted(self._params)}"
            )
        resolved: dict[str, Any] = {}
        for name, param in self._params.items():
            value = given.get(name, param.default)
            if value is inspect.Parameter.empty:
                raise InvalidParameterError(
                    f"pipeline {self.name!r} needs parameter {name!r} ({param.type})"
                )
            resolved[name] = _check_value(name, param.type, value)
        return resolved


def _check_value(name: str, kind: str, value: Any) -> Any:
    if kind == "list[str]":
        if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)) or not all(
            isinstance(v, str) for v in value
        ):
            raise InvalidParameterError(f"parameter {name} must be a list of str, got {value!r}")
        return list(value)
    expected = PARAM_TYPES[kind]
    ok = isinstance(value, expected) and not (expected is not bool and isinstance(value, bool))
    if expected is float and isinstance(value, int) and not isinstance(value, bool):
        value, ok = float(value), True
    if not ok:
        raise InvalidParameterError(
            f"parameter {name} must be {kind}, got {value!r} of type {type(value).__name__}"
        )
    return value


