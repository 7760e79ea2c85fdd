#!/usr/bin/env python3
"""Install what the act runner tests (tests/test_runner_act.py) need besides act itself, into
gitignored directories here; needs the package registries, so .ci/install runs it, never a test:

* ``.node/``: ``@docker/actions-toolkit`` at the version docker/build-push-action v7.3.0 uses
  (npm), whose ``Util.getList`` the build-push stand-in and tests/action_parser.py call;
* ``.cache/wheels/``: every file of splitbuild's hash lock for this machine's Python
  (``pip download --require-hashes``), so the generated merge job's install step runs offline.

    python3 tests/actions/prepare.py
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent.parent))

from splitbuild.workflow.install_lock import requirements_text  # noqa: E402
from tests.action_parser import TOOLKIT_VERSION  # noqa: E402

WHEELS = HERE / ".cache" / "wheels"


def main() -> None:
    node = HERE / ".node"
    node.mkdir(exist_ok=True)
    subprocess.run(
        [
            "npm",
            "install",
            "--no-audit",
            "--no-fund",
            "--prefix",
            str(node),
            f"@docker/actions-toolkit@{TOOLKIT_VERSION}",
        ],
        check=True,
    )
    WHEELS.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", suffix=".txt") as lock:
        lock.write(requirements_text())
        lock.flush()
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "-q",
                "--disable-pip-version-check",
                "--require-hashes",
                "--no-deps",
                "--only-binary=:all:",
                "-d",
                str(WHEELS),
                "-r",
                lock.name,
            ],
            check=True,
        )


if __name__ == "__main__":
    main()
