"""Offline set-up: `make setup` installs from a wheelhouse with the package index unreachable.

The test builds a tiny wheelhouse (two small wheels built here, one depending on the other,
plus pip and the project's build backend, read from pyproject.toml), then runs the Makefile's
own `setup` recipe into a temporary venv with PIP_INDEX_URL pointing at an address where
nothing listens and pip's configuration switched off. The recipe is not copied here: `make`
runs it (`make setup VENV=... WHEELHOUSE=... REQUIREMENTS=...`), and the failing case runs the
install line `make -n` prints. The full wheelhouse (`make wheelhouse`, 1.7 GB) is not built.

pip and the build backend come from a wheel already on this machine: the project's
`wheelhouse/`, pip's cache (the wheels `make setup` downloaded), or the running environment
(pip). Where none holds a version the specifier accepts, they are fetched once from the
package index into `build/wheelhouse-test/` (ignored by git) before the index is cut off.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / "build" / "wheelhouse-test"
UNREACHABLE = "http://127.0.0.1:9/simple"  # the discard port: nothing listens, refused at once
HINT = "run 'make wheelhouse'"


def offline_env() -> dict[str, str]:
    """The environment of a laptop without the index: pip's configuration off, index unreachable."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("PIP_") and k not in {"MAKEFLAGS", "MFLAGS", "MAKELEVEL"}}
    env.update(PIP_CONFIG_FILE=os.devnull, PIP_INDEX_URL=UNREACHABLE, PIP_RETRIES="0",
               PIP_TIMEOUT="2", PIP_DISABLE_PIP_VERSION_CHECK="1")
    return env


def tiny_wheel(folder: Path, name: str, version: str, requires: list[str]) -> Path:
    """Write a minimal pure-Python wheel: one module ``name`` holding ``VERSION``."""
    dist = f"{name}-{version}.dist-info"
    files = {
        f"{name}.py": f'VERSION = "{version}"\n',
        f"{dist}/METADATA": "Metadata-Version: 2.1\n"
        f"Name: {name}\nVersion: {version}\n" + "".join(f"Requires-Dist: {r}\n" for r in requires),
        f"{dist}/WHEEL": "Wheel-Version: 1.0\nGenerator: tests\nRoot-Is-Purelib: true\n"
        "Tag: py3-none-any\n",
    }
    record = []
    for path, text in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=")
        record.append(f"{path},sha256={digest.decode()},{len(text.encode())}")
    files[f"{dist}/RECORD"] = "\n".join([*record, f"{dist}/RECORD,,"]) + "\n"
    wheel = folder / f"{name}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        for path, text in files.items():
            archive.writestr(path, text)
    return wheel


def _wheel_identity(path: Path) -> tuple[str, str, str] | None:
    """(name, version, first tag) of a wheel file, or None if ``path`` is not one."""
    try:
        with zipfile.ZipFile(path) as archive:
            wheel_files = [n for n in archive.namelist()
                           if n.count("/") == 1 and n.endswith(".dist-info/WHEEL")]
            if len(wheel_files) != 1:
                return None
            name, version = wheel_files[0].split("/")[0][: -len(".dist-info")].split("-", 1)
            tags = re.findall(r"^Tag: (\S+)$", archive.read(wheel_files[0]).decode(), re.M)
    except (zipfile.BadZipFile, OSError, ValueError):
        return None
    return (name, version, tags[0]) if tags else None


def _candidates() -> Iterator[Path]:
    """Wheel files already on this machine: wheelhouse/, pip's cache, the test's own cache."""
    yield from sorted((ROOT / "wheelhouse").glob("*.whl"))
    yield from sorted(CACHE.glob("*.whl"))
    found = subprocess.run([sys.executable, "-m", "pip", "cache", "dir"],
                           capture_output=True, text=True)
    if found.returncode == 0 and Path(found.stdout.strip()).is_dir():
        cache = Path(found.stdout.strip())
        yield from sorted(cache.glob("wheels/**/*.whl"))
        # pip >= 23.3 keeps each downloaded file's bytes as a .body (a wheel is a zip)
        yield from (p for p in sorted(cache.glob("http-v2/**/*.body")) if p.stat().st_size > 10_000)


def wheel_for(spec: str, folder: Path) -> Path:
    """Copy a wheel satisfying ``spec`` into ``folder``, from this machine (else fetched once)."""
    requirement = Requirement(spec)
    wanted = canonicalize_name(requirement.name)
    for path in _candidates():
        if canonicalize_name(path.name.split("-")[0]) != wanted and path.suffix == ".whl":
            continue
        identity = _wheel_identity(path)
        if identity and canonicalize_name(identity[0]) == wanted and \
                requirement.specifier.contains(identity[1], prereleases=False):
            return Path(shutil.copy(path, folder / ("-".join(identity) + ".whl")))
    CACHE.mkdir(parents=True, exist_ok=True)
    fetched = subprocess.run(
        [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary", ":all:",
         "--dest", str(CACHE), spec], capture_output=True, text=True)
    assert fetched.returncode == 0, f"could not get a wheel for {spec}: {fetched.stderr}"
    return wheel_for(spec, folder)


