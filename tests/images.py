"""Synthetic images for tests: real manifests, configs and layers with the digests they claim.

The bytes are built the way buildx/buildah lay them out (OCI or Docker schema 2 image manifests,
buildx-style indexes with attestation manifests), then pushed through the library's own
Repository interface.
"""

from __future__ import annotations

import hashlib
import json
import random
from dataclasses import dataclass, field

from splitbuild.models import (
    ATTESTATION_MANIFEST,
    DOCKER_CONFIG,
    DOCKER_LAYER,
    DOCKER_MANIFEST,
    OCI_CONFIG,
    OCI_INDEX,
    OCI_LAYER,
    OCI_MANIFEST,
    REFERENCE_DIGEST,
    REFERENCE_TYPE,
    Descriptor,
    Manifest,
    Platform,
)
from splitbuild.store.base import Repository


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass
class Image:
    """A manifest (or index) plus every blob and child manifest it needs."""

    manifest: Manifest
    blobs: dict[str, bytes] = field(default_factory=dict)
    children: list[Image] = field(default_factory=list)

    @property
    def digest(self) -> str:
        return self.manifest.digest


def make_image(
    platform: str = "linux/amd64",
    *,
    docker: bool = False,
    layers: int = 1,
    layer_size: int = 512,
    seed: int | str = 0,
    labels: dict[str, str] | None = None,
    annotations: dict[str, str] | None = None,
    platform_in_config: bool = True,
) -> Image:
    rng = random.Random(f"{platform}-{seed}")
    p = Platform.parse(platform)
    config: dict[str, object] = {
        "created": "2026-01-01T00:00:00Z",
        "rootfs": {"type": "layers", "diff_ids": []},
        "config": {"Labels": labels or {}},
    }
    if platform_in_config:
        config.update({"architecture": p.architecture, "os": p.os})
        if p.variant:
            config["variant"] = p.variant
    blobs: dict[str, bytes] = {}
    layer_descs = []
    for i in range(layers):
        data = rng.randbytes(layer_size) + f"{seed}-{i}".encode()
        blobs[sha256(data)] = data
        layer_descs.append(
            {"mediaType": DOCKER_LAYER if docker else OCI_LAYER, "digest": sha256(data), "size": len(data)}
        )
        config["rootfs"]["diff_ids"].append(sha256(data))  # type: ignore[index]
    config_raw = json.dumps(config, sort_keys=True).encode()
    blobs[sha256(config_raw)] = config_raw
    doc: dict[str, object] = {
        "schemaVersion": 2,
        "mediaType": DOCKER_MANIFEST if docker else OCI_MANIFEST,
        "config": {
            "mediaType": DOCKER_CONFIG if docker else OCI_CONFIG,
            "digest": sha256(config_raw),
            "size": len(config_raw),
        },
        "layers": layer_descs,
    }
    if annotations:
        doc["annotations"] = annotations
    raw = json.dumps(doc, indent=3).encode()
    return Image(Manifest.from_bytes(raw), blobs)


def make_attestation(subject: Image, *, seed: int | str = 0) -> Image:
    """An attestation manifest as BuildKit writes it (in-toto layer, unknown/unknown in the index)."""
    statement = json.dumps(
        {
            "_type": "https://in-toto.io/Statement/v0.1",
            "predicateType": "https://slsa.dev/provenance/v0.2",
            "subject": [{"name": "x", "digest": {"sha256": subject.digest.split(":")[1]}}],
            "predicate": {"seed": str(seed)},
        }
    ).encode()
    config_raw = json.dumps(
        {
            "architecture": "unknown",
            "os": "unknown",
            "config": {},
            "rootfs": {"type": "layers", "diff_ids": [sha256(statement)]},
        }
    ).encode()
    doc = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": sha256(config_raw), "size": len(config_raw)},
        "layers": [
            {
                "mediaType": "application/vnd.in-toto+json",
                "digest": sha256(statement),
                "size": len(statement),
                "annotations": {"in-toto.io/predicate-type": "https://slsa.dev/provenance/v0.2"},
            }
        ],
    }
    raw = json.dumps(doc).encode()
    return Image(Manifest.from_bytes(raw), {sha256(statement): statement, sha256(config_raw): config_raw})


def make_buildx_index(image: Image, platform: str, *, seed: int | str = 0) -> Image:
    """What buildx pushes per platform with provenance on: an index of the image and its attestation."""
    att = make_attestation(image, seed=seed)
    p = Platform.parse(platform)
    doc = {
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [
            image.manifest.descriptor(platform=p).to_dict(),
            att.manifest.descriptor(
                platform=Platform(os="unknown", architecture="unknown"),
                annotations={REFERENCE_TYPE: ATTESTATION_MANIFEST, REFERENCE_DIGEST: image.digest},
            ).to_dict(),
        ],
    }
    raw = json.dumps(doc, indent=2).encode()
    return Image(Manifest.from_bytes(raw), {}, [image, att])


async def push(repo: Repository, image: Image, tag: str | None = None) -> Descriptor:
    """Push an image (children first, then blobs, then the manifest) by digest, and under ``tag``."""
    for child in image.children:
        await push(repo, child)
    for digest, data in image.blobs.items():
        await repo.put_blob(
            Descriptor(mediaType="application/octet-stream", digest=digest, size=len(data)), data
        )
    await repo.put_manifest(image.manifest)
    if tag:
        await repo.put_manifest(image.manifest, tag)
    return image.manifest.descriptor()
