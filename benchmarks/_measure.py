"""Shared measuring helpers of the benchmark scripts: a process tree's time and peak memory."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil

RESULTS = Path(__file__).resolve().parent / "results"


def machine() -> dict:
    """Describe the machine the numbers were measured on."""
    import numpy

    return {
        "cpus": os.cpu_count(),
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "python": platform.python_version(),
        "numpy": numpy.__version__,
        "platform": platform.platform(),
    }


def _tree(parent: psutil.Process) -> list[psutil.Process]:
    return [parent, *parent.children(recursive=True)]


def _rss(processes: list[psutil.Process]) -> tuple[int, int]:
    """Return the processes' summed resident memory and the largest one's (cheap to read)."""
    sizes = []
    for process in processes:
        try:
            sizes.append(process.memory_info().rss)
        except psutil.Error:
            pass
    return sum(sizes), max(sizes, default=0)


def _pss(processes: list[psutil.Process]) -> int:
    """Return the processes' summed proportional memory (PSS; RSS where there is none).

    Proportional memory counts a page shared by n processes as 1/n in each, so the sum over a
    tree is the memory the tree takes from the machine. Summed RSS counts every shared library
    page once per process (the kernel, each server and each Spark worker map the same numpy,
    pandas and scikit-learn code), so it overstates. Reading PSS costs about 2 ms a process.
    """
    total = 0
    for process in processes:
        try:
            info = process.memory_full_info()
        except psutil.Error:
            continue
        total += getattr(info, "pss", info.rss)  # PSS is Linux's
    return total


def run_measured(command: list[str], cwd: str | Path | None = None) -> dict:
    """Run ``command``; return its wall time and the peak memory of its whole process tree.

    The tree (the command, a Jupyter kernel it starts, servers and Spark workers the kernel
    starts) is sampled: resident memory every 50 ms, proportional memory every 500 ms and
    whenever the resident sum reaches a new high (at most every 100 ms, so that the sampling
    does not take the CPU it measures). ``peak_tree_mib`` is the largest proportional memory of
    the tree seen (PSS summed: what the tree takes from the machine, the budgeted number),
    ``peak_tree_rss_mib`` the largest summed resident memory (shared pages counted once per
    process), and ``peak_process_mib`` the largest single process's resident memory.
    """
    started = time.perf_counter()
    proc = subprocess.Popen(
        command, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    peaks = {"pss": 0, "rss": 0, "process": 0}

    def sample() -> None:
        parent = psutil.Process(proc.pid)
        last_pss = 0.0
        while proc.poll() is None:
            try:
                processes = _tree(parent)
            except psutil.Error:
                processes = []
            rss, largest = _rss(processes)
            now = time.monotonic()
            new_high = rss > peaks["rss"]
            peaks["rss"] = max(peaks["rss"], rss)
            peaks["process"] = max(peaks["process"], largest)
            if now - last_pss >= 0.5 or (new_high and now - last_pss >= 0.1):
                peaks["pss"] = max(peaks["pss"], _pss(processes))
                last_pss = now
            time.sleep(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    output, _ = proc.communicate()
    seconds = time.perf_counter() - started
    sampler.join()
    if proc.returncode != 0:
        sys.stderr.write(output)
        raise SystemExit(f"{' '.join(command)} failed with exit code {proc.returncode}")
    return {
        "seconds": round(seconds, 2),
        "peak_tree_mib": round(peaks["pss"] / 2**20, 1),
        "peak_tree_rss_mib": round(peaks["rss"] / 2**20, 1),
        "peak_process_mib": round(peaks["process"] / 2**20, 1),
        "output": output,
    }


def write_results(name: str, payload: dict) -> Path:
    """Write ``payload`` as ``benchmarks/results/<name>.json`` and return the path."""
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    return path
