"""Write the companion's API reference, the book's last appendices, from its docstrings.

quartodoc (configured under ``quartodoc:`` in _quarto.yml) renders one page per public module
into ``reference/``: every name of each subpackage's ``__all__`` (and the public functions and
classes of ``errors``, ``training`` and ``workspace``), with signatures, argument tables and
examples. This script runs quartodoc's steps and then makes the pages read well in the book:

- Sphinx roles (``:func:`sample_size```) become links to the documented name, or code when the
  name is not documented (a private module);
- doctest examples (``>>> ...``) and ``::`` literal blocks become Python code blocks;
- a ``Returns:`` section is one item, however many lines its description takes.

    python book/api_reference.py          # rewrite reference/ (make reference)
    python book/api_reference.py --check  # exit 1 if reference/ is not current

Nothing is downloaded; it reads the package's source (griffe), not the imported modules.
tests/test_api_reference.py checks that every public name is documented and the pages current.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "_quarto.yml"
PACKAGE = "companion"

ANCHOR = re.compile(r"\{ ?#([\w.]+) ?\}")
ROLE = re.compile(r":(?:py:)?(func|class|meth|attr|mod|data|obj|exc):`(~?)([\w.]+?)(\(\))?`")
DOCTEST = re.compile(r"^(>>> |>>>$)")
INTRO = """\
The `companion` package, module by module, generated from its docstrings with quartodoc
(`make reference`). Each page documents the names its module exports (its `__all__`): chapters
read `from companion import monitoring`, then `monitoring.drift_report(...)`. The modules are in
the order of the package's layers: each imports only those before it. `companion.core`, the
ground every stage stands on (argument checks, atomic files, server processes), is internal
and not listed; its modules document themselves.\
"""


def load_config(config: Path = CONFIG) -> dict[str, Any]:
    """Return the ``quartodoc`` section of a Quarto configuration, checked."""
    if not config.is_file():
        raise SystemExit(f"{config}: no such Quarto configuration")
    section = (yaml.safe_load(config.read_text()) or {}).get("quartodoc")
    if not isinstance(section, dict):
        raise SystemExit(f"{config} has no 'quartodoc:' section to build the API reference from")
    if section.get("package") != PACKAGE or not section.get("sections"):
        raise SystemExit(f"{config}: quartodoc must document package {PACKAGE!r} in 'sections'; "
                         f"found package {section.get('package')!r}")
    return section


def documented_modules(section: dict[str, Any]) -> list[str]:
    """The modules the configuration gives a page each, in the book's order."""
    names = []
    for part in section["sections"]:
        for item in part.get("contents", []):
            # a name, {name: ...}, or a page {path: ..., contents: [the module, ...]}
            names.append(item if isinstance(item, str) else item.get("path", item.get("name")))
    return names


def render(section: dict[str, Any]) -> dict[str, str]:
    """Render every page of the reference: ``{file name: text}``, nothing written."""
    import quartodoc
    from quartodoc import parsers

    # One Returns item per section: the book's docstrings describe a return over several lines.
    parsers.DEFAULT_OPTIONS["google"] = {"returns_multiple_items": False, "warnings": False}
    options = {k: v for k, v in section.items() if k not in {"renderer", "sidebar"}}
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    builder = quartodoc.Builder.from_quarto_config({"quartodoc": options})
    plan = quartodoc.blueprint(builder.layout, dynamic=builder.dynamic, parser=builder.parser)
    pages, _ = quartodoc.collect(plan, base_dir=builder.dir)
    texts = {f"{page.path}.qmd": str(builder.renderer.render(page)) for page in pages}
    attributes = dict(_attributes(doc for page in pages for doc in page.contents))
    index = str(builder.renderer.summarize(plan))
    texts[builder.out_index] = f"# {builder.title} {{ #sec-api-reference }}\n\n{INTRO}\n\n{index}"
    texts = {name: _one_title(_anchor_attributes(text, attributes)) for name, text in texts.items()}
    anchors = {anchor: name for name, text in texts.items() for anchor in ANCHOR.findall(text)}
    return {name: _tidy(name, text, anchors) for name, text in texts.items()}


def _attributes(docs: Any) -> Any:
    """(anchor, whole docstring on one line) of every attribute documented under ``docs``."""
    for doc in docs:
        if getattr(doc.obj, "is_attribute", False):
            text = doc.obj.docstring.value if doc.obj.docstring else ""
            value = getattr(doc.obj, "value", None)
            said = f"= {value}" if value is not None else f": {doc.obj.annotation or ''}"
            said = " ".join(said.split())
            if not text and said.strip(": "):  # undocumented: its value or type says what it is
                text = f"`{said if len(said) <= 90 else said[:87] + '...'}`"
            yield doc.anchor, " ".join(text.split()).replace("|", "\\|")
        yield from _attributes(m for m in getattr(doc, "members", []) if hasattr(m, "anchor"))


def _anchor_attributes(text: str, attributes: dict[str, str]) -> str:
    """quartodoc lists attributes in a table whose links lead nowhere: each row becomes the
    attribute's anchor, with its whole docstring (not only its first line)."""
    def row(match: re.Match[str]) -> str:
        name, anchor = match.group(1), match.group(2)
        if anchor not in attributes:
            return match.group(0)
        return f"| [{name}]{{#{anchor}}} | {attributes[anchor]} |"

    return re.sub(r"^\| \[(\w+)\]\(#([\w.]+)\) \| .* \|$", row, text, flags=re.M)


