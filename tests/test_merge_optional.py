"""Optional platforms against the real registry: an optional platform without an image is left out
and reported (library, ``--json``, human output, the GitHub step summary and outputs, exit 0); a
missing required one publishes nothing (exit 7); the shrink guard lets a tag lose a platform only
when it is optional."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
from typer.testing import CliRunner

from splitbuild.cli.app import make_app
from splitbuild.client import Client
from splitbuild.errors import Refused, UsageError, VerificationError
from splitbuild.merge import MergeOptions, merge, parse_sources, parse_targets
from splitbuild.reference import Reference
from splitbuild.registry import Registry
from splitbuild.retry import FAST_RETRY
from tests.images import make_image, push_all, push_all_sync
from tests.registry_server import RegistryServer

pytestmark = pytest.mark.anyio

AMD64, ARM64, S390X = "linux/amd64", "linux/arm64", "linux/s390x"


def _repo(registry: RegistryServer, prefix: str) -> str:
    return f"{registry.host}/optional/{prefix}-{uuid.uuid4().hex[:8]}"


def _options(targets: list[str], sources: list[str], **kw: object) -> MergeOptions:
    refs = parse_targets(targets)
    return MergeOptions(targets=refs, sources=parse_sources(sources, refs[0]), **kw)  # type: ignore[arg-type]


async def _tag_platforms(client: Client, ref: str) -> list[str]:
    repo, _, tag = ref.rpartition(":")
    index = await client.repository(Reference.parse(repo)).get_manifest(tag)
    return [c.platform.key for c in index.children() if c.platform is not None]


async def test_an_optional_platform_without_an_image_is_left_out(
    registry: RegistryServer, client: Client
) -> None:
    repo = _repo(registry, "left")
    (amd64,) = await push_all(client, repo, [make_image(AMD64, seed="left")])
    result = await merge(
        client, _options([f"{repo}:v1"], [amd64], platforms=[AMD64], optional_platforms=["linux/aarch64"])
    )
    assert result.pushed == [f"{repo}:v1"]
    assert result.plan.left_out == (ARM64,)  # normalised from linux/aarch64
    data = result.to_dict()
    assert data["leftOut"] == [ARM64]
    assert [p["platform"] for p in data["platforms"]] == [AMD64]
    assert await _tag_platforms(client, f"{repo}:v1") == [AMD64]


async def test_an_optional_platform_that_arrived_is_published(
    registry: RegistryServer, client: Client
) -> None:
    repo = _repo(registry, "all")
    digests = await push_all(client, repo, [make_image(p, seed="all") for p in (AMD64, ARM64)])
    result = await merge(
        client, _options([f"{repo}:v1"], digests, platforms=[AMD64], optional_platforms=[ARM64])
    )
    assert result.plan.left_out == ()
    assert result.to_dict()["leftOut"] == []
    assert await _tag_platforms(client, f"{repo}:v1") == [AMD64, ARM64]


async def test_a_missing_required_platform_publishes_nothing(
    registry: RegistryServer, client: Client
) -> None:
    repo = _repo(registry, "required")
    (arm64,) = await push_all(client, repo, [make_image(ARM64, seed="required")])
    with pytest.raises(VerificationError, match=r"missing required linux/amd64 \(nothing published"):
        await merge(client, _options([f"{repo}:v1"], [arm64], platforms=[AMD64], optional_platforms=[ARM64]))
    target = client.repository(Reference.parse(repo))
    assert await target.head_manifest("v1") is None


async def test_a_platform_neither_required_nor_optional_is_refused(
    registry: RegistryServer, client: Client
) -> None:
    repo = _repo(registry, "extra")
    digests = await push_all(client, repo, [make_image(p, seed="extra") for p in (AMD64, S390X)])
    with pytest.raises(VerificationError, match="unexpected linux/s390x"):
        await merge(client, _options([f"{repo}:v1"], digests, platforms=[AMD64], optional_platforms=[ARM64]))
    assert await client.repository(Reference.parse(repo)).head_manifest("v1") is None


async def test_a_platform_both_required_and_optional_is_a_usage_error(
    registry: RegistryServer, client: Client
) -> None:
    repo = _repo(registry, "both")
    (amd64,) = await push_all(client, repo, [make_image(AMD64, seed="both")])
    before = client.requests
    with pytest.raises(UsageError, match="linux/amd64 is both required"):
        await merge(client, _options([f"{repo}:v1"], [amd64], platforms=[AMD64], optional_platforms=[AMD64]))
    assert client.requests == before  # refused before any request


async def test_shrink_guard_allows_losing_only_optional_platforms(
    registry: RegistryServer, client: Client
) -> None:
    repo = _repo(registry, "shrink")
    amd64, arm64, s390x = await push_all(
        client, repo, [make_image(p, seed="shrink") for p in (AMD64, ARM64, S390X)]
    )
    await merge(client, _options([f"{repo}:full"], [amd64, arm64, s390x]))
    await merge(client, _options([f"{repo}:two"], [amd64, arm64]))
    # `two` had amd64 + arm64; arm64 is optional and missing now: allowed, no --allow-shrink.
    lost_optional = await merge(
        client, _options([f"{repo}:two"], [amd64], platforms=[AMD64], optional_platforms=[ARM64])
    )
    assert lost_optional.pushed == [f"{repo}:two"]
    assert await _tag_platforms(client, f"{repo}:two") == [AMD64]
    # `full` also has s390x, which is neither: refused, and the tag stays.
    with pytest.raises(Refused, match=r"the new one lacks linux/s390x$"):
        await merge(
            client, _options([f"{repo}:full"], [amd64], platforms=[AMD64], optional_platforms=[ARM64])
        )
    assert await _tag_platforms(client, f"{repo}:full") == [AMD64, ARM64, S390X]
    # Without the optional mark, losing arm64 is the shrink the guard refuses.
    await merge(client, _options([f"{repo}:again"], [amd64, arm64]))
    with pytest.raises(Refused, match="lacks linux/arm64"):
        await merge(client, _options([f"{repo}:again"], [amd64], platforms=[AMD64]))


async def test_registry_facade_takes_optional_platforms(registry: RegistryServer) -> None:
    repo = _repo(registry, "facade")
    async with Registry(retry=FAST_RETRY, env={}) as reg:
        (amd64,) = await push_all(reg, repo, [make_image(AMD64, seed="facade")])
        result = await reg.merge(
            targets=[f"{repo}:v1"], sources=[amd64], platforms=[AMD64], optional_platforms=["linux/arm64/v8"]
        )
        assert result.plan.left_out == (ARM64,)
        options = _options([f"{repo}:v2"], [amd64], platforms=[AMD64])
        with pytest.raises(UsageError, match="not both"):
            await reg.merge(options, optional_platforms=[ARM64])


# -- the command line ----------------------------------------------------------------------------

runner = CliRunner()


def _cli(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    result = runner.invoke(make_app(), list(args), env=env)
    return result.exit_code, result.stdout, result.stderr


def test_cli_reports_left_out_platforms_everywhere(registry: RegistryServer, tmp_path: Path) -> None:
    """Exit 0; ``--json`` ``leftOut``; the step summary line; ``left-out=`` in ``$GITHUB_OUTPUT``;
    a warning annotation on stderr (stdout stays one JSON document)."""
    repo = _repo(registry, "cli")
    (amd64,) = push_all_sync(repo, [make_image(AMD64, seed="cli")])
    summary, output = tmp_path / "summary.md", tmp_path / "output"
    env = {"GITHUB_ACTIONS": "true", "GITHUB_STEP_SUMMARY": str(summary), "GITHUB_OUTPUT": str(output)}
    code, out, err = _cli(
        "merge",
        "-t",
        f"{repo}:v1",
        "--platform",
        AMD64,
        "--optional-platform",
        "linux/arm64,linux/s390x",
        "--json",
        amd64,
        env=env,
    )
    assert code == 0, err
    data = json.loads(out)
    assert data["leftOut"] == [ARM64, S390X]
    assert data["tags"] == [f"{repo}:v1"]
    assert output.read_text() == f"digest={data['digest']}\nleft-out=linux/arm64,linux/s390x\n"
    text = summary.read_text()
    assert "Optional platforms left out (their builds gave no image): `linux/arm64`, `linux/s390x`" in text
    assert (
        "::warning title=splitbuild merge::published without the optional platforms linux/arm64, "
        "linux/s390x (no image given for them)"
    ) in err


def test_cli_human_output_and_plain_warning(registry: RegistryServer) -> None:
    repo = _repo(registry, "human")
    (amd64,) = push_all_sync(repo, [make_image(AMD64, seed="human")])
    code, out, err = _cli(
        "merge", "-t", f"{repo}:v1", "--platform", AMD64, "--optional-platform", ARM64, amd64, env={}
    )
    assert code == 0, err
    assert "  linux/arm64    left out (optional platform: no image given)\n" in out
    assert f"pushed    {repo}:v1" in out
    assert "splitbuild: warning: published without the optional platforms linux/arm64" in err
    # All platforms there: no warning, no left-out line.
    code, out, err = _cli("merge", "-t", f"{repo}:v2", "--platform", AMD64, amd64, env={})
    assert code == 0, err
    assert "left out" not in out + err


def test_cli_missing_required_platform_exits_7_and_publishes_nothing(registry: RegistryServer) -> None:
    repo = _repo(registry, "cli-required")
    (arm64,) = push_all_sync(repo, [make_image(ARM64, seed="cli-required")])
    code, out, err = _cli(
        "merge", "-t", f"{repo}:v1", "--platform", AMD64, "--optional-platform", ARM64, arm64, env={}
    )
    assert code == 7
    assert out == ""
    assert err.splitlines()[0] == (
        "splitbuild: error: platform set mismatch: missing required linux/amd64 "
        "(nothing published; only optional platforms may be left out)"
    )
    code, _, err = _cli("merge", "-t", f"{repo}:v1", "--platform", AMD64, "--optional-platform", AMD64, arm64)
    assert code == 2
    assert "both required" in err