@pytest.fixture(scope="module")
def wheelhouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("wheelhouse")
    tiny_wheel(folder, "lumen_probe_a", "1.0", [])
    tiny_wheel(folder, "lumen_probe_b", "1.0", ["lumen_probe_a==1.0"])
    backend = tomllib.loads((ROOT / "pyproject.toml").read_text())["build-system"]["requires"]
    pip_spec = re.search(r"^PIP_SPEC\s*:=\s*(\S+)$", (ROOT / "Makefile").read_text(), re.M)
    assert pip_spec, "the Makefile names the pip it installs in PIP_SPEC"
    for spec in [pip_spec.group(1), *backend]:
        wheel_for(spec, folder)
    return folder


def make(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["make", "--no-print-directory", "-C", str(ROOT), *args],
                          capture_output=True, text=True, env=env)


@pytest.fixture(scope="module")
def installed(wheelhouse: Path, tmp_path_factory: pytest.TempPathFactory):
    """`make setup` into a temporary venv from the tiny wheelhouse, the index unreachable."""
    folder = tmp_path_factory.mktemp("offline")
    requirements = folder / "requirements.txt"
    requirements.write_text("lumen-probe-b==1.0\n")
    venv = folder / "venv"
    result = make("setup", f"VENV={venv}", f"WHEELHOUSE={wheelhouse}",
                  f"REQUIREMENTS={requirements}", env=offline_env())
    return venv, result


@pytest.mark.slow
def test_make_setup_installs_from_the_wheelhouse_with_the_index_unreachable(installed):
    venv, result = installed
    assert result.returncode == 0, result.stdout + result.stderr
    assert (venv / ".installed").exists()
    # the recipe ran with no index: every pip line says so
    pip_lines = [line for line in result.stdout.splitlines() if " -m pip install" in line]
    assert len(pip_lines) == 3 and all("--no-index --find-links" in line for line in pip_lines)
    probe = subprocess.run(
        [str(venv / "bin" / "python"), "-c",
         "import importlib.metadata as m, lumen_probe_a, lumen_probe_b, pip, companion; "
         "print(lumen_probe_a.VERSION, lumen_probe_b.VERSION, pip.__version__.split('.')[0], "
         "m.version('mlops-level-by-level'), companion.__file__)"],
        capture_output=True, text=True, env=offline_env())
    assert probe.returncode == 0, probe.stderr
    a, b, pip_major, project, location = probe.stdout.split()
    assert (a, b) == ("1.0", "1.0")  # b's dependency a resolved from the wheelhouse too
    assert int(pip_major) >= 24  # pip upgraded from the wheelhouse (a new venv has 23 on 3.11.7)
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert project == version
    assert Path(location).resolve().is_relative_to(ROOT)  # editable: the checkout's own package


@pytest.mark.slow
def test_a_package_missing_from_the_wheelhouse_fails_with_a_clear_message(installed, wheelhouse,
                                                                         tmp_path):
    venv, _ = installed
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("lumen-probe-b==1.0\nlumen-probe-c==2.0\n")
    planned = make("-n", "-B", "setup", f"VENV={venv}", f"WHEELHOUSE={wheelhouse}",
                   f"REQUIREMENTS={requirements}", env=offline_env())
    assert planned.returncode == 0, planned.stderr
    (line,) = [line for line in planned.stdout.splitlines() if f"-r {requirements}" in line]
    result = subprocess.run(["sh", "-c", line], capture_output=True, text=True, cwd=ROOT,
                            env=offline_env())
    assert result.returncode != 0
    assert "lumen-probe-c==2.0" in result.stderr  # pip names the missing package
    assert f"{wheelhouse}/ lacks the package named above" in result.stderr
    assert HINT in result.stderr
    assert UNREACHABLE.split("//")[1].split("/")[0] not in result.stderr  # the index was not tried


def test_without_a_wheelhouse_setup_uses_the_index_and_wheelhouse_reads_the_lock(tmp_path):
    env = offline_env()
    plan = make("-n", "-B", "setup", f"VENV={tmp_path / 'venv'}",
                f"WHEELHOUSE={tmp_path / 'empty'}", env=env)
    assert plan.returncode == 0 and plan.stdout.count(" -m pip install") == 3
    assert "--no-index" not in plan.stdout and "-r requirements.lock" in plan.stdout
    plan = make("-n", "wheelhouse", f"WHEELHOUSE={tmp_path / 'wh'}", env=env)
    assert plan.returncode == 0
    assert f"pip wheel --quiet --wheel-dir {tmp_path / 'wh'}" in plan.stdout
    assert "-r requirements.lock" in plan.stdout and '["build-system"]["requires"]' in plan.stdout
