"""The chapters print the same outputs on another machine of the same kind.

A chapter that passes nbval here can still fail on a reader's laptop if it prints something
that depends on the machine: a path, a user or host name, the clock, or float bits that differ
with the CPU's vector instructions (a hash of a model file, the last digit of a sum). This test
plays the other machine: a copy of the book at another path, another HOME and user, NumPy's
AVX-512 kernels switched off and OpenBLAS told it runs on a Haswell CPU (so float arithmetic
takes the code paths of an older laptop), and runs nbval, strict, over every chapter there. It
also checks that the chapters wrote nothing into that HOME, into the book's own folders (an
MLflow call with no store set would create notebooks/mlflow.db) or into the shared /var/tmp and
/dev/shm: a chapter writes only to its workspace and the OS temp folder.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

OTHER_CPU = {
    # NumPy dispatches its ufuncs to the best SIMD target it finds; without these it uses the
    # AVX2 (x86-64-v3) kernels of most laptops. OpenBLAS picks its kernels the same way.
    "NPY_DISABLE_CPU_FEATURES": "X86_V4 AVX512_ICL AVX512_SPR",
    "OPENBLAS_CORETYPE": "Haswell",
}


def other_machine_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "COV_"))}
    env.update(OTHER_CPU)
    env.update({"HOME": str(home), "USER": "reader", "LOGNAME": "reader", "TZ": "Pacific/Auckland",
                "PYTHONPATH": "", "PYTHONHASHSEED": "12345"})
    return env


def chapter_groups(chapters: list[Path], count: int) -> list[list[Path]]:
    """Split ``chapters`` into ``count`` groups of about equal time (longest first, greedily).

    Times are the last ones ``benchmarks/bench_chapters.py`` measured; a chapter not yet
    measured counts as 60 s. Each group keeps the book's order.
    """
    import json

    measured = {}
    results = ROOT / "benchmarks" / "results" / "chapters.json"
    if results.is_file():
        measured = {row["chapter"]: row["seconds"]
                    for row in json.loads(results.read_text())["chapters"]}
    groups: list[list[Path]] = [[] for _ in range(count)]
    load = [0.0] * count
    for chapter in sorted(chapters, key=lambda c: -measured.get(c.stem, 60.0)):
        lightest = load.index(min(load))
        groups[lightest].append(chapter)
        load[lightest] += measured.get(chapter.stem, 60.0)
    return [sorted(group) for group in groups if group]


def test_chapter_groups_share_the_time_and_keep_every_chapter():
    chapters = sorted((ROOT / "notebooks").glob("[0-9][0-9]-*.ipynb"))
    groups = chapter_groups(chapters, 2)
    assert sorted(p for group in groups for p in group) == chapters
    assert all(group == sorted(group) for group in groups)
    assert chapter_groups(chapters[:1], 2) == [chapters[:1]]


SHARED = [Path("/var/tmp"), Path("/dev/shm")]  # not the OS temp folder, shared by every user


class ChapterRun:
    """Every chapter executed by nbval in a copy of the book on "another machine".

    :meth:`start` launches it and returns at once; ``tests/conftest.py`` starts it when the
    session's tests are collected, so the chapters run while the unit tests do (the chapters
    wait on servers, Spark and disk often enough to leave a core to spare), and the test below
    waits for it at the end of the session. The chapters run in two groups, balanced by their
    measured times.
    """

    def __init__(self, root: Path) -> None:
        self.book = root / "elsewhere" / "someone's book"
        self.home = root / "home" / "reader"
        self.logs = root / "logs"
        self.processes: list[subprocess.Popen[bytes]] = []
        self.before: set[Path] = set()  # what /var/tmp and /dev/shm held at the start
        self.in_book: set[Path] = set()  # the copy's files at the start

    def stop(self) -> None:
        """Kill what still runs (the session ended before the test could wait for it)."""
        for process in self.processes:
            if process.poll() is None:
                process.kill()
                process.wait()

    @classmethod
    def start(cls, root: Path) -> ChapterRun:
        run = cls(root)
        book = run.book
        for folder in ("notebooks", "companion"):
            shutil.copytree(ROOT / folder, book / folder,
                            ignore=shutil.ignore_patterns("__pycache__", ".*.ipynb"))
        # chapters draw figures and tables from the committed benchmark results
        results = [str(p.relative_to(ROOT))
                   for p in (ROOT / "benchmarks" / "results").glob("*.json")]
        for name in ("pyproject.toml", "tests/nbval_sanitize.cfg", *results):
            (book / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(ROOT / name, book / name)
        run.home.mkdir(parents=True)
        run.logs.mkdir()
        env = other_machine_env(run.home)
        env["PYTHONPATH"] = str(book)  # the copy's companion, not the checkout's
        run.before = {p for folder in SHARED if folder.is_dir() for p in folder.rglob("*")}
        run.in_book = set(book.rglob("*"))
        chapters = sorted((book / "notebooks").glob("[0-9][0-9]-*.ipynb"))
        for number, group in enumerate(chapter_groups(chapters, 2)):
            with open(run.logs / f"group-{number}.log", "wb") as log:
                run.processes.append(subprocess.Popen(
                    [sys.executable, "-m", "pytest", *[f"notebooks/{p.name}" for p in group],
                     "--nbval", "--nbval-current-env", "--nbval-sanitize-with",
                     "tests/nbval_sanitize.cfg", "-q", "-p", "no:cacheprovider", "-x"],
                    cwd=book, env=env, stdin=subprocess.DEVNULL, stdout=log,
                    stderr=subprocess.STDOUT,
                ))
        return run

    def wait(self) -> list[str]:
        """Wait for every group; return the end of the output of each group that failed."""
        failed = []
        for number, process in enumerate(self.processes):
            try:
                process.wait(timeout=1800)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            if process.returncode != 0:
                text = (self.logs / f"group-{number}.log").read_text(errors="replace")
                failed.append("\n".join(text.splitlines()[-60:]))
        return failed


@pytest.mark.slow
def test_every_chapter_prints_the_same_on_another_machine(request, tmp_path):
    run = getattr(request.config, "_chapter_run", None) or ChapterRun.start(tmp_path)
    failed = run.wait()
    assert not failed, "nbval failed on the other machine:\n" + "\n\n".join(failed)
    book, home = run.book, run.home
    # nothing of the chapters' was written into the reader's home (Jupyter's kernel keeps its
    # IPython profile and matplotlib its font cache there, as on any machine)
    tool_caches = (".ipython", ".cache/matplotlib", ".local/share/jupyter", ".jupyter")
    written = [p.relative_to(home) for p in home.rglob("*") if p.is_file()
               and not str(p.relative_to(home)).startswith(tool_caches)]
    assert not written, f"files written into HOME: {written[:10]}"
    # nor into the book itself: only the workspaces under build/ (and Python's bytecode caches)
    stray = sorted(p.relative_to(book) for p in set(book.rglob("*")) - run.in_book
                   if p.relative_to(book).parts[0] != "build" and "__pycache__" not in p.parts)
    assert not stray, f"files written into the book outside build/: {stray[:10]}"
    after = {p for folder in SHARED if folder.is_dir() for p in folder.rglob("*")}
    new = sorted(after - run.before)
    assert not new, f"files written outside the workspaces: {new[:10]}"
