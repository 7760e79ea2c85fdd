"""One conformance suite for both backends (registry and OCI layout), plus backend-specific tests."""

from __future__ import annotations

import json
import tracemalloc
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import httpx
import pytest

from splitbuild.client import Client
from splitbuild.errors import DigestMismatch, InvalidManifest, NotFound
from splitbuild.models import Descriptor, Manifest
from splitbuild.reference import LayoutReference, Reference
from splitbuild.retry import FAST_RETRY
from splitbuild.store.base import Mounter, Repository
from splitbuild.transfer import Transfer
from tests.images import Image, make_image, push, sha256
from tests.registry_server import RegistryServer

pytestmark = pytest.mark.anyio


def unique(prefix: str = "test") -> str:
    return f"{prefix}/{uuid.uuid4().hex[:10]}"


@pytest.fixture
async def paging_client() -> AsyncIterator[Client]:
    """The shared ``client`` with tag lists asked for in pages of 50, so that a registry answers
    ``test_tags_list_and_retag``'s 130 tags in three pages."""
    async with Client(retry=FAST_RETRY, env={}, page_size=50) as c:
        yield c


@pytest.fixture(params=["registry", "layout"])
def repo(request: pytest.FixtureRequest, paging_client: Client, tmp_path: Path) -> Repository:
    if request.param == "registry":
        server: RegistryServer = request.getfixturevalue("registry")
        return paging_client.repository(Reference.parse(f"{server.host}/{unique()}"))
    return paging_client.repository(LayoutReference.parse(f"oci:{tmp_path / 'layout'}"))


async def test_manifest_round_trip_keeps_exact_bytes(repo: Repository) -> None:
    image = make_image("linux/arm64", seed="round-trip")
    await push(repo, image, tag="v1")
    by_digest = await repo.get_manifest(image.digest)
    by_tag = await repo.get_manifest("v1")
    assert by_digest.raw == image.manifest.raw == by_tag.raw
    assert by_tag.digest == image.digest == sha256(by_tag.raw)
    head = await repo.head_manifest("v1")
    assert head is not None
    assert (head.digest, head.size, head.media_type) == (
        image.digest,
        len(image.manifest.raw),
        image.manifest.media_type,
    )
    assert await repo.head_manifest(image.digest) is not None


async def test_missing_manifest_and_blob(repo: Repository) -> None:
    await push(repo, make_image(seed="present"), tag="present")
    assert await repo.head_manifest("absent") is None
    with pytest.raises(NotFound):
        await repo.get_manifest("absent")
    missing = "sha256:" + "0" * 64
    assert await repo.head_manifest(missing) is None
    assert not await repo.has_blob(missing)
    with pytest.raises(NotFound):
        await repo.read_blob(Descriptor(mediaType="x", digest=missing, size=1))


async def test_blobs_stream_and_read(repo: Repository) -> None:
    data = b"x" * 3_000_000 + b"end"
    desc = Descriptor(mediaType="application/octet-stream", digest=sha256(data), size=len(data))
    await repo.put_blob(desc, data)
    assert await repo.has_blob(desc.digest)
    assert await repo.read_blob(desc) == data
    got = bytearray()
    async with repo.open_blob(desc) as stream:
        async for chunk in stream:
            got += chunk
    assert bytes(got) == data


async def test_put_blob_rejects_wrong_digest(repo: Repository) -> None:
    desc = Descriptor(mediaType="application/octet-stream", digest=sha256(b"right"), size=5)
    with pytest.raises(DigestMismatch):
        await repo.put_blob(desc, b"wrong")
    assert not await repo.has_blob(desc.digest)


async def test_tags_list_and_retag(repo: Repository) -> None:
    image = make_image(seed="tags")
    await push(repo, image)
    tags = [f"t{i:03d}" for i in range(130)]
    for tag in tags:
        await repo.put_manifest(image.manifest, tag)
    listed = await repo.list_tags()
    # 130 tags through pages of 50 on the registry (distribution 2.8 does not sort within a page)
    assert len(listed) == len(set(listed))
    assert sorted(listed) == tags


async def test_delete_manifest(repo: Repository) -> None:
    image = make_image(seed="delete")
    await push(repo, image, tag="gone")
    await repo.delete_manifest(image.digest)
    assert await repo.head_manifest(image.digest) is None
    with pytest.raises(NotFound):
        await repo.delete_manifest(image.digest)


