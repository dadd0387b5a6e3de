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


@pytest.mark.slow
def test_every_chapter_prints_the_same_on_another_machine(tmp_path):
    book = tmp_path / "elsewhere" / "someone's book"
    for folder in ("notebooks", "companion"):
        shutil.copytree(ROOT / folder, book / folder,
                        ignore=shutil.ignore_patterns("__pycache__", ".*.ipynb"))
    # chapters draw figures and tables from the committed benchmark results
    results = [str(p.relative_to(ROOT)) for p in (ROOT / "benchmarks" / "results").glob("*.json")]
    for name in ("pyproject.toml", "tests/nbval_sanitize.cfg", *results):
        (book / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / name, book / name)
    home = tmp_path / "home" / "reader"
    home.mkdir(parents=True)
    env = other_machine_env(home)
    env["PYTHONPATH"] = str(book)  # the copy's companion, not the checkout's
    shared = [Path("/var/tmp"), Path("/dev/shm")]  # not the OS temp folder, shared by every user
    before = {p for folder in shared if folder.is_dir() for p in folder.rglob("*")}
    in_book = set(book.rglob("*"))
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "notebooks", "--nbval", "--nbval-current-env",
         "--nbval-sanitize-with", "tests/nbval_sanitize.cfg", "-q", "-p", "no:cacheprovider",
         "-x"],
        cwd=book, env=env, capture_output=True, text=True, timeout=1800,
    )
    tail = "\n".join((result.stdout + result.stderr).splitlines()[-60:])
    assert result.returncode == 0, f"nbval failed on the other machine:\n{tail}"
    # nothing of the chapters' was written into the reader's home (Jupyter's kernel keeps its
    # IPython profile and matplotlib its font cache there, as on any machine)
    tool_caches = (".ipython", ".cache/matplotlib", ".local/share/jupyter", ".jupyter")
    written = [p.relative_to(home) for p in home.rglob("*") if p.is_file()
               and not str(p.relative_to(home)).startswith(tool_caches)]
    assert not written, f"files written into HOME: {written[:10]}"
    # nor into the book itself: only the workspaces under build/ (and Python's bytecode caches)
    stray = sorted(p.relative_to(book) for p in set(book.rglob("*")) - in_book
                   if p.relative_to(book).parts[0] != "build" and "__pycache__" not in p.parts)
    assert not stray, f"files written into the book outside build/: {stray[:10]}"
    after = {p for folder in shared if folder.is_dir() for p in folder.rglob("*")}
    assert not sorted(after - before), f"files written outside the workspaces: {sorted(after - before)[:10]}"
