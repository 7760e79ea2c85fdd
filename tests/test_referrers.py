"""Referrers and attestations through the stores, merge and copy, against the real registry.

distribution 2.8 has no referrers API, so there referrers live in the ``sha256-<hex>`` tag index
(the spec's fallback), which these tests read back from the target with plain HTTP. The referrers
API path runs through :class:`ReferrersAPI`, a thin layer in front of the same registries that
answers ``GET /v2/<name>/referrers/<digest>`` from what the registry stores.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from urllib.parse import urlencode

import anyio
import httpx
import pytest
from typer.testing import CliRunner

from splitbuild.cli.app import make_app
from splitbuild.client import Client
from splitbuild.errors import InvalidDigest, InvalidManifest
from splitbuild.merge import MergeOptions, merge, parse_sources, parse_targets
from splitbuild.models import ANNOTATION_REF_NAME, MANIFEST_ACCEPT, OCI_CONFIG, OCI_INDEX
from splitbuild.ops import copy
from splitbuild.reference import LayoutReference, parse_reference
from splitbuild.referrers import (
    kind_of,
    predicate_types,
    referrer_descriptor,
    referrers_tag,
    with_referrer,
)
from splitbuild.retry import FAST_RETRY
from splitbuild.store.base import Repository
from tests.images import (
    COSIGN_SIGN,
    DOCKER_ATTESTATION,
    SIGSTORE_BUNDLE,
    SLSA_V02,
    Image,
    make_artifact,
    make_attestation,
    make_buildx_index,
    make_image,
    make_sbom,
    make_signature,
    push,
)
from tests.ops_support import multiarch, revisions, unique
from tests.registry_server import RegistryServer

pytestmark = pytest.mark.anyio

PLATFORMS = ["linux/amd64", "linux/arm64"]
SPDX_TYPE = "application/spdx+json"


def options(targets: list[str], sources: list[str], **kw: object) -> MergeOptions:
    refs = parse_targets(targets)
    return MergeOptions(targets=refs, sources=parse_sources(sources, refs[0]), **kw)  # type: ignore[arg-type]


def tag_of(digest: str) -> str:
    return "sha256-" + digest.removeprefix("sha256:")


def read_tag_index(name: str, subject: str) -> list[str] | None:
    """The digests the referrers tag index of ``subject`` lists in ``name``, read with plain HTTP."""
    host, _, repository = name.partition("/")
    response = httpx.get(
        f"http://{host}/v2/{repository}/manifests/{tag_of(subject)}", headers={"Accept": MANIFEST_ACCEPT}
    )
    if response.status_code == 404:
        return None
    assert response.status_code == 200, response.text
    doc = response.json()
    assert doc["mediaType"] == OCI_INDEX
    return [m["digest"] for m in doc["manifests"]]


def tags_of(name: str) -> list[str]:
    host, _, repository = name.partition("/")
    return list(httpx.get(f"http://{host}/v2/{repository}/tags/list").json().get("tags") or [])


async def assert_copied(client: Client, name: str, image: Image) -> None:
    """``image`` is in ``name`` with its exact bytes, and every blob it needs."""
    repo = client.repository(parse_reference(name))
    assert (await repo.get_manifest(image.digest)).raw == image.manifest.raw
    for digest in image.blobs:
        assert await repo.has_blob(digest)


# -- the pure parts --------------------------------------------------------------------------------


def test_referrers_tag_truncates_as_the_spec_says() -> None:
    assert referrers_tag("sha256:" + "a" * 64) == "sha256-" + "a" * 64
    assert referrers_tag("sha512:" + "b" * 128) == "sha512-" + "b" * 64
    with pytest.raises(InvalidDigest):
        referrers_tag("sha256:xyz")


def test_referrer_descriptor_and_index_update() -> None:
    image = make_image(seed="pure")
    signature, sbom = make_signature(image), make_sbom(image)
    desc = referrer_descriptor(signature.manifest)
    assert (desc.digest, desc.size, desc.artifact_type) == (
        signature.digest,
        signature.manifest.size,
        SIGSTORE_BUNDLE,
    )
    assert desc.annotations == signature.manifest.parsed.annotations
    # an image manifest without artifactType is listed under its config's media type
    legacy = make_attestation(image, seed="pure")
    assert referrer_descriptor(legacy.manifest).artifact_type == OCI_CONFIG
    first = with_referrer(None, desc, what="t")
    assert first is not None
    assert first.media_type == OCI_INDEX
    assert [c.digest for c in first.children()] == [signature.digest]
    assert with_referrer(first, desc, what="t") is None  # never listed twice
    second = with_referrer(first, referrer_descriptor(sbom.manifest), what="t")
    assert second is not None
    assert [(c.digest, c.artifact_type) for c in second.children()] == [
        (signature.digest, SIGSTORE_BUNDLE),
        (sbom.digest, SPDX_TYPE),
    ]
    with pytest.raises(InvalidManifest, match="not an image index"):
        with_referrer(image.manifest, desc, what="t")


def test_kinds_and_predicate_types() -> None:
    image = make_image(seed="kinds")
    signature = referrer_descriptor(make_signature(image).manifest)
    assert predicate_types(signature) == [COSIGN_SIGN]
    assert kind_of(signature, predicate_types(signature)) == "signature"
    sbom = referrer_descriptor(make_sbom(image).manifest)
    assert (predicate_types(sbom), kind_of(sbom)) == ([], "sbom")
    attestation = make_attestation(
        image, oci_artifact=True, predicate_types=(SLSA_V02, "https://spdx.dev/Document")
    )
    desc = referrer_descriptor(attestation.manifest)
    assert desc.artifact_type == DOCKER_ATTESTATION
    assert predicate_types(desc) == []  # on the layers: the manifest must be read
    assert predicate_types(desc, attestation.manifest) == [SLSA_V02, "https://spdx.dev/Document"]
    assert kind_of(desc) == "attestation"
    other = referrer_descriptor(
        make_artifact(image, "application/vnd.example.thing", layer_type="x/y", payload=b"z").manifest
    )
    assert kind_of(other) == "artifact"


# -- the stores --------------------------------------------------------------------------------------


@pytest.fixture(params=["registry", "layout"])
def repo(request: pytest.FixtureRequest, client: Client, tmp_path: Path) -> Repository:
    if request.param == "registry":
        server: RegistryServer = request.getfixturevalue("registry")
        return client.repository(parse_reference(f"{server.host}/{unique('referrers')}"))
    return client.repository(LayoutReference.parse(f"oci:{tmp_path / 'layout'}"))


async def test_store_lists_referrers_from_the_tag_index(repo: Repository) -> None:
    image = make_image(seed="store")
    await push(repo, image, "v1")
    signature, sbom = make_signature(image), make_sbom(image)
    await push(repo, signature)
    await push(repo, sbom)
    await push(repo, signature)  # pushed again: still listed once
    found = await repo.list_referrers(image.digest)
    assert [(d.digest, d.artifact_type) for d in found] == [
        (signature.digest, SIGSTORE_BUNDLE),
        (sbom.digest, SPDX_TYPE),
    ]
    assert found[0].annotations == signature.manifest.parsed.annotations
    assert [d.digest for d in await repo.list_referrers(image.digest, SPDX_TYPE)] == [sbom.digest]
    assert await repo.list_referrers(signature.digest) == []
    # the referrers index is an ordinary tag: the OCI fallback, readable by any tool
    index = await repo.get_manifest(tag_of(image.digest))
    assert index.media_type == OCI_INDEX
    assert [c.digest for c in index.children()] == [signature.digest, sbom.digest]
    assert sorted(await repo.list_tags()) == sorted(["v1", tag_of(image.digest)])


async def test_registry_without_the_api_is_learnt_once(registry: RegistryServer) -> None:
    name = f"{registry.host}/{unique('referrers')}"
    async with Client(retry=FAST_RETRY, env={}) as client:
        repo = client.repository(parse_reference(name))
        images = [make_image(p, seed="learn") for p in PLATFORMS]
        for image in images:
            await push(repo, image)
        start = client.requests
        assert await repo.list_referrers(images[0].digest) == []
        assert client.requests - start == 2  # the API (a 404) and the tag, at once
        assert client.registry.referrers_api == {registry.host: False}
        assert await repo.list_referrers(images[1].digest) == []
        assert client.requests - start == 3  # the tag only


async def test_layout_tag_index_is_read_by_skopeo_and_untagged_referrers_are_found(
    client: Client, tmp_path: Path
) -> None:
    path = tmp_path / "layout"
    repo = client.repository(LayoutReference.parse(f"oci:{path}"))
    image = make_image(seed="layout-scan")
    await push(repo, image, "v1")
    signature = make_signature(image)
    await push(repo, signature)
    raw = await anyio.run_process(["skopeo", "inspect", "--raw", f"oci:{path}:{tag_of(image.digest)}"])
    assert [m["digest"] for m in json.loads(raw.stdout)["manifests"]] == [signature.digest]
    # another tool's layout: a referrer as an untagged index.json entry, no referrers tag
    sbom = make_sbom(image)
    for digest, data in sbom.blobs.items():
        (path / "blobs" / "sha256" / digest.split(":")[1]).write_bytes(data)
    (path / "blobs" / "sha256" / sbom.digest.split(":")[1]).write_bytes(sbom.manifest.raw)
    doc = json.loads((path / "index.json").read_bytes())
    doc["manifests"].append(sbom.manifest.descriptor().to_dict())
    (path / "index.json").write_text(json.dumps(doc))
    found = await repo.list_referrers(image.digest)
    assert [(d.digest, d.artifact_type) for d in found] == [
        (signature.digest, SIGSTORE_BUNDLE),
        (sbom.digest, SPDX_TYPE),
    ]
    assert any(
        (e.get("annotations") or {}).get(ANNOTATION_REF_NAME) == tag_of(image.digest)
        for e in doc["manifests"]
    )


async def test_a_referrers_tag_that_is_not_an_index(registry: RegistryServer, client: Client) -> None:
    name = f"{registry.host}/{unique('referrers')}"
    repo = client.repository(parse_reference(name))
    image = make_image(seed="squatted")
    await push(repo, image)
    squatter = make_image("linux/arm64", seed="squatter")
    await push(repo, squatter, tag_of(image.digest))
    assert await repo.list_referrers(image.digest) == []  # the spec: no valid index, no referrers
    with pytest.raises(InvalidManifest, match=f"{tag_of(image.digest)}: .* not an image index"):
        await push(repo, make_signature(image))
    assert (await repo.head_manifest(tag_of(image.digest))).digest == squatter.digest  # type: ignore[union-attr]


# -- conditional writes of the tag index ---------------------------------------------------------


class Conflicting(httpx.AsyncBaseTransport):
    """Forwards to the registry, but answers 412 to the first ``conflicts`` PUTs of a referrers tag
    (another client changed it meanwhile, as a registry honouring If-Match would say), and records
    the condition headers of every such PUT."""

    def __init__(self, conflicts: int) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.conflicts = conflicts
        self.conditions: list[tuple[str | None, str | None]] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.method == "PUT" and re.search(r"/manifests/sha256-[0-9a-f]{64}$", request.url.path):
            self.conditions.append((request.headers.get("If-Match"), request.headers.get("If-None-Match")))
            if self.conflicts > 0:
                self.conflicts -= 1
                return httpx.Response(412, json={"errors": [{"code": "PRECONDITION_FAILED"}]})
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


async def test_tag_index_writes_are_conditional_and_retried(registry: RegistryServer) -> None:
    name = f"{registry.host}/{unique('referrers')}"
    transport = Conflicting(conflicts=1)
    async with Client(retry=FAST_RETRY, env={}, transport=transport) as client:
        repo = client.repository(parse_reference(name))
        image = make_image(seed="conditional")
        await push(repo, image)
        signature, sbom = make_signature(image), make_sbom(image)
        await push(repo, signature)
        await push(repo, sbom)
    assert read_tag_index(name, image.digest) == [signature.digest, sbom.digest]
    first_etag = transport.conditions[2][0]
    # a new tag: If-None-Match (refused once, then written); an existing one: If-Match its ETag
    assert transport.conditions[:2] == [(None, "*"), (None, "*")]
    assert first_etag is not None
    assert first_etag.strip('"').startswith("sha256:")
    assert len(transport.conditions) == 3


# -- merge -------------------------------------------------------------------------------------------


async def test_cross_repository_merge_carries_referrers(
    registry: RegistryServer, registry2: RegistryServer, client: Client
) -> None:
    src = f"{registry.host}/{unique('src')}"
    same_registry = f"{registry.host}/{unique('dst')}"
    other_registry = f"{registry2.host}/{unique('dst')}"
    source = client.repository(parse_reference(src))
    images = [make_image(p, seed="carry", layers=2) for p in PLATFORMS]
    for image in images:
        await push(source, image)
    signature = make_signature(images[0])
    sbom = make_sbom(images[1])
    sbom_signature = make_signature(sbom, seed="on-the-sbom")  # a referrer of a referrer
    for artifact in (signature, sbom, sbom_signature):
        await push(source, artifact)
    sources = [f"{src}@{i.digest}" for i in images]
    result = await merge(client, options([f"{same_registry}:v1", f"{other_registry}:v1"], sources))
    assert sorted(result.referrers) == sorted([signature.digest, sbom.digest, sbom_signature.digest])
    assert result.to_dict()["referrers"] == result.referrers
    for target in (same_registry, other_registry):
        assert read_tag_index(target, images[0].digest) == [signature.digest]
        assert read_tag_index(target, images[1].digest) == [sbom.digest]
        assert read_tag_index(target, sbom.digest) == [sbom_signature.digest]
        for artifact in (signature, sbom, sbom_signature):
            await assert_copied(client, target, artifact)
    # a re-run finds them listed and copies nothing
    async with Client(retry=FAST_RETRY, env={}) as again:
        rerun = await merge(again, options([f"{same_registry}:v1", f"{other_registry}:v1"], sources))
    assert rerun.referrers == []
    # without referrers: none looked up, none copied
    bare = f"{registry2.host}/{unique('bare')}"
    without = await merge(client, options([f"{bare}:v1"], sources, referrers=False))
    assert without.referrers == []
    assert tags_of(bare) == ["v1"]


async def test_referrers_cost_one_lookup_per_copied_child(registry: RegistryServer) -> None:
    src = f"{registry.host}/{unique('budget')}"
    images = [make_image(p, seed="budget") for p in [*PLATFORMS, "linux/arm/v7"]]
    async with Client(retry=FAST_RETRY, env={}) as seeder:
        for image in images:
            await push(seeder.repository(parse_reference(src)), image)
    sources = [f"{src}@{i.digest}" for i in images]

    async def requests(targets: list[str], referrers: bool) -> int:
        async with Client(retry=FAST_RETRY, env={}) as client:
            return (await merge(client, options(targets, sources, referrers=referrers))).requests

    def fresh(count: int) -> list[str]:
        return [f"{registry.host}/{unique('budget')}:v1" for _ in range(count)]

    # into other repositories: one lookup per child (none has referrers, so nothing is asked of
    # the targets), plus one for the registry (its first lookup asks the API, which answers 404,
    # and reads the tag at once); whatever the number of targets: each child is looked up once
    for targets in (1, 2):
        assert await requests(fresh(targets), True) - await requests(fresh(targets), False) == 3 + 1
    # sources in the target repository (the split build's usual case): nothing looked up
    assert await requests([f"{src}:a"], True) == await requests([f"{src}:b"], False)


class SubjectFirst(httpx.AsyncBaseTransport):
    """Forwards to the registry but refuses a manifest whose ``subject`` is not there yet, as
    gitlab.com does (moby/buildkit#7007). Other manifest PUTs are held back a little, so that a
    client not waiting for the subject would be caught."""

    def __init__(self) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.refused = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.method == "PUT" and "/manifests/" in request.url.path:
            subject = json.loads(request.content).get("subject")
            if subject is not None:
                base = request.url.path.rsplit("/manifests/", 1)[0]
                head = httpx.Request(
                    "HEAD",
                    request.url.copy_with(path=f"{base}/manifests/{subject['digest']}", query=None),
                    headers={"Accept": MANIFEST_ACCEPT},
                )
                if (await self.inner.handle_async_request(head)).status_code != 200:
                    self.refused += 1
                    return httpx.Response(400, json={"errors": [{"code": "MANIFEST_BLOB_UNKNOWN"}]})
            else:
                await anyio.sleep(0.05)
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


async def test_oci_artifact_attestations_stay_in_the_index_and_are_listed_in_the_target(
    registry: RegistryServer, registry2: RegistryServer
) -> None:
    src = f"{registry.host}/{unique('oci-att')}"
    dst = f"{registry2.host}/{unique('oci-att')}"
    indexes = [
        make_buildx_index(make_image(p, seed="oa"), p, seed="oa", oci_artifact=True) for p in PLATFORMS
    ]
    transport = SubjectFirst()
    async with Client(retry=FAST_RETRY, env={}, transport=transport) as client:
        for index in indexes:
            await push(client.repository(parse_reference(src)), index)
        result = await merge(
            client, options([f"{dst}:v1"], [f"{src}@{i.digest}" for i in indexes], platforms=PLATFORMS)
        )
    assert transport.refused == 0  # every attestation was pushed after its image
    merged = json.loads(result.plan.index.raw)["manifests"]
    attestations = [m for m in merged if m.get("annotations", {}).get("vnd.docker.reference.type")]
    assert len(attestations) == 2
    assert all(m["artifactType"] == DOCKER_ATTESTATION for m in attestations)
    # the attestations were copied as children; having a subject, the client listed them in the
    # target's referrers tags (distribution has no referrers API)
    for index in indexes:
        image, attestation = index.children
        assert read_tag_index(dst, image.digest) == [attestation.digest]
    assert result.referrers == []


# -- copy --------------------------------------------------------------------------------------------


async def test_copy_carries_referrers_and_picks_up_new_ones(
    registry: RegistryServer, registry2: RegistryServer, client: Client
) -> None:
    src = f"{registry.host}/{unique('copy')}"
    dst = f"{registry2.host}/{unique('mirror')}"
    source = client.repository(parse_reference(src))
    index = multiarch(seed="copy-referrers")
    await push(source, index, "v1")
    amd64, arm64, amd64_attestation, _ = index.children
    index_signature = make_signature(index)
    arm64_sbom = make_sbom(arm64)
    attestation_signature = make_signature(amd64_attestation, seed="att")
    for artifact in (index_signature, arm64_sbom, attestation_signature):
        await push(source, artifact)
    result = await copy(client, f"{src}:v1", dst)
    copied = [index_signature.digest, arm64_sbom.digest, attestation_signature.digest]
    assert sorted(result.stats.referrers) == sorted(copied)
    assert result.to_dict()["referrers"] == {"copied": result.stats.referrers, "present": 0}
    assert read_tag_index(dst, index.digest) == [index_signature.digest]
    assert read_tag_index(dst, arm64.digest) == [arm64_sbom.digest]
    assert read_tag_index(dst, amd64_attestation.digest) == [attestation_signature.digest]
    assert read_tag_index(dst, amd64.digest) is None
    for artifact in (index_signature, arm64_sbom, attestation_signature):
        await assert_copied(client, dst, artifact)
    # again: the tag is up to date and the referrers are listed
    again = await copy(client, f"{src}:v1", dst)
    assert (again.unchanged, again.stats.referrers, again.stats.referrers_present) == (True, [], 3)
    # a signature added at the source since is picked up by the next run
    late = make_signature(amd64, seed="late")
    await push(source, late)
    third = await copy(client, f"{src}:v1", dst)
    assert (third.unchanged, third.stats.referrers) == (True, [late.digest])
    assert read_tag_index(dst, amd64.digest) == [late.digest]


async def test_copy_with_a_platform_filter_keeps_only_the_kept_images_referrers(
    registry: RegistryServer, registry2: RegistryServer, client: Client
) -> None:
    src = f"{registry.host}/{unique('copy')}"
    dst = f"{registry2.host}/{unique('mirror')}"
    source = client.repository(parse_reference(src))
    index = multiarch(seed="filter-referrers")
    await push(source, index, "v1")
    amd64, arm64 = index.children[:2]
    artifacts = [make_signature(index), make_sbom(amd64), make_sbom(arm64)]
    for artifact in artifacts:
        await push(source, artifact)
    result = await copy(client, f"{src}:v1", dst, platforms=["linux/arm64"])
    assert result.rewritten
    # the new index has a new digest: the source index's signature does not apply to it
    assert result.stats.referrers == [artifacts[2].digest]
    assert read_tag_index(dst, arm64.digest) == [artifacts[2].digest]
    assert read_tag_index(dst, index.digest) is None
    assert read_tag_index(dst, amd64.digest) is None
    off = f"{registry2.host}/{unique('mirror')}"
    plain = await copy(client, f"{src}:v1", off, referrers=False)
    assert plain.stats.referrers == []
    assert tags_of(off) == ["v1"]


async def test_referrers_travel_through_an_oci_layout(
    registry: RegistryServer, registry2: RegistryServer, client: Client, tmp_path: Path
) -> None:
    src = f"{registry.host}/{unique('copy')}"
    layout = f"oci:{tmp_path / 'oci'}"
    back = f"{registry2.host}/{unique('back')}"
    source = client.repository(parse_reference(src))
    index = multiarch(seed="via-layout")
    await push(source, index, "v1")
    signature, sbom = make_signature(index), make_sbom(index.children[0])
    await push(source, signature)
    await push(source, sbom)
    out = await copy(client, f"{src}:v1", f"{layout}:v1")
    assert sorted(out.stats.referrers) == sorted([signature.digest, sbom.digest])
    listed = await anyio.run_process(["skopeo", "inspect", "--raw", f"{layout}:{tag_of(index.digest)}"])
    assert [m["digest"] for m in json.loads(listed.stdout)["manifests"]] == [signature.digest]
    home = await copy(client, f"{layout}:v1", f"{back}:v1")
    assert sorted(home.stats.referrers) == sorted([signature.digest, sbom.digest])
    assert read_tag_index(back, index.digest) == [signature.digest]
    assert read_tag_index(back, index.children[0].digest) == [sbom.digest]


# -- the referrers API -------------------------------------------------------------------------------


class ReferrersAPI(httpx.AsyncBaseTransport):
    """Registries with the OCI referrers API: a thin layer in front of real distribution 2.8 ones.

    ``GET /v2/<name>/referrers/<digest>`` is answered from what the registry stores: every manifest
    revision of the repository (from its storage directory), read back through the registry, whose
    ``subject`` is the digest; ``page_size`` descriptors a page, with ``Link``; the
    ``artifactType`` filter is applied (and said so in ``OCI-Filters-Applied``) unless
    ``apply_filters`` is off. A manifest PUT with a subject gets ``OCI-Subject``, as the spec asks of
    registries with the API, so clients leave the referrers tag alone.
    """

    def __init__(self, *servers: RegistryServer, page_size: int = 100, apply_filters: bool = True) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.servers = {server.port: server for server in servers}
        self.page_size = page_size
        self.apply_filters = apply_filters
        self.log: list[str] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.log.append(f"{request.method} {request.url.path}")
        server = self.servers.get(request.url.port or 0)
        match = re.fullmatch(r"/v2/(.+)/referrers/(sha256:[0-9a-f]{64})", request.url.path)
        if server is not None and request.method == "GET" and match is not None:
            return await self._referrers(request, server, match.group(1), match.group(2))
        response = await self.inner.handle_async_request(request)
        if server is not None and request.method == "PUT" and "/manifests/" in request.url.path:
            subject = json.loads(request.content).get("subject")
            if subject is not None and response.status_code == 201:
                response.headers["OCI-Subject"] = subject["digest"]
        return response

    async def _referrers(
        self, request: httpx.Request, server: RegistryServer, name: str, digest: str
    ) -> httpx.Response:
        found = []
        for candidate in sorted(revisions(server, name)):
            url = request.url.copy_with(path=f"/v2/{name}/manifests/{candidate}", query=None)
            response = await self.inner.handle_async_request(
                httpx.Request("GET", url, headers={"Accept": MANIFEST_ACCEPT})
            )
            raw = await response.aread()
            doc = json.loads(raw)
            if (doc.get("subject") or {}).get("digest") != digest:
                continue
            entry = {"mediaType": doc["mediaType"], "digest": candidate, "size": len(raw)}
            artifact_type = doc.get("artifactType") or (doc.get("config") or {}).get("mediaType")
            if artifact_type:
                entry["artifactType"] = artifact_type
            if doc.get("annotations"):
                entry["annotations"] = doc["annotations"]
            found.append(entry)
        headers = {"Content-Type": OCI_INDEX}
        wanted = request.url.params.get("artifactType")
        if wanted and self.apply_filters:
            found = [e for e in found if e.get("artifactType") == wanted]
            headers["OCI-Filters-Applied"] = "artifactType"
        page = int(request.url.params.get("page", "0"))
        chunk = found[page * self.page_size : (page + 1) * self.page_size]
        if len(found) > (page + 1) * self.page_size:
            query = {"page": page + 1, **({"artifactType": wanted} if wanted else {})}
            headers["Link"] = f'<{request.url.path}?{urlencode(query)}>; rel="next"'
        body = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": chunk}
        return httpx.Response(200, headers=headers, content=json.dumps(body).encode())

    async def aclose(self) -> None:
        await self.inner.aclose()


async def test_referrers_api_is_used_where_the_registry_has_it(
    registry: RegistryServer, registry2: RegistryServer
) -> None:
    src = f"{registry.host}/{unique('api')}"
    dst = f"{registry2.host}/{unique('api')}"
    api = ReferrersAPI(registry, registry2, page_size=1)
    async with Client(retry=FAST_RETRY, env={}, transport=api) as client:
        source = client.repository(parse_reference(src))
        index = multiarch(seed="api")
        await push(source, index, "v1")
        signature, sbom = make_signature(index), make_sbom(index)
        await push(source, signature)
        await push(source, sbom)
        assert tags_of(src) == ["v1"]  # the registry took the subject: no referrers tag written
        found = await source.list_referrers(index.digest)
        assert sorted(d.digest for d in found) == sorted([signature.digest, sbom.digest])  # two pages
        assert {d.digest: d.artifact_type for d in found}[sbom.digest] == SPDX_TYPE
        only = await source.list_referrers(index.digest, SPDX_TYPE)
        assert [d.digest for d in only] == [sbom.digest]
        result = await copy(client, f"{src}:v1", dst)
        assert sorted(result.stats.referrers) == sorted([signature.digest, sbom.digest])
        target = client.repository(parse_reference(dst))
        assert sorted(d.digest for d in await target.list_referrers(index.digest)) == sorted(
            [signature.digest, sbom.digest]
        )
    assert tags_of(dst) == ["v1"]
    # no referrers tag written; read once, by the first lookup on the target registry, which asks
    # the API and reads the tag at once (the source registry's API showed itself on the pushes)
    tag_schema = [line for line in api.log if "/manifests/sha256-" in line]
    assert tag_schema == [f"GET /v2/{dst.partition('/')[2]}/manifests/{tag_of(index.digest)}"]
    pages = [line for line in api.log if f"/referrers/{index.digest}" in line]
    assert len(pages) >= 2


async def test_an_unfiltered_referrers_answer_is_filtered_by_the_client(registry: RegistryServer) -> None:
    name = f"{registry.host}/{unique('api')}"
    async with Client(
        retry=FAST_RETRY, env={}, transport=ReferrersAPI(registry, apply_filters=False)
    ) as client:
        repo = client.repository(parse_reference(name))
        image = make_image(seed="unfiltered")
        await push(repo, image)
        signature, sbom = make_signature(image), make_sbom(image)
        await push(repo, signature)
        await push(repo, sbom)
        assert [d.digest for d in await repo.list_referrers(image.digest, SIGSTORE_BUNDLE)] == [
            signature.digest
        ]


class LoginPage(httpx.AsyncBaseTransport):
    """Forwards to the registry, but answers the referrers API with an HTML page and 200 (as a
    registry redirecting unknown paths to a login page does)."""

    def __init__(self) -> None:
        self.inner = httpx.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if "/referrers/" in request.url.path:
            return httpx.Response(200, headers={"Content-Type": "text/html"}, content=b"<html>sign in</html>")
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


async def test_a_referrers_answer_that_is_no_index_means_no_api(registry: RegistryServer) -> None:
    name = f"{registry.host}/{unique('login')}"
    async with Client(retry=FAST_RETRY, env={}, transport=LoginPage()) as client:
        repo = client.repository(parse_reference(name))
        image = make_image(seed="login")
        await push(repo, image)
        signature = make_signature(image)
        await push(repo, signature)
        assert [d.digest for d in await repo.list_referrers(image.digest)] == [signature.digest]
        assert client.registry.referrers_api == {registry.host: False}


# -- the command line --------------------------------------------------------------------------------


def test_cli_merge_json_lists_referrers_and_no_referrers_skips_them(
    registry: RegistryServer, registry2: RegistryServer
) -> None:
    src = f"{registry.host}/{unique('cli')}"
    images = [make_image(p, seed="cli-referrers") for p in PLATFORMS]
    signature = make_signature(images[1])

    async def prepare() -> None:
        async with Client(retry=FAST_RETRY, env={}) as c:
            for image in [*images, signature]:
                await push(c.repository(parse_reference(src)), image)

    anyio.run(prepare)
    runner = CliRunner()
    sources = [f"{src}@{i.digest}" for i in images]
    dst = f"{registry2.host}/{unique('cli')}"
    result = runner.invoke(make_app(), ["merge", "--json", "-t", f"{dst}:v1", *sources])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["referrers"] == [signature.digest]
    assert read_tag_index(dst, images[1].digest) == [signature.digest]
    plain = runner.invoke(make_app(), ["merge", "-t", f"{dst}:v2", *sources])
    assert "referrers" not in plain.stdout  # listed already: nothing copied
    bare = f"{registry2.host}/{unique('cli')}"
    off = runner.invoke(make_app(), ["merge", "--no-referrers", "-t", f"{bare}:v1", *sources])
    assert off.exit_code == 0, off.output
    assert tags_of(bare) == ["v1"]
    copied = runner.invoke(make_app(), ["copy", f"{dst}:v1", f"{bare}:v2"])
    assert copied.exit_code == 0, copied.output
    assert "referrers  1 copied, 0 already there" in copied.stdout
