"""The companion's layering, written down and enforced (CONTRIBUTING.md explains it).

Every import of a companion module, wherever it sits in the file (module level, inside a
function, under ``TYPE_CHECKING``), must point to a lower layer or to the importing module's
own package. Module-level imports must form no cycle.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "companion"

# Lowest first. A module may import the layers listed before its own, and its own package.
LAYERS: list[tuple[str, ...]] = [
    ("companion.errors",),  # what every module raises
    ("companion.core",),  # the ground: internal helpers, no stage
    ("companion.data",),  # the simulated business
    ("companion.training",),  # features of a snapshot, models, fit and score
    ("companion.evaluation",),  # intervals, comparisons, grading against the truth
    # the stages, in the order the book teaches them: a stage builds on the ones before it
    ("companion.versioning",),
    ("companion.features",),
    ("companion.tracking",),
    ("companion.cicd",),  # Level 1: the project under version control, its tests and CI
    ("companion.registry",),
    ("companion.pipelines",),
    ("companion.deployment",),
    ("companion.abtest",),
    ("companion.monitoring",),
    ("companion.retraining",),
    ("companion.llm",),  # an LLM application: prompts, retrieval configs, quality monitoring
    ("companion.workspace", "companion.runner"),  # what chapters open and what runs them
]


def _unit(module: str) -> str:
    """The layered unit a module belongs to: ``companion.core.checks`` -> ``companion.core``."""
    return ".".join(module.split(".")[:2])


def _layer(module: str) -> int:
    unit = _unit(module)
    for index, units in enumerate(LAYERS):
        if unit in units:
            return index
    raise AssertionError(f"{module} is in no layer; add it to LAYERS and to CONTRIBUTING.md")


def _modules() -> dict[str, Path]:
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


def _imports(module: str, path: Path, top_level_only: bool = False) -> list[tuple[int, str]]:
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    tree = ast.parse(path.read_text(encoding="utf-8"))
    nodes = tree.body if top_level_only else ast.walk(tree)
    found = []
    for node in nodes:
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names if a.name.startswith("companion")]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join([*anchor, *([node.module] if node.module else [])])
            else:
                target = node.module or ""
            if target.split(".")[0] == "companion":
                found.append((node.lineno, target))
    return found


MODULES = _modules()


def test_every_module_has_a_layer():
    for module in MODULES:
        if module != "companion":
            _layer(module)


@pytest.mark.parametrize("module", [m for m in MODULES if m != "companion"])
def test_imports_point_down_or_within_the_package(module):
    mine = _layer(module)
    wrong = [
        f"line {line}: {target}"
        for line, target in _imports(module, MODULES[module])
        if target != "companion"
        and _unit(target) != _unit(module)
        and _layer(target) >= mine
    ]
    assert not wrong, (
        f"{module} (layer {mine}) imports a module of its own layer or above: {wrong}; "
        "see CONTRIBUTING.md, 'Where code goes'"
    )


def test_no_import_cycle_at_module_level():
    graph = {
        module: {t for _, t in _imports(module, path, top_level_only=True) if t in MODULES}
        for module, path in MODULES.items()
    }
    state: dict[str, int] = {}

    def visit(module: str, stack: list[str]) -> None:
        state[module] = 1
        for target in sorted(graph[module]):
            if state.get(target) == 1:
                cycle = stack[stack.index(target):] + [target] if target in stack else [module, target]
                raise AssertionError(f"import cycle: {' -> '.join(cycle)}")
            if not state.get(target):
                visit(target, [*stack, target])
        state[module] = 2

    for module in sorted(graph):
        if not state.get(module):
            visit(module, [module])
