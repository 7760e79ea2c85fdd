"""Helpers for the maintenance tests (tests/test_ops_*.py): multi-arch images with attestations,
dated images, a transport that refuses some requests, and a look into the registry's storage."""

from __future__ import annotations

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
from tests.images import Image, make_attestation, make_image, sha256
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
