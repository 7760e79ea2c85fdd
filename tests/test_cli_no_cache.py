"""``--no-cache`` on ``copy`` and ``merge`` (issue 19): the blob location cache is neither read nor
written for that run, as with ``SPLITBUILD_BLOB_CACHE=0``; without it the CLI uses the cache.
Real registries, the real command line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import anyio

from splitbuild.blobcache import FILE_NAME, BlobLocations
from splitbuild.client import Client
from splitbuild.reference import Reference
from tests.images import make_image, push
from tests.registry_server import RegistryServer

ROOT = Path(__file__).resolve().parent.parent


async def _push(registry: RegistryServer, name: str, platform: str = "linux/amd64") -> str:
    """A three-layer image pushed to ``name:v1``; its manifest digest."""
    image = make_image(platform, seed=f"{name}-{platform}", layers=3)
    async with Client() as client:
        await push(client.repository(Reference.parse(f"{registry.host}/{name}")), image, "v1")
    return image.digest


def _cli(cache_dir: Path, *args: str) -> dict[str, Any]:
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "SPLITBUILD_CACHE_DIR": str(cache_dir),
        "SPLITBUILD_BLOB_CACHE": "1",
    }
    done = subprocess.run(
        [sys.executable, "-m", "splitbuild", *args, "--json"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=env,
    )
    assert done.returncode == 0, done.stderr
    data: dict[str, Any] = json.loads(done.stdout)
    return data


def _holders(cache_dir: Path, registry: str, digest: str) -> list[str]:
    cache = BlobLocations.open(cache_dir, env={})
    assert cache is not None
    try:
        return sorted(cache.holders(registry, digest))
    finally:
        cache.close()


def test_copy_with_no_cache_streams_and_records_nothing(
    registry: RegistryServer, registry2: RegistryServer, tmp_path: Path
) -> None:
    digest = anyio.run(_push, registry, "nocachecli/src")
    source = f"{registry.host}/nocachecli/src:v1"
    cache_dir = tmp_path / "cache"

    first = _cli(cache_dir, "copy", source, f"{registry2.host}/nocachecli/a:v1", "--no-progress")
    assert first["blobs"] == {"copied": 4, "mounted": 0, "skipped": 0}
    assert (cache_dir / FILE_NAME).is_file()
    off = _cli(cache_dir, "copy", source, f"{registry2.host}/nocachecli/b:v1", "--no-progress", "--no-cache")
    assert off["blobs"] == {"copied": 4, "mounted": 0, "skipped": 0}  # mirror-a's blobs not mounted
    on = _cli(cache_dir, "copy", source, f"{registry2.host}/nocachecli/c:v1", "--no-progress")
    assert on["blobs"] == {"copied": 0, "mounted": 4, "skipped": 0}

    async def config_digest() -> str:
        async with Client() as client:
            manifest = await client.repository(Reference.parse(source)).get_manifest(digest)
        return str(manifest.image().config.digest)

    config = anyio.run(config_digest)
    # b was copied without the cache: the cache never learnt that b holds the config
    assert _holders(cache_dir, registry2.host, config) == ["nocachecli/a", "nocachecli/c"]


def test_merge_with_no_cache_leaves_the_cache_alone(registry: RegistryServer, tmp_path: Path) -> None:
    amd64 = anyio.run(_push, registry, "nocachemerge/src", "linux/amd64")
    arm64 = anyio.run(_push, registry, "nocachemerge/src", "linux/arm64")
    sources = [f"{registry.host}/nocachemerge/src@{digest}" for digest in (amd64, arm64)]
    cache_dir = tmp_path / "cache"

    off = _cli(cache_dir, "merge", *sources, "-t", f"{registry.host}/nocachemerge/app:v1", "--no-cache")
    assert [entry["platform"] for entry in off["platforms"]] == ["linux/amd64", "linux/arm64"]
    assert not (cache_dir / FILE_NAME).exists()  # not even opened
    on = _cli(cache_dir, "merge", *sources, "-t", f"{registry.host}/nocachemerge/app2:v1")
    assert [entry["platform"] for entry in on["platforms"]] == ["linux/amd64", "linux/arm64"]
    assert (cache_dir / FILE_NAME).is_file()
