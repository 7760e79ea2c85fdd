"""The conformance tests pass in a fresh clone of the committed HEAD, with nothing beside it.

The clone lives in a temporary directory (no ``../shared`` next to it) and pytest runs there in a
subprocess (cwd and PYTHONPATH = the clone) under an audit hook that records every file or
directory opened inside the original repository or beside it: the run must open none.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

# The tests that read tests/conformance (the vectors, the checkers, the action-pin notes).
CONFORMANCE_TESTS = [
    "tests/test_conformance_copy.py",
    "tests/test_reference.py::test_conformance_vectors",
    "tests/test_tags_conformance.py",
    "tests/test_auth_vectors.py",
    "tests/test_auth_flow.py",
    "tests/test_workflow_yaml.py::test_pins_are_release_tag_shas_from_the_shared_notes",
]

# Run pytest with an audit hook: an open, listdir or scandir of a path under FORBIDDEN (the
# original repository's parent: the repository itself and everything beside it) that is not
# under the clone, the run's own scratch directory (the clone's parent: temp files, pytest's
# basetemp, the report) or the Python installation is written to the REPORT file. The scratch
# directory matters when the repository itself lives in the temp directory (a clone in /tmp).
GUARD = """
import os, sys
clone, scratch, forbidden, report = sys.argv[1:5]
installed = {os.path.realpath(p) for p in (sys.prefix, sys.base_prefix, sys.exec_prefix)}
allowed = [clone, scratch] + sorted(installed)
seen = []
def inside(path, root):
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)
def hook(event, args):
    if event not in ("open", "os.listdir", "os.scandir") or not args:
        return
    path = args[0]
    if isinstance(path, int) or path is None:
        return
    try:
        path = os.path.realpath(os.fsdecode(path))
    except (TypeError, ValueError):
        return
    if inside(path, forbidden) and not any(inside(path, root) for root in allowed):
        seen.append(path)
sys.addaudithook(hook)
import pytest
status = pytest.main(sys.argv[5:])
with open(report, "w") as handle:
    handle.write("\\n".join(sorted(set(seen))))
sys.exit(status)
"""


def _git(*args: str, cwd: Path) -> str:
    env = {**os.environ, "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"}
    done = subprocess.run(
        ["git", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120, check=True
    )
    return done.stdout.strip()


def test_conformance_tests_pass_in_a_clone_with_nothing_beside_it(tmp_path: Path) -> None:
    head = _git("rev-parse", "HEAD", cwd=REPO)
    clone = tmp_path / "splitbuild"
    _git("clone", "--quiet", "--no-checkout", str(REPO), str(clone), cwd=tmp_path)
    _git("checkout", "--quiet", "--detach", head, cwd=clone)
    assert _git("rev-parse", "HEAD", cwd=clone) == head
    assert sorted(p.name for p in tmp_path.iterdir()) == ["splitbuild"]

    report = tmp_path / "outside.txt"
    env = {
        key: value for key, value in os.environ.items() if not key.startswith(("PYTEST_", "COV_", "PYTHON"))
    }
    env["PYTHONPATH"] = str(clone)
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    env["TMPDIR"] = str(scratch)  # the tests' temp files stay in this run's scratch directory
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            GUARD,
            str(clone.resolve()),
            str(tmp_path.resolve()),
            str(REPO.parent.resolve()),
            str(report),
            "-q",
            "-n",
            "0",  # one process: xdist's workers are new interpreters, without the audit hook
            "-p",
            "no:cacheprovider",
            f"--basetemp={tmp_path / 'pytest-tmp'}",
            *CONFORMANCE_TESTS,
        ],
        cwd=clone,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    output = done.stdout[-4000:] + done.stderr[-4000:]
    assert done.returncode == 0, output
    summary = done.stdout.strip().splitlines()[-1]
    assert " passed" in summary, output
    assert "failed" not in summary, output
    assert "error" not in summary, output
    assert report.read_text() == "", "the clone's tests read outside it:\n" + report.read_text()
