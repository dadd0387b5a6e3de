"""The workshop guide (book/workshop.qmd): its tables are current and its agendas fit."""

from __future__ import annotations

import json
import math
import re
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
GUIDE = ROOT / "book" / "workshop.qmd"

sys.path.insert(0, str(ROOT / "book"))
try:
    import workshop_agenda
finally:
    sys.path.remove(str(ROOT / "book"))


def test_the_guide_is_an_appendix_and_its_tables_are_current():
    appendices = yaml.safe_load((ROOT / "_quarto.yml").read_text())["book"]["appendices"]
    assert "book/workshop.qmd" in appendices
    assert workshop_agenda.current(GUIDE.read_text()), "run python book/workshop_agenda.py"
    assert workshop_agenda.main(["--check"]) == 0


def test_the_agendas_are_built_from_the_measured_times_and_fit_their_length():
    known = workshop_agenda.chapters()
    measured = json.loads((ROOT / "benchmarks/results/chapters.json").read_text())["chapters"]
    assert [c.stem for c in known.values()] == [row["chapter"] for row in measured]
    for row in measured:  # the run budget: twice the measured time, in whole minutes
        assert known[row["chapter"]].budget_minutes == math.ceil(row["seconds"] * 2 / 60)
    table, end = workshop_agenda.agenda(workshop_agenda.THREE_HOURS, known)
    assert end <= 180 and table.endswith(f"| {end // 60}:{end % 60:02d} | End | | | |")
    slots = sum(m + (known[s].budget_minutes if s else 0) for s, m, _ in workshop_agenda.THREE_HOURS)
    assert slots == end
    _, day_end = workshop_agenda.agenda(workshop_agenda.ONE_DAY, known, start=9 * 60)
    assert day_end <= 17 * 60 + 30
    day_chapters = [s for s, _, _ in workshop_agenda.ONE_DAY if s]
    # every chapter, in the book's order; the appendices are for a room that goes on
    assert day_chapters == [s for s in known if s not in workshop_agenda.APPENDICES]
    assert workshop_agenda.APPENDICES == {"14-scaling-out", "15-llm-applications"}
    text = GUIDE.read_text()
    for chapter in known.values():  # each chapter's row in the cost table, with its numbers
        assert re.search(rf"\| @{chapter.section} \| {chapter.seconds:.1f} s \| "
                         rf"{chapter.budget_minutes} min \|", text), chapter.stem


def test_a_stale_guide_is_caught_and_rewritten(tmp_path, monkeypatch):
    stale = GUIDE.read_text().replace("| 9:00 |", "| 8:00 |", 1)
    assert not workshop_agenda.current(stale)
    copy = tmp_path / "workshop.qmd"
    copy.write_text(stale)
    monkeypatch.setattr(workshop_agenda, "GUIDE", copy)
    assert workshop_agenda.main(["--check"]) == 1
    assert workshop_agenda.main([]) == 0 and copy.read_text() == GUIDE.read_text()


def test_bad_input_fails_with_a_clear_message(tmp_path, monkeypatch):
    known = workshop_agenda.chapters()
    with pytest.raises(SystemExit, match="'99-nothing', which is no chapter"):
        workshop_agenda.agenda([("99-nothing", 10, "x")], known)
    with pytest.raises(SystemExit, match="needs one .*workshop-costs:start"):
        workshop_agenda.render("no markers here", {"costs": "table"})
    results = json.loads((ROOT / "benchmarks/results/chapters.json").read_text())
    results["chapters"] = [r for r in results["chapters"] if r["chapter"] != "08-deployment"]
    partial = tmp_path / "chapters.json"
    partial.write_text(json.dumps(results))
    with pytest.raises(SystemExit, match="no measurement of 08-deployment: run `make bench`"):
        workshop_agenda.chapters(results=partial)
    monkeypatch.setattr(workshop_agenda, "THREE_HOURS",
                        [*workshop_agenda.THREE_HOURS, (None, 30, "Overtime")])
    with pytest.raises(SystemExit, match="the 3-hour agenda takes 210 min"):
        workshop_agenda.blocks()


def test_the_guide_covers_set_up_and_the_facilitator_notes():
    text = GUIDE.read_text()
    for needed in ["make wheelhouse", "make setup", "--no-index", "Java", "Ports", "Memory",
                   "Time budgets", "@sec-deployment", "own, fresh workspace"]:
        assert needed in text, needed
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^wheelhouse:", makefile, re.M) and "wheelhouse/" in (ROOT / ".gitignore").read_text()
