"""Referrers: manifests naming another manifest as their ``subject`` (signatures, SBOMs, attestations).

The OCI distribution spec lists the referrers of a manifest with ``GET /v2/<name>/referrers/<digest>``
(an image index). Registries without that API (distribution 2.x, GHCR) hold the same index under
the *referrers tag* ``<alg>-<hex>`` instead, and whoever pushes a manifest with a ``subject`` there
keeps that index up to date. The stores do the listing (``Repository.list_referrers``)
and the tag upkeep on ``put_manifest``; this module holds what they share: the tag name, the
descriptor a referrer gets in the index, the index update, telling signatures from attestations
and SBOMs, and :class:`ReferrerFinder`, which follows referrers of referrers (a signature on an
attestation) and looks each manifest up once.

cosign before v3 did not use ``subject``: it tags what it attaches to a manifest with the manifest's
digest, ``<alg>-<hex>.sig`` (signatures), ``.att`` (attestations) and ``.sbom`` (``cosign attach
sbom``). :class:`DigestTagFinder` finds those tags (regctl calls them *digest tags*) from one tag
listing of the repository.
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import anyio

from splitbuild._tasks import task_group
from splitbuild.digest import parse_digest
from splitbuild.errors import InvalidManifest, InvalidReference, NotFound, RegistryError
from splitbuild.models import OCI_INDEX, Descriptor, ImageManifest, Manifest
from splitbuild.reference import validate_tag
from splitbuild.store.base import Repository

__all__ = [
    "COSIGN_TAG_SUFFIXES",
    "DOCKER_ATTESTATION",
    "LOOKUPS_IN_FLIGHT",
    "MAX_DEPTH",
    "DigestTag",
    "DigestTagFinder",
    "Referrer",
    "ReferrerFinder",
    "digest_tags",
    "kind_of",
    "needs_manifest",
    "only_type",
    "predicate_types",
    "referrer_descriptor",
    "referrers_tag",
    "with_referrer",
]

DOCKER_ATTESTATION = "application/vnd.docker.attestation.manifest.v1+json"
"""The ``artifactType`` of BuildKit's attestation manifests (``oci-artifact=true``)."""
COSIGN_SIGN_PREDICATE = "https://sigstore.dev/cosign/sign/v1"
"""The predicate type of a cosign (v3) signature stored as a sigstore bundle."""

# Where predicate types are written: in-toto layers (BuildKit), sigstore bundles (cosign v3),
# DSSE layers (cosign v2 attestations).
PREDICATE_KEYS = ("in-toto.io/predicate-type", "dev.sigstore.bundle.predicateType", "predicateType")
SIGNATURE_TYPES = frozenset(
    {
        "application/vnd.cncf.notary.signature",
        "application/vnd.dev.cosign.artifact.sig.v1+json",
        "application/vnd.dev.cosign.simplesigning.v1+json",
    }
)
ATTESTATION_TYPES = frozenset(
    {DOCKER_ATTESTATION, "application/vnd.in-toto+json", "application/vnd.dsse.envelope.v1+json"}
)
SBOM_TYPES = frozenset(
    {"application/spdx+json", "text/spdx", "application/vnd.cyclonedx+json", "application/vnd.syft+json"}
)
MAX_DEPTH = 4
"""How deep :class:`ReferrerFinder` follows referrers of referrers."""
LOOKUPS_IN_FLIGHT = 8
"""Lookups one :class:`ReferrerFinder` makes at once (they run beside the copies they serve)."""

COSIGN_TAG_SUFFIXES = ("sig", "att", "sbom")
"""The suffixes of cosign's older tags: ``<alg>-<hex>.sig``, ``.att``, ``.sbom``."""
UNLISTABLE_STATUS = frozenset({401, 403, 404, 405, 501})
"""Answers to a tag listing that mean the registry will not list tags for this client (a token
allowed to pull but not to list, a registry without the endpoint): :class:`DigestTagFinder` then
reads each tag."""

_TAG_UNSAFE = re.compile(r"[^a-zA-Z0-9_.-]")


def referrers_tag(digest: str) -> str:
    """The referrers tag of ``digest``: algorithm (32 characters at most), ``-``, hex (64 at most)."""
    algorithm, encoded = parse_digest(digest)
    return _TAG_UNSAFE.sub("-", f"{algorithm[:32]}-{encoded[:64]}")


