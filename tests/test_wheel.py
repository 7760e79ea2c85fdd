"""Release packaging: ``python -m build`` makes an sdist and a wheel that ``twine check`` accepts, and
the wheel, installed into a fresh venv (not editable, dependencies from the offline wheelhouse),
works: ``--version``, ``generate --check`` of an example, ``merge --dry-run`` against a registry.

With SPLITBUILD_DIST=DIR the tests take the sdist and the wheel in DIR (the release workflow
tests what it publishes). Otherwise they are built here, in a copy of the tree, with no build
isolation (offline); ``python -m build`` builds the wheel from the unpacked sdist, so the sdist is
buildable.
"""

from __future__ import annotations

import email
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tomllib
import uuid
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import anyio
import pytest
from packaging.requirements import Requirement

from splitbuild._version import __version__
from splitbuild.client import Client
from splitbuild.reference import Reference
from splitbuild.retry import FAST_RETRY
from tests.images import make_image, push
from tests.packaging_support import REPO, copy_tree, offline_env, tracked_files
from tests.registry_server import RegistryServer

# Builds and installs for real: minutes on a loaded 2-core machine, beyond the default 300 s timeout.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(1200)]


@dataclass(frozen=True)
class Dist:
    sdist: Path
    wheel: Path


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Dist:
    """The distributions in $SPLITBUILD_DIST (the release workflow's), or built here."""
    given = os.environ.get("SPLITBUILD_DIST")
    if given:
        (sdist,) = Path(given).resolve().glob("splitbuild-*.tar.gz")
        (wheel,) = Path(given).resolve().glob("splitbuild-*-py3-none-any.whl")
        return Dist(sdist, wheel)
    source = copy_tree(tmp_path_factory.mktemp("source"))
    out = tmp_path_factory.mktemp("dist")
    done = subprocess.run(
        [sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out), str(source)],
        cwd=source,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    (sdist,) = out.glob("splitbuild-*.tar.gz")
    (wheel,) = out.glob("splitbuild-*-py3-none-any.whl")
    return Dist(sdist, wheel)


@pytest.fixture(scope="module")
def venv(dist: Dist, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    root = tmp_path_factory.mktemp("venv")
    env = offline_env(root / "home")
    subprocess.run([sys.executable, "-m", "venv", str(root / "venv")], check=True, timeout=300, env=env)
    done = subprocess.run(
        [str(root / "venv" / "bin" / "python"), "-m", "pip", "install", "-q", str(dist.wheel)],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    yield root / "venv"
    shutil.rmtree(root, ignore_errors=True)


def _run(venv: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(venv / "bin" / "splitbuild"), *args],
        cwd=cwd,
        env=offline_env(cwd / "home"),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_twine_accepts_the_sdist_and_the_wheel(dist: Dist) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "twine", "check", "--strict", str(dist.sdist), str(dist.wheel)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.count("PASSED") == 2, done.stdout


def test_the_wheel_holds_the_package_its_data_and_metadata(dist: Dist) -> None:
    with zipfile.ZipFile(dist.wheel) as wheel:
        names = set(wheel.namelist())
        info = f"splitbuild-{__version__}.dist-info"
        metadata = email.message_from_bytes(wheel.read(f"{info}/METADATA"))
        entry_points = wheel.read(f"{info}/entry_points.txt").decode()
    package = {n for n in tracked_files() if n.startswith("splitbuild/")}
    assert package <= names
    assert {"splitbuild/workflow/pins.json", "splitbuild/py.typed", f"{info}/licenses/LICENSE"} <= names
    assert not {n for n in names if not n.startswith(("splitbuild/", info + "/"))}
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert metadata["Name"] == "splitbuild"
    assert metadata["Version"] == __version__
    assert metadata["License-Expression"] == "Apache-2.0"
    assert metadata["Requires-Python"] == project["requires-python"]
    assert metadata["Description-Content-Type"] == "text/markdown"
    runtime = [r for r in metadata.get_all("Requires-Dist") or [] if "extra ==" not in r]
    assert sorted(map(Requirement, runtime), key=str) == sorted(
        map(Requirement, project["dependencies"]), key=str
    )
    assert "splitbuild = splitbuild.cli.app:main" in entry_points


def test_the_sdist_is_the_committed_tree(dist: Dist) -> None:
    prefix = f"splitbuild-{__version__}/"
    with tarfile.open(dist.sdist) as sdist:
        members = {m.name.removeprefix(prefix) for m in sdist.getmembers() if m.isfile()}
    generated = {"PKG-INFO", "setup.cfg"} | {m for m in members if m.startswith("splitbuild.egg-info/")}
    assert members - generated == set(tracked_files())
    assert "tests/conformance/reference/reference-vectors.json" in members


def test_the_installed_wheel_runs_from_its_venv(venv: Path, tmp_path: Path) -> None:
    done = _run(venv, "--version", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"splitbuild {__version__}\n"
    where = subprocess.run(
        [
            str(venv / "bin" / "python"),
            "-c",
            "import importlib.resources as r, json, splitbuild;"
            "print(splitbuild.__file__);"
            "print(len(json.loads(r.files('splitbuild.workflow').joinpath('pins.json').read_text())))",
        ],
        cwd=tmp_path,
        env=offline_env(tmp_path / "home"),
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    module, pins = where.stdout.split()
    assert Path(module).is_relative_to(venv / "lib")
    assert int(pins) > 0


def test_generate_check_of_an_example_with_the_installed_wheel(venv: Path, tmp_path: Path) -> None:
    # Only the example and its committed workflow: no source tree the command could import.
    for name in ("examples/hello/splitbuild.toml", "workflows/hello.yml"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(REPO / name, tmp_path / name)
    check = [
        "generate",
        "--check",
        "--config",
        "examples/hello/splitbuild.toml",
        "--output",
        "workflows/hello.yml",
    ]
    done = _run(venv, *check, cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    workflow = tmp_path / "workflows" / "hello.yml"
    workflow.write_text(workflow.read_text() + "# drift\n")
    drift = _run(venv, *check, cwd=tmp_path)
    assert drift.returncode == 10
    assert "Traceback" not in drift.stderr


def test_merge_dry_run_with_the_installed_wheel(venv: Path, registry: RegistryServer, tmp_path: Path) -> None:
    repo = f"{registry.host}/wheel/{uuid.uuid4().hex[:8]}"
    platforms = ["linux/amd64", "linux/arm64"]

    async def seed() -> list[str]:
        async with Client(retry=FAST_RETRY, env={}) as client:
            target = client.repository(Reference.parse(repo))
            images = [make_image(p, seed="wheel") for p in platforms]
            for image in images:
                await push(target, image)
            return [image.digest for image in images]

    digests = anyio.run(seed)
    done = _run(
        venv,
        "merge",
        "--dry-run",
        "--json",
        "-t",
        f"{repo}:v1",
        "--platform",
        ",".join(platforms),
        *[f"{repo}@{d}" for d in digests],
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert data["dryRun"] is True
    assert sorted(p["platform"] for p in data["platforms"]) == platforms
    assert sorted(p["digest"] for p in data["platforms"]) == sorted(digests)

    async def tag_exists() -> bool:
        async with Client(retry=FAST_RETRY, env={}) as client:
            return await client.repository(Reference.parse(repo)).head_manifest("v1") is not None

    assert anyio.run(tag_exists) is False
