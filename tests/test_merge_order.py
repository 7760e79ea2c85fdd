"""Publishing never goes backwards, against the real registry: ordered tags (the index's
``created``), ``--allow-rollback``, and ``--delete-displaced`` (what the moved tags left)."""

from __future__ import annotations

import json
import uuid

import anyio
import pytest
from typer.testing import CliRunner

from splitbuild.cli.app import make_app
from splitbuild.client import Client
from splitbuild.index import Annotations
from splitbuild.merge import CREATED, KEPT_NEWER, MergeOptions, merge, parse_sources, parse_targets
from splitbuild.publish import publish
from splitbuild.reference import Reference
from tests.images import Image, make_image, push
from tests.registry_server import RegistryServer

pytestmark = pytest.mark.anyio

PLATFORMS = ["linux/amd64", "linux/arm64"]
OLD, NEW = "2026-11-01T10:00:00Z", "2026-11-02T10:00:00Z"


def repo_name(registry: RegistryServer) -> str:
    return f"{registry.host}/order/{uuid.uuid4().hex[:10]}"


async def seed(client: Client, repo: str, seed: str) -> list[str]:
    images: list[Image] = [make_image(p, seed=seed) for p in PLATFORMS]
    target = client.repository(Reference.parse(repo))
    for image in images:
        await push(target, image)
    return [i.digest for i in images]


def options(tags: list[str], sources: list[str], created: str | None, **kw: bool) -> MergeOptions:
    refs = parse_targets(tags)
    annotations = Annotations()
    if created is not None:
        annotations.index[CREATED] = created
    return MergeOptions(targets=refs, sources=parse_sources(sources, refs[0]), annotations=annotations, **kw)


async def tag_digest(client: Client, ref: str) -> str | None:
    parsed = Reference.parse(ref)
    assert parsed.tag is not None
    found = await client.repository(parsed).head_manifest(parsed.tag)
    return found.digest if found is not None else None


async def test_an_older_merge_finishing_last_leaves_every_tag_on_the_newer_index(
    registry: RegistryServer, client: Client
) -> None:
    repo = repo_name(registry)
    tags = [f"{repo}:latest", f"{repo}:main"]
    newer = await merge(client, options(tags, await seed(client, repo, "new"), NEW))
    older_sources = await seed(client, repo, "old")
    older = await merge(client, options(tags, older_sources, OLD))
    assert older.pushed == []
    assert [str(t.ref) for t in older.plan.tags_kept] == tags
    for tag in tags:
        assert await tag_digest(client, tag) == newer.plan.index.digest
    data = older.to_dict()
    assert data["kept"] == [
        {"tag": t, "digest": newer.plan.index.digest, "created": NEW, "reason": KEPT_NEWER} for t in tags
    ]
    assert data["created"] == OLD
    # Nothing moved, so nothing was written: not even the older index by digest.
    assert await client.repository(Reference.parse(repo)).head_manifest(older.plan.index.digest) is None
    # The two sources (manifest + config each) and the tag GETs, which read the newer index.
    assert older.requests == 2 * 2 + 2


async def test_allow_rollback_moves_the_tags(registry: RegistryServer, client: Client) -> None:
    repo = repo_name(registry)
    tags = [f"{repo}:latest"]
    await merge(client, options(tags, await seed(client, repo, "new"), NEW))
    older = await merge(client, options(tags, await seed(client, repo, "old"), OLD, allow_rollback=True))
    assert older.pushed == tags
    assert older.plan.tags_kept == []
    assert await tag_digest(client, tags[0]) == older.plan.index.digest


async def test_only_the_tags_on_a_newer_index_stay(registry: RegistryServer, client: Client) -> None:
    repo = repo_name(registry)
    newer = await merge(client, options([f"{repo}:latest"], await seed(client, repo, "new"), NEW))
    older = await merge(
        client, options([f"{repo}:latest", f"{repo}:sha-abc"], await seed(client, repo, "old"), OLD)
    )
    assert older.pushed == [f"{repo}:sha-abc"]
    assert [str(t.ref) for t in older.plan.tags_kept] == [f"{repo}:latest"]
    assert await tag_digest(client, f"{repo}:latest") == newer.plan.index.digest
    assert await tag_digest(client, f"{repo}:sha-abc") == older.plan.index.digest


@pytest.mark.parametrize(("first", "second"), [(None, OLD), (NEW, None), (OLD, OLD), (OLD, NEW)])
async def test_the_tag_moves_without_an_order_or_to_an_equal_or_newer_index(
    registry: RegistryServer, client: Client, first: str | None, second: str | None
) -> None:
    repo = repo_name(registry)
    tags = [f"{repo}:latest"]
    await merge(client, options(tags, await seed(client, repo, "one"), first))
    again = await merge(client, options(tags, await seed(client, repo, "two"), second))
    assert again.pushed == tags
    assert await tag_digest(client, tags[0]) == again.plan.index.digest


async def test_an_unparsable_created_on_the_current_index_does_not_hold_the_tag(
    registry: RegistryServer, client: Client
) -> None:
    repo = repo_name(registry)
    tags = [f"{repo}:latest"]
    await merge(client, options(tags, await seed(client, repo, "one"), "last tuesday"))
    again = await merge(client, options(tags, await seed(client, repo, "two"), OLD))
    assert again.pushed == tags


