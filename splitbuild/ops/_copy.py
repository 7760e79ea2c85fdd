"""``copy``: an image or a whole index (children, blobs, attestations) from one place to another.

Manifests are copied as their exact bytes, so digests are preserved. Inside one registry blobs are
mounted; across registries (or to and from ``oci:`` layouts) they are streamed through with bounded
memory. What the destination already has is skipped: the tag when it already points at the digest,
a manifest's whole subtree when the manifest is there by digest, each blob present.

With ``platforms`` an index is narrowed to those images and the attestation manifests of those
images; that is a new index, with a new digest (:attr:`CopyResult.rewritten`).

Referrers (signatures, SBOMs, attestations pushed with a ``subject``) of the copied manifest and of
its children come along, and theirs in turn, including when the destination tag was up to date
(a mirror run picks up signatures added since): one lookup per manifest in the source, and one per
subject that has referrers in the destination. A rewritten index has a new digest, so the
referrers of the source index do not apply to it and stay behind.

cosign's older tags of the same manifests (``sha256-<hex>.sig``, ``.att``, ``.sbom``, and those
of what they point at) come along under their own names, as with regctl's ``--digest-tags``: one
listing of the source's tags finds them, then a read in the source and a ``HEAD`` in the
destination for each one found.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from splitbuild._tasks import task_group
from splitbuild.errors import NotFound, UsageError, shorten
from splitbuild.models import Descriptor, Manifest, Platform
from splitbuild.ops._common import DEFAULT_JOBS, RefLike, as_reference, identifier
from splitbuild.ops._inspect import read_config
from splitbuild.reference import AnyReference
from splitbuild.referrers import DigestTagFinder, ReferrerFinder
from splitbuild.store.base import Repository
from splitbuild.transfer import BytesCallback, ProgressCallback, Transfer, TransferStats

if TYPE_CHECKING:
    from splitbuild.client import Client

__all__ = ["CopyResult", "copy", "filter_platforms"]


@dataclass
class CopyResult:
    """What :func:`copy` did: the digest written at the destination, blob and manifest counts, referrers
    copied; ``to_dict()`` is the ``--json`` document."""

    source: str
    destination: str
    source_digest: str
    digest: str
    """The digest at the destination: the source's, unless a platform filter rewrote the index."""
    media_type: str
    size: int
    platforms: list[str] | None = None
    """The platforms kept by the filter (None without a filter)."""
    rewritten: bool = False
    unchanged: bool = False
    """The destination tag already pointed at the digest: the tree was not copied (referrers
    missing at the destination still were)."""
    stats: TransferStats = field(default_factory=TransferStats)
    requests: int = 0

    def to_dict(self) -> dict[str, Any]:
        s = self.stats
        return {
            "source": self.source,
            "destination": self.destination,
            "sourceDigest": self.source_digest,
            "digest": self.digest,
            "mediaType": self.media_type,
            "size": self.size,
            "platforms": self.platforms,
            "rewritten": self.rewritten,
            "unchanged": self.unchanged,
            "blobs": {"copied": s.blobs_copied, "mounted": s.blobs_mounted, "skipped": s.blobs_skipped},
            "bytesCopied": s.bytes_copied,
            "manifests": {"pushed": s.manifests_pushed, "skipped": s.manifests_skipped},
            "referrers": {"copied": list(s.referrers), "present": s.referrers_present},
            "digestTags": {"copied": list(s.digest_tags), "present": s.digest_tags_present},
            "requests": self.requests,
        }


def _destination_tag(src: AnyReference, dst: AnyReference) -> str | None:
    if dst.tag is not None:
        return dst.tag
    if dst.digest is not None:
        return None
    if src.tag is not None:
        return src.tag
    return None if src.digest is not None else "latest"


async def _platform_of(repo: Repository, desc: Descriptor) -> str | None:
    if desc.platform is not None:
        return desc.platform.key
    manifest = await repo.get_manifest(desc.digest)
    if manifest.is_index:
        return None
    config = await read_config(repo, manifest)
    platform = config.platform() if config is not None else None
    return platform.key if platform is not None else None