def digest_tags(digest: str) -> list[str]:
    """cosign's older tags for ``digest``: ``<alg>-<hex>.sig``, ``.att`` and ``.sbom`` (those that
    are valid tags: none for a digest too long for one)."""
    algorithm, encoded = parse_digest(digest)
    names = []
    for suffix in COSIGN_TAG_SUFFIXES:
        try:
            names.append(validate_tag(f"{algorithm}-{encoded}.{suffix}"))
        except InvalidReference:
            continue
    return names


def referrer_descriptor(manifest: Manifest) -> Descriptor:
    """How ``manifest`` is listed among its subject's referrers: its ``artifactType`` (an image
    manifest without one: its config's media type) and its annotations."""
    parsed = manifest.parsed
    artifact_type = parsed.artifact_type
    if not artifact_type and isinstance(parsed, ImageManifest):
        artifact_type = parsed.config.media_type
    return manifest.descriptor(artifactType=artifact_type, annotations=parsed.annotations or None)


def with_referrer(index: Manifest | None, referrer: Descriptor, *, what: str) -> Manifest | None:
    """The referrers index ``index`` (None: there is none yet) with ``referrer`` added; None when it
    is listed already. Raises InvalidManifest when ``index`` is not an image index (the spec says
    to report that and leave the tag alone)."""
    doc: dict[str, Any]
    if index is None:
        doc = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []}
    elif not index.is_index:
        raise InvalidManifest(f"{what}: the referrers tag holds {index.media_type}, not an image index")
    else:
        if any(child.digest == referrer.digest for child in index.children()):
            return None
        doc = dict(index.doc)
    doc["manifests"] = [*(doc.get("manifests") or []), referrer.to_dict()]
    return Manifest.from_bytes(json.dumps(doc, indent=2, ensure_ascii=False).encode(), media_type=OCI_INDEX)


def only_type(referrers: Iterable[Descriptor], artifact_type: str | None) -> list[Descriptor]:
    """``referrers`` of ``artifact_type`` (all of them when None)."""
    return [d for d in referrers if artifact_type is None or d.artifact_type == artifact_type]


def predicate_types(descriptor: Descriptor, manifest: Manifest | None = None) -> list[str]:
    """The attestation predicate types named by a referrer's descriptor or, when read, its manifest
    (annotations of the manifest and of its layers), in order of appearance."""
    found: list[str] = []
    sources = [descriptor.annotations or {}]
    if manifest is not None:
        sources.append(manifest.parsed.annotations or {})
        sources.extend(layer.annotations or {} for layer in manifest.blobs())
    for found_in in sources:
        for key in PREDICATE_KEYS:
            value = found_in.get(key)
            if value and value not in found:
                found.append(value)
    return found


def kind_of(descriptor: Descriptor, predicates: Sequence[str] = ()) -> str:
    """``signature``, ``attestation``, ``sbom`` or ``artifact``, from the artifact type and predicates."""
    artifact_type = descriptor.artifact_type or ""
    if artifact_type in SIGNATURE_TYPES or (predicates and set(predicates) <= {COSIGN_SIGN_PREDICATE}):
        return "signature"
    if artifact_type in ATTESTATION_TYPES or predicates:
        return "attestation"
    if artifact_type in SBOM_TYPES:
        return "sbom"
    if artifact_type.startswith("application/vnd.dev.sigstore.bundle"):
        return "signature"
    return "artifact"


def needs_manifest(descriptor: Descriptor) -> bool:
    """Whether a referrer's manifest must be read to learn its predicate types."""
    return not predicate_types(descriptor) and (descriptor.artifact_type or "") not in SIGNATURE_TYPES


@dataclass(frozen=True)
class Referrer:
    """One referrer found: the manifest it refers to and its descriptor in the referrers index."""

    subject: str
    descriptor: Descriptor

    @property
    def digest(self) -> str:
        return self.descriptor.digest