def _one_title(text: str) -> str:
    """A page of several objects (a module, then a name its ``__all__`` exports that griffe
    cannot reach, such as a function named like its own submodule): quartodoc titles the page
    with its path and puts each object at level 1; keep the module's title only and put the
    others at the level of the module's functions, under their exported name."""
    lines, fenced, h1 = text.split("\n"), False, []
    for i, line in enumerate(lines):
        fenced ^= line.startswith("```")
        if not fenced and line.startswith("# "):
            h1.append(i)
    if len(h1) < 3:
        return text
    extra, fenced = lines[h1[2]:], False
    for i, line in enumerate(extra):
        fenced ^= line.startswith("```")
        if not fenced and line.startswith("#"):
            extra[i] = "##" + re.sub(r"^(#+) \w+\.(\w+)\.\2 ", r"\1 \2 ", line)
    text = "\n".join(lines[h1[1]:h1[2]] + extra)
    # the name the reader calls: companion.runner.robustness, not ...robustness.robustness
    return re.sub(r"\b(\w+)\.(\w+)\.\2\b", r"\1.\2", text)


def _tidy(name: str, text: str, anchors: dict[str, str]) -> str:
    module = f"{PACKAGE}.{Path(name).stem}"
    # the title names the module in full; quartodoc's signature line of a module (its bare
    # name in code) says nothing more
    text = re.sub(r"^# (\w+) (\{ #[\w.]+ \})\n(?:\n`\1`\n)?", rf"# {PACKAGE}.\1 \2\n", text,
                  count=1)
    text = ROLE.sub(lambda m: _link(m, name, module, anchors), text)
    return _code_blocks(text).rstrip("\n") + "\n"


def _link(match: re.Match[str], page: str, module: str, anchors: dict[str, str]) -> str:
    role, short, target, call = match.group(1), match.group(2), match.group(3), match.group(4)
    last = target.rsplit(".", 1)[-1]
    label = f"`{(last if short else target)}{call or ''}`"
    parts = target.split(".")
    candidates = [target, f"{module}.{target}"]
    if parts[0] == PACKAGE and len(parts) > 2:
        candidates.append(f"{PACKAGE}.{parts[1]}.{last}")  # a submodule's name, re-exported
    for anchor in candidates:
        if anchor in anchors and (role != "mod" or anchor.count(".") == 1):
            where = "" if anchors[anchor] == page else anchors[anchor]
            return f"[{label}]({where}#{anchor})"
    return label


def _code_blocks(text: str) -> str:
    """Doctest lines and ``::`` literal blocks outside fences become fenced Python code."""
    out: list[str] = []
    lines = text.split("\n")
    fenced = False
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("```"):
            fenced = not fenced
        if not fenced and DOCTEST.match(line):
            block = []
            while i < len(lines) and lines[i].strip():
                block.append(lines[i])
                i += 1
            out += ["```python", *block, "```"]
            continue
        if not fenced and line.rstrip().endswith("::") and not line.lstrip().startswith("|"):
            j = i + 1
            while j < len(lines) and not lines[j].strip():
                j += 1
            block = []
            while j < len(lines) and (lines[j].startswith("    ") or not lines[j].strip()):
                block.append(lines[j])
                j += 1
            if block:
                while block and not block[-1].strip():
                    block.pop()
                indent = min(len(b) - len(b.lstrip()) for b in block if b.strip())
                out += [line.rstrip()[:-1], "", "```python", *(b[indent:] for b in block), "```",
                        ""]
                i = j
                continue
        out.append(line)
        i += 1
    return "\n".join(out)


def write(texts: dict[str, str], folder: Path) -> list[Path]:
    """Write the pages into ``folder``, each atomically, removing pages no longer built."""
    if not texts:
        raise SystemExit("no pages to write: the quartodoc configuration documents nothing")
    folder.mkdir(parents=True, exist_ok=True)
    for stale in {p.name for p in folder.glob("*.qmd")} - set(texts):
        (folder / stale).unlink()
    written = []
    for name, text in sorted(texts.items()):
        with tempfile.NamedTemporaryFile("w", dir=folder, delete=False, suffix=".tmp") as tmp:
            tmp.write(text)
        os.replace(tmp.name, folder / name)
        written.append(folder / name)
    return written


def compare(texts: dict[str, str], folder: Path) -> list[str]:
    """Pages of ``folder`` that differ from ``texts``: missing, not built any more, changed."""
    found = {p.name: p.read_text() for p in folder.glob("*.qmd")} if folder.is_dir() else {}
    return sorted(
        [f"missing: {n}" for n in set(texts) - set(found)]
        + [f"not built any more: {n}" for n in set(found) - set(texts)]
        + [f"changed: {n}" for n in set(texts) & set(found) if texts[n] != found[n]]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true",
                        help="exit 1 if the committed pages differ from a fresh build")
    args = parser.parse_args(argv)
    section = load_config()
    folder = ROOT / section.get("dir", "reference")
    texts = render(section)
    if args.check:
        diff = compare(texts, folder)
        for line in diff:
            print(line)
        if diff:
            print("the API reference is not current: run make reference")
        return 1 if diff else 0
    pages = write(texts, folder)
    print(f"{len(pages)} pages written to {folder.relative_to(ROOT)}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
