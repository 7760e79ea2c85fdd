"""copy follows cosign's older tag scheme (issue 18): ``sha256-<hex>.sig``, ``.att`` and ``.sbom``
tags of the copied manifest and of each child of a copied index (and the tags of what those point
at) travel under the same names, byte for byte, between real registries and OCI layouts, found
with one tag listing of the source; ``--no-referrers`` leaves them behind."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import anyio
import httpx
import pytest
from typer.testing import CliRunner

from splitbuild.blobcache import BlobLocations
from splitbuild.cli.app import make_app
from splitbuild.client import Client
from splitbuild.errors import RegistryError
from splitbuild.models import OCI_CONFIG, OCI_LAYER, OCI_MANIFEST, Descriptor, Manifest
from splitbuild.ops import copy, delete
from splitbuild.reference import parse_reference
from splitbuild.referrers import digest_tags
from splitbuild.retry import FAST_RETRY
from splitbuild.store.base import Repository
from tests.images import Image, make_image, make_signature, push, sha256
from tests.ops_support import Refusing, multiarch, unique
from tests.registry_server import RegistryServer

pytestmark = pytest.mark.anyio

SIMPLESIGNING = "application/vnd.dev.cosign.simplesigning.v1+json"
DSSE = "application/vnd.dsse.envelope.v1+json"
SPDX_TEXT = "text/spdx"


def cosign_tag(subject: Image | str, suffix: str) -> str:
    digest = subject if isinstance(subject, str) else subject.digest
    return digest.replace(":", "-") + f".{suffix}"


def cosign_artifact(subject: Image, suffix: str, *, seed: str = "") -> Image:
    """What cosign before v3 pushes under ``sha256-<hex>.<suffix>``: an OCI image manifest (no
    ``subject``) with a small config and one layer: a simple-signing payload with its signature
    annotation (``sig``), a DSSE envelope with its predicate type (``att``), an SPDX document
    (``sbom``, as ``cosign attach sbom``)."""
    if suffix == "sig":
        payload = json.dumps(
            {
                "critical": {
                    "identity": {"docker-reference": "example.test/app"},
                    "image": {"docker-manifest-digest": subject.digest},
                    "type": "cosign container image signature",
                },
                "optional": {"seed": seed},
            }
        ).encode()
        layer_type = SIMPLESIGNING
        annotations = {
            "dev.cosignproject.cosign/signature": base64.b64encode(f"sig-{seed}".encode()).decode()
        }
    elif suffix == "att":
        statement = {"predicateType": "https://slsa.dev/provenance/v0.2", "seed": seed}
        envelope = {"payloadType": "application/vnd.in-toto+json", "payload": json.dumps(statement)}
        payload = json.dumps(envelope).encode()
        layer_type = DSSE
        annotations = {"predicateType": "https://slsa.dev/provenance/v0.2"}
    else:
        payload = f"SPDXVersion: SPDX-2.3\nDocumentName: {subject.digest} {seed}\n".encode()
        layer_type = SPDX_TEXT
        annotations = {}
    config = json.dumps(
        {
            "architecture": "",
            "os": "",
            "config": {},
            "rootfs": {"type": "layers", "diff_ids": [sha256(payload)]},
        }
    ).encode()
    layer: dict[str, object] = {"mediaType": layer_type, "digest": sha256(payload), "size": len(payload)}
    if annotations:
        layer["annotations"] = annotations
    doc = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": sha256(config), "size": len(config)},
        "layers": [layer],
    }
    return Image(
        Manifest.from_bytes(json.dumps(doc).encode()), {sha256(config): config, sha256(payload): payload}
    )


async def attach(repo: Repository, subject: Image, *suffixes: str, seed: str = "") -> dict[str, Image]:
    """Push cosign's tags for ``subject`` into ``repo``: tag to the artifact pushed."""
    pushed = {}
    for suffix in suffixes:
        artifact = cosign_artifact(subject, suffix, seed=seed)
        tag = cosign_tag(subject, suffix)
        await push(repo, artifact, tag)
        pushed[tag] = artifact
    return pushed