async def test_index_round_trip(repo: Repository) -> None:
    from tests.images import make_buildx_index

    index = make_buildx_index(make_image("linux/amd64", seed="idx"), "linux/amd64", seed="idx")
    await push(repo, index, tag="multi")
    got = await repo.get_manifest("multi")
    assert got.is_index
    assert got.raw == index.manifest.raw
    assert [c.digest for c in got.children()] == [c.digest for c in index.children]


async def test_corrupt_layout_blob_is_detected(tmp_path: Path, client: Client) -> None:
    repo = client.repository(LayoutReference.parse(f"oci:{tmp_path / 'l'}"))
    image = make_image(seed="corrupt")
    await push(repo, image, tag="v1")
    config = image.manifest.image().config
    blob = tmp_path / "l" / "blobs" / "sha256" / config.digest.split(":")[1]
    blob.write_bytes(blob.read_bytes()[:-1] + b"!")
    with pytest.raises(DigestMismatch):
        await repo.read_blob(config)
    manifest_path = tmp_path / "l" / "blobs" / "sha256" / image.digest.split(":")[1]
    manifest_path.write_bytes(manifest_path.read_bytes() + b" ")
    with pytest.raises(DigestMismatch):
        await repo.get_manifest("v1")


async def test_corrupt_registry_blob_is_detected(registry: RegistryServer, client: Client) -> None:
    repo = client.repository(Reference.parse(f"{registry.host}/{unique('corrupt')}"))
    image = make_image(seed="corrupt-reg")
    await push(repo, image, tag="v1")
    layer = image.manifest.image().layers[0]
    hexd = layer.digest.split(":")[1]
    stored = (
        registry.root / "data" / "docker" / "registry" / "v2" / "blobs" / "sha256" / hexd[:2] / hexd / "data"
    )
    stored.write_bytes(b"Z" * layer.size)
    with pytest.raises(DigestMismatch):
        await repo.read_blob(layer)


async def test_registry_rejects_bad_manifest_bytes(registry: RegistryServer, client: Client) -> None:
    with pytest.raises(InvalidManifest):
        Manifest.from_bytes(b"{not json")
    repo = client.repository(Reference.parse(f"{registry.host}/{unique('bad')}"))
    # a manifest whose blobs were never pushed: the registry refuses it with MANIFEST_BLOB_UNKNOWN
    from splitbuild.errors import RegistryError

    with pytest.raises(RegistryError) as info:
        await repo.put_manifest(make_image(seed="no-blobs").manifest, "v1")
    assert "MANIFEST_BLOB_UNKNOWN" in str(info.value)
    assert info.value.exit_code == 5


async def test_mount_across_repositories(registry: RegistryServer, client: Client) -> None:
    src = client.repository(Reference.parse(f"{registry.host}/{unique('mount-src')}"))
    dst = client.repository(Reference.parse(f"{registry.host}/{unique('mount-dst')}"))
    assert isinstance(dst, Mounter)
    image = make_image(seed="mount", layers=3)
    await push(src, image, tag="v1")
    transfer = Transfer(src, dst)
    await transfer.manifest(image.manifest.descriptor(), image.manifest)
    assert transfer.stats.blobs_mounted == 4
    assert transfer.stats.blobs_copied == 0
    assert (await dst.get_manifest(image.digest)).raw == image.manifest.raw


async def test_cross_registry_copy_streams_with_bounded_memory(
    registry: RegistryServer, registry2: RegistryServer
) -> None:
    size = 24 * 1024 * 1024
    async with Client(retry=FAST_RETRY, env={}, chunk_size=4 * 1024 * 1024) as client:
        src = client.repository(Reference.parse(f"{registry.host}/{unique('big')}"))
        dst = client.repository(Reference.parse(f"{registry2.host}/{unique('big')}"))
        image = make_image(seed="big", layer_size=size)
        await push(src, image, tag="v1")
        del image.blobs
        tracemalloc.start()
        try:
            transfer = Transfer(src, dst)
            await transfer.manifest(image.manifest.descriptor(), image.manifest)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert transfer.stats.blobs_copied == 2
        assert transfer.stats.bytes_copied > size
        assert peak < 12 * 1024 * 1024, f"peak {peak} bytes for a {size}-byte blob"
        layer = image.manifest.image().layers[0]
        assert await dst.has_blob(layer.digest)
        # a second copy finds the manifest present and skips everything
        again = Transfer(src, dst)
        await again.manifest(image.manifest.descriptor(), image.manifest)
        assert again.stats.manifests_skipped == 1
        assert again.stats.blobs_copied == 0


