"""OCI and Docker data types: media types, platforms, descriptors, manifests and indexes.

No I/O. Parsed models keep unknown fields (``extra="allow"``) so that a model dumped back says
what it read; but digests are always of the exact bytes (:class:`Manifest.raw`), never of a
re-serialisation.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from splitbuild.digest import compute, parse_digest, verify_bytes
from splitbuild.errors import InvalidInput, InvalidManifest
from splitbuild.platforms import platform_key, split_platform

__all__ = [
    "ANNOTATION_REF_NAME",
    "ATTESTATION_MANIFEST",
    "DOCKER_CONFIG",
    "DOCKER_LAYER",
    "DOCKER_LIST",
    "DOCKER_MANIFEST",
    "INDEX_TYPES",
    "MANIFEST_ACCEPT",
    "MANIFEST_TYPES",
    "MAX_INDEX_DEPTH",
    "MAX_MANIFEST_SIZE",
    "OCI_CONFIG",
    "OCI_INDEX",
    "OCI_LAYER",
    "OCI_MANIFEST",
    "REFERENCE_DIGEST",
    "REFERENCE_TYPE",
    "ConfigFile",
    "Descriptor",
    "ImageIndex",
    "ImageManifest",
    "Manifest",
    "Platform",
    "too_deep",
]

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_EMPTY = "application/vnd.oci.empty.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"

INDEX_TYPES = frozenset({OCI_INDEX, DOCKER_LIST})
IMAGE_TYPES = frozenset({OCI_MANIFEST, DOCKER_MANIFEST})
MANIFEST_TYPES = INDEX_TYPES | IMAGE_TYPES
MANIFEST_ACCEPT = ", ".join([OCI_INDEX, DOCKER_LIST, OCI_MANIFEST, DOCKER_MANIFEST])
MAX_MANIFEST_SIZE = 4 * 1024 * 1024
MAX_INDEX_DEPTH = 32
"""Indexes nested deeper than this (an image under more than 32 indexes) are invalid input."""

# BuildKit marks attestation manifests in an index with these descriptor annotations.
REFERENCE_TYPE = "vnd.docker.reference.type"
REFERENCE_DIGEST = "vnd.docker.reference.digest"
ATTESTATION_MANIFEST = "attestation-manifest"
# The tag of a manifest in an OCI image layout's index.json.
ANNOTATION_REF_NAME = "org.opencontainers.image.ref.name"


class _Model(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True, frozen=True)

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(by_alias=True, exclude_none=True, mode="json")


class Platform(_Model):
    """An OCI platform (``os``/``architecture``[/``variant``])."""

    architecture: str
    os: str
    os_version: str | None = Field(default=None, alias="os.version")
    os_features: list[str] | None = Field(default=None, alias="os.features")
    variant: str | None = None
    features: list[str] | None = None

    @classmethod
    def parse(cls, text: str) -> Platform:
        """Parse a platform the user wrote (``linux/arm/v7``, ``linux/aarch64``) with the grammar every
        command shares (:func:`splitbuild.platforms.split_platform`): normalised, and an unknown
        name is :class:`~splitbuild.errors.ConfigError` (invalid input) with a did-you-mean."""
        parts = split_platform(text)
        return cls(os=parts.os, architecture=parts.architecture, variant=parts.variant)

    @property
    def key(self) -> str:
        """The normalised ``os/arch[/variant]`` used to compare platforms, so that a registry's
        ``linux/arm64/v8`` equals ``linux/arm64`` (:func:`splitbuild.platforms.platform_key`)."""
        return platform_key(self.os, self.architecture, self.variant)

    @property
    def is_unknown(self) -> bool:
        return self.os == "unknown" and self.architecture == "unknown"

    def __str__(self) -> str:
        return "/".join(x for x in (self.os, self.architecture, self.variant) if x)


class Descriptor(_Model):
    """An OCI content descriptor: media type, digest and size of a blob or manifest, with its platform,
    annotations and artifact type where given."""

    media_type: str = Field(alias="mediaType")
    digest: str
    size: int = Field(strict=True, ge=0, le=2**63 - 1)
    """An int64 as JSON writes it: a string, a boolean, a float or more than int64 is refused."""
    urls: list[str] | None = None
    annotations: dict[str, str] | None = None
    platform: Platform | None = None
    artifact_type: str | None = Field(default=None, alias="artifactType")
    data: str | None = None

    @property
    def is_attestation(self) -> bool:
        return (self.annotations or {}).get(REFERENCE_TYPE) == ATTESTATION_MANIFEST

    @property
    def attests(self) -> str | None:
        """For an attestation manifest, the digest of the image it describes."""
        return (self.annotations or {}).get(REFERENCE_DIGEST) if self.is_attestation else None

    @property
    def is_index(self) -> bool:
        return self.media_type in INDEX_TYPES


class ImageManifest(_Model):
    schema_version: int = Field(alias="schemaVersion")
    media_type: str | None = Field(default=None, alias="mediaType")
    artifact_type: str | None = Field(default=None, alias="artifactType")
    config: Descriptor
    layers: list[Descriptor] = Field(default_factory=list)
    subject: Descriptor | None = None
    annotations: dict[str, str] | None = None


class ImageIndex(_Model):
    schema_version: int = Field(alias="schemaVersion")
    media_type: str | None = Field(default=None, alias="mediaType")
    artifact_type: str | None = Field(default=None, alias="artifactType")
    manifests: list[Descriptor] = Field(default_factory=list)
    subject: Descriptor | None = None
    annotations: dict[str, str] | None = None


class ConfigFile(_Model):
    """The parts of an image's config blob (the OCI image configuration) splitbuild reads: platform,
    labels and creation time. (The ``[image]`` table of a config file is
    :class:`splitbuild.config.ImageConfig`.)"""

    architecture: str | None = None
    os: str | None = None
    variant: str | None = None
    os_version: str | None = Field(default=None, alias="os.version")
    os_features: list[str] | None = Field(default=None, alias="os.features")
    config: dict[str, Any] | None = None
    created: str | None = None

    def platform(self) -> Platform | None:
        if not self.architecture or not self.os:
            return None
        return Platform(
            architecture=self.architecture,
            os=self.os,
            variant=self.variant,
            os_version=self.os_version,
            os_features=self.os_features,
        )

    @property
    def labels(self) -> dict[str, str]:
        labels = (self.config or {}).get("Labels") or {}
        return {str(k): str(v) for k, v in labels.items()}


def _detect_media_type(doc: dict[str, Any], declared: str | None, source: str) -> str:
    field_type = doc.get("mediaType")
    if isinstance(field_type, str) and field_type in MANIFEST_TYPES:
        return field_type
    if declared in MANIFEST_TYPES:
        return declared
    # OCI allows mediaType to be absent: infer from the shape.
    if "manifests" in doc:
        return OCI_INDEX
    if "config" in doc and "layers" in doc:
        return OCI_MANIFEST
    if doc.get("schemaVersion") == 1:
        raise InvalidManifest(f"{source}: Docker schema 1 manifests are not supported")
    raise InvalidManifest(f"{source}: unsupported manifest media type {field_type or declared!r}")


_PLAIN_KEY = re.compile(r"^[A-Za-z0-9_.-]+$")


def _loc_part(part: object) -> str:
    """A key of the document path in an error message: quoted (escaped) unless plain."""
    text = str(part)
    return text if _PLAIN_KEY.match(text) else repr(text)


def _check_references(parsed: ImageManifest | ImageIndex, what: str) -> None:
    """Every digest a manifest references must be a valid digest: they become URLs and paths."""
    entries: list[tuple[str, Descriptor]] = []
    if isinstance(parsed, ImageManifest):
        entries.append(("config", parsed.config))
        entries += [(f"layers.{i}", d) for i, d in enumerate(parsed.layers)]
    else:
        entries += [(f"manifests.{i}", d) for i, d in enumerate(parsed.manifests)]
    if parsed.subject is not None:
        entries.append(("subject", parsed.subject))
    for where, desc in entries:
        try:
            parse_digest(desc.digest)
        except InvalidInput as exc:
            raise InvalidManifest(f"{what}: {where}.digest: {exc.message}") from None


def too_deep(what: str) -> InvalidManifest:
    """The error for a manifest tree whose indexes nest more than :data:`MAX_INDEX_DEPTH` levels."""
    return InvalidManifest(f"{what}: indexes nested more than {MAX_INDEX_DEPTH} levels deep")


@dataclass(frozen=True)
class Manifest:
    """A manifest or index as exact bytes, with its media type and digest.

    Build one with :meth:`from_bytes` (which checks the digest when one is expected) or
    :meth:`from_model` (which serialises a model once; those bytes are then the manifest).
    """

    raw: bytes
    media_type: str
    digest: str
    parsed: ImageManifest | ImageIndex = field(repr=False, compare=False)

    @classmethod
    def from_bytes(
        cls,
        raw: bytes,
        *,
        media_type: str | None = None,
        digest: str | None = None,
        source: str = "manifest",
    ) -> Manifest:
        """Parse ``raw``; ``media_type`` is the declared Content-Type, ``digest`` the expected digest."""
        if len(raw) > MAX_MANIFEST_SIZE:
            raise InvalidManifest(f"{source}: manifest of {len(raw)} bytes exceeds the 4 MiB limit")
        if digest is not None:
            verify_bytes(raw, digest, what=source)
            algorithm, _ = parse_digest(digest)
        else:
            algorithm = "sha256"
        try:
            doc = json.loads(raw)
        except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError, integers over the digit limit
            raise InvalidManifest(f"{source}: not valid JSON ({exc.__class__.__name__})") from None
        except RecursionError:
            raise InvalidManifest(f"{source}: not valid JSON (nested too deeply)") from None
        if not isinstance(doc, dict):
            raise InvalidManifest(f"{source}: manifest must be a JSON object")
        declared = media_type.split(";")[0].strip() if media_type else None
        mt = _detect_media_type(doc, declared, source)
        try:
            parsed: ImageManifest | ImageIndex
            parsed = (
                ImageIndex.model_validate(doc) if mt in INDEX_TYPES else ImageManifest.model_validate(doc)
            )
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(_loc_part(p) for p in first["loc"]) or "document"
            raise InvalidManifest(f"{source}: invalid {mt}: {where}: {first['msg']}") from None
        _check_references(parsed, f"{source}: invalid {mt}")
        return cls(raw=raw, media_type=mt, digest=digest or compute(raw, algorithm), parsed=parsed)

    @classmethod
    def from_model(cls, model: ImageManifest | ImageIndex, *, indent: int | None = 2) -> Manifest:
        doc = model.to_dict()
        raw = json.dumps(doc, indent=indent, ensure_ascii=False).encode()
        return cls.from_bytes(raw)

    @property
    def size(self) -> int:
        return len(self.raw)

    @property
    def is_index(self) -> bool:
        return self.media_type in INDEX_TYPES

    @cached_property
    def doc(self) -> dict[str, Any]:
        value: dict[str, Any] = json.loads(self.raw)
        return value

    def index(self) -> ImageIndex:
        if not isinstance(self.parsed, ImageIndex):
            raise InvalidManifest(f"{self.digest} is an image manifest, not an index")
        return self.parsed

    def image(self) -> ImageManifest:
        if not isinstance(self.parsed, ImageManifest):
            raise InvalidManifest(f"{self.digest} is an index, not an image manifest")
        return self.parsed

    def descriptor(self, **extra: Any) -> Descriptor:
        data: dict[str, Any] = {"mediaType": self.media_type, "digest": self.digest, "size": self.size}
        artifact_type = getattr(self.parsed, "artifact_type", None)
        if artifact_type:
            data["artifactType"] = artifact_type
        data.update({k: v for k, v in extra.items() if v is not None})
        return Descriptor.model_validate(data)

    def blobs(self) -> list[Descriptor]:
        """The blobs an image manifest references (config first, then layers); empty for an index."""
        if isinstance(self.parsed, ImageManifest):
            return [self.parsed.config, *self.parsed.layers]
        return []

    def children(self) -> list[Descriptor]:
        if isinstance(self.parsed, ImageIndex):
            return list(self.parsed.manifests)
        return []
