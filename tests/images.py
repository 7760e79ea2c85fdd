"""Synthetic images for tests: real manifests, configs and layers with the digests they claim.

The bytes are built the way buildx/buildah lay them out (OCI or Docker schema 2 image manifests,
buildx-style indexes with attestation manifests, BuildKit's ``oci-artifact=true`` attestations
with a ``subject``), and referrers the way cosign v3 and SBOM tools push them (OCI artifacts with
a ``subject``), then pushed through the library's own Repository interface.
"""

from __future__ import annotations

import hashlib
import json
import random
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from splitbuild.models import (
    ATTESTATION_MANIFEST,
    DOCKER_CONFIG,
    DOCKER_LAYER,
    DOCKER_MANIFEST,
    OCI_CONFIG,
    OCI_EMPTY,
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

if TYPE_CHECKING:
    from splitbuild.client import Client


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


SLSA_V02 = "https://slsa.dev/provenance/v0.2"
SPDX = "https://spdx.dev/Document"
DOCKER_ATTESTATION = "application/vnd.docker.attestation.manifest.v1+json"
SIGSTORE_BUNDLE = "application/vnd.dev.sigstore.bundle.v0.3+json"
COSIGN_SIGN = "https://sigstore.dev/cosign/sign/v1"
EMPTY = b"{}"


def make_attestation(
    subject: Image,
    *,
    seed: int | str = 0,
    oci_artifact: bool = False,
    predicate_types: tuple[str, ...] = (SLSA_V02,),
) -> Image:
    """An attestation manifest as BuildKit writes it (in-toto layers, unknown/unknown in the index).

    ``oci_artifact``: as with the exporter's ``oci-artifact=true``: ``artifactType`` set, the empty
    config, and a ``subject`` naming the image (so it is a referrer too).
    """
    blobs: dict[str, bytes] = {}
    layers = []
    for predicate in predicate_types:
        statement = json.dumps(
            {
                "_type": "https://in-toto.io/Statement/v0.1",
                "predicateType": predicate,
                "subject": [{"name": "x", "digest": {"sha256": subject.digest.split(":")[1]}}],
                "predicate": {"seed": str(seed)},
            }
        ).encode()
        blobs[sha256(statement)] = statement
        layers.append(
            {
                "mediaType": "application/vnd.in-toto+json",
                "digest": sha256(statement),
                "size": len(statement),
                "annotations": {"in-toto.io/predicate-type": predicate},
            }
        )
    if oci_artifact:
        config_raw = EMPTY
        config = {"mediaType": OCI_EMPTY, "digest": sha256(EMPTY), "size": len(EMPTY)}
    else:
        config_raw = json.dumps(
            {
                "architecture": "unknown",
                "os": "unknown",
                "config": {},
                "rootfs": {"type": "layers", "diff_ids": [layer["digest"] for layer in layers]},
            }
        ).encode()
        config = {"mediaType": OCI_CONFIG, "digest": sha256(config_raw), "size": len(config_raw)}
    blobs[sha256(config_raw)] = config_raw
    doc: dict[str, object] = {"schemaVersion": 2, "mediaType": OCI_MANIFEST}
    if oci_artifact:
        doc["artifactType"] = DOCKER_ATTESTATION
    doc.update({"config": config, "layers": layers})
    if oci_artifact:
        doc["subject"] = subject.manifest.descriptor().to_dict()
    raw = json.dumps(doc).encode()
    return Image(Manifest.from_bytes(raw), blobs)


def make_buildx_index(
    image: Image, platform: str, *, seed: int | str = 0, oci_artifact: bool = False
) -> Image:
    """What buildx pushes per platform with provenance on: an index of the image and its attestation."""
    att = make_attestation(image, seed=seed, oci_artifact=oci_artifact)
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


def make_artifact(
    subject: Image,
    artifact_type: str,
    *,
    layer_type: str,
    payload: bytes,
    annotations: dict[str, str] | None = None,
) -> Image:
    """An OCI artifact referring to ``subject``: empty config, one layer, ``artifactType``, ``subject``."""
    doc: dict[str, object] = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": artifact_type,
        "config": {"mediaType": OCI_EMPTY, "digest": sha256(EMPTY), "size": len(EMPTY)},
        "layers": [{"mediaType": layer_type, "digest": sha256(payload), "size": len(payload)}],
        "subject": subject.manifest.descriptor().to_dict(),
    }
    if annotations:
        doc["annotations"] = annotations
    raw = json.dumps(doc, indent=2).encode()
    return Image(Manifest.from_bytes(raw), {sha256(EMPTY): EMPTY, sha256(payload): payload})


def make_signature(subject: Image, *, seed: int | str = 0) -> Image:
    """A cosign v3 signature: a sigstore bundle pushed as a referrer of ``subject``."""
    bundle = json.dumps({"mediaType": SIGSTORE_BUNDLE, "seed": str(seed)}).encode()
    return make_artifact(
        subject,
        SIGSTORE_BUNDLE,
        layer_type=SIGSTORE_BUNDLE,
        payload=bundle,
        annotations={
            "dev.sigstore.bundle.content": "message-signature",
            "dev.sigstore.bundle.predicateType": COSIGN_SIGN,
            "org.opencontainers.image.created": "2026-01-01T00:00:00Z",
        },
    )


def make_sbom(subject: Image, *, seed: int | str = 0) -> Image:
    """An SPDX SBOM attached to ``subject`` (as ``oras attach --artifact-type application/spdx+json``)."""
    document = json.dumps({"spdxVersion": "SPDX-2.3", "name": str(seed)}).encode()
    spdx = "application/spdx+json"
    return make_artifact(subject, spdx, layer_type=spdx, payload=document)


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


async def push_all(client: Client, repo_ref: str, images: list[Image]) -> list[str]:
    """Push each of ``images`` by digest into the repository ``repo_ref``; their digests."""
    from splitbuild.reference import Reference

    repo = client.repository(Reference.parse(repo_ref))
    for image in images:
        await push(repo, image)
    return [i.digest for i in images]


def push_all_sync(repo_ref: str, images: list[Image]) -> list[str]:
    """:func:`push_all` with a client of its own, for tests that are not async."""
    import anyio

    from splitbuild.client import Client
    from splitbuild.retry import FAST_RETRY

    async def run() -> list[str]:
        async with Client(retry=FAST_RETRY, env={}) as client:
            return await push_all(client, repo_ref, images)

    return anyio.run(run)