async def test_skopeo_reads_what_we_write(registry: RegistryServer, client: Client, tmp_path: Path) -> None:
    image = make_image("linux/arm64", seed="skopeo")
    layout = client.repository(LayoutReference.parse(f"oci:{tmp_path / 'oci'}"))
    await push(layout, image, tag="v1")
    raw = (await anyio.run_process(["skopeo", "inspect", "--raw", f"oci:{tmp_path / 'oci'}:v1"])).stdout
    assert raw == image.manifest.raw
    name = unique("skopeo")
    remote = client.repository(Reference.parse(f"{registry.host}/{name}"))
    await push(remote, image, tag="v1")
    cmd = ["skopeo", "inspect", "--raw", "--tls-verify=false", f"docker://{registry.host}/{name}:v1"]
    raw = (await anyio.run_process(cmd)).stdout
    assert raw == image.manifest.raw
    config = json.loads(
        (await anyio.run_process(["skopeo", "inspect", "--config", f"oci:{tmp_path / 'oci'}:v1"])).stdout
    )
    assert config["architecture"] == "arm64"


class SlowUploads(httpx.AsyncBaseTransport):
    """Forwards to the registry, finishing blob uploads (the PUT ``?digest=``) a little late."""

    def __init__(self) -> None:
        self.inner = httpx.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.method == "PUT" and "/blobs/uploads/" in request.url.path:
            await anyio.sleep(0.1)
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


async def test_a_blob_shared_by_two_manifests_is_there_before_either_is_put(
    registry: RegistryServer, registry2: RegistryServer
) -> None:
    first = make_image("linux/amd64", seed="shared-layer")
    doc = json.loads(first.manifest.raw)
    doc["annotations"] = {"org.opencontainers.image.title": "second"}  # same blobs, other manifest
    second = Image(Manifest.from_bytes(json.dumps(doc).encode()), first.blobs)
    async with Client(retry=FAST_RETRY, env={}, transport=SlowUploads()) as client:
        src = client.repository(Reference.parse(f"{registry.host}/{unique('shared')}"))
        dst = client.repository(Reference.parse(f"{registry2.host}/{unique('shared')}"))
        for image in (first, second):
            await push(src, image)
        transfer = Transfer(src, dst)
        async with anyio.create_task_group() as tg:
            for image in (first, second):
                tg.start_soon(transfer.manifest, image.manifest.descriptor(), image.manifest)
        assert transfer.stats.blobs_copied == 2  # each blob once
        assert transfer.stats.manifests_pushed == 2
        for image in (first, second):
            assert (await dst.get_manifest(image.digest)).raw == image.manifest.raw


async def test_an_oversized_manifest_is_refused_without_reading_it_whole() -> None:
    from tests.faults import Reply, ScriptedServer

    body = b"{" + b" " * (64 * 1024 * 1024) + b"}"
    with ScriptedServer() as server:
        server.add(
            r"/v2/big/manifests/",
            Reply(200, body, {"Content-Type": "application/vnd.oci.image.manifest.v1+json"}),
        )
        async with Client(retry=FAST_RETRY, env={}) as client:
            repo = client.repository(Reference.parse(f"{server.host}/big"))
            tracemalloc.start()
            try:
                with pytest.raises(InvalidManifest, match="exceeds the 4 MiB limit"):
                    await repo.get_manifest("v1")
                _, peak = tracemalloc.get_traced_memory()
            finally:
                tracemalloc.stop()
    assert peak < 8 * 1024 * 1024


async def test_a_malformed_layout_index_entry_is_invalid_input(tmp_path: Path, client: Client) -> None:
    layout = tmp_path / "broken"
    layout.mkdir()
    (layout / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    entry = {
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "digest": sha256(b"x"),
        "annotations": {"org.opencontainers.image.ref.name": "v1"},
    }  # no size
    (layout / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [entry]}))
    repo = client.repository(LayoutReference.parse(f"oci:{layout}"))
    with pytest.raises(InvalidManifest, match=r"index\.json entry"):
        await repo.head_manifest("v1")