async def skopeo_raw(ref: str) -> bytes:
    transport = ref if ref.startswith("oci:") else f"docker://{ref}"
    result = await anyio.run_process(["skopeo", "inspect", "--raw", "--tls-verify=false", transport])
    return result.stdout


async def assert_tagged(client: Client, repository: str, expected: dict[str, Image]) -> None:
    """Each tag of ``expected`` is in ``repository`` at its artifact's exact bytes (as skopeo reads
    them too), with its blobs."""
    repo = client.repository(parse_reference(repository))
    for tag, artifact in expected.items():
        raw = await skopeo_raw(f"{repository}:{tag}")
        assert raw == artifact.manifest.raw, tag
        assert (await repo.get_manifest(tag)).raw == artifact.manifest.raw
        for digest, data in artifact.blobs.items():
            assert await repo.has_blob(digest)
            blob = Descriptor.model_validate({"mediaType": OCI_LAYER, "digest": digest, "size": len(data)})
            assert await repo.read_blob(blob) == data


async def tags_of(client: Client, repository: str) -> list[str]:
    return sorted(await client.repository(parse_reference(repository)).list_tags())


def test_cosign_tag_names() -> None:
    digest = "sha256:" + "ab" * 32
    assert digest_tags(digest) == [f"sha256-{'ab' * 32}.{s}" for s in ("sig", "att", "sbom")]
    assert digest_tags("sha512:" + "cd" * 64) == []  # 135 characters: no valid tag, so cosign has none


async def test_registry_to_registry_copies_the_tags_of_the_index_and_its_children(
    registry: RegistryServer, registry2: RegistryServer, client: Client
) -> None:
    src = f"{registry.host}/{unique('cosign')}"
    dst = f"{registry2.host}/{unique('mirror')}"
    source = client.repository(parse_reference(src))
    index = multiarch(seed="cosign-index")
    await push(source, index, "v1")
    amd64, arm64 = index.children[:2]
    expected = await attach(source, index, "sig", "att", "sbom", seed="index")
    expected |= await attach(source, amd64, "sig", seed="amd64")
    expected |= await attach(source, arm64, "sig", "att", seed="arm64")
    # cosign sign --attachment sbom: a signature of the SBOM manifest, named after its digest
    sbom = expected[cosign_tag(index, "sbom")]
    expected |= await attach(source, sbom, "sig", seed="of-the-sbom")
    # a cosign v3 signature (a referrer): distribution 2.x holds it under the plain referrers tag
    bundle = make_signature(index, seed="v3")
    await push(source, bundle)
    # a stale signature of a manifest that is not copied
    stray = make_image(seed="not-copied")
    await push(source, stray, "other")
    await attach(source, stray, "sig", seed="stray")

    result = await copy(client, f"{src}:v1", f"{dst}:v1")
    assert sorted(result.stats.digest_tags) == sorted(expected)
    assert result.stats.digest_tags_present == 0
    assert result.to_dict()["digestTags"] == {"copied": result.stats.digest_tags, "present": 0}
    assert result.stats.referrers == [bundle.digest]
    await assert_tagged(client, dst, expected)
    plain = cosign_tag(index, "sig").removesuffix(".sig")  # the referrers tag the store keeps
    assert await tags_of(client, dst) == sorted(["v1", plain, *expected])
    listed = json.loads(await skopeo_raw(f"{dst}:{plain}"))
    assert [m["digest"] for m in listed["manifests"]] == [bundle.digest]

    # up to date: a tag listing, then a GET in the source and a HEAD in the destination per tag
    again = await copy(client, f"{src}:v1", f"{dst}:v1")
    assert again.unchanged
    assert (again.stats.digest_tags, again.stats.digest_tags_present) == ([], len(expected))
    off = await copy(client, f"{src}:v1", f"{dst}:v1", referrers=False)
    assert off.requests == 2

    # a signature added at the source since is picked up; one the destination has elsewhere is moved
    late = await attach(source, amd64, "att", seed="late")
    moved = await attach(source, amd64, "sig", seed="re-signed")
    third = await copy(client, f"{src}:v1", f"{dst}:v1")
    assert sorted(third.stats.digest_tags) == sorted([*late, *moved])
    assert third.stats.digest_tags_present == len(expected) - 1
    await assert_tagged(client, dst, {**expected, **late, **moved})


