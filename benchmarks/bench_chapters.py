"""Time every chapter and record its peak memory, beside the floor of executing any notebook.

Each chapter is executed by papermill at its default parameters in a fresh process, into a
temporary file (the committed notebooks are not touched). The floor, measured in the same
run, is an empty notebook executed the same way: kernel start-up and papermill overhead.

Budgets (DESIGN.md): each chapter <= 60 s, the whole book <= 8 min, peak memory <= 1.5 GiB.
Memory is the whole process tree's (papermill, the kernel, every server and Spark worker the
chapter starts), summed as proportional memory (PSS): a library page shared by several
processes counts once in all, as it does in the machine's memory. The summed resident
memory (RSS, shared pages counted in every process) is recorded beside it.

Usage: python benchmarks/bench_chapters.py [--only 01]  (--only keeps the other chapters' rows)
Writes benchmarks/results/chapters.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import nbformat
from _measure import machine, run_measured, write_results
from nbformat.v4 import new_code_cell, new_notebook

ROOT = Path(__file__).resolve().parent.parent
CHAPTER_BUDGET_S, BOOK_BUDGET_S, MEMORY_BUDGET_MIB = 60, 8 * 60, 1.5 * 1024


def execute(notebook: Path, out: Path) -> dict:
    code = f"from companion.runner import execute\nexecute({str(notebook)!r}, {str(out)!r})\n"
    return run_measured([sys.executable, "-c", code], cwd=ROOT)


def main() -> None:
    from companion.runner import list_chapters

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        empty = Path(tmp) / "00-empty.ipynb"
        nbformat.write(
            new_notebook(
                cells=[new_code_cell("pass")],
                metadata={
                    "kernelspec": {
                        "name": "python3",
                        "display_name": "Python 3",
                        "language": "python",
                    }
                },
            ),
            empty,
        )
        floor = execute(empty, Path(tmp) / "out-empty.ipynb")
        print(
            f"floor (empty notebook): {floor['seconds']:.1f} s, {floor['peak_tree_mib']:.0f} MiB",
            flush=True,
        )
        rows = []
        for chapter in list_chapters(ROOT / "notebooks"):
            if args.only not in chapter.name:
                continue
            measured = execute(chapter, Path(tmp) / chapter.name)
            row = {
                "chapter": chapter.stem,
                "seconds": measured["seconds"],
                "ratio_to_floor": round(measured["seconds"] / floor["seconds"], 1),
                "peak_tree_mib": measured["peak_tree_mib"],
                "peak_tree_rss_mib": measured["peak_tree_rss_mib"],
                "peak_process_mib": measured["peak_process_mib"],
                "within_time_budget": measured["seconds"] <= CHAPTER_BUDGET_S,
                "within_memory_budget": measured["peak_tree_mib"] <= MEMORY_BUDGET_MIB,
            }
            rows.append(row)
            print(
                f"{chapter.stem:<32} {row['seconds']:6.1f} s  {row['ratio_to_floor']:5.1f}x floor  "
                f"peak {row['peak_tree_mib']:6.0f} MiB",
                flush=True,
            )
    if args.only:  # keep the other chapters' last measurements
        previous = ROOT / "benchmarks" / "results" / "chapters.json"
        if previous.exists():
            measured_now = {r["chapter"] for r in rows}
            kept = [r for r in json.loads(previous.read_text())["chapters"]
                    if r["chapter"] not in measured_now]
            rows = sorted(kept + rows, key=lambda r: r["chapter"])
    total = round(sum(r["seconds"] for r in rows), 1)
    print(f"whole book: {total:.1f} s (budget {BOOK_BUDGET_S} s)")
    path = write_results(
        "chapters",
        {
            "benchmark": "chapter execution with papermill at default parameters",
            "machine": machine(),
            "memory": "peak_tree_mib: the process tree's summed proportional memory (PSS); "
                      "peak_tree_rss_mib: its summed resident memory",
            "budgets": {
                "chapter_seconds": CHAPTER_BUDGET_S,
                "book_seconds": BOOK_BUDGET_S,
                "peak_memory_mib": MEMORY_BUDGET_MIB,
            },
            "floor": {
                "what": "an empty notebook: kernel start-up and papermill overhead",
                "seconds": floor["seconds"],
                "peak_tree_mib": floor["peak_tree_mib"],
                "peak_tree_rss_mib": floor["peak_tree_rss_mib"],
            },
            "chapters": rows,
            "book_seconds": total,
            "book_within_budget": total <= BOOK_BUDGET_S,
        },
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
