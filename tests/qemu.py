"""Foreign-platform emulation for the tests that build or run arm64 images (build, act, GitLab).

A fresh machine has ``qemu-user-static`` and ``binfmt-support`` installed by ``.ci/install`` but
not necessarily ``binfmt_misc`` mounted or the handler enabled. Every test module that needs
emulation calls :func:`ensure_emulation` itself, so none depends on another having run first
(with ``pytest -n`` the modules run in any order, in several processes at once: a file lock makes
the set-up happen once).
"""

from __future__ import annotations

import fcntl
import subprocess
import tempfile
from pathlib import Path

from splitbuild.build.binfmt import BINFMT_DIR, check_emulation, find_handler, read_handlers

_HANDLERS = {"arm64": "qemu-aarch64", "arm": "qemu-arm"}
_LOCK = Path(tempfile.gettempdir()) / "splitbuild-tests-binfmt.lock"


def ensure_emulation(*arches: str) -> None:
    """Mount binfmt_misc and enable Debian's qemu handlers for ``arches`` (as root) when needed."""
    with open(_LOCK, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if read_handlers(BINFMT_DIR) is None:
            subprocess.run(["mount", "-t", "binfmt_misc", "binfmt_misc", str(BINFMT_DIR)], check=True)
        for arch in arches:
            handler = find_handler(arch, read_handlers(BINFMT_DIR) or [])
            if handler is None or not handler.enabled:
                subprocess.run(["update-binfmts", "--enable", _HANDLERS[arch]], check=True)
    check_emulation([f"linux/{arch}" for arch in arches])
