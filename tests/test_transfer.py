"""Transfer: a blob or manifest several tasks share is copied once, and a failure fails them all."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from splitbuild.client import Client
from splitbuild.errors import DigestMismatch
from splitbuild.models import OCI_INDEX, Manifest, Platform
from splitbuild.reference import LayoutReference
from splitbuild.retry import FAST_RETRY
from splitbuild.transfer import Transfer
from tests.images import Image, make_image, push, sha256

pytestmark = pytest.mark.anyio


def two_images_sharing_a_layer() -> tuple[Image, bytes]:
    amd, arm = make_image("linux/amd64", seed="share"), make_image("linux/arm64", seed="share")
    shared = b"shared layer" * 1000
    images = []
    for image in (amd, arm):
        doc = json.loads(image.manifest.raw)
        doc["layers"].append(
            {"mediaType": doc["layers"][0]["mediaType"], "digest": sha256(shared), "size": len(shared)}
        )
        blobs = dict(image.blobs) | {sha256(shared): shared}
        images.append(Image(Manifest.from_bytes(json.dumps(doc).encode()), blobs))
    index = {
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [
            img.manifest.descriptor(platform=Platform.parse(p)).to_dict()
            for img, p in zip(images, ["linux/amd64", "linux/arm64"], strict=True)
        ],
    }
    return Image(Manifest.from_bytes(json.dumps(index).encode()), {}, images), shared


async def test_a_failed_shared_blob_fails_every_manifest_that_needs_it(tmp_path: Path) -> None:
    index, shared = two_images_sharing_a_layer()
    async with Client(retry=FAST_RETRY, env={}) as client:
        src = client.repository(LayoutReference.parse(f"oci:{tmp_path / 'src'}"))
        dst = client.repository(LayoutReference.parse(f"oci:{tmp_path / 'dst'}"))
        await push(src, index, "v1")
        blob = tmp_path / "src" / "blobs" / "sha256" / sha256(shared).split(":")[1]
        good = blob.read_bytes()
        blob.write_bytes(b"X" * len(good))  # the shared layer is corrupt in the source
        with pytest.raises(DigestMismatch):
            await Transfer(src, dst).manifest(index.manifest.descriptor(), index.manifest)
        for child in index.children:  # no image manifest was put without its layer
            assert await dst.head_manifest(child.digest) is None
        assert await dst.head_manifest(index.digest) is None
        blob.write_bytes(good)  # repaired: a re-run completes the whole tree
        await Transfer(src, dst).manifest(index.manifest.descriptor(), index.manifest)
        for child in index.children:
            for layer in child.manifest.blobs():
                assert await dst.has_blob(layer.digest)