async def test_request_counts_with_and_without_cosign_tags(
    registry: RegistryServer, registry2: RegistryServer, client: Client
) -> None:
    """What following cosign's tags costs: one tag listing of the source, plus for each tag found a
    GET in the source and a HEAD in the destination, and the copy itself (blobs and a PUT)."""
    src = f"{registry.host}/{unique('cosign')}"
    source = client.repository(parse_reference(src))
    bare, signed = multiarch(seed="count-bare"), multiarch(seed="count-signed")
    await push(source, bare, "bare")
    await push(source, signed, "signed")
    tags = await attach(source, signed, "sig", "att", "sbom", seed="count")
    for child in signed.children[:2]:
        tags |= await attach(source, child, "sig", seed="count")
    assert len(tags) == 5
    # the client learns once per registry whether it has the referrers API: learnt here first
    await copy(client, f"{src}:bare", f"{registry2.host}/{unique('warm-up')}:bare")
    dst = f"{registry2.host}/{unique('mirror')}"
    without = await copy(client, f"{src}:bare", f"{dst}:bare")
    with_tags = await copy(client, f"{src}:signed", f"{dst}:signed")
    assert without.stats.digest_tags == []
    assert len(with_tags.stats.digest_tags) == 5
    # each tag: its GET in the source, a HEAD of it in the destination, then for each of its 2 blobs
    # a HEAD in the destination, a GET in the source and an upload (POST, PUT), and the manifest PUT
    assert with_tags.requests == without.requests + 5 * (1 + 1 + 2 * 4 + 1)
    # up to date: 2 (GET source, HEAD tag) + 5 referrers lookups + 1 tag listing, + 2 per tag
    bare_again = await copy(client, f"{src}:bare", f"{dst}:bare")
    signed_again = await copy(client, f"{src}:signed", f"{dst}:signed")
    assert bare_again.requests == 2 + 5 + 1
    assert signed_again.requests == 2 + 5 + 1 + 2 * 5
    # given the listing (a script copying many tags of one repository lists it once): no listing
    listing = await source.list_tags()
    given = await copy(client, f"{src}:signed", f"{dst}:signed", source_tags=listing)
    assert given.requests == 2 + 5 + 2 * 5
    assert len(given.stats.digest_tags) + given.stats.digest_tags_present == 5
    print(
        f"requests: first copy {without.requests} without cosign tags, {with_tags.requests} with 5; "
        f"up to date {bare_again.requests} and {signed_again.requests}"
    )


async def test_registry_to_layout_and_back(
    registry: RegistryServer, registry2: RegistryServer, client: Client, tmp_path: Path
) -> None:
    src = f"{registry.host}/{unique('cosign')}"
    source = client.repository(parse_reference(src))
    index = multiarch(seed="cosign-layout")
    await push(source, index, "v1")
    expected = await attach(source, index, "sig", "sbom", seed="layout")
    for child in index.children[:2]:
        expected |= await attach(source, child, "sig", seed="layout")
    layout = f"oci:{tmp_path / 'oci'}"
    out = await copy(client, f"{src}@{index.digest}", f"{layout}:v1")
    assert sorted(out.stats.digest_tags) == sorted(expected)
    await assert_tagged(client, layout, expected)
    assert await tags_of(client, layout) == sorted(["v1", *expected])
    # from the layout: its index.json lists the tags, no request needed to find them
    back = f"{registry2.host}/{unique('back')}"
    home = await copy(client, f"{layout}:v1", f"{back}:v1")
    assert sorted(home.stats.digest_tags) == sorted(expected)
    await assert_tagged(client, back, expected)
    again = await copy(client, f"{layout}:v1", f"{back}:v1")
    # requests only go to the destination: the HEAD of v1 and a HEAD per cosign tag
    assert again.requests == 1 + len(expected)


