"""Run the ``splitbuild`` command in a subprocess, isolated from the user's config and credentials."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run(
    args: list[str], env: dict[str, str], home: Path, *, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """``python -m splitbuild ARGS`` with ``HOME``/``DOCKER_CONFIG`` at ``home`` (its cwd), this
    worktree's package, two retry attempts and ``env`` on top."""
    base = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(home),
        "DOCKER_CONFIG": str(home),
        "PYTHONPATH": str(ROOT),
        "SPLITBUILD_RETRY_ATTEMPTS": "2",
    }
    return subprocess.run(
        [sys.executable, "-m", "splitbuild", *args],
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        cwd=home,
    )
