"""Helpers for the maintenance tests (tests/test_ops_*.py, tests/test_providers_*.py): multi-arch
images with attestations, dated images, a transport that refuses some requests, a look into the
registry's storage, and the repository the prune tests seed."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlencode

import httpx

from splitbuild.models import (
    ATTESTATION_MANIFEST,
    OCI_INDEX,
    REFERENCE_DIGEST,
    REFERENCE_TYPE,
    Manifest,
    Platform,
)
from splitbuild.ops import RetentionPolicy, parse_duration
from splitbuild.store.base import Repository
from tests.images import Image, make_attestation, make_image, push, sha256
from tests.registry_server import RegistryServer

PLATFORMS = ["linux/amd64", "linux/arm64"]


def unique(prefix: str = "ops") -> str:
    return f"{prefix}/{uuid.uuid4().hex[:10]}"


def dated_image(platform: str, created: str | None, *, seed: object = 0, layers: int = 1) -> Image:
    """``make_image`` with the config's ``created`` set to ``created`` (removed when None)."""
    image = make_image(platform, seed=str(seed), layers=layers)
    manifest = json.loads(image.manifest.raw)
    old_config = manifest["config"]["digest"]
    config = json.loads(image.blobs.pop(old_config))
    if created is None:
        config.pop("created", None)
    else:
        config["created"] = created
    raw_config = json.dumps(config, sort_keys=True).encode()
    image.blobs[sha256(raw_config)] = raw_config
    manifest["config"].update({"digest": sha256(raw_config), "size": len(raw_config)})
    return Image(Manifest.from_bytes(json.dumps(manifest, indent=3).encode()), image.blobs)


def multiarch(
    platforms: list[str] | None = None,
    *,
    seed: object = 0,
    created: str | None = "2026-01-01T00:00:00Z",
    annotations: dict[str, str] | None = None,
    attest: bool = True,
    images: list[Image] | None = None,
) -> Image:
    """A buildx-style multi-platform index: one image per platform and, with ``attest``, one
    attestation manifest per image (``unknown/unknown`` plus BuildKit's reference annotations)."""
    platforms = platforms or PLATFORMS
    images = images or [dated_image(p, created, seed=seed) for p in platforms]
    entries: list[dict[str, object]] = []
    children: list[Image] = []
    for platform, image in zip(platforms, images, strict=True):
        entries.append(image.manifest.descriptor(platform=Platform.parse(platform)).to_dict())
        children.append(image)
    if attest:
        for image in images:
            att = make_attestation(image, seed=str(seed))
            entries.append(
                att.manifest.descriptor(
                    platform=Platform(os="unknown", architecture="unknown"),
                    annotations={REFERENCE_TYPE: ATTESTATION_MANIFEST, REFERENCE_DIGEST: image.digest},
                ).to_dict()
            )
            children.append(att)
    doc: dict[str, object] = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries}
    if annotations:
        doc["annotations"] = annotations
    return Image(Manifest.from_bytes(json.dumps(doc, indent=2).encode()), {}, children)


def revisions(server: RegistryServer, repository: str) -> set[str]:
    """The manifest digests distribution's storage holds for ``repository`` (deleted ones drop out)."""
    base = server.root / "data/docker/registry/v2/repositories" / repository / "_manifests/revisions"
    found = set()
    for algorithm in base.iterdir() if base.is_dir() else []:
        for entry in algorithm.iterdir():
            if (entry / "link").exists():
                found.add(f"{algorithm.name}:{entry.name}")
    return found


class Refusing(httpx.AsyncBaseTransport):
    """Forwards to the real network, except requests ``refuse(request)`` answers itself."""

    def __init__(self, refuse: Callable[[httpx.Request], httpx.Response | None]) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.refuse = refuse
        self.refused: list[str] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        answer = self.refuse(request)
        if answer is not None:
            self.refused.append(f"{request.method} {request.url.path}")
            return answer
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


