"""``inspect``: what a reference points at, from the fewest reads that show it.

An index costs one ``GET``: its children are described from their descriptors, attestation
manifests recognised by BuildKit's annotations (``vnd.docker.reference.type``) and shown with the
image they attest, never as ``unknown/unknown`` platforms; each attestation manifest is read once
more for its predicate types (provenance, SBOM). An image costs a ``GET`` and one config blob read
(platform, labels, creation time). ``platform=`` picks one image out of an index (a ``GET`` of that
child more).

With ``referrers`` (the default) the referrers of the manifest, and of an index's images, are
listed too (signatures, SBOMs, attestations pushed with a ``subject``; referrers of those
included): one lookup per manifest, and a read of each referrer whose descriptor does not name its
predicate types.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from splitbuild.errors import InvalidManifest, NotFound, shorten
from splitbuild.models import ConfigFile, Descriptor, Manifest, Platform
from splitbuild.ops._common import DEFAULT_JOBS, RefLike, as_reference, bounded, identifier
from splitbuild.referrers import ReferrerFinder, kind_of, needs_manifest, predicate_types
from splitbuild.store.base import Repository

if TYPE_CHECKING:
    from splitbuild.client import Client

__all__ = ["Child", "InspectResult", "ReferrerInfo", "inspect", "read_config"]

_MAX_CONFIG = 4 * 1024 * 1024


@dataclass(frozen=True)
class Child:
    """One entry of an index, classified."""

    descriptor: Descriptor
    kind: str
    """``image``, ``attestation``, ``index`` or ``artifact`` (no platform, or ``unknown/unknown``)."""
    attests_platform: str | None = None
    """For an attestation, the platform of the image it attests (when that image is in the index)."""
    predicate_types: tuple[str, ...] = ()
    """For an attestation, the in-toto predicate types it holds (read from its manifest)."""

    @property
    def digest(self) -> str:
        return self.descriptor.digest

    @property
    def platform(self) -> str | None:
        p = self.descriptor.platform
        return str(p) if p is not None and not p.is_unknown else None

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "kind": self.kind,
            "platform": self.platform,
            "digest": self.digest,
            "size": self.descriptor.size,
            "mediaType": self.descriptor.media_type,
        }
        if self.kind == "attestation":
            data["attests"] = self.descriptor.attests
            data["attestsPlatform"] = self.attests_platform
            data["predicateTypes"] = list(self.predicate_types)
        if self.descriptor.artifact_type:
            data["artifactType"] = self.descriptor.artifact_type
        if self.descriptor.annotations:
            data["annotations"] = dict(self.descriptor.annotations)
        return data


def classify(children: list[Descriptor]) -> list[Child]:
    platforms = {c.digest: str(c.platform) for c in children if c.platform and not c.platform.is_unknown}
    result = []
    for desc in children:
        if desc.is_attestation:
            result.append(Child(desc, "attestation", platforms.get(desc.attests or "")))
        elif desc.is_index:
            result.append(Child(desc, "index"))
        elif desc.platform is not None and not desc.platform.is_unknown:
            result.append(Child(desc, "image"))
        else:
            result.append(Child(desc, "artifact"))
    return result


@dataclass(frozen=True)
class ReferrerInfo:
    """A referrer of the inspected manifest or of one of its images."""

    subject: str
    descriptor: Descriptor
    kind: str
    """``signature``, ``attestation``, ``sbom`` or ``artifact``."""
    predicate_types: tuple[str, ...] = ()
    subject_platform: str | None = None
    """The platform of the image it refers to (None: the inspected manifest, or a referrer)."""

    @property
    def digest(self) -> str:
        return self.descriptor.digest

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "kind": self.kind,
            "subject": self.subject,
            "subjectPlatform": self.subject_platform,
            "digest": self.digest,
            "size": self.descriptor.size,
            "mediaType": self.descriptor.media_type,
            "artifactType": self.descriptor.artifact_type,
            "predicateTypes": list(self.predicate_types),
        }
        if self.descriptor.annotations:
            data["annotations"] = dict(self.descriptor.annotations)
        return data


@dataclass
class InspectResult:
    """What :func:`inspect` read: the manifest (exact bytes), the image config or the classified children of
    an index, and the referrers."""

    reference: str
    manifest: Manifest
    config: ConfigFile | None = None
    children: list[Child] = field(default_factory=list)
    parent: Manifest | None = None
    """With ``platform=``: the index the image was picked from."""
    referrers: list[ReferrerInfo] | None = None
    """Referrers found (None: not looked up)."""
    requests: int = 0

    @property
    def digest(self) -> str:
        return self.manifest.digest

    @property
    def platform(self) -> Platform | None:
        return self.config.platform() if self.config is not None else None

    def to_dict(self) -> dict[str, Any]:
        m = self.manifest
        data: dict[str, Any] = {
            "reference": self.reference,
            "digest": m.digest,
            "mediaType": m.media_type,
            "size": m.size,
        }
        artifact_type = m.parsed.artifact_type
        if artifact_type:
            data["artifactType"] = artifact_type
        if m.parsed.annotations:
            data["annotations"] = dict(m.parsed.annotations)
        if m.parsed.subject is not None:
            data["subject"] = m.parsed.subject.to_dict()
        if m.is_index:
            data["manifests"] = [c.to_dict() for c in self.children]
        else:
            image = m.image()
            data["config"] = image.config.to_dict()
            data["layers"] = [layer.to_dict() for layer in image.layers]
            if self.config is not None:
                platform = self.config.platform()
                data["platform"] = str(platform) if platform is not None else None
                data["created"] = self.config.created
                data["labels"] = self.config.labels
        if self.parent is not None:
            data["index"] = self.parent.digest
        if self.referrers is not None:
            data["referrers"] = [r.to_dict() for r in self.referrers]
        data["requests"] = self.requests
        return data


async def read_config(repo: Repository, manifest: Manifest) -> ConfigFile | None:
    """The image config of an image manifest (None for non-image configs, e.g. artifacts)."""
    config = manifest.image().config
    if config.size > _MAX_CONFIG or "json" not in config.media_type:
        return None
    raw = await repo.read_blob(config)
    try:
        return ConfigFile.model_validate_json(raw)
    except ValueError:
        return None


async def _predicates(repo: Repository, desc: Descriptor) -> tuple[str, ...]:
    """The predicate types of an attestation or referrer, reading its manifest only when needed."""
    manifest = None
    if needs_manifest(desc):
        try:
            manifest = await repo.get_manifest(desc.digest)
        except NotFound:
            manifest = None
    return tuple(predicate_types(desc, manifest))


async def _with_predicates(repo: Repository, children: list[Child], jobs: int) -> list[Child]:
    async def read(child: Child) -> Child:
        if child.kind != "attestation":
            return child
        return replace(child, predicate_types=await _predicates(repo, child.descriptor))

    return await bounded(children, read, jobs)


async def _referrers(repo: Repository, manifest: Manifest, jobs: int) -> list[ReferrerInfo]:
    finder = ReferrerFinder(repo)
    subjects: dict[str, str | None] = {manifest.digest: None}
    for child in manifest.children():
        if child.platform is not None and not child.platform.is_unknown and not child.is_attestation:
            subjects.setdefault(child.digest, str(child.platform))
    trees = await bounded(list(subjects), finder.tree, jobs)
    found = [r for tree in trees for r in tree]

    async def describe(index: int) -> ReferrerInfo:
        referrer = found[index]
        predicates = await _predicates(repo, referrer.descriptor)
        return ReferrerInfo(
            subject=referrer.subject,
            descriptor=referrer.descriptor,
            kind=kind_of(referrer.descriptor, predicates),
            predicate_types=predicates,
            subject_platform=subjects.get(referrer.subject),
        )

    return await bounded(range(len(found)), describe, jobs)


async def inspect(
    client: Client,
    ref: RefLike,
    *,
    platform: str | None = None,
    referrers: bool = True,
    jobs: int = DEFAULT_JOBS,
) -> InspectResult:
    """Read ``ref``: its manifest, and the image config or the classified children; with
    ``referrers``, the referrers of the manifest and of an index's images."""
    reference = as_reference(ref)
    wanted = Platform.parse(platform).key if platform is not None else None  # before any request
    repo: Repository = client.repository(reference)
    start = client.requests
    manifest = await repo.get_manifest(identifier(reference))
    parent: Manifest | None = None
    if wanted is not None:
        if not manifest.is_index:
            raise InvalidManifest(
                f"{shorten(str(reference))} is a single image, not an index: drop `platform`"
            )
        match = next(
            (
                c
                for c in manifest.children()
                if c.platform is not None and not c.is_attestation and c.platform.key == wanted
            ),
            None,
        )
        if match is None:
            raise NotFound(f"{shorten(str(reference))}: no {wanted} image in index {manifest.digest}")
        parent, manifest = manifest, await repo.get_manifest(match.digest)
    result = InspectResult(str(reference), manifest, parent=parent)
    if manifest.is_index:
        result.children = await _with_predicates(repo, classify(manifest.children()), jobs)
    else:
        result.config = await read_config(repo, manifest)
    if referrers:
        result.referrers = await _referrers(repo, manifest, jobs)
    result.requests = client.requests - start
    return result
