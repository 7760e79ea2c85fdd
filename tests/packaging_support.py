"""Helpers of the packaging tests: the offline wheelhouse, a clean environment, a copy of the tree."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
WHEELHOUSE = REPO / "build" / "wheelhouse"
LOCKED_WHEELS = REPO / "tests" / "actions" / ".cache" / "wheels"
"""The merge job's hash-locked closure, as wheels (``tests/actions/prepare.py`` downloads them)."""


def wheelhouse() -> Path:
    """build/wheelhouse, which ``.ci/install`` fills (the tests never reach the network)."""
    if not (WHEELHOUSE / ".complete").is_file():
        raise RuntimeError(f"no wheelhouse at {WHEELHOUSE}: run .ci/install first")
    return WHEELHOUSE


def offline_env(home: Path, **extra: str) -> dict[str, str]:
    """A minimal environment: no PYTHONPATH, pip configured only to install from the wheelhouse."""
    env = {
        "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
        "HOME": str(home),
        "LANG": "C.UTF-8",
        "PIP_CONFIG_FILE": os.devnull,
        "PIP_NO_INDEX": "1",
        "PIP_FIND_LINKS": str(wheelhouse()),
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
    }
    env.update(extra)
    return env


def tracked_files() -> list[str]:
    """The repository's files as a clone would have them (committed or added, not ignored)."""
    out = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=REPO,
        capture_output=True,
        check=True,
        timeout=60,
    ).stdout.decode()
    return sorted(name for name in out.split("\0") if name and (REPO / name).is_file())


def copy_tree(dest: Path) -> Path:
    """Copy the working tree's files (not build/, caches or other ignored files) to ``dest``."""
    for name in tracked_files():
        target = dest / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / name, target)
    return dest


def locked_wheels() -> Path:
    """:data:`LOCKED_WHEELS`, which ``.ci/install`` fills."""
    assert any(LOCKED_WHEELS.glob("pydantic_core-*.whl")), "no wheels: run python3 tests/actions/prepare.py"
    return LOCKED_WHEELS


def build_wheel(out: Path) -> Path:
    """This checkout's splitbuild as a wheel in ``out`` (what ``[ci] install = "splitbuild==X"``
    finds), built offline from a copy of the tree: setuptools writes ``build/`` and the egg-info
    beside the sources, and other test workers may be building at the same time."""
    tree = copy_tree(out / "tree")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(out),
            str(tree),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    shutil.rmtree(tree)
    return out
