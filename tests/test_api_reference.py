"""The companion's API reference (reference/, the book's last appendices): complete and current."""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
REFERENCE = ROOT / "reference"
CONFIG = yaml.safe_load((ROOT / "_quarto.yml").read_text())
MODULES_WITHOUT_ALL = ("errors", "training", "workspace")

sys.path.insert(0, str(ROOT / "book"))
try:
    import api_reference
finally:
    sys.path.remove(str(ROOT / "book"))


def exported(path: Path) -> list[str] | None:
    """A module's ``__all__`` read from its source, or None when it has none."""
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets
        ):
            return [ast.literal_eval(e) for e in node.value.elts]  # type: ignore[attr-defined]
    return None


def public_definitions(path: Path) -> list[str]:
    return [n.name for n in ast.parse(path.read_text()).body
            if isinstance(n, ast.FunctionDef | ast.ClassDef) and not n.name.startswith("_")]


def public_names() -> dict[str, list[str]]:
    """Every public module of the companion and the names it documents."""
    names = {}
    for init in sorted((ROOT / "companion").glob("*/__init__.py")):
        if (all_ := exported(init)) is not None:
            names[init.parent.name] = all_
    for module in MODULES_WITHOUT_ALL:
        names[module] = public_definitions(ROOT / "companion" / f"{module}.py")
    return names


@pytest.fixture(scope="module")
def built() -> dict[str, str]:
    return api_reference.render(api_reference.load_config())


def anchors(text: str) -> set[str]:
    return set(api_reference.ANCHOR.findall(text))


def test_every_public_module_has_a_page_in_the_book_after_the_other_appendices():
    modules = api_reference.documented_modules(api_reference.load_config())
    names = public_names()
    assert sorted(modules) == sorted(names), "every subpackage with an __all__ gets a page"
    assert len(modules) == 17 and "core" not in modules
    appendices = CONFIG["book"]["appendices"]
    pages = ["reference/index.qmd", *(f"reference/{m}.qmd" for m in modules)]
    assert appendices[-len(pages):] == pages
    assert appendices.index("book/references.qmd") < appendices.index("reference/index.qmd")
    assert "reference/*.qmd" in CONFIG["project"]["render"]
    assert sorted(p.name for p in REFERENCE.glob("*.qmd")) == sorted(Path(p).name for p in pages)


@pytest.mark.parametrize("module", sorted(public_names()))
def test_every_public_name_is_documented_on_its_module_page(module):
    text = (REFERENCE / f"{module}.qmd").read_text()
    found = anchors(text)
    missing = [n for n in public_names()[module] if f"companion.{module}.{n}" not in found]
    assert not missing, f"reference/{module}.qmd does not document {missing}"
    assert text.startswith(f"# companion.{module} {{ #companion.{module} }}")


def test_the_pages_are_current(built):
    assert api_reference.compare(built, REFERENCE) == [], "run make reference"


def test_the_index_links_every_module_page(built):
    index = built["index.qmd"]
    assert index.startswith("# The companion's API { #sec-api-reference }")
    for module in public_names():
        assert f"| [{module}]({module}.qmd" in index


def test_examples_are_python_code_and_every_link_lands_on_a_documented_name(built):
    every_anchor = {a: name for name, text in built.items() for a in anchors(text)}
    examples = 0
    for name, text in built.items():
        assert not re.search(r":(func|class|meth|attr|mod|data):`", text), name
        fenced = False
        for line in text.splitlines():
            fenced ^= line.startswith("```")
            assert fenced or not line.startswith(">>>"), (name, line)
            examples += fenced and line.startswith(">>> ")
        for page, anchor in re.findall(r"\]\(((?:\w+\.qmd)?)#([\w.]+)\)", text):
            assert every_anchor.get(anchor) == (page or name), (name, page, anchor)
    assert examples >= 60  # the docstrings' doctest lines, all shown
    sample_size = built["abtest.qmd"].split("{ #companion.abtest.sample_size }", 1)[1]
    assert "```python\n>>> sample_size(0.10, 0.01, relative=False)\n13488\n```" in sample_size


def test_a_role_becomes_a_link_or_code():
    anchors_ = {"companion.abtest.sample_size": "abtest.qmd", "companion.data.generate": "data.qmd"}
    tidy = api_reference._tidy
    text = tidy("abtest.qmd", "# abtest { #companion.abtest }\n:func:`sample_size` and "
                ":func:`~companion.data.generate` from :mod:`~companion.data.offers`", anchors_)
    assert text == ("# companion.abtest { #companion.abtest }\n"
                    "[`sample_size`](#companion.abtest.sample_size) and "
                    "[`generate`](data.qmd#companion.data.generate) from `offers`\n")
    literal = tidy("x.qmd", "Run it::\n\n    make reference\n    make render\n\nDone.", {})
    assert literal == "Run it:\n\n```python\nmake reference\nmake render\n```\n\nDone.\n"


def test_stale_changed_and_missing_pages_are_reported_and_rewritten(tmp_path, built):
    pages = dict(list(built.items())[:2])
    (tmp_path / "gone.qmd").write_text("# gone\n")
    first, second = sorted(pages)
    (tmp_path / first).write_text("# old\n")
    assert api_reference.compare(pages, tmp_path) == [
        f"changed: {first}", f"missing: {second}", "not built any more: gone.qmd"]
    api_reference.write(pages, tmp_path)
    assert api_reference.compare(pages, tmp_path) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == [first, second]
    assert api_reference.compare(pages, tmp_path / "absent") == [f"missing: {first}",
                                                                 f"missing: {second}"]


def test_bad_configurations_are_refused_with_the_reason(tmp_path):
    with pytest.raises(SystemExit, match="no such Quarto configuration"):
        api_reference.load_config(tmp_path / "_quarto.yml")
    config = tmp_path / "_quarto.yml"
    config.write_text("project:\n  type: book\n")
    with pytest.raises(SystemExit, match="has no 'quartodoc:' section"):
        api_reference.load_config(config)
    config.write_text("quartodoc:\n  package: other\n  sections: [{contents: [x]}]\n")
    with pytest.raises(SystemExit, match="must document package 'companion'.*found package 'other'"):
        api_reference.load_config(config)
    with pytest.raises(SystemExit, match="no pages to write"):
        api_reference.write({}, tmp_path / "out")
    assert not (tmp_path / "out").exists()
