"""The merge step the generator writes runs for real: its argv against a seeded registry."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import anyio
import pytest
from typer.testing import CliRunner

from splitbuild.cli.app import make_app
from splitbuild.client import Client
from splitbuild.config import parse_config
from splitbuild.reference import Reference
from splitbuild.retry import FAST_RETRY
from splitbuild.workflow.merge_step import merge_argv
from tests.images import make_buildx_index, make_image, push
from tests.registry_server import RegistryServer

PLATFORMS = ["linux/amd64", "linux/arm64"]


def seed(repo: str) -> dict[str, str]:
    async def run() -> dict[str, str]:
        async with Client(retry=FAST_RETRY, env={}) as client:
            target = client.repository(Reference.parse(repo))
            out = {}
            for p in PLATFORMS:
                image = make_buildx_index(make_image(p, seed="wf"), p, seed="wf")
                await push(target, image)
                out[p] = image.digest
            return out

    return anyio.run(run)


def github_env(tmp_path: Path, ref: str) -> dict[str, str]:
    event = tmp_path / "event.json"
    event.write_text(
        json.dumps(
            {
                "repository": {
                    "name": "app",
                    "full_name": "acme/app",
                    "html_url": "https://example.test/acme/app",
                    "default_branch": "main",
                    "description": "demo",
                    "license": {"spdx_id": "MIT"},
                },
                "head_commit": {"timestamp": "2026-11-20T10:00:00Z"},
            }
        )
    )
    return {
        "GITHUB_ACTIONS": "true",
        "GITHUB_EVENT_NAME": "push",
        "GITHUB_REF": ref,
        "GITHUB_SHA": "0123456789abcdef0123456789abcdef01234567",
        "GITHUB_EVENT_PATH": str(event),
        "GITHUB_REPOSITORY": "acme/app",
        "GITHUB_SERVER_URL": "https://example.test",
        "GITHUB_RUN_ID": "1",
        "GITHUB_STEP_SUMMARY": str(tmp_path / "summary.md"),
        "GITHUB_OUTPUT": str(tmp_path / "output"),
    }


@pytest.mark.parametrize(
    ("ref", "expected"),
    [
        ("refs/tags/v1.2.3", {"1.2.3", "1.2", "latest", "sha-0123456"}),
        ("refs/heads/main", {"main", "sha-0123456"}),
    ],
)
def test_generated_merge_step_runs(
    registry: RegistryServer, tmp_path: Path, ref: str, expected: set[str]
) -> None:
    repo = f"{registry.host}/wf/{uuid.uuid4().hex[:8]}"
    config = parse_config(
        f"""
[image]
names = ["{repo}"]
platforms = {json.dumps(PLATFORMS)}

[tags]
rules = ["type=ref,event=branch", "type=semver,pattern={{{{version}}}}",
         "type=semver,pattern={{{{major}}}}.{{{{minor}}}}", "type=sha"]
flavor = ["latest=auto"]

[ci.logins]
"{registry.host}" = false
""",
        "splitbuild.toml",
    )
    digests = seed(repo)
    argv = merge_argv(config, digests)
    assert argv[0] == "splitbuild"
    assert argv[1] == "merge"
    env = github_env(tmp_path, ref)
    runner = CliRunner()
    dry = runner.invoke(make_app(), [*argv[1:], "--dry-run", "--json"], env=env)
    assert dry.exit_code == 0, dry.stderr
    planned = json.loads(dry.stdout)
    assert planned["dryRun"] is True
    assert planned["tags"] == []
    real = runner.invoke(make_app(), [*argv[1:], "--json"], env=env)
    assert real.exit_code == 0, real.stderr
    data = json.loads(real.stdout)
    assert {t.rsplit(":", 1)[1] for t in data["tags"]} == expected
    assert sorted(p["platform"] for p in data["platforms"]) == PLATFORMS
    assert len(data["attestations"]) == 2
    assert data["digest"] == planned["digest"]
    assert (tmp_path / "output").read_text() == f"digest={data['digest']}\n"


def test_image_rules_put_labels_on_the_index_and_bad_rules_push_nothing(
    registry: RegistryServer, tmp_path: Path
) -> None:
    repo = f"{registry.host}/wf/{uuid.uuid4().hex[:8]}"
    digests = seed(repo)
    env = github_env(tmp_path, "refs/tags/v2.0.0")
    runner = CliRunner()
    common = ["merge", "--image", repo, "--platform", ",".join(PLATFORMS), *digests.values(), "--json"]
    bad = runner.invoke(make_app(), [*common, "--tags", "type=schedule,pattern={{date}}"], env=env)
    assert bad.exit_code == 3, bad.stderr
    assert "type=schedule,pattern={{date}}" in bad.stderr
    assert "Traceback" not in bad.stderr
    missing = runner.invoke(make_app(), ["inspect", f"{repo}:2.0.0"], env=env)
    assert missing.exit_code == 4, missing.stderr  # nothing was pushed

    good = runner.invoke(
        make_app(), [*common, "--tags", "type=semver,pattern={{version}}", "--label-annotations"], env=env
    )
    assert good.exit_code == 0, good.stderr
    data = json.loads(good.stdout)
    assert [t.rsplit(":", 1)[1] for t in data["tags"]] == ["2.0.0", "latest"]
    raw = runner.invoke(make_app(), ["inspect", f"{repo}:2.0.0", "--raw"], env=env)
    annotations = json.loads(raw.stdout)["annotations"]
    assert annotations["org.opencontainers.image.version"] == "2.0.0"
    assert annotations["org.opencontainers.image.source"] == "https://example.test/acme/app"
    assert annotations["org.opencontainers.image.revision"] == "0123456789abcdef0123456789abcdef01234567"
