"""Index assembly rules (pure): flattening, attestations, dedup, platform checks, media type."""

from __future__ import annotations

import json

import pytest

from splitbuild.errors import InvalidInput, UsageError, VerificationError
from splitbuild.index import Annotations, Entry, assemble, parse_annotation, platform_set, select
from splitbuild.models import DOCKER_LIST, OCI_INDEX, Descriptor, Platform
from tests.images import make_buildx_index, make_image, sha256


def image_entry(platform: str, *, docker: bool = False, seed: str = "s", origin: str = "src") -> Entry:
    image = make_image(platform, docker=docker, seed=seed)
    return Entry(image.manifest.descriptor(platform=Platform.parse(platform)), origin, 0, image.manifest)


def buildx_entries(platform: str, seed: str = "s") -> list[Entry]:
    idx = make_buildx_index(make_image(platform, seed=seed), platform, seed=seed)
    return [Entry(d, f"idx-{platform}") for d in idx.manifest.children()]


def test_flattened_attestations_follow_their_image() -> None:
    entries = buildx_entries("linux/amd64") + buildx_entries("linux/arm64")
    children = select(entries)
    assert [str(c.descriptor.platform) for c in children] == [
        "linux/amd64",
        "linux/arm64",
        "unknown/unknown",
        "unknown/unknown",
    ]
    images = {c.digest for c in children if not c.descriptor.is_attestation}
    assert {c.descriptor.attests for c in children if c.descriptor.is_attestation} == images
    index = assemble(children)
    assert index.media_type == OCI_INDEX
    assert platform_set(index) == {"linux/amd64", "linux/arm64"}


def test_attestation_dropped_when_its_image_is_not_kept() -> None:
    amd = buildx_entries("linux/amd64")
    orphan = [e for e in buildx_entries("linux/arm64", seed="other") if e.descriptor.is_attestation]
    children = select(amd + orphan)
    assert len(children) == 2
    assert all(c.origin == "idx-linux/amd64" for c in children)


def test_same_digest_twice_is_deduplicated() -> None:
    e = image_entry("linux/amd64")
    assert len(select([e, e, image_entry("linux/arm64")])) == 2


def test_duplicate_platform_is_an_error_naming_both_sources() -> None:
    a = image_entry("linux/amd64", seed="a", origin="first")
    b = image_entry("linux/amd64", seed="b", origin="second")
    with pytest.raises(InvalidInput, match=r"duplicate platform linux/amd64: first .* and second"):
        select([a, b])


def test_platform_normalization_counts_arm64_v8_as_arm64() -> None:
    a = image_entry("linux/arm64/v8", seed="a")
    b = image_entry("linux/arm64", seed="b")
    with pytest.raises(InvalidInput, match="duplicate platform linux/arm64"):
        select([a, b])


def test_exact_platform_set() -> None:
    entries = [image_entry("linux/amd64"), image_entry("linux/arm64")]
    assert len(select(entries, ["linux/amd64", "linux/arm64/v8"])) == 2
    with pytest.raises(VerificationError, match="missing linux/arm/v7"):
        select(entries, ["linux/amd64", "linux/arm64", "linux/arm/v7"])
    with pytest.raises(VerificationError, match=r"unexpected linux/arm64 \(from src\)"):
        select(entries, ["linux/amd64"])


def test_media_type_docker_list_only_for_all_docker_children_without_annotations() -> None:
    docker = [image_entry("linux/amd64", docker=True), image_entry("linux/arm64", docker=True)]
    assert assemble(docker).media_type == DOCKER_LIST
    ann = Annotations()
    parse_annotation("org.opencontainers.image.source=https://example.test/repo", ann)
    index = assemble(docker, ann)
    assert index.media_type == OCI_INDEX
    assert json.loads(index.raw)["annotations"] == {
        "org.opencontainers.image.source": "https://example.test/repo"
    }
    mixed = [image_entry("linux/amd64", docker=True), image_entry("linux/arm64")]
    assert assemble(mixed).media_type == OCI_INDEX


def test_descriptor_annotations_skip_attestations_and_can_target_a_platform() -> None:
    ann = Annotations()
    parse_annotation("manifest-descriptor:com.example.all=1", ann)
    parse_annotation("manifest-descriptor[linux/arm64]:com.example.arm=yes", ann)
    parse_annotation("index:com.example.idx=2", ann)
    children = select(buildx_entries("linux/amd64") + buildx_entries("linux/arm64"))
    doc = json.loads(assemble(children, ann).raw)
    by_platform = {
        m["platform"]["architecture"]: m
        for m in doc["manifests"]
        if "vnd.docker.reference.type" not in m.get("annotations", {})
    }
    assert by_platform["amd64"]["annotations"] == {"com.example.all": "1"}
    assert by_platform["arm64"]["annotations"] == {"com.example.all": "1", "com.example.arm": "yes"}
    attestations = [m for m in doc["manifests"] if m.get("annotations", {}).get("vnd.docker.reference.type")]
    # the two attestations keep only their own annotations
    assert [set(m["annotations"]) for m in attestations] == [
        {"vnd.docker.reference.type", "vnd.docker.reference.digest"}
    ] * 2
    assert doc["annotations"] == {"com.example.idx": "2"}


@pytest.mark.parametrize(
    "text", ["novalue", "manifest:k=v", "index-descriptor:k=v", "bogus:k=v", "=v", "index[linux/amd64]:k=v"]
)
def test_bad_annotations_are_refused(text: str) -> None:
    with pytest.raises(UsageError):
        parse_annotation(text, Annotations())


def test_index_bytes_are_the_digest() -> None:
    index = assemble([image_entry("linux/amd64")])
    assert index.digest == sha256(index.raw)
    assert json.loads(index.raw)["manifests"][0]["platform"] == {"architecture": "amd64", "os": "linux"}


def test_image_without_platform_is_an_error() -> None:
    image = make_image(seed="np")
    entry = Entry(image.manifest.descriptor(), "bare", 0, image.manifest)
    with pytest.raises(InvalidInput, match="has no platform"):
        select([entry])


def test_platform_of_descriptor_keeps_extra_fields() -> None:
    d = Descriptor.model_validate(
        {
            "mediaType": "m",
            "digest": sha256(b"x"),
            "size": 1,
            "platform": {"os": "windows", "architecture": "amd64", "os.version": "10.0.20348"},
            "x-extra": 1,
        }
    )
    assert d.to_dict()["platform"]["os.version"] == "10.0.20348"
    assert d.to_dict()["x-extra"] == 1


def test_a_platform_annotation_for_an_absent_platform_is_refused() -> None:
    ann = Annotations()
    parse_annotation("manifest-descriptor[linux/s390x]:k=v", ann)
    with pytest.raises(UsageError, match="linux/s390x: the index has no such platform"):
        assemble([image_entry("linux/amd64")], ann)
