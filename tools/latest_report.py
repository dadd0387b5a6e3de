"""The report of a latest-versions run: what differs from the lock, and which tests broke.

``make latest`` builds ``.venv-latest/`` from pyproject.toml's ranges with the newest versions
they allow, runs the fast tests there with a JUnit XML report, then calls this script:

    python tools/latest_report.py --lock requirements.lock --out build/latest \\
        [--freeze build/latest/freeze.txt] [--junit build/latest/junit.xml] \\
        [--install-log build/latest/install.log] [--command "pytest ..."]

It writes ``report.json`` and ``summary.txt`` into ``--out``, prints the summary, and exits 0
when the environment installed and every test passed, 1 otherwise (2 for bad arguments).

It imports nothing but the standard library, on purpose: it must run with any Python 3.11 when
the latest environment failed to install (that failure is then the report), and it reads the
environment from outside, so it never imports ``companion`` or what the latest run installed.
It lives in ``tools/`` (developer tools), not ``benchmarks/``: it measures no time or memory.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?\s*==\s*([^\s;#]+)")


class ReportError(ValueError):
    """A file given to the report cannot be read as what it should be."""


def canonical(name: str) -> str:
    """Return a distribution name as pip compares it (PEP 503): ``Foo_Bar`` -> ``foo-bar``."""
    return re.sub(r"[-_.]+", "-", name).lower()


def parse_pins(text: str, source: str = "pins") -> dict[str, str]:
    """Read ``name==version`` lines (a lock file or ``pip freeze``) into {canonical name: version}.

    Comments, blank lines, options (``-e``, ``--hash``) and ``name @ url`` lines are skipped.
    A line that is none of these, or a name pinned twice to different versions, raises
    :class:`ReportError` naming the line.
    """
    pins: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split(" #", 1)[0].strip()
        if not line or line.startswith(("#", "-")) or " @ " in line:
            continue
        match = _PIN.match(line)
        if match is None:
            raise ReportError(
                f"{source} line {number} is not 'name==version': {raw.strip()!r}"
            )
        name, version = canonical(match.group(1)), match.group(2)
        if pins.get(name, version) != version:
            raise ReportError(
                f"{source} line {number} pins {name} to {version}, already pinned to {pins[name]}"
            )
        pins[name] = version
    return pins


def _version_key(version: str) -> tuple[Any, ...] | None:
    """A sort key for plain release versions (``1.26.4``, ``2.0.0rc1``, ``0.7.23.post1``)."""
    match = re.fullmatch(r"(\d+(?:\.\d+)*)(?:(a|b|rc)(\d+))?(?:\.post(\d+))?(?:\.dev(\d+))?",
                         version.split("+", 1)[0])
    if match is None:
        return None
    release = [int(part) for part in match.group(1).split(".")]
    while len(release) > 1 and release[-1] == 0:
        release.pop()
    if match.group(2):
        pre = (match.group(2), int(match.group(3)))
    else:  # a bare dev release comes before the pre-releases; a final one after them
        pre = ("", 0) if match.group(5) and not match.group(4) else ("z", 0)
    post = int(match.group(4)) if match.group(4) else -1
    dev = int(match.group(5)) if match.group(5) else sys.maxsize
    return (tuple(release), pre, post, dev)


def direction(old: str, new: str) -> str:
    """Say how ``new`` compares with ``old``: "newer", "older", "same" or "differs"."""
    a, b = _version_key(old), _version_key(new)
    if a is None or b is None:
        return "same" if old == new else "differs"
    return "newer" if b > a else "older" if b < a else "same"


def diff_versions(lock: dict[str, str], latest: dict[str, str]) -> dict[str, list[dict[str, str]]]:
    """Compare the lock with the latest environment, by name.

    Returns ``{"changed": [...], "added": [...], "removed": [...]}``, each sorted by name:
    changed entries carry ``name``, ``lock``, ``latest`` and ``direction``; added (only in the
    latest environment) carry ``latest``; removed (only in the lock) carry ``lock``.
    """
    changed = [
        {"name": n, "lock": lock[n], "latest": latest[n], "direction": way}
        for n in sorted(lock.keys() & latest.keys())
        if (way := direction(lock[n], latest[n])) != "same"
    ]
    added = [{"name": n, "latest": latest[n]} for n in sorted(latest.keys() - lock.keys())]
    removed = [{"name": n, "lock": lock[n]} for n in sorted(lock.keys() - latest.keys())]
    return {"changed": changed, "added": added, "removed": removed}


def _first_line(*texts: str | None) -> str:
    for text in texts:
        for line in (text or "").splitlines():
            if line.strip():
                return line.strip()
    return "(no message)"


def _test_id(case: ET.Element) -> str:
    """A test case's pytest id: ``tests.test_x.C`` + ``test_y`` -> ``tests/test_x.py::C::test_y``.

    A doctest (its name starts with its classname, ``companion.m`` + ``companion.m.f``) keeps
    its dotted name; so does a collection error (no classname).
    """
    classname, name = case.get("classname", ""), case.get("name", "")
    parts = classname.split(".")
    modules = [i for i, part in enumerate(parts) if part.startswith("test_")]
    if not classname or name.startswith(classname + ".") or not modules:
        return f"{classname}::{name}" if classname and not name.startswith(classname) else name
    cut = modules[-1] + 1
    return "::".join(["/".join(parts[:cut]) + ".py", *parts[cut:], name])


def parse_junit(text: str) -> dict[str, Any]:
    """Read a pytest JUnit XML report: counts, and each failed or errored test's first line.

    Returns ``{"total", "passed", "failed", "errors", "skipped", "problems"}`` where each
    problem is ``{"test": "tests/test_x.py::test_y", "kind": "failed"|"error",
    "first_line": ...}``: the first line of the failure's message, else of its traceback.
    Raises :class:`ReportError` if the text is not a JUnit report.
    """
    try:
        root = ET.fromstring(text)
    except ET.ParseError as error:
        raise ReportError(f"the JUnit report is not XML: {error}") from None
    if root.tag not in ("testsuites", "testsuite"):
        raise ReportError(
            f"the JUnit report's root is <{root.tag}>, not <testsuites> or <testsuite>"
        )
    counts = {"total": 0, "passed": 0, "failed": 0, "errors": 0, "skipped": 0}
    problems: list[dict[str, str]] = []
    for case in root.iter("testcase"):
        counts["total"] += 1
        failure, errored = case.find("failure"), case.find("error")
        node = failure if failure is not None else errored
        if node is not None:
            kind = "failed" if failure is not None else "error"
            counts["failed" if kind == "failed" else "errors"] += 1
            problems.append({"test": _test_id(case), "kind": kind,
                             "first_line": _first_line(node.get("message"), node.text)})
        elif case.find("skipped") is not None:
            counts["skipped"] += 1
        else:
            counts["passed"] += 1
    return {**counts, "problems": problems}


def _install_error(log: str) -> str:
    lines = [line.strip() for line in log.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("ERROR")]
    return errors[0] if errors else (lines[-1] if lines else "(empty install log)")


def build_report(lock_text: str, freeze_text: str | None, junit_text: str | None,
                 install_log: str = "", command: str = "") -> dict[str, Any]:
    """Assemble the report from the files' texts (``None``: that step produced nothing).

    ``status`` is "passed", "failed" (a test failed or errored), "install failed" (no
    ``pip freeze`` of the latest environment) or "no test results" (no JUnit report).
    """
    lock = parse_pins(lock_text, "requirements.lock")
    report: dict[str, Any] = {"command": command, "lock_packages": len(lock)}
    if freeze_text is None:
        report.update(status="install failed", install_error=_install_error(install_log),
                      versions=None, tests=None)
        return report
    latest = parse_pins(freeze_text, "pip freeze")
    report["latest_packages"] = len(latest)
    report["versions"] = diff_versions(lock, latest)
    if junit_text is None:
        report.update(status="no test results", tests=None)
        return report
    tests = parse_junit(junit_text)
    report["tests"] = tests
    report["status"] = "failed" if tests["failed"] or tests["errors"] else "passed"
    return report


def summary(report: dict[str, Any]) -> str:
    """Return the report as a few lines of text, for people."""
    lines = [f"Latest-versions run: {report['status']}"]
    if report["status"] == "install failed":
        lines.append("  pip could not install the newest allowed versions: "
                     + report["install_error"])
        return "\n".join(lines) + "\n"
    versions = report["versions"]
    changed = versions["changed"]
    newer = sum(1 for c in changed if c["direction"] == "newer")
    lines.append(
        f"Versions against requirements.lock ({report['lock_packages']} pinned): "
        f"{len(changed)} differ ({newer} newer, {len(changed) - newer} older or other), "
        f"{len(versions['added'])} only in the latest environment, "
        f"{len(versions['removed'])} only in the lock"
    )
    lines += [f"  {c['name']} {c['lock']} -> {c['latest']}" for c in changed]
    lines += [f"  + {a['name']} {a['latest']}" for a in versions["added"]]
    lines += [f"  - {r['name']} {r['lock']}" for r in versions["removed"]]
    tests = report["tests"]
    if tests is None:
        lines.append("Tests: no JUnit report (pytest did not run to the end)")
    else:
        lines.append(
            f"Tests ({report['command'] or 'pytest'}): {tests['passed']} passed, "
            f"{tests['failed']} failed, {tests['errors']} errors, {tests['skipped']} skipped"
        )
        lines += [f"  {p['kind'].upper()} {p['test']}: {p['first_line']}"
                  for p in tests["problems"]]
    return "\n".join(lines) + "\n"


def _read(path: Path | None, what: str, required: bool = False) -> str | None:
    if path is None or not path.is_file():
        if required:
            raise ReportError(f"{what} {str(path)!r} is not a file")
        return None
    return path.read_text(encoding="utf-8")


def _write(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically (a temporary file in the same folder, renamed)."""
    handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as file:
            file.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_report(out: Path, report: dict[str, Any]) -> tuple[Path, Path]:
    """Write ``report.json`` and ``summary.txt`` into the folder ``out`` (created if missing)."""
    out.mkdir(parents=True, exist_ok=True)
    paths = (out / "report.json", out / "summary.txt")
    _write(paths[0], json.dumps(report, indent=2, sort_keys=True) + "\n")
    _write(paths[1], summary(report))
    return paths


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lock", type=Path, required=True, help="requirements.lock")
    parser.add_argument("--out", type=Path, required=True, help="the report's folder")
    parser.add_argument("--freeze", type=Path, help="pip freeze of the latest environment")
    parser.add_argument("--junit", type=Path, help="pytest's JUnit XML report")
    parser.add_argument("--install-log", type=Path, help="pip's output, read if the install failed")
    parser.add_argument("--command", default="", help="the test command, shown in the report")
    args = parser.parse_args(argv)
    try:
        lock_text = _read(args.lock, "--lock", required=True)
        assert lock_text is not None
        report = build_report(lock_text, _read(args.freeze, "--freeze"),
                              _read(args.junit, "--junit"),
                              _read(args.install_log, "--install-log") or "", args.command)
    except ReportError as error:
        print(f"latest_report: {error}", file=sys.stderr)
        return 2
    write_report(args.out, report)
    print(summary(report), end="")
    return 0 if report["status"] == "passed" else 1


if __name__ == "__main__":
    sys.exit(main())
