"""The project's own workflows (.github/workflows): lint-clean like the generated ones, every action
pinned by the commit SHA behind a release tag, CI runs the README's test command, and the release
publishes with trusted publishing (an OIDC token only in the publishing job)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.constants import CONFORMANCE

REPO = Path(__file__).resolve().parent.parent
WORKFLOWS = REPO / ".github" / "workflows"
USES = re.compile(r"^\s*(?:- )?uses: (\S+)@(\S+) # (v\d+\.\d+\.\d+)$", re.MULTILINE)
# Pins of actions that tests/conformance/notes/action-pins.json does not list, each read with
# `git rev-parse 'TAG^{commit}'` from a snapshot of the action's own repository, TAG being the
# newest release tag there.
OTHER_PINS = {"pypa/gh-action-pypi-publish": ("v1.8.14", "81e9d935c883d0b210363ab89cf05f3894778450")}


def _tool(name: str) -> str:
    found = shutil.which(name) or shutil.which(name, path=str(Path(sys.executable).parent))
    assert found, f"{name} is not installed (the dev extra installs it; shellcheck comes from apt)"
    return found


def _files() -> list[Path]:
    return sorted(WORKFLOWS.glob("*.yml"))


def _load(name: str) -> dict[Any, Any]:
    data: dict[Any, Any] = yaml.safe_load((WORKFLOWS / name).read_text())
    return data


def _run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=300, check=False)


def test_the_workflows_are_there() -> None:
    assert [p.name for p in _files()] == ["ci.yml", "release.yml"]


def test_github_workflow_schema() -> None:
    result = _run(
        _tool("check-jsonschema"), "--builtin-schema", "vendor.github-workflows", *map(str, _files())
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "ok -- validation done" in result.stdout


def test_actionlint_reports_nothing() -> None:
    result = _run(_tool("actionlint"), "-shellcheck", _tool("shellcheck"), *map(str, _files()))
    assert result.returncode == 0, result.stdout + result.stderr


def test_zizmor_pedantic_reports_no_findings() -> None:
    result = _run(_tool("zizmor"), "--offline", "--no-config", "--pedantic", *map(str, _files()))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "No findings to report" in result.stdout


def _pins() -> dict[tuple[str, str], str]:
    seen: dict[tuple[str, str], str] = {}
    for entry in json.loads((CONFORMANCE / "notes" / "action-pins.json").read_text()):
        seen[(entry["action"], entry["tag"])] = entry["sha"]
        if entry.get("prev_major"):
            seen[(entry["action"], entry["prev_major"]["tag"])] = entry["prev_major"]["sha"]
    for action, (tag, sha) in OTHER_PINS.items():
        seen[(action, tag)] = sha
    return seen


@pytest.mark.parametrize("name", ["ci.yml", "release.yml"])
def test_every_action_is_pinned_to_the_sha_behind_its_release_tag(name: str) -> None:
    text = (WORKFLOWS / name).read_text()
    uses = [line for line in text.splitlines() if "uses:" in line]
    pinned = USES.findall(text)
    assert len(pinned) == len(uses) > 0, uses
    known = _pins()
    for action, sha, tag in pinned:
        assert re.fullmatch(r"[0-9a-f]{40}", sha), (action, sha)
        assert known.get((action, tag)) == sha, f"{action}@{sha} is not the commit behind {tag}"


def test_ci_runs_the_readme_test_command_like_ci_run() -> None:
    command = ".ci/install && python3 -m pytest -q"
    assert (REPO / ".ci" / "run").read_text().rstrip().splitlines()[-1] == command
    ci = _load("ci.yml")
    steps = ci["jobs"]["test"]["steps"]
    assert [s["run"] for s in steps if "run" in s][-1] == command
    assert ci["jobs"]["test"]["container"]["image"].startswith("debian:12")
    assert set(ci[True]) == {"push", "pull_request"}  # YAML 1.1 reads the key `on` as True


def test_release_publishes_with_trusted_publishing_only_from_its_publish_job() -> None:
    release = _load("release.yml")
    assert release[True] == {"push": {"tags": ["v*"]}}
    assert release["permissions"] == {}
    jobs = release["jobs"]
    with_token = {name for name, job in jobs.items() if job.get("permissions", {}).get("id-token") == "write"}
    assert with_token == {"publish"}
    publish = jobs["publish"]
    assert publish["environment"] == "pypi"
    assert set(publish["needs"]) == {"build", "test"}
    steps = [s.get("uses", "").split("@")[0] for s in publish["steps"]]
    assert steps.index("actions/attest-build-provenance") < steps.index("pypa/gh-action-pypi-publish")
    publish_step = next(s for s in publish["steps"] if s.get("uses", "").startswith("pypa/"))
    assert set(publish_step.get("with", {})) <= {"packages-dir"}  # no password: trusted publishing
    test_runs = [s["run"] for s in jobs["test"]["steps"] if "run" in s]
    assert "python3 -m pytest -q tests/test_wheel.py" in test_runs[-1]
    assert next(s for s in jobs["test"]["steps"] if "run" in s and "test_wheel" in s["run"])["env"] == {
        "SPLITBUILD_DIST": "dist"
    }