async def test_a_filtered_index_keeps_the_tags_of_the_images_it_keeps(
    registry: RegistryServer, registry2: RegistryServer, client: Client
) -> None:
    src = f"{registry.host}/{unique('cosign')}"
    dst = f"{registry2.host}/{unique('mirror')}"
    source = client.repository(parse_reference(src))
    index = multiarch(seed="cosign-filter")
    await push(source, index, "v1")
    amd64, arm64 = index.children[:2]
    await attach(source, index, "sig", seed="filter")
    await attach(source, amd64, "sig", seed="filter")
    kept = await attach(source, arm64, "sig", "att", seed="filter")
    result = await copy(client, f"{src}:v1", f"{dst}:v1", platforms=["linux/arm64"])
    assert result.rewritten
    # the new index has a new digest: the source index's signature does not apply to it
    assert sorted(result.stats.digest_tags) == sorted(kept)
    assert await tags_of(client, dst) == sorted(["v1", *kept])


def test_no_referrers_leaves_them_behind_and_an_absent_signature_is_no_error(
    registry: RegistryServer, registry2: RegistryServer
) -> None:
    src = f"{registry.host}/{unique('cosigncli')}"
    index = multiarch(seed="cosign-cli")
    lone = make_image(seed="cosign-cli-unsigned")

    async def prepare() -> dict[str, Image]:
        async with Client(retry=FAST_RETRY, env={}) as c:
            repo = c.repository(parse_reference(src))
            await push(repo, index, "v1")
            await push(repo, lone, "unsigned")
            return await attach(repo, index, "sig", "att", seed="cli")  # no .sbom

    attached = anyio.run(prepare)
    runner = CliRunner()
    help_text = runner.invoke(make_app(), ["copy", "--help"], terminal_width=200).stdout
    assert "sha256-<hex>.sig/.att/.sbom" in " ".join(help_text.split())

    off = f"{registry2.host}/{unique('mirror')}"
    skipped = runner.invoke(make_app(), ["copy", f"{src}:v1", off, "--no-referrers", "--json"])
    assert skipped.exit_code == 0, skipped.output
    assert json.loads(skipped.stdout)["digestTags"] == {"copied": [], "present": 0}
    on = f"{registry2.host}/{unique('mirror')}"
    copied = runner.invoke(make_app(), ["copy", f"{src}:v1", on, "--json"])
    assert copied.exit_code == 0, copied.output
    assert sorted(json.loads(copied.stdout)["digestTags"]["copied"]) == sorted(attached)
    shown = runner.invoke(make_app(), ["copy", f"{src}:v1", on])
    assert shown.exit_code == 0, shown.output
    assert "cosign     0 tags copied, 2 already there" in shown.stdout
    unsigned = runner.invoke(make_app(), ["copy", f"{src}:unsigned", on, "--json"])
    assert unsigned.exit_code == 0, unsigned.output
    assert json.loads(unsigned.stdout)["digestTags"] == {"copied": [], "present": 0}

    async def listed(repository: str) -> list[str]:
        async with Client(retry=FAST_RETRY, env={}) as c:
            return await tags_of(c, repository)

    assert anyio.run(listed, off) == ["v1"]
    assert anyio.run(listed, on) == sorted(["v1", "unsigned", *attached])


async def test_copying_an_unrelated_image_copies_none(
    registry: RegistryServer, registry2: RegistryServer, client: Client
) -> None:
    src = f"{registry.host}/{unique('cosign')}"
    source = client.repository(parse_reference(src))
    signed, other = make_image(seed="signed"), multiarch(seed="unrelated")
    await push(source, signed, "signed")
    await push(source, other, "other")
    await attach(source, signed, "sig", "att", "sbom", seed="unrelated")
    dst = f"{registry2.host}/{unique('mirror')}"
    result = await copy(client, f"{src}:other", f"{dst}:other")
    assert result.stats.digest_tags == []
    assert await tags_of(client, dst) == ["other"]


