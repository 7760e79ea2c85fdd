"""delete: the tag-delete ladder for real (distribution 2.8 has no OCI tag DELETE), shared manifests,
refusals, 405 messages naming the registry's own API, layouts."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import anyio
import httpx
import pytest
from typer.testing import CliRunner

from splitbuild.cli.app import make_app
from splitbuild.client import Client
from splitbuild.errors import NotFound, Refused, RegistryError
from splitbuild.ops import delete
from splitbuild.reference import Reference, parse_reference
from splitbuild.retry import FAST_RETRY
from splitbuild.store.registry import RegistryRepository, deletion_help
from tests.images import make_image, push
from tests.ops_support import Refusing, deny_digest_delete, multiarch, revisions, unique, unsupported
from tests.registry_server import RegistryServer

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def no_delete_registry(registry_factory: Callable[..., RegistryServer]) -> RegistryServer:
    """distribution with deletion turned off (its default): every DELETE answers 405 UNSUPPORTED."""
    return registry_factory(extra_config={"storage": {"delete": {"enabled": False}}})


async def test_tag_delete_falls_back_to_placeholder_and_leaves_nothing(
    registry: RegistryServer, client: Client
) -> None:
    path = unique("ladder")
    repo = client.repository(Reference.parse(f"{registry.host}/{path}"))
    image = make_image(seed="ladder")
    await push(repo, image, "v1")
    await repo.put_manifest(image.manifest, "v2")
    before = revisions(registry, path)
    assert await repo.delete_tag("v1") == "placeholder"
    assert await repo.head_manifest("v1") is None
    assert (await repo.get_manifest("v2")).digest == image.digest
    assert await repo.head_manifest(image.digest) is not None
    # the placeholder manifest was deleted again: the storage holds what it held before
    assert revisions(registry, path) == before
    assert await repo.list_tags() == ["v2"]
    with pytest.raises(NotFound, match="tag not found"):
        await repo.delete_tag("v1")


async def test_native_tag_delete_is_used_when_offered(client: Client) -> None:
    calls: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(f"{request.method} {request.url.path}")
        if request.method == "DELETE" and request.url.path.endswith("/manifests/v1"):
            return httpx.Response(202)
        return httpx.Response(404)

    async with Client(retry=FAST_RETRY, env={}, transport=httpx.MockTransport(handler)) as mock:
        repo = mock.repository(Reference.parse("registry.example.com/acme/app"))
        assert isinstance(repo, RegistryRepository)
        assert await repo.delete_tag("v1") == "tag"
    assert calls == ["DELETE /v2/acme/app/manifests/v1"]


async def test_placeholder_refused_puts_the_tag_back(registry: RegistryServer) -> None:
    path = unique("restore")
    transport = Refusing(deny_digest_delete)
    async with Client(retry=FAST_RETRY, env={}, transport=transport) as c:
        repo = c.repository(Reference.parse(f"{registry.host}/{path}"))
        assert isinstance(repo, RegistryRepository)
        image = make_image(seed="restore")
        await push(repo, image, "v1")
        with pytest.raises(RegistryError, match=r"points at .* again") as info:
            await repo.delete_tag("v1")
        assert "REGISTRY_STORAGE_DELETE_ENABLED" in (info.value.hint or "")
        assert (await repo.get_manifest("v1")).digest == image.digest
    assert len(transport.refused) == 1


async def test_delete_disabled_gives_a_clear_message_and_changes_nothing(
    no_delete_registry: RegistryServer, client: Client
) -> None:
    path = unique("nodelete")
    repo = client.repository(Reference.parse(f"{no_delete_registry.host}/{path}"))
    image = make_image(seed="nodelete")
    await push(repo, image, "v1")
    before = revisions(no_delete_registry, path)
    with pytest.raises(RegistryError) as info:
        await delete(client, f"{no_delete_registry.host}/{path}:v1", tag_only=True)
    assert info.value.status == 405
    assert "does not allow deletion" in info.value.message
    assert "REGISTRY_STORAGE_DELETE_ENABLED=true" in (info.value.hint or "")
    # no placeholder was pushed: the tag still points at the image, nothing new is stored
    assert (await repo.get_manifest("v1")).digest == image.digest
    assert revisions(no_delete_registry, path) == before


@pytest.mark.parametrize(
    ("ref", "needle"),
    [
        ("ghcr.io/acme/tools/app", "gh api -X DELETE /orgs/acme/packages/container/tools%2Fapp/versions/"),
        ("docker.io/acme/app", "https://hub.docker.com/v2/repositories/acme/app/tags/v1/"),
        ("123456789012.dkr.ecr.eu-west-1.amazonaws.com/app", "aws ecr batch-delete-image"),
    ],
)
async def test_405_names_the_registry_api(ref: str, needle: str) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return unsupported() if request.method == "DELETE" else httpx.Response(404)

    async with Client(retry=FAST_RETRY, env={}, transport=httpx.MockTransport(handler)) as mock:
        repo = mock.repository(Reference.parse(ref))
        assert isinstance(repo, RegistryRepository)
        with pytest.raises(RegistryError) as info:
            await repo.delete_tag("v1")
    assert needle in (info.value.hint or "")
    assert info.value.message.endswith(
        "does not allow deletion through the registry API (405 Method Not Allowed)"
    )
    assert deletion_help(Reference.parse(ref), "v1") == info.value.hint


async def test_delete_tag_keeps_a_manifest_another_tag_uses(registry: RegistryServer, client: Client) -> None:
    name = f"{registry.host}/{unique('shared')}"
    index = multiarch(seed="shared")
    await push(client.repository(parse_reference(name)), index, "v1")
    await client.repository(parse_reference(name)).put_manifest(index.manifest, "latest")
    result = await delete(client, f"{name}:v1")
    assert result.plan is not None
    assert result.outcome is not None
    assert result.plan.untag == ["v1"]
    assert result.plan.manifests == []
    assert result.plan.protected[index.digest] == "tag latest"
    repo = client.repository(parse_reference(name))
    assert await repo.list_tags() == ["latest"]
    for child in index.children:
        assert await repo.head_manifest(child.digest) is not None


async def test_delete_last_tag_of_an_index_takes_what_only_it_used(
    registry: RegistryServer, client: Client
) -> None:
    name = f"{registry.host}/{unique('tree')}"
    repo = client.repository(parse_reference(name))
    old = multiarch(seed="old")
    # the new index shares the arm64 image (and its attestation) with the old one
    new = multiarch(images=[make_image("linux/amd64", seed="new"), old.children[1]], seed="old")
    await push(repo, old, "old")
    await push(repo, new, "new")
    result = await delete(client, f"{name}:old")
    assert result.plan is not None
    levels = [[d.digest for d in level] for level in result.plan.levels]
    assert levels[0] == [old.digest]  # the index goes before its children
    doomed = {old.children[0].digest, old.children[2].digest}
    assert set(levels[1]) == doomed
    assert result.plan.protected == {
        old.children[1].digest: "linux/arm64 image of new",
        old.children[3].digest: "attestation in new",
    }
    for digest in [old.digest, *doomed]:
        assert await repo.head_manifest(digest) is None
    for child in new.children:
        assert await repo.head_manifest(child.digest) is not None
    assert await repo.list_tags() == ["new"]


async def test_delete_digest_refused_while_in_use(registry: RegistryServer, client: Client) -> None:
    name = f"{registry.host}/{unique('refuse')}"
    repo = client.repository(parse_reference(name))
    index = multiarch(seed="refuse")
    await push(repo, index, "v1")
    child = index.children[0].digest
    with pytest.raises(Refused, match=r"in use \(linux/amd64 image of v1\)") as info:
        await delete(client, f"{name}@{child}")
    assert info.value.exit_code == 8
    with pytest.raises(Refused, match=r"in use \(tag v1\)"):
        await delete(client, f"{name}@{index.digest}")
    assert await repo.head_manifest(child) is not None
    dry = await delete(client, f"{name}@{child}", force=True, dry_run=True)
    assert dry.outcome is None
    assert await repo.head_manifest(child) is not None
    forced = await delete(client, f"{name}@{child}", force=True)
    assert forced.outcome is not None
    assert forced.outcome.deleted == [child]
    assert await repo.head_manifest(child) is None
    assert await repo.head_manifest(index.digest) is not None


async def test_delete_untagged_index_with_its_children(registry: RegistryServer, client: Client) -> None:
    name = f"{registry.host}/{unique('untagged')}"
    repo = client.repository(parse_reference(name))
    index = multiarch(seed="untagged")
    await push(repo, index)
    await push(repo, make_image(seed="other"), "other")
    result = await delete(client, f"{name}@{index.digest}")
    assert result.outcome is not None
    assert set(result.outcome.deleted) == {index.digest, *(c.digest for c in index.children)}
    assert await repo.list_tags() == ["other"]


async def test_delete_on_a_layout(tmp_path: Path, client: Client) -> None:
    layout = f"oci:{tmp_path / 'oci'}"
    repo = client.repository(parse_reference(layout))
    index = multiarch(seed="layout")
    await push(repo, index, "v1")
    await repo.put_manifest(index.manifest, "v2")
    await delete(client, f"{layout}:v1")
    assert await repo.list_tags() == ["v2"]
    await delete(client, f"{layout}:v2")
    assert await repo.list_tags() == []
    for child in index.children:
        assert await repo.head_manifest(child.digest) is None


def test_cli_delete(registry: RegistryServer) -> None:
    name = f"{registry.host}/{unique('deletecli')}"
    index = multiarch(seed="cli")

    async def prepare() -> None:
        async with Client(retry=FAST_RETRY, env={}) as c:
            await push(c.repository(parse_reference(name)), index, "v1")

    anyio.run(prepare)
    runner = CliRunner()
    app = make_app()
    refused = runner.invoke(app, ["delete", f"{name}@{index.digest}"])
    assert refused.exit_code == 8
    assert "in use (tag v1)" in refused.stderr
    assert "--force" in refused.stderr
    dry = runner.invoke(app, ["delete", f"{name}:v1", "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert "dry run: nothing deleted" in dry.stdout
    assert index.digest in dry.stdout
    done = runner.invoke(app, ["delete", f"{name}:v1", "--json"])
    data = json.loads(done.stdout)
    assert set(data["result"]["deleted"]) == {index.digest, *(c.digest for c in index.children)}
    gone = runner.invoke(app, ["delete", f"{name}:v1"])
    assert gone.exit_code == 4


async def test_deleting_a_subject_takes_referrers_of_its_referrers(tmp_path: Path, client: Client) -> None:
    from tests.images import make_sbom, make_signature

    layout = f"oci:{tmp_path / 'nested'}"
    repo = client.repository(parse_reference(layout))
    index = multiarch(["linux/amd64"], seed="nested")
    await push(repo, index, "v1")
    sbom = make_sbom(index, seed="nested")
    await push(repo, sbom)  # listed in the referrers tag of the index
    signature = make_signature(sbom, seed="nested")
    await push(repo, signature)  # listed in the referrers tag of the SBOM
    assert len(await repo.list_tags()) == 3
    result = await delete(client, f"{layout}:v1")
    assert result.plan.keep == {}
    assert await repo.head_manifest(sbom.digest) is None
    assert await repo.list_tags() == []  # no orphaned sha256-<sbom> tag
