"""Index assembly: from resolved source manifests to the exact bytes of a multi-arch index.

Pure functions, no I/O. The rules (issue 3, and how buildx behaves):

* an index source is flattened: its image manifests keep their platform; its attestation
  manifests (``vnd.docker.reference.type=attestation-manifest``) are kept only when the image they
  attest (``vnd.docker.reference.digest``) is kept;
* the same digest twice is deduplicated; two different images for one platform is an error;
* ``platforms`` (when given) is the exact set the index must hold;
* the result is a Docker manifest list only when every child is a Docker schema 2 manifest and
  there are no annotations; otherwise an OCI image index. Annotations are never dropped.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from splitbuild.errors import InvalidInput, UsageError, VerificationError
from splitbuild.models import (
    DOCKER_LIST,
    DOCKER_MANIFEST,
    OCI_INDEX,
    Descriptor,
    ImageIndex,
    Manifest,
    Platform,
)

__all__ = ["Annotations", "Entry", "assemble", "parse_annotation", "select"]


@dataclass(frozen=True)
class Entry:
    """One candidate child: its descriptor as it will appear in the index, and where it came from."""

    descriptor: Descriptor
    origin: str
    """The source as the user named it (for messages)."""
    source: int = 0
    """Index of the source it came from (the caller maps it to a repository)."""
    manifest: Manifest | None = None
    """The child's bytes when they were read while resolving."""

    @property
    def digest(self) -> str:
        return self.descriptor.digest

    @property
    def platform_key(self) -> str | None:
        p = self.descriptor.platform
        return p.key if p is not None else None


@dataclass
class Annotations:
    """Annotations for the new index (``index``) and its descriptors (all, or one platform)."""

    index: dict[str, str] = field(default_factory=dict)
    descriptor: dict[str, str] = field(default_factory=dict)
    per_platform: dict[str, dict[str, str]] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.index or self.descriptor or self.per_platform)


_ANNOTATION_RE = re.compile(
    r"^(?:(?P<level>[a-z-]+)(?:\[(?P<platform>[^\]]+)\])?:)?(?P<key>[^=:]+)=(?P<value>.*)$"
)


def parse_annotation(text: str, into: Annotations) -> None:
    """Add ``[index:|manifest-descriptor[PLATFORM]:]KEY=VALUE`` to ``into`` (no level means index).

    ``manifest:`` and ``index-descriptor:`` cannot be applied when assembling an index from
    existing images (they would change the images' digests or live outside the index), so they are
    refused rather than silently dropped.
    """
    m = _ANNOTATION_RE.match(text)
    key = m.group("key").strip() if m else ""
    if m is None or not key or " " in key:
        raise UsageError(f"invalid annotation {text!r}: expected [index:|manifest-descriptor:]KEY=VALUE")
    level = m.group("level") or "index"
    value = m.group("value")
    platform = m.group("platform")
    if level == "index":
        if platform:
            raise UsageError(f"invalid annotation {text!r}: a platform applies to manifest-descriptor only")
        into.index[key] = value
    elif level == "manifest-descriptor":
        if platform:
            into.per_platform.setdefault(Platform.parse(platform).key, {})[key] = value
        else:
            into.descriptor[key] = value
    elif level in ("manifest", "index-descriptor"):
        raise UsageError(
            f"annotation {text!r}: level {level!r} cannot be applied by merge "
            "(set it at build time); use index: or manifest-descriptor:"
        )
    else:
        raise UsageError(f"invalid annotation {text!r}: unknown level {level!r}")


def select(entries: Iterable[Entry], platforms: Sequence[str] | None = None) -> list[Entry]:
    """Deduplicate, check for duplicate platforms and the exact platform set, keep linked attestations.

    ``entries`` are in source order, images and attestation manifests mixed. Returns the children
    of the index in that order.
    """
    images: list[Entry] = []
    attestations: list[Entry] = []
    seen: set[str] = set()
    by_platform: dict[str, Entry] = {}
    for entry in entries:
        if entry.digest in seen:
            continue
        seen.add(entry.digest)
        if entry.descriptor.is_attestation:
            attestations.append(entry)
            continue
        key = entry.platform_key
        if key is None:
            raise InvalidInput(
                f"{entry.origin}: image {entry.digest} has no platform (config lacks os/architecture)"
            )
        other = by_platform.get(key)
        if other is not None:
            raise InvalidInput(
                f"duplicate platform {key}: {other.origin} ({other.digest[:19]}) "
                f"and {entry.origin} ({entry.digest[:19]})"
            )
        by_platform[key] = entry
        images.append(entry)
    if platforms is not None:
        wanted = {Platform.parse(p).key for p in platforms}
        got = set(by_platform)
        missing, extra = sorted(wanted - got), sorted(got - wanted)
        if missing or extra:
            parts = []
            if missing:
                parts.append("missing " + ", ".join(missing))
            if extra:
                parts.append("unexpected " + ", ".join(f"{p} (from {by_platform[p].origin})" for p in extra))
            raise VerificationError("platform set mismatch: " + "; ".join(parts))
    kept = {e.digest for e in images}
    linked = [a for a in attestations if a.descriptor.attests in kept]
    return images + linked


def media_type_for(children: Sequence[Entry], annotations: Annotations) -> str:
    if not annotations and all(c.descriptor.media_type == DOCKER_MANIFEST for c in children):
        return DOCKER_LIST
    return OCI_INDEX


def assemble(children: Sequence[Entry], annotations: Annotations | None = None) -> Manifest:
    """The new index, as exact bytes (its digest is what every tag will point at)."""
    annotations = annotations or Annotations()
    if not children:
        raise InvalidInput("nothing to merge: no source images")
    media_type = media_type_for(children, annotations)
    present = {child.platform_key for child in children if not child.descriptor.is_attestation}
    absent = sorted(set(annotations.per_platform) - present)
    if absent:
        raise UsageError(
            f"manifest-descriptor annotations for {', '.join(absent)}: the index has no such platform"
        )
    descriptors = []
    for child in children:
        desc = child.descriptor
        extra: dict[str, str] = {}
        if not desc.is_attestation:
            extra.update(annotations.descriptor)
            extra.update(annotations.per_platform.get(child.platform_key or "", {}))
        if extra:
            desc = desc.model_copy(update={"annotations": {**(desc.annotations or {}), **extra}})
        descriptors.append(desc)
    index = ImageIndex.model_validate(
        {
            "schemaVersion": 2,
            "mediaType": media_type,
            "manifests": [d.to_dict() for d in descriptors],
            **({"annotations": dict(annotations.index)} if annotations.index else {}),
        }
    )
    return Manifest.from_model(index)


def platform_set(index: Manifest) -> set[str]:
    """The image platforms of an index (attestations and unknown platforms excluded)."""
    keys = set()
    for child in index.children():
        if child.is_attestation or child.platform is None or child.platform.is_unknown:
            continue
        keys.add(child.platform.key)
    return keys