async def test_a_refused_tag_listing_falls_back_to_reading_each_tag(
    registry: RegistryServer, registry2: RegistryServer
) -> None:
    """A registry that will not list tags for this client (403, as for a pull-only role) gets a read
    of each possible tag instead: three per manifest; a listing that fails otherwise fails the copy."""
    src = f"{registry.host}/{unique('cosign')}"
    index = multiarch(seed="cosign-unlisted")
    status = 403

    def refuse(request: httpx.Request) -> httpx.Response | None:
        if request.method == "GET" and request.url.path.endswith("/tags/list"):
            return httpx.Response(status, json={"errors": [{"code": "DENIED", "message": "no"}]})
        return None

    async with Client(retry=FAST_RETRY, env={}, transport=Refusing(refuse)) as client:
        source = client.repository(parse_reference(src))
        await push(source, index, "v1")
        expected = await attach(source, index, "sig", seed="unlisted")
        expected |= await attach(source, index.children[1], "att", seed="unlisted")
        dst = f"{registry2.host}/{unique('mirror')}"
        result = await copy(client, f"{src}:v1", f"{dst}:v1")
        assert sorted(result.stats.digest_tags) == sorted(expected)
        await assert_tagged(client, dst, expected)
        again = await copy(client, f"{src}:v1", f"{dst}:v1")
        # 2 + 5 referrers lookups + the refused listing + 3 reads per manifest of the tree and per
        # manifest found (its own tags), + a HEAD per tag found
        assert again.requests == 2 + 5 + 1 + 3 * (5 + 2) + 2
        status = 500
        with pytest.raises(RegistryError, match="tags"):
            await copy(client, f"{src}:v1", f"{registry2.host}/{unique('mirror')}:v1")


async def test_blobs_of_the_tags_are_mounted_within_a_registry_and_from_the_location_cache(
    registry: RegistryServer, registry2: RegistryServer, tmp_path: Path
) -> None:
    src = f"{registry.host}/{unique('cosign')}"
    image = make_image(seed="cosign-mounts")
    cache = BlobLocations.open(tmp_path, env={})
    assert cache is not None
    async with Client(retry=FAST_RETRY, env={}, blob_cache=cache) as client:
        source = client.repository(parse_reference(src))
        await push(source, image, "v1")
        expected = await attach(source, image, "sig", "att", "sbom", seed="mounts")
        near = await copy(client, f"{src}:v1", f"{registry.host}/{unique('same')}:v1")
        assert (near.stats.blobs_mounted, near.stats.blobs_copied) == (2 + 3 * 2, 0)
        first = await copy(client, f"{src}:v1", f"{registry2.host}/{unique('mirror')}:v1")
        assert (first.stats.blobs_mounted, first.stats.blobs_copied) == (0, 2 + 3 * 2)
        second_repo = f"{registry2.host}/{unique('mirror')}"
        second = await copy(client, f"{src}:v1", f"{second_repo}:v1")
        assert (second.stats.blobs_mounted, second.stats.blobs_copied) == (2 + 3 * 2, 0)
        assert sorted(second.stats.digest_tags) == sorted(expected)
        await assert_tagged(client, second_repo, expected)


async def test_delete_takes_all_three_tags_with_their_subject(
    registry: RegistryServer, client: Client
) -> None:
    """The delete side on a plain registry: ``.sig``, ``.att`` and ``.sbom`` go with their subject."""
    src = f"{registry.host}/{unique('cosign')}"
    source = client.repository(parse_reference(src))
    gone, kept = make_image(seed="delete-gone"), make_image(seed="delete-kept")
    await push(source, gone, "gone")
    await push(source, kept, "kept")
    await attach(source, gone, "sig", "att", "sbom", seed="gone")
    kept_tags = await attach(source, kept, "sig", "att", "sbom", seed="kept")
    result = await delete(client, f"{src}:gone")
    assert result.plan is not None
    assert sorted(result.plan.remove) == sorted(
        ["gone", *(cosign_tag(gone, s) for s in ("sig", "att", "sbom"))]
    )
    assert await tags_of(client, src) == sorted(["kept", *kept_tags])
