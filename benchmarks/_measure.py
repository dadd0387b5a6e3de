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


def run_measured(command: list[str], cwd: str | Path | None = None) -> dict:
    """Run ``command``; return its wall time and the peak memory of its whole process tree.

    The tree (the command, a Jupyter kernel it starts, servers the kernel starts) is sampled
    every 50 ms; ``peak_tree_mib`` is the largest sum of resident memory seen, and
    ``peak_process_mib`` the largest single process.
    """
    started = time.perf_counter()
    proc = subprocess.Popen(
        command, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    peaks = {"tree": 0, "process": 0}

    def sample() -> None:
        parent = psutil.Process(proc.pid)
        while proc.poll() is None:
            try:
                procs = [parent, *parent.children(recursive=True)]
                sizes = []
                for p in procs:
                    try:
                        sizes.append(p.memory_info().rss)
                    except psutil.Error:
                        pass
                peaks["tree"] = max(peaks["tree"], sum(sizes))
                peaks["process"] = max(peaks["process"], max(sizes, default=0))
            except psutil.Error:
                pass
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
        "peak_tree_mib": round(peaks["tree"] / 2**20, 1),
        "peak_process_mib": round(peaks["process"] / 2**20, 1),
        "output": output,
    }


def write_results(name: str, payload: dict) -> Path:
    """Write ``payload`` as ``benchmarks/results/<name>.json`` and return the path."""
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    return path