def test_the_cli_reports_kept_tags_and_exits_0(registry: RegistryServer) -> None:
    repo = repo_name(registry)

    async def prepare() -> list[str]:
        async with Client(env={}) as c:
            await merge(c, options([f"{repo}:latest"], await seed(c, repo, "new"), NEW))
            return await seed(c, repo, "old")

    older = anyio.run(prepare)
    args = ["merge", "-t", f"{repo}:latest", "--annotation", f"index:{CREATED}={OLD}", *older]
    runner = CliRunner()
    human = runner.invoke(make_app(), args, env={"SPLITBUILD_BLOB_CACHE": "0"})
    assert human.exit_code == 0, human.stderr
    assert f"kept      {repo}:latest (newer index already published: created {NEW})" in human.stdout
    dry = runner.invoke(make_app(), [*args, "--dry-run"], env={"SPLITBUILD_BLOB_CACHE": "0"})
    assert dry.exit_code == 0, dry.stderr
    assert f"(kept: newer index already published) {repo}:latest" in dry.stdout
    assert "PUT" not in dry.stdout
    moved = runner.invoke(
        make_app(), [*args, "--allow-rollback", "--json"], env={"SPLITBUILD_BLOB_CACHE": "0"}
    )
    assert moved.exit_code == 0, moved.stderr
    data = json.loads(moved.stdout)
    assert data["tags"] == [f"{repo}:latest"]
    assert data["kept"] == []


async def test_delete_displaced_removes_exactly_what_nothing_else_reaches(
    registry: RegistryServer, client: Client
) -> None:
    repo = repo_name(registry)
    handle = client.repository(Reference.parse(repo))
    shared = make_image("linux/arm64", seed="shared")
    await push(handle, shared)
    first_amd64 = make_image("linux/amd64", seed="first")
    await push(handle, first_amd64)
    first = await merge(
        client, options([f"{repo}:latest", f"{repo}:v1"], [first_amd64.digest, shared.digest], OLD)
    )
    # A second index under :latest only: the first stays in use by :v1 and is kept.
    second_amd64 = make_image("linux/amd64", seed="second")
    await push(handle, second_amd64)
    second = await publish(
        client,
        options([f"{repo}:latest"], [second_amd64.digest, shared.digest], NEW),
        delete_displaced=True,
    )
    assert second.pushed == [f"{repo}:latest"]
    assert second.displaced == {Reference.parse(repo).repo().name: [first.plan.index.digest]}
    [kept] = second.cleanup
    report = kept.to_dict()
    assert report["plan"] is None
    assert report["kept"] == [{"digest": first.plan.index.digest, "reason": "tag v1"}]
    assert await handle.head_manifest(first.plan.index.digest) is not None
    # Now :v1 moves too: the first index and its own amd64 image go; the shared arm64 image,
    # still in the second index, stays.
    third = await publish(
        client,
        options([f"{repo}:v1"], [second_amd64.digest, shared.digest], NEW),
        delete_displaced=True,
    )
    assert third.plan.index.digest == second.plan.index.digest
    [cleanup] = third.cleanup
    report = cleanup.to_dict()
    assert sorted(report["result"]["deleted"]) == sorted([first.plan.index.digest, first_amd64.digest])
    assert await handle.head_manifest(first.plan.index.digest) is None
    assert await handle.head_manifest(first_amd64.digest) is None
    assert await handle.head_manifest(shared.digest) is not None
    assert await handle.head_manifest(second_amd64.digest) is not None
    assert await tag_digest(client, f"{repo}:latest") == second.plan.index.digest
    assert await tag_digest(client, f"{repo}:v1") == second.plan.index.digest
    assert third.to_dict()["cleanupFailed"] == []


async def test_delete_displaced_does_nothing_when_no_tag_moved(
    registry: RegistryServer, client: Client
) -> None:
    repo = repo_name(registry)
    tags = [f"{repo}:latest"]
    sources = await seed(client, repo, "same")
    await merge(client, options(tags, sources, OLD))
    again = await publish(client, options(tags, sources, OLD), delete_displaced=True)
    assert again.unchanged == tags
    assert again.displaced == {}
    assert again.cleanup == []


def test_the_config_keys_reach_the_generated_merge_command() -> None:
    from splitbuild.config import parse_config
    from splitbuild.workflow.merge_step import merge_command

    text = """
[image]
names = ["ghcr.io/acme/app"]
platforms = ["linux/amd64", "linux/arm64"]
{keys}
[tags]
rules = ["type=ref,event=branch"]
"""
    plain = merge_command(parse_config(text.format(keys=""), "splitbuild.toml"))
    both = merge_command(
        parse_config(text.format(keys="allow-rollback = true\ndelete-displaced = true\n"), "splitbuild.toml")
    )
    assert plain.switches == ()
    assert both.switches == ("--allow-rollback", "--delete-displaced")
    assert both.script().splitlines()[2] == "splitbuild merge --allow-rollback --delete-displaced \\"
    digests = {"linux/amd64": "sha256:" + "a" * 64, "linux/arm64": "sha256:" + "b" * 64}
    assert both.argv(digests)[:4] == ["splitbuild", "merge", "--allow-rollback", "--delete-displaced"]
    assert plain.argv(digests)[2] == "--image"


def test_the_step_summary_names_kept_tags() -> None:
    from splitbuild.report import github_merge_summary

    data = {
        "digest": "sha256:" + "c" * 64,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "size": 1,
        "platforms": [],
        "tags": [],
        "kept": [{"tag": "ghcr.io/acme/app:latest", "digest": "sha256:" + "d" * 64, "created": NEW}],
    }
    assert f"Tags kept on a newer index: `ghcr.io/acme/app:latest` (created {NEW})" in github_merge_summary(
        data
    )
