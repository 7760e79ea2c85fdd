"""copy: byte-for-byte across registries and layouts, mounts within one, platform filter, progress."""

from __future__ import annotations

import json
from pathlib import Path

import anyio
import pytest
from typer.testing import CliRunner

from splitbuild.cli.app import make_app
from splitbuild.client import Client
from splitbuild.errors import NotFound, UsageError
from splitbuild.models import Descriptor
from splitbuild.ops import copy
from splitbuild.reference import parse_reference
from splitbuild.retry import FAST_RETRY
from tests.images import Image, make_image, push
from tests.ops_support import multiarch, unique
from tests.registry_server import RegistryServer

pytestmark = pytest.mark.anyio


async def skopeo_raw(ref: str) -> bytes:
    transport = ref if ref.startswith("oci:") else f"docker://{ref}"
    result = await anyio.run_process(["skopeo", "inspect", "--raw", "--tls-verify=false", transport])
    return result.stdout


async def assert_tree(client: Client, ref: str, image: Image) -> None:
    """Every manifest of the tree is at ``ref``'s repository with its exact bytes, every blob too."""
    repo = client.repository(parse_reference(ref))
    assert (await repo.get_manifest(image.digest)).raw == image.manifest.raw
    for digest in image.blobs:
        assert await repo.has_blob(digest)
    for child in image.children:
        await assert_tree(client, ref, child)


async def test_cross_registry_copy_is_byte_for_byte(
    registry: RegistryServer, registry2: RegistryServer, client: Client
) -> None:
    src = f"{registry.host}/{unique('copy')}"
    dst = f"{registry2.host}/{unique('mirror')}"
    index = multiarch(seed="cross")
    await push(client.repository(parse_reference(src)), index, "v1")
    events: list[str] = []
    streamed: list[int] = []

    def on_progress(event: str, desc: Descriptor) -> None:
        events.append(event)

    def on_bytes(desc: Descriptor, n: int) -> None:
        streamed.append(n)

    result = await copy(client, f"{src}:v1", dst, on_progress=on_progress, on_bytes=on_bytes)
    assert (result.digest, result.source_digest) == (index.digest, index.digest)
    assert result.destination == f"{dst}:v1"
    assert not result.rewritten
    assert await skopeo_raw(f"{dst}:v1") == await skopeo_raw(f"{src}:v1") == index.manifest.raw
    await assert_tree(client, dst, index)
    assert result.stats.blobs_copied == 8  # 2 images x 2 blobs, 2 attestations x 2 blobs
    assert result.stats.manifests_pushed == 5
    assert sum(streamed) == result.stats.bytes_copied
    assert events.count("blob-done") == 8
    # everything there: one GET of the source and one HEAD of the destination tag
    again = await copy(client, f"{src}:v1", f"{dst}:v1", referrers=False)
    assert again.unchanged
    assert again.requests == 2
    # looking for referrers (the default) adds one lookup per manifest of the tree: the root and
    # its 4 children (the first copy learnt that the registry answers them from the tag schema),
    # and one listing of the source's tags for cosign's older sha256-<hex>.sig/.att/.sbom tags
    synced = await copy(client, f"{src}:v1", f"{dst}:v1")
    assert synced.unchanged
    assert synced.requests == 2 + 5 + 1
    assert (synced.stats.referrers, synced.stats.referrers_present) == ([], 0)
    # the same tree under a new tag: no blob or child request, just the tag
    other = await copy(client, f"{src}@{index.digest}", f"{dst}:stable", referrers=False)
    assert other.stats.manifests_skipped == 1
    assert other.requests == 4  # GET source, HEAD tag, HEAD digest, PUT tag


async def test_copy_within_a_registry_mounts(registry: RegistryServer, client: Client) -> None:
    src = f"{registry.host}/{unique('copy')}"
    dst = f"{registry.host}/{unique('copy')}"
    index = multiarch(seed="mount")
    await push(client.repository(parse_reference(src)), index, "v1")
    result = await copy(client, f"{src}:v1", f"{dst}:v1")
    assert result.stats.blobs_mounted == 8
    assert result.stats.blobs_copied == 0
    await assert_tree(client, dst, index)