async def filter_platforms(
    repo: Repository, manifest: Manifest, platforms: Sequence[str], *, what: str
) -> tuple[Manifest, list[str]]:
    """``manifest`` narrowed to ``platforms`` (and their attestations), with the platforms kept.

    Returns ``manifest`` itself when nothing is dropped (then the copy is byte for byte). Raises
    NotFound when a platform is missing.
    """
    wanted = list(dict.fromkeys(Platform.parse(p).key for p in platforms))
    if not manifest.is_index:
        config = await read_config(repo, manifest)
        platform = config.platform() if config is not None else None
        own = platform.key if platform is not None else "unknown"
        if wanted != [own]:
            raise NotFound(f"{what} is a single {own} image; it has none of {', '.join(wanted)}")
        return manifest, wanted
    children = manifest.children()
    keys: dict[str, str] = {}
    for child in children:
        if child.is_attestation or child.is_index:
            continue
        key = await _platform_of(repo, child)
        if key is not None:
            keys.setdefault(child.digest, key)
    missing = [p for p in wanted if p not in keys.values()]
    if missing:
        have = ", ".join(sorted(set(keys.values()))) or "none"
        raise NotFound(f"{what}: no {', '.join(missing)} image in the index (it has {have})")
    kept = {d for d, key in keys.items() if key in wanted}
    selected = [
        (c.digest in kept and not c.is_attestation) or (c.is_attestation and c.attests in kept)
        for c in children
    ]
    if all(selected):
        return manifest, wanted
    doc = dict(manifest.doc)
    doc["manifests"] = [entry for entry, keep in zip(doc["manifests"], selected, strict=True) if keep]
    raw = json.dumps(doc, indent=2, ensure_ascii=False).encode()
    return Manifest.from_bytes(raw, media_type=manifest.media_type), wanted


async def copy(
    client: Client,
    source: RefLike,
    destination: RefLike,
    *,
    platforms: Sequence[str] | None = None,
    referrers: bool = True,
    jobs: int = DEFAULT_JOBS,
    on_progress: ProgressCallback | None = None,
    on_bytes: BytesCallback | None = None,
    source_tags: Collection[str] | None = None,
) -> CopyResult:
    """Copy ``source`` to ``destination`` (a tag, a digest, or a repository: then the source's tag).

    ``referrers``: also the referrers of the copied manifest and of its children, and their
    cosign tags in the older scheme (``sha256-<hex>.sig``, ``.att``, ``.sbom``), found in the
    source's tag listing. ``source_tags``: that listing (every tag), when the caller already has it:
    a script copying many tags of one repository lists them once, not once per copy.

    Requests for a tree already at the destination: the source ``GET`` and one tag ``HEAD``, plus
    with ``referrers`` a lookup per manifest of the tree (in the source), one listing of the
    source's tags (none for a layout, none given ``source_tags``), and a ``GET`` and a ``HEAD`` per
    cosign tag found.
    """
    src_ref, dst_ref = as_reference(source), as_reference(destination)
    for text in platforms or ():
        Platform.parse(text)  # a mistyped platform is refused before any request
    client.will_write([dst_ref])
    src_repo, dst_repo = client.repository(src_ref), client.repository(dst_ref)
    start = client.requests
    original = await src_repo.get_manifest(identifier(src_ref))
    root, kept = original, None
    if platforms:
        root, kept = await filter_platforms(src_repo, original, platforms, what=shorten(str(src_ref)))
    if dst_ref.digest is not None and dst_ref.digest != root.digest:
        raise UsageError(f"destination digest {dst_ref.digest} differs from the source's {root.digest}")
    tag = _destination_tag(src_ref, dst_ref)
    shown = dst_ref.repo().with_tag(tag) if tag else dst_ref.repo().with_digest(root.digest)
    result = CopyResult(
        source=str(src_ref),
        destination=str(shown),
        source_digest=original.digest,
        digest=root.digest,
        media_type=root.media_type,
        size=root.size,
        platforms=kept,
        rewritten=root is not original,
    )
    transfer = Transfer(
        src_repo,
        dst_repo,
        jobs=jobs,
        on_progress=on_progress,
        on_bytes=on_bytes,
        locations=client.blob_locations,
    )
    result.stats = transfer.stats
    follow = referrers and not transfer.same_repository
    finder = ReferrerFinder(src_repo) if follow else None
    tags = DigestTagFinder(src_repo, tags=source_tags) if follow else None
    subjects = [] if result.rewritten else [root.digest]
    subjects += [child.digest for child in root.children()]
    async with task_group() as tg:
        if finder is not None and tags is not None:  # looked up while the tree is copied
            for subject in subjects:
                tg.start_soon(finder.levels, subject)
                tg.start_soon(tags.levels, subject)
        await _copy_tree(transfer, dst_repo, root, tag, result)
    if finder is not None and tags is not None:
        async with task_group() as tg:
            for subject in subjects:
                tg.start_soon(transfer.referrers, finder, subject)
                tg.start_soon(transfer.digest_tags, tags, subject)
    result.requests = client.requests - start
    return result


async def _copy_tree(
    transfer: Transfer, dst_repo: Repository, root: Manifest, tag: str | None, result: CopyResult
) -> None:
    current = await dst_repo.head_manifest(tag or root.digest)
    if current is not None and current.digest == root.digest:
        result.unchanged = True
        return
    present = tag is not None and await dst_repo.head_manifest(root.digest) is not None
    if present:
        transfer.stats.manifests_skipped += 1
    else:
        await transfer.tree(root)
        transfer.stats.manifests_pushed += 1
        transfer.stats.pushed.append(root.digest)
    await dst_repo.put_manifest(root, tag)
