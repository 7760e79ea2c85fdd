"""examples/hello as a test's git repository: its busybox root file systems prepared from the cached
packages (no network), QEMU's arm64 handler registered, and a commit with a fixed date (so tags
and ``created`` come out the same on every machine). Shared by the build tests."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from tests.qemu import ensure_emulation

REPO = Path(__file__).resolve().parent.parent
HELLO = REPO / "examples" / "hello"
PLATFORMS = "linux/amd64,linux/arm64"
COMMIT_DATE = "2026-11-20T10:00:00+00:00"


def git(repo: Path, *args: str) -> str:
    """``git -C repo ARGS`` as a fixed test identity at :data:`COMMIT_DATE`, ignoring the machine's
    git settings; its stdout."""
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "splitbuild tests",
        "GIT_AUTHOR_EMAIL": "tests@example.invalid",
        "GIT_COMMITTER_NAME": "splitbuild tests",
        "GIT_COMMITTER_EMAIL": "tests@example.invalid",
        "GIT_AUTHOR_DATE": COMMIT_DATE,
        "GIT_COMMITTER_DATE": COMMIT_DATE,
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_CONFIG_NOSYSTEM": "1",
    }
    done = subprocess.run(
        ["git", "-C", str(repo), *args], capture_output=True, text=True, env=env, check=True
    )
    return done.stdout.strip()


def prepare_rootfs(dest: Path, platforms: str = PLATFORMS) -> Path:
    """rootfs/<arch> for each of ``platforms`` in ``dest``, from the busybox packages .ci/install
    cached; registers QEMU for arm64 first (the builds run arm64 steps)."""
    ensure_emulation("arm64")
    subprocess.run(
        [
            sys.executable,
            str(HELLO / "prepare.py"),
            "--platform",
            platforms,
            "--dest",
            str(dest),
            "--offline",
        ],
        check=True,
    )
    return dest


def make_repo(root: Path, rootfs: Path, *, extra_dockerfile: str = "") -> Path:
    """A git repository holding a copy of examples/hello (and the prepared rootfs), on main."""
    target = root / "examples" / "hello"
    shutil.copytree(HELLO, target, ignore=shutil.ignore_patterns("rootfs", "__pycache__"))
    shutil.copytree(rootfs, target / "rootfs")
    if extra_dockerfile:
        dockerfile = target / "Dockerfile"
        dockerfile.write_text(dockerfile.read_text() + extra_dockerfile)
    git(root, "init", "-q", "-b", "main")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "hello")
    return root
