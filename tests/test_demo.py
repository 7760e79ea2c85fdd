"""examples/demo.sh as a newcomer runs it on Debian 12: as root, with Debian's own /usr/bin/python3
(PATH=/usr/sbin:/usr/bin:/sbin:/bin, no pyenv), a fresh HOME, and pip installing from the offline
wheelhouse (PIP_NO_INDEX, PIP_FIND_LINKS) instead of the network.

The script runs in a copy of the tree (it writes build/ there). The fresh HOME holds only the
busybox packages that ``prepare.py`` would otherwise download (``.ci/install`` cached them).
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from splitbuild.index import platform_set
from splitbuild.models import Manifest
from tests.packaging_support import REPO, copy_tree, offline_env

# Builds and installs for real: minutes on a loaded 2-core machine, beyond the default 300 s timeout.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(1200)]
PLATFORMS = {"linux/amd64", "linux/arm64", "linux/arm/v7"}


def _fresh_home(home: Path) -> Path:
    spec = importlib.util.spec_from_file_location("hello_prepare", REPO / "examples" / "hello" / "prepare.py")
    assert spec is not None
    assert spec.loader is not None
    prepare = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(prepare)
    cached: Path = prepare.default_cache()
    debs = home / ".cache" / "splitbuild" / "debs"
    debs.mkdir(parents=True)
    for deb in cached.glob("busybox-static_*.deb"):
        shutil.copy(deb, debs)
    return home


def _demo(tmp_path: Path, **env: str) -> tuple[Path, subprocess.CompletedProcess[str]]:
    tree = copy_tree(tmp_path / "splitbuild")
    home = _fresh_home(tmp_path / "home")
    done = subprocess.run(
        ["examples/demo.sh"],
        cwd=tree,
        env=offline_env(home, **env),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=1200,
        check=False,
    )
    return tree, done


def _platforms(document: dict[str, Any]) -> set[str]:
    return {str(p) for p in platform_set(Manifest.from_bytes(json.dumps(document).encode()))}


def test_demo_builds_and_merges_with_debian_python_offline(tmp_path: Path) -> None:
    tree, done = _demo(tmp_path)
    output = done.stdout[-6000:] + done.stderr[-3000:]
    assert done.returncode == 0, output
    assert "Traceback" not in done.stdout + done.stderr
    # Its own venv, made by Debian's python3, with splitbuild installed in it.
    config = (tree / "build" / "venv" / "pyvenv.cfg").read_text()
    assert "home = /usr/bin\n" in config, config
    assert "(build/venv)\n" in done.stdout
    # The merged index in the OCI layout, under the tag demo ...
    layout = tree / "build" / "oci"
    index = json.loads((layout / "index.json").read_text())
    (entry,) = [
        m for m in index["manifests"] if m["annotations"]["org.opencontainers.image.ref.name"] == "demo"
    ]
    blob = layout / "blobs" / "sha256" / entry["digest"].removeprefix("sha256:")
    merged = json.loads(blob.read_bytes())
    assert _platforms(merged) == PLATFORMS
    # ... and the same index as the registry served it (skopeo inspect --raw, the script's last output).
    served = json.loads(done.stdout[done.stdout.index("\n{", done.stdout.rindex("skopeo inspect --raw")) :])
    assert _platforms(served) == PLATFORMS
    assert served == merged


def test_demo_stops_at_the_first_failure_with_one_line(tmp_path: Path) -> None:
    empty = tmp_path / "no-wheels"
    empty.mkdir()
    tree, done = _demo(tmp_path, PIP_FIND_LINKS=str(empty))
    assert done.returncode != 0
    assert "Traceback" not in done.stderr
    lines = [line for line in done.stderr.splitlines() if line.startswith("demo.sh:")]
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith('demo.sh: failed in "Installing splitbuild into build/venv"'), lines
    assert "== QEMU user emulation" not in done.stdout
    assert not (tree / "build" / "oci").exists()