class ReferrerFinder:
    """The referrers of manifests in one repository, each looked up once (concurrent callers share
    the lookup)."""

    def __init__(self, repo: Repository, *, depth: int = MAX_DEPTH) -> None:
        self.repo = repo
        self.depth = depth
        self._found: dict[str, list[Descriptor]] = {}
        self._locks: dict[str, anyio.Lock] = {}
        self._limiter = anyio.CapacityLimiter(LOOKUPS_IN_FLIGHT)

    async def direct(self, digest: str) -> list[Descriptor]:
        """The referrers of ``digest`` itself."""
        lock = self._locks.setdefault(digest, anyio.Lock())
        async with lock:
            if digest not in self._found:
                repo = self.repo
                async with self._limiter:
                    self._found[digest] = await repo.list_referrers(digest)
            return self._found[digest]

    async def levels(self, digest: str) -> list[list[Referrer]]:
        """The referrers of ``digest``, then theirs, and so on (``depth`` levels at most); each
        manifest once, at the first level it appears."""
        seen = {digest}
        frontier = [digest]
        levels: list[list[Referrer]] = []
        while frontier and len(levels) < self.depth:
            lists: list[list[Descriptor]] = [[] for _ in frontier]
            async with task_group() as tg:
                for i, subject in enumerate(frontier):
                    tg.start_soon(self._look, lists, i, subject)
            level = []
            for subject, found in zip(frontier, lists, strict=True):
                for desc in found:
                    if desc.digest not in seen:
                        seen.add(desc.digest)
                        level.append(Referrer(subject, desc))
            if level:
                levels.append(level)
            frontier = [r.digest for r in level]
        return levels

    async def _look(self, into: list[list[Descriptor]], i: int, subject: str) -> None:
        into[i] = await self.direct(subject)

    async def tree(self, digest: str) -> list[Referrer]:
        """Every referrer below ``digest``, level by level."""
        return [r for level in await self.levels(digest) for r in level]


@dataclass(frozen=True)
class DigestTag:
    """One of cosign's older tags found: the manifest it is named after, the tag, what it points at."""

    subject: str
    tag: str
    manifest: Manifest

    @property
    def digest(self) -> str:
        return self.manifest.digest


class DigestTagFinder:
    """cosign's older tags (:func:`digest_tags`) of manifests in one repository, each looked up once.

    The repository's tags are listed once (concurrent callers share the listing), and only the
    tags it lists are read: a manifest without any costs nothing more. Where the listing is refused
    (:data:`UNLISTABLE_STATUS`), each possible tag is read instead (three reads per manifest); an
    absent one is no error.
    """

    def __init__(
        self, repo: Repository, *, depth: int = MAX_DEPTH, tags: Collection[str] | None = None
    ) -> None:
        self.repo = repo
        self.depth = depth
        self.listed: bool | None = None if tags is None else True
        """Whether the repository listed its tags (None: not asked yet). ``tags``: the listing,
        when the caller already has it (no request then)."""
        self._tags: frozenset[str] = frozenset(tags or ())
        self._listing = anyio.Lock()
        self._found: dict[str, list[DigestTag]] = {}
        self._locks: dict[str, anyio.Lock] = {}
        self._limiter = anyio.CapacityLimiter(LOOKUPS_IN_FLIGHT)

    async def _candidates(self, digest: str) -> list[str]:
        async with self._listing:
            if self.listed is None:
                try:
                    self._tags = frozenset(await self.repo.list_tags())
                    self.listed = True
                except NotFound:
                    self.listed = False
                except RegistryError as exc:  # AuthError included
                    if exc.status not in UNLISTABLE_STATUS:
                        raise
                    self.listed = False
        names = digest_tags(digest)
        return [t for t in names if t in self._tags] if self.listed else names

    async def direct(self, digest: str) -> list[DigestTag]:
        """The tags named after ``digest`` itself, with their manifests."""
        lock = self._locks.setdefault(digest, anyio.Lock())
        async with lock:
            if digest not in self._found:
                names = await self._candidates(digest)
                found: list[DigestTag | None] = [None] * len(names)
                async with task_group() as tg:
                    for i, name in enumerate(names):
                        tg.start_soon(self._read, found, i, digest, name)
                self._found[digest] = [t for t in found if t is not None]
            return self._found[digest]

    async def _read(self, into: list[DigestTag | None], i: int, subject: str, tag: str) -> None:
        async with self._limiter:
            try:
                manifest = await self.repo.get_manifest(tag)
            except NotFound:  # never there, or removed since the listing
                return
        into[i] = DigestTag(subject, tag, manifest)

    async def levels(self, digest: str) -> list[list[DigestTag]]:
        """The tags of ``digest``, then those of the manifests they point at (a signature of an
        SBOM), and so on (``depth`` levels at most); each manifest followed once."""
        seen = {digest}
        frontier = [digest]
        levels: list[list[DigestTag]] = []
        while frontier and len(levels) < self.depth:
            lists: list[list[DigestTag]] = [[] for _ in frontier]
            async with task_group() as tg:
                for i, subject in enumerate(frontier):
                    tg.start_soon(self._look, lists, i, subject)
            level = [found for tags in lists for found in tags]
            if level:
                levels.append(level)
            frontier = []
            for found in level:
                if found.digest not in seen:
                    seen.add(found.digest)
                    frontier.append(found.digest)
        return levels

    async def _look(self, into: list[list[DigestTag]], i: int, subject: str) -> None:
        into[i] = await self.direct(subject)
