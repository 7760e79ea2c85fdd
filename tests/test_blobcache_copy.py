"""The blob location cache at work (issue 19): copying an image into new repositories of a registry
that already holds its blobs elsewhere mounts them instead of streaming them, against real
registries; a wrong entry falls back to streaming and is forgotten."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from splitbuild.blobcache import BlobLocations
from splitbuild.client import Client
from splitbuild.ops import copy
from splitbuild.reference import Reference
from tests.images import Image, make_image, push
from tests.registry_server import RegistryServer

pytestmark = pytest.mark.anyio
ROOT = Path(__file__).resolve().parent.parent


def _image(name: str) -> Image:
    return make_image("linux/amd64", seed=name, layers=3)


async def _source(registry: RegistryServer, name: str) -> str:
    image = _image(name)
    async with Client() as client:
        await push(client.repository(Reference.parse(f"{registry.host}/{name}")), image, "v1")
    return f"{registry.host}/{name}:v1"


async def test_later_copies_mount_what_the_registry_already_holds(
    registry: RegistryServer, registry2: RegistryServer, tmp_path: Path
) -> None:
    source = await _source(registry, "cache/src")
    cache = BlobLocations.open(tmp_path, env={})
    assert cache is not None
    async with Client(blob_cache=cache) as client:
        first = await copy(client, source, f"{registry2.host}/cache/mirror-a:v1")
        second = await copy(client, source, f"{registry2.host}/cache/mirror-b:v1")
    assert first.stats.blobs_copied == 4  # config + 3 layers, streamed
    assert first.stats.blobs_mounted == 0
    assert second.stats.blobs_copied == 0  # every blob mounted from mirror-a
    assert second.stats.blobs_mounted == 4
    assert second.stats.bytes_copied == 0
    async with Client() as client:  # the mounted copy is complete and byte for byte
        repo = client.repository(Reference.parse(f"{registry2.host}/cache/mirror-b"))
        manifest = await repo.get_manifest("v1")
        copied = {blob.digest: await repo.read_blob(blob) for blob in manifest.blobs()}
    source_image = _image("cache/src")
    assert manifest.raw == source_image.manifest.raw
    assert copied == source_image.blobs


async def test_without_the_cache_every_new_repository_streams_again(
    registry: RegistryServer, registry2: RegistryServer
) -> None:
    source = await _source(registry, "nocache/src")
    async with Client() as client:
        await copy(client, source, f"{registry2.host}/nocache/mirror-a:v1")
        second = await copy(client, source, f"{registry2.host}/nocache/mirror-b:v1")
    assert second.stats.blobs_copied == 4
    assert second.stats.blobs_mounted == 0


async def test_a_wrong_entry_falls_back_to_streaming_and_is_forgotten(
    registry: RegistryServer, registry2: RegistryServer, tmp_path: Path
) -> None:
    source = await _source(registry, "stale/src")
    cache = BlobLocations.open(tmp_path, env={})
    assert cache is not None
    async with Client() as client:
        manifest = await client.repository(Reference.parse(source)).get_manifest("v1")
    digests = [manifest.image().config.digest, *(layer.digest for layer in manifest.image().layers)]
    cache.remember(registry2.host, "stale/never-pushed", digests)  # a lie: that repository is empty
    async with Client(blob_cache=cache) as client:
        result = await copy(client, source, f"{registry2.host}/stale/mirror:v1")
    assert result.stats.blobs_copied == 4
    assert result.stats.blobs_mounted == 0
    assert cache.holders(registry2.host, digests[0]) == ["stale/mirror"]  # the lie forgotten


def test_the_cli_uses_the_cache_and_can_be_told_not_to(
    registry: RegistryServer, registry2: RegistryServer, tmp_path: Path
) -> None:
    import anyio

    source = anyio.run(_source, registry, "cli/src")
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "SPLITBUILD_CACHE_DIR": str(tmp_path),
        "SPLITBUILD_BLOB_CACHE": "1",
    }

    def cli_copy(destination: str, **extra: str) -> dict[str, object]:
        done = subprocess.run(
            [sys.executable, "-m", "splitbuild", "copy", source, destination, "--json", "--no-progress"],
            capture_output=True, text=True, timeout=120, check=True, env={**env, **extra},
        )  # fmt: skip
        data: dict[str, object] = json.loads(done.stdout)
        return data

    cli_copy(f"{registry2.host}/cli/mirror-a:v1")
    assert cli_copy(f"{registry2.host}/cli/mirror-b:v1")["blobs"] == {"copied": 0, "mounted": 4, "skipped": 0}
    off = cli_copy(f"{registry2.host}/cli/mirror-c:v1", SPLITBUILD_BLOB_CACHE="0")
    assert off["blobs"] == {"copied": 4, "mounted": 0, "skipped": 0}