async def test_platform_filter_writes_a_new_index_with_linked_attestations(
    registry: RegistryServer, registry2: RegistryServer, client: Client
) -> None:
    src = f"{registry.host}/{unique('copy')}"
    dst = f"{registry2.host}/{unique('mirror')}"
    index = multiarch(["linux/amd64", "linux/arm64", "linux/arm/v7"], seed="filter")
    await push(client.repository(parse_reference(src)), index, "v1")
    result = await copy(client, f"{src}:v1", f"{dst}:v1", platforms=["linux/arm64", "linux/arm/v7"])
    assert result.rewritten
    assert result.digest != index.digest
    assert result.platforms == ["linux/arm64", "linux/arm/v7"]
    copied = await client.repository(parse_reference(dst)).get_manifest("v1")
    assert copied.digest == result.digest
    images = [c for c in copied.children() if not c.is_attestation]
    attestations = [c for c in copied.children() if c.is_attestation]
    assert [str(c.platform) for c in images] == ["linux/arm64", "linux/arm/v7"]
    assert sorted(a.attests or "" for a in attestations) == sorted(c.digest for c in images)
    amd64 = index.children[0]
    assert await client.repository(parse_reference(dst)).head_manifest(amd64.digest) is None
    for child in [*index.children[1:3], *index.children[4:]]:
        await assert_tree(client, dst, child)
    # every platform asked for: nothing to drop, the index is copied as it is
    whole = await copy(
        client, f"{src}:v1", f"{dst}:all", platforms=["linux/amd64", "linux/arm64", "linux/arm/v7"]
    )
    assert (whole.rewritten, whole.digest) == (False, index.digest)
    with pytest.raises(NotFound, match="no linux/s390x image"):
        await copy(client, f"{src}:v1", f"{dst}:x", platforms=["linux/s390x"])


async def test_single_image_platform_filter(registry: RegistryServer, client: Client) -> None:
    src = f"{registry.host}/{unique('copy')}"
    image = make_image("linux/arm64", seed="one")
    await push(client.repository(parse_reference(src)), image, "v1")
    same = await copy(client, f"{src}:v1", f"{src}:arm", platforms=["linux/arm64"])
    assert (same.digest, same.rewritten) == (image.digest, False)
    with pytest.raises(NotFound, match="single linux/arm64 image"):
        await copy(client, f"{src}:v1", f"{src}:amd", platforms=["linux/amd64"])
    with pytest.raises(UsageError, match="differs"):
        await copy(client, f"{src}:v1", f"{src}@sha256:{'0' * 64}")


async def test_registry_to_layout_and_back(
    registry: RegistryServer, registry2: RegistryServer, client: Client, tmp_path: Path
) -> None:
    src = f"{registry.host}/{unique('copy')}"
    layout = f"oci:{tmp_path / 'oci'}"
    index = multiarch(seed="layout")
    await push(client.repository(parse_reference(src)), index, "v1")
    out = await copy(client, f"{src}:v1", f"{layout}:v1")
    assert out.digest == index.digest
    assert await skopeo_raw(f"{layout}:v1") == index.manifest.raw
    await assert_tree(client, layout, index)
    back = f"{registry2.host}/{unique('back')}"
    result = await copy(client, f"{layout}:v1", back)
    assert result.destination == f"{back}:v1"
    assert await skopeo_raw(f"{back}:v1") == index.manifest.raw
    by_digest = await copy(client, f"{layout}@{index.digest}", f"{registry2.host}/{unique('bydigest')}")
    assert by_digest.destination.endswith(f"@{index.digest}")


def test_cli_copy_json(registry: RegistryServer, registry2: RegistryServer) -> None:
    src = f"{registry.host}/{unique('copycli')}"
    dst = f"{registry2.host}/{unique('copycli')}"
    index = multiarch(seed="cli")

    async def prepare() -> None:
        async with Client(retry=FAST_RETRY, env={}) as c:
            await push(c.repository(parse_reference(src)), index, "v1")

    anyio.run(prepare)
    runner = CliRunner()
    result = runner.invoke(make_app(), ["copy", f"{src}:v1", f"{dst}:v1", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["digest"] == index.digest
    assert data["blobs"]["copied"] == 8
    plain = runner.invoke(make_app(), ["copy", f"{src}:v1", f"{dst}:v2", "--platform", "linux/amd64"])
    assert plain.exit_code == 0, plain.output
    assert "wrote a new index" in plain.stdout
    assert "\x1b[" not in plain.stdout + plain.stderr  # no progress bar or colour off a terminal