class Paginating(httpx.AsyncBaseTransport):
    """Serves a real registry's tag list in pages of at most ``n`` with ``Link`` headers, the way
    distribution 3 and most hosted registries do (distribution 2.8 ignores ``n`` and sends all)."""

    def __init__(self) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.pages = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.method != "GET" or not request.url.path.endswith("/tags/list"):
            return await self.inner.handle_async_request(request)
        full = await self.inner.handle_async_request(
            request.__class__("GET", request.url.copy_with(query=None))
        )
        await full.aread()
        body = json.loads(full.content)
        tags = sorted(body.get("tags") or [])
        n = int(request.url.params.get("n", "100"))
        last = request.url.params.get("last")
        rest = [t for t in tags if last is None or t > last]
        page = rest[:n]
        self.pages += 1
        headers = {"Content-Type": "application/json"}
        if len(rest) > n:
            query = urlencode({"n": n, "last": page[-1]})
            headers["Link"] = f'<{request.url.path}?{query}>; rel="next"'
        return httpx.Response(200, headers=headers, json={"name": body.get("name"), "tags": page})

    async def aclose(self) -> None:
        await self.inner.aclose()


def unsupported() -> httpx.Response:
    return httpx.Response(
        405, json={"errors": [{"code": "UNSUPPORTED", "message": "The operation is unsupported."}]}
    )


def deny_digest_delete(request: httpx.Request) -> httpx.Response | None:
    if request.method == "DELETE" and "/manifests/sha256:" in request.url.path:
        return unsupported()
    return None


def examples_dir() -> Path:
    return Path(__file__).resolve().parent.parent / "examples" / "maintenance"


# -- the prune scenario (tests/test_ops_prune.py, tests/test_providers_*.py) ------------------------

NOW = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)
"""The prune tests' "now": two months after ``seed_repository``'s dates."""

POLICY = RetentionPolicy(keep_last=2, older_than=parse_duration("30d"), include="sha-.*")


def referrers_index(subject: str, seed: str) -> Image:
    """What the OCI referrers tag schema (``sha256-<hex>``) holds: an index of artifacts about ``subject``."""
    signature = make_image(seed=f"sig-{seed}")
    doc = {
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [
            signature.manifest.descriptor(artifactType="application/vnd.example.signature").to_dict()
        ],
    }
    return Image(Manifest.from_bytes(json.dumps(doc).encode()), {}, [signature])


async def seed_repository(repo: Repository) -> dict[str, Image]:
    """sha-1..sha-6 (one a day from 2026-01-01), v1.0 = sha-3, sha-6 reusing sha-2's arm64 image,
    sha-1 dated by annotation, an undated sha-nodate, and referrers tags for sha-1 and sha-3."""
    images: dict[str, Image] = {}
    for day in range(1, 7):
        created = f"2026-01-0{day}T10:00:00Z"
        if day == 1:
            images["sha-1"] = multiarch(
                seed="day1", created=None, annotations={"org.opencontainers.image.created": created}
            )
        elif day == 6:
            reused = images["sha-2"].children[1]
            fresh = multiarch(seed="day6", created=created)
            images["sha-6"] = multiarch(images=[fresh.children[0], reused], seed="day6")
        else:
            images[f"sha-{day}"] = multiarch(seed=f"day{day}", created=created)
    images["sha-nodate"] = multiarch(seed="nodate", created=None)
    for tag, image in images.items():
        await push(repo, image, tag)
    await repo.put_manifest(images["sha-3"].manifest, "v1.0")
    for tag in ("sha-1", "sha-3"):
        subject = images[tag].digest
        await push(repo, referrers_index(subject, tag), "sha256-" + subject.split(":")[1])
    return images


async def resolves_completely(repo: Repository, tag: str) -> None:
    """``tag``'s manifest, its children if it is an index, and every blob of theirs are in ``repo``."""
    manifest = await repo.get_manifest(tag)
    reached = [manifest, *[await repo.get_manifest(child.digest) for child in manifest.children()]]
    for got in reached:
        for blob in got.blobs():
            assert await repo.has_blob(blob.digest), f"{tag}: blob {blob.digest} missing"
