"""``splitbuild tags``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from splitbuild.cli.app import make_app

SHA = "860c1904a1ce19322e91ac35af1ab07466440c37"
NO_CI: dict[str, str | None] = {"GITHUB_ACTIONS": None, "GITLAB_CI": None}


@pytest.fixture
def context_file(tmp_path: Path) -> Path:
    path = tmp_path / "context.json"
    data = {
        "eventName": "push",
        "ref": "refs/tags/v1.2.3",
        "sha": SHA,
        "now": "2020-01-10T00:30:00Z",
        "repo": {"name": "app", "html_url": "https://github.com/org/app"},
    }
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def run(*args: str, env: dict[str, str | None] | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(make_app(), ["tags", *args], env={**NO_CI, **(env or {})})
    return result.exit_code, result.stdout, result.stderr


def test_prints_one_tag_per_line(context_file: Path) -> None:
    code, out, _ = run(
        "--context",
        str(context_file),
        "--images",
        "ghcr.io/Org/App\ndocker.io/org/app",
        "--tags",
        "type=semver,pattern={{version}}\ntype=semver,pattern={{major}}",
        "--tags",
        "type=sha",
        "--flavor",
        "latest=false",
    )
    assert code == 0
    assert out.splitlines() == [
        "ghcr.io/org/app:1.2.3",
        "ghcr.io/org/app:1",
        "ghcr.io/org/app:sha-860c190",
        "docker.io/org/app:1.2.3",
        "docker.io/org/app:1",
        "docker.io/org/app:sha-860c190",
    ]


def test_json_output(context_file: Path) -> None:
    code, out, _ = run(
        "--context",
        str(context_file),
        "--images",
        "org/app",
        "--labels",
        "maintainer=me",
        "--annotation-levels",
        "index",
        "--json",
    )
    assert code == 0
    data = json.loads(out)
    assert data["version"] == "v1.2.3"
    assert data["tags"] == ["org/app:v1.2.3", "org/app:latest"]
    assert data["tag-names"] == ["v1.2.3", "latest"]
    assert data["labels"]["maintainer"] == "me"
    assert data["annotations"][0] == "index:org.opencontainers.image.created=2020-01-10T00:30:00.000Z"


def test_gitlab_environment_and_saved_context(tmp_path: Path) -> None:
    env: dict[str, str | None] = {
        "GITLAB_CI": "true",
        "CI_PIPELINE_SOURCE": "merge_request_event",
        "CI_MERGE_REQUEST_IID": "12",
        "CI_COMMIT_SHA": SHA,
        "CI_COMMIT_TIMESTAMP": "2024-01-01T00:00:00Z",
    }
    saved = tmp_path / "saved.json"
    code, out, _ = run("--images", "org/app", "--save-context", str(saved), env=env)
    assert (code, out) == (0, "org/app:pr-12\n")
    replay_code, replay_out, _ = run("--images", "org/app", "--context", str(saved))
    assert (replay_code, replay_out) == (0, out)


def test_no_tag_warns(context_file: Path) -> None:
    code, out, err = run("--context", str(context_file), "--tags", "type=ref,event=branch")
    assert (code, out) == (0, "")
    assert "no tag was computed" in err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--tags", "type=bogus"], "invalid tag rule 'type=bogus': unknown type 'bogus'"),
        (
            ["--tags", "type=raw,value={{date}}"],
            "tag rule 'type=raw,value={{date}}': {{date}} needs one format",
        ),
        (["--flavor", "latest=maybe"], "invalid flavor entry 'latest=maybe'"),
        (["--tags", 'type=raw,"value=x'], "invalid --tags"),
    ],
)
def test_invalid_rules_exit_3_with_one_line(context_file: Path, args: list[str], message: str) -> None:
    code, out, err = run("--context", str(context_file), *args)
    assert code == 3
    assert out == ""
    first, *rest = err.strip().splitlines()
    assert first.startswith("splitbuild: error: ")
    assert message in first
    assert rest == []


def test_without_ci_context() -> None:
    code, _, err = run("--tags", "type=sha")
    assert code == 3
    assert "neither GITHUB_ACTIONS=true nor GITLAB_CI=true is set" in err
    assert "--context FILE" in err
