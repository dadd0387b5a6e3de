"""Write the workshop guide's tables from the measured chapter times (book/workshop.qmd).

The three tables of the guide (what each chapter costs, a 3-hour agenda, a 1-day agenda) are
generated from ``benchmarks/results/chapters.json`` (written by ``make bench``) and the chapter
notebooks' titles, between markers in book/workshop.qmd:

    python book/workshop_agenda.py          # rewrite the tables in book/workshop.qmd
    python book/workshop_agenda.py --check  # exit 1 if book/workshop.qmd's tables are not current

Each chapter's slot is the teaching time chosen below plus its run budget: the measured run
time times ``LAPTOP_FACTOR`` (a participant's laptop is no bench machine), rounded up to a
minute. Chapters are referred to by their ``@sec-`` ids, so Quarto numbers them.
tests/test_workshop.py checks that the tables are current and that each agenda fits its length.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GUIDE = ROOT / "book" / "workshop.qmd"
RESULTS = ROOT / "benchmarks" / "results" / "chapters.json"
NOTEBOOKS = ROOT / "notebooks"

LAPTOP_FACTOR = 2.0  # budget twice the bench machine's run time on a participant's laptop
HEAVY_MIB = 1024.0  # chapters above this peak are named in the facilitator notes

# What a chapter starts beside its kernel (the rest run in the kernel alone).
STARTS = {
    "05-experiment-tracking": "an MLflow tracking server",
    "07-pipeline-orchestration": "DVC and Kubeflow's local runner (subprocesses)",
    "08-deployment": "model servers (two at most at once) and Spark (Java 17)",
    "14-scaling-out": "Spark (Java 17)",
}

# An agenda: (chapter stem, teaching minutes, what the room does) or (None, minutes, label).
Item = tuple[str | None, int, str]
THREE_HOURS: list[Item] = [
    (None, 15, "Welcome; every laptop runs the smallest chapter once (the set-up check)"),
    ("01-level-0-manual", 14, "Level 0: where the manual way breaks"),
    ("05-experiment-tracking", 23, "track runs; compare two models with their intervals"),
    (None, 10, "Break"),
    ("06-model-registry", 19, "register, gate and roll back a model"),
    ("08-deployment", 28, "serve the model; score a batch"),
    ("10-monitoring", 23, "detect the three drifts against their known onsets"),
    ("13-level-3-continuous-ml", 28, "the whole loop, month by month"),
    (None, 10, "Wrap-up: which level is your team at, and the next step"),
]
ONE_DAY: list[Item] = [
    (None, 30, "Welcome; set-up check on every laptop"),
    ("01-level-0-manual", 14, "the manual way and where it breaks"),
    ("02-level-1-devops-for-ml", 18, "version control, CI and tests for ML"),
    ("03-data-versioning", 24, "version the data; travel back in time"),
    (None, 15, "Break"),
    ("04-feature-store", 23, "point-in-time correct features"),
    ("05-experiment-tracking", 23, "track and compare experiments"),
    ("06-model-registry", 24, "versions, gates and rollback"),
    (None, 60, "Lunch"),
    ("07-pipeline-orchestration", 28, "one pipeline, three runners"),
    ("08-deployment", 33, "online, batch and traffic split"),
    ("09-ab-testing", 24, "design and read an A/B test"),
    (None, 15, "Break"),
    ("10-monitoring", 28, "drift, quality and a dashboard"),
    ("11-automated-retraining", 23, "triggers, gates and auto-deploy"),
    ("12-level-2-automated-pipelines", 19, "Level 2: the automated pipeline"),
    ("13-level-3-continuous-ml", 28, "Level 3: the loop without a person"),
    (None, 15, "Wrap-up and next steps"),
]
# The appendices are no session of the day: the cost table lists them for a room that goes on.
APPENDICES = {"14-scaling-out", "15-llm-applications"}
THREE_HOURS_LIMIT = 180  # minutes
DAY_START, DAY_END = 9 * 60, 17 * 60 + 30  # 09:00 to 17:30


@dataclass(frozen=True)
class Chapter:
    stem: str
    section: str  # the title's {#sec-...} id
    seconds: float
    peak_mib: float

    @property
    def budget_minutes(self) -> int:
        return math.ceil(self.seconds * LAPTOP_FACTOR / 60)


def chapters(results: Path = RESULTS, notebooks: Path = NOTEBOOKS) -> dict[str, Chapter]:
    """Every chapter notebook with its measured time and memory, in chapter order."""
    import nbformat

    measured = {row["chapter"]: row for row in json.loads(results.read_text())["chapters"]}
    found: dict[str, Chapter] = {}
    for path in sorted(notebooks.glob("[0-9][0-9]-*.ipynb")):
        if path.stem not in measured:
            raise SystemExit(f"{results} has no measurement of {path.stem}: run `make bench`")
        title = nbformat.read(path, as_version=4).cells[0].source.splitlines()[0]
        section = re.search(r"\{#(sec-[\w-]+)\}", title)
        if not section:
            raise SystemExit(f"{path.name}'s title has no {{#sec-...}} id: {title!r}")
        row = measured[path.stem]
        found[path.stem] = Chapter(path.stem, section.group(1), float(row["seconds"]),
                                   float(row["peak_tree_mib"]))
    return found


def _clock(minutes: int) -> str:
    return f"{minutes // 60:d}:{minutes % 60:02d}"


def agenda(items: list[Item], known: dict[str, Chapter], start: int = 0) -> tuple[str, int]:
    """Return an agenda as a Markdown table and its end (minutes), slots in the given order."""
    rows = ["| Time | Session | Teaching | Run budget | What the room does |",
            "|---|---|--:|--:|---|"]
    now = start
    for stem, minutes, what in items:
        if stem is None:
            rows.append(f"| {_clock(now)} | {what} | {minutes} min | | |")
            now += minutes
            continue
        if stem not in known:
            raise SystemExit(f"the agenda names {stem!r}, which is no chapter: "
                             f"one of {', '.join(known)}")
        chapter = known[stem]
        rows.append(f"| {_clock(now)} | @{chapter.section} | {minutes} min | "
                    f"{chapter.budget_minutes} min | {what} |")
        now += minutes + chapter.budget_minutes
    rows.append(f"| {_clock(now)} | End | | | |")
    return "\n".join(rows), now


def cost_table(known: dict[str, Chapter]) -> str:
    """What each chapter costs: measured time, laptop budget, peak memory, what it starts."""
    rows = ["| Chapter | Runs in (measured) | Run budget on a laptop | Peak memory | "
            "Starts beside its kernel |", "|---|--:|--:|--:|---|"]
    for chapter in known.values():
        memory = f"**{chapter.peak_mib:,.0f} MiB**" if chapter.peak_mib > HEAVY_MIB \
            else f"{chapter.peak_mib:,.0f} MiB"
        rows.append(f"| @{chapter.section} | {chapter.seconds:.1f} s | "
                    f"{chapter.budget_minutes} min | {memory} | "
                    f"{STARTS.get(chapter.stem, 'nothing')} |")
    total = sum(c.seconds for c in known.values())
    heaviest = max(known.values(), key=lambda c: c.peak_mib)
    rows.append("")
    rows.append(f"All {len(known)} chapters and appendices: {total:.0f} s measured, "
                f"{sum(c.budget_minutes for c in known.values())} min budgeted on a laptop; "
                f"the most memory: @{heaviest.section} ({heaviest.peak_mib:,.0f} MiB). "
                f"Chapters in bold need more than {HEAVY_MIB:,.0f} MiB.")
    return "\n".join(rows)


def blocks() -> dict[str, str]:
    """The generated text of each marked block of the guide, by block name."""
    known = chapters()
    three, end = agenda(THREE_HOURS, known)
    if end > THREE_HOURS_LIMIT:
        raise SystemExit(f"the 3-hour agenda takes {end} min: shorten it to {THREE_HOURS_LIMIT}")
    day, day_end = agenda(ONE_DAY, known, start=DAY_START)
    if day_end > DAY_END:
        raise SystemExit(f"the 1-day agenda ends at {_clock(day_end)}: shorten it to end by "
                         f"{_clock(DAY_END)}")
    missing = set(known) - {stem for stem, _, _ in ONE_DAY} - APPENDICES
    if missing:
        raise SystemExit(f"the 1-day agenda leaves out {sorted(missing)}")
    return {"costs": cost_table(known), "three-hours": three, "one-day": day}


def markers(name: str) -> tuple[str, str]:
    return (f"<!-- workshop-{name}:start (written by book/workshop_agenda.py) -->",
            f"<!-- workshop-{name}:end -->")


def render(text: str, generated: dict[str, str]) -> str:
    """Return ``text`` with each marked block replaced by its generated content."""
    for name, content in generated.items():
        start, end = markers(name)
        if text.count(start) != 1 or text.count(end) != 1:
            raise SystemExit(f"{GUIDE.name} needs one {start!r} ... {end!r} pair")
        head, rest = text.split(start, 1)
        _, tail = rest.split(end, 1)
        text = f"{head}{start}\n{content}\n{end}{tail}"
    return text


def current(text: str) -> bool:
    """Whether ``text`` (book/workshop.qmd) holds the tables this script writes."""
    return render(text, blocks()) == text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if workshop.qmd is stale")
    args = parser.parse_args(argv)
    text = GUIDE.read_text(encoding="utf-8")
    if args.check:
        ok = current(text)
        print("book/workshop.qmd's tables are current" if ok else
              "book/workshop.qmd's tables are stale: run python book/workshop_agenda.py")
        return 0 if ok else 1
    GUIDE.write_text(render(text, blocks()), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
