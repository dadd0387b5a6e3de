"""The book's structure: what Quarto needs to render it, checked without Quarto."""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
CONFIG = yaml.safe_load((ROOT / "_quarto.yml").read_text())
NOTEBOOKS = sorted(p for p in (ROOT / "notebooks").glob("*.ipynb") if not p.name.startswith("."))
SEC_ID = re.compile(r"\{#(sec-[A-Za-z0-9_-]+)[^}]*\}")
SEC_REF = re.compile(r"(?<![\w{#])@(sec-[A-Za-z0-9_-]*[A-Za-z0-9])")


def listed_files() -> list[str]:
    files = []
    for entry in CONFIG["book"]["chapters"] + CONFIG["book"].get("appendices", []):
        if isinstance(entry, str):
            files.append(entry)
        else:
            files.append(entry["part"])
            files.extend(entry.get("chapters", []))
    return files


def markdown_sources() -> dict[str, str]:
    sources = {str(p.relative_to(ROOT)): p.read_text() for p in [ROOT / "index.qmd", *ROOT.glob("book/*.qmd")]}
    for path in NOTEBOOKS:
        nb = nbformat.read(path, as_version=4)
        sources[str(path.relative_to(ROOT))] = "\n".join(
            c.source for c in nb.cells if c.cell_type == "markdown"
        )
    return sources


def test_config_is_a_book_with_three_parts_and_an_index_first():
    assert CONFIG["project"]["type"] == "book"
    chapters = CONFIG["book"]["chapters"]
    assert chapters[0] == "index.qmd" and (ROOT / "index.qmd").exists()
    parts = [c["part"] for c in chapters if isinstance(c, dict)]
    assert parts == ["book/part-1-levels.qmd", "book/part-2-skills.qmd", "book/part-3-continuous.qmd"]
    assert CONFIG["execute"]["enabled"] is False  # render the stored outputs, never re-execute


def test_every_listed_file_exists_and_every_notebook_is_listed():
    listed = listed_files()
    missing = [f for f in listed if not (ROOT / f).exists()]
    assert not missing, f"listed in _quarto.yml but missing: {missing}"
    unlisted = [str(p.relative_to(ROOT)) for p in NOTEBOOKS if str(p.relative_to(ROOT)) not in listed]
    assert not unlisted, f"notebooks not listed in _quarto.yml: {unlisted}"
    assert len(listed) == len(set(listed))


def test_chapters_are_listed_in_number_order():
    chapters = [f for f in listed_files() if f.startswith("notebooks/")]
    assert chapters == sorted(chapters)
    assert all(re.fullmatch(r"notebooks/\d\d-[a-z0-9-]+\.ipynb", c) for c in chapters)


def test_every_section_reference_resolves_to_one_id():
    sources = markdown_sources()
    ids: dict[str, str] = {}
    for name, text in sources.items():
        for sec in SEC_ID.findall(text):
            assert sec not in ids, f"{sec} defined in {ids.get(sec)} and {name}"
            ids[sec] = name
    dangling = {
        f"{name}: @{ref}" for name, text in sources.items() for ref in SEC_REF.findall(text) if ref not in ids
    }
    assert not dangling, f"references to undefined sections: {sorted(dangling)}"
    assert len(ids) >= 4


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_is_valid_titled_parameterised_and_executed(path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    first = nb.cells[0]
    assert first.cell_type == "markdown" and first.source.startswith("# ")
    assert SEC_ID.search(first.source.splitlines()[0]), "the title needs a {#sec-...} id"
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code[0].source.startswith("#| include: false") and "setup_notebook()" in code[0].source
    assert sum("parameters" in c.metadata.get("tags", []) for c in code) == 1
    assert "WORKSPACE_ROOT" in next(c.source for c in code if "parameters" in c.metadata.get("tags", []))
    assert all(c.execution_count is not None for c in code), "commit the notebook executed"
    assert not [o for c in code for o in c.outputs if o.output_type == "error"]
    assert not [o for c in code for o in c.outputs if o.get("name") == "stderr"], "no stderr in the book"
    assert "papermill" not in nb.metadata, "run `make run` so volatile metadata is stripped"
    assert all("injected-parameters" not in c.metadata.get("tags", []) for c in code)
    prose = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    assert "What this chapter proved" in prose or "What this appendix proved" in prose


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_figures_are_labelled_and_captioned(path):
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code" and "#| label: fig-" in cell.source:
            assert "#| fig-cap:" in cell.source, cell.source.splitlines()[0]
            assert any("image/png" in o.get("data", {}) for o in cell.outputs), "figure not rendered"


def test_the_rendering_workflow_sets_up_quarto_and_renders():
    workflow = yaml.safe_load((ROOT / ".github" / "workflows" / "book.yml").read_text())
    steps = [s for job in workflow["jobs"].values() for s in job["steps"]]
    assert any("quarto-dev/quarto-actions/setup" in s.get("uses", "") for s in steps)
    assert any("quarto render" in s.get("run", "") for s in steps)


def test_readme_opens_with_the_two_commands():
    readme = (ROOT / "README.md").read_text()
    head = readme[: readme.index("\n## ")]
    assert "make run" in head and "make test" in head
    assert "bash .ci/run" not in head
    assert "make test" in (ROOT / ".ci" / "run").read_text()


def test_benchmark_results_cover_every_chapter_and_the_data_sizes():
    import json

    results = ROOT / "benchmarks" / "results"
    chapters = json.loads((results / "chapters.json").read_text())
    measured = {row["chapter"] for row in chapters["chapters"]}
    assert measured == {p.stem for p in NOTEBOOKS}, "run `make bench` after adding a chapter"
    for row in chapters["chapters"]:
        assert row["seconds"] > 0 and row["peak_tree_mib"] > 0
    sizes = [row["n_customers"] for row in json.loads((results / "data.json").read_text())["results"]]
    assert sizes == [10_000, 100_000, 1_000_000]


def test_no_reference_points_at_a_part_heading():
    # Quarto cannot cross-reference a part file's heading: @sec-part-... renders as "?sec-part-...".
    # Part pages are linked by path instead.
    part_ids = set()
    for entry in CONFIG["book"]["chapters"]:
        if isinstance(entry, dict):
            part_ids |= set(SEC_ID.findall((ROOT / entry["part"]).read_text()))
    offending = {
        source: sorted(set(SEC_REF.findall(text)) & part_ids)
        for source, text in markdown_sources().items()
        if set(SEC_REF.findall(text)) & part_ids
    }
    assert not offending, f"references to part headings (link the part file instead): {offending}"


def test_links_to_part_pages_point_at_existing_files():
    link = re.compile(r"\]\(((?:\.\./)?(?:book/)?part-[\w-]+\.qmd)\)")
    for source, text in markdown_sources().items():
        for target in link.findall(text):
            assert ((ROOT / source).parent / target).resolve().exists(), (source, target)


def test_no_chapter_number_is_typed_by_hand():
    # Quarto numbers chapters in the order they are listed, so "chapter 10" typed in prose
    # disagrees with the rendered number as soon as a chapter is added; refer with @sec- ids.
    typed = re.compile(r"\b[Cc]hapters? \d+\b")
    generated = re.compile(r"<!-- lifecycle-loop:start.*?<!-- lifecycle-loop:end -->", re.S)
    sources = {source: generated.sub("", text) for source, text in markdown_sources().items()}
    found = {source: typed.findall(text) for source, text in sources.items()
             if typed.search(text)}
    assert not found, f"typed chapter numbers (use @sec- references): {found}"
    plan = (ROOT / "index.qmd").read_text()
    assert "| # |" not in plan, "the chapter plan must not number chapters by hand"


def test_the_lifecycle_loop_on_the_first_page_is_current_and_links_every_step():
    import sys
    import xml.etree.ElementTree as ET

    sys.path.insert(0, str(ROOT / "book"))
    try:
        import lifecycle_loop
    finally:
        sys.path.remove(str(ROOT / "book"))
    index = (ROOT / "index.qmd").read_text()
    assert lifecycle_loop.current(index), "run python book/lifecycle_loop.py"
    assert lifecycle_loop.PICTURE.read_text() == lifecycle_loop.picture()  # the README's copy
    ET.fromstring(lifecycle_loop.picture().split("\n", 1)[1])
    assert "book/lifecycle-loop.svg" in (ROOT / "README.md").read_text()
    root = ET.fromstring(lifecycle_loop.svg())  # well-formed
    links = [a.get("href") for a in root.iter("{http://www.w3.org/2000/svg}a")]
    assert len(links) == 10 and len(lifecycle_loop.STEPS) == 10
    listed = {Path(p).stem for p in listed_files()}
    for link in links:
        assert link.startswith("notebooks/") and Path(link).stem in listed, link
    # the caption refers to every chapter of the loop, so Quarto checks the references
    caption = index.split("<!-- lifecycle-loop:end -->", 1)[1].split(":::", 1)[0]
    for _, chapter in lifecycle_loop.STEPS:
        title = nbformat.read(ROOT / "notebooks" / f"{chapter}.ipynb", as_version=4).cells[0]
        section = re.search(r"\{#(sec-[\w-]+)\}", title.source).group(1)
        assert f"@{section}" in caption, section
    numbers = lifecycle_loop.chapter_numbers()
    assert list(numbers.values()) == list(range(1, len(numbers) + 1))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_every_chapter_ends_with_quick_wins(path):
    """The last section of a chapter, before its exercises: what a team can change this week."""
    nb = nbformat.read(path, as_version=4)
    headings = [line for c in nb.cells if c.cell_type == "markdown"
                for line in c.source.splitlines() if line.startswith("## ")]
    if headings[-1] == "## Exercises":  # tests/test_exercises.py checks them
        headings.pop()
    assert headings[-1] == "## Quick wins", headings[-3:]
    wins = next(c for c in nb.cells if c.cell_type == "markdown" and "## Quick wins" in c.source)
    assert wins.source.split("## Quick wins", 1)[1].count("\n- ") >= 2


def test_the_book_has_no_repository_actions_without_a_repository_url():
    # repo-actions without repo-url is a Quarto warning on every render
    assert "repo-actions" not in CONFIG["book"] or "repo-url" in CONFIG["book"]


def test_wide_outputs_scroll_inside_the_column():
    css = CONFIG["format"]["html"].get("css")
    assert css and (ROOT / css).exists()
    assert "overflow-x: auto" in (ROOT / css).read_text()


def test_chapter_5_prints_the_code_version_of_the_companion_as_it_is_now():
    """Chapter 5 prints the SHA-256 of the modules a training run executes: any edit to them
    (companion.core included) changes it, and the chapter must be executed again (`make run`)."""
    import re

    from companion import tracking

    text = (ROOT / "notebooks" / "05-experiment-tracking.ipynb").read_text(encoding="utf-8")
    printed = set(re.findall(r"code: ([0-9a-f]{12}) \|", text))
    now = tracking.code_version()["code.sha256"][:12]
    assert printed == {now}, (
        f"chapter 5 shows code version {sorted(printed)}, the companion's is now {now}: "
        "a module a training run executes changed; run `make run` and commit the chapter"
    )


def test_chapter_3_lists_the_companion_files_as_they_are_now():
    """Chapter 3 prints how many companion source files its pipeline's stages depend on and
    the files of the code version: a file added to or removed from those modules changes
    them, and the chapter must be executed again (`make run`). (Its code commit changes with
    any edit of those files too.)"""
    import re

    from companion import versioning

    text = (ROOT / "notebooks" / "03-data-versioning.ipynb").read_text(encoding="utf-8")
    printed = set(re.findall(r"sha256 of (\d+) companion source files", text))
    stages = dict(re.findall(r"  (\w+) depends on (\d+) code file\(s\)", text))
    now = {stage: str(len(files)) for stage, files in versioning.stage_code_files().items()}
    assert printed == {str(len(versioning.code_files()))} and stages == now, (
        f"chapter 3 shows {sorted(printed)} code files and stages {stages}; the companion has "
        f"{len(versioning.code_files())} and {now}: run `make run` and commit the chapter"
    )
