"""Moving content between repositories: blobs and manifest trees, byte for byte.

Used by ``merge`` (children pushed by digest into each target) and ``copy``. What the destination
already has is skipped (a manifest present by digest skips its whole subtree, as crane does);
blobs are mounted when source and destination share a registry, otherwise streamed through with
bounded memory. Digests are preserved because manifests are copied as their exact bytes.

Referrers (:meth:`Transfer.referrers`) follow their subject: those the destination does not list
yet are copied after the subject is there (some registries refuse a ``subject`` that does not exist
yet), and the destination store lists them (referrers API, or the referrers tag it updates).
cosign's older tags (:meth:`Transfer.digest_tags`: ``<alg>-<hex>.sig``, ``.att``, ``.sbom``) are
copied under their own names, with what they point at.
"""

from __future__ import annotations

import zlib
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import anyio

from splitbuild._tasks import task_group
from splitbuild.errors import NotFound, RegistryError, SplitbuildError
from splitbuild.models import MAX_INDEX_DEPTH, Descriptor, ImageIndex, ImageManifest, Manifest, too_deep
from splitbuild.reference import Reference
from splitbuild.referrers import DigestTag, DigestTagFinder, Referrer, ReferrerFinder
from splitbuild.store.base import BlobOpener, Mounter, Repository

if TYPE_CHECKING:
    from splitbuild.blobcache import BlobLocations
    from splitbuild.store.registry import RegistryRepository

__all__ = ["BytesCallback", "ProgressCallback", "Transfer", "TransferStats"]


def _registry_repository(repo: Repository) -> RegistryRepository | None:
    """``repo`` when it is a registry repository (imported only when a blob cache is in use)."""
    from splitbuild.store.registry import RegistryRepository

    return repo if isinstance(repo, RegistryRepository) else None


class _Shared:
    """One piece of work several tasks need: the first does it, the others wait for it, and fail
    if it failed (a manifest must never be put before everything it references is there)."""

    def __init__(self, what: str) -> None:
        self.what = what
        self._done = anyio.Event()
        self._error: BaseException | None = None

    @asynccontextmanager
    async def run(self) -> AsyncIterator[None]:
        try:
            yield
        except BaseException as exc:
            self._error = exc
            raise
        finally:
            self._done.set()

    def abandon(self) -> None:
        """Never to be done: its waiters fail (the transfer stops)."""
        if not self._done.is_set():
            self._error = anyio.get_cancelled_exc_class()()
            self._done.set()

    async def wait(self) -> None:
        await self._done.wait()
        error = self._error
        if error is None:
            return
        if isinstance(error, SplitbuildError):
            raise error
        raise RegistryError(f"{self.what}: not copied (the task copying it was cancelled)")


_PACK_OVER = 64 * 1024
"""Manifests larger than this are kept compressed while their children are copied."""


@dataclass(frozen=True)
class _Packed:
    """A manifest held while what it references is copied: an index's entries shared with the
    other indexes listing them, and the exact bytes of a large one compressed, so that a hundred
    big indexes waiting on the same images cost little more than one."""

    data: bytes
    compressed: bool
    media_type: str
    digest: str
    parsed: ImageManifest | ImageIndex

    @classmethod
    def of(cls, manifest: Manifest, shared: dict[str, Descriptor]) -> _Packed:
        parsed = manifest.parsed
        if isinstance(parsed, ImageIndex) and parsed.manifests:
            entries = [shared.setdefault(d.model_dump_json(), d) for d in parsed.manifests]
            parsed = parsed.model_copy(update={"manifests": entries})
        big = manifest.size > _PACK_OVER
        data = zlib.compress(manifest.raw, 1) if big else manifest.raw
        return cls(data, big, manifest.media_type, manifest.digest, parsed)

    def unpack(self) -> Manifest:
        raw = zlib.decompress(self.data) if self.compressed else self.data
        return Manifest(raw=raw, media_type=self.media_type, digest=self.digest, parsed=self.parsed)


@dataclass
class TransferStats:
    blobs_copied: int = 0
    blobs_mounted: int = 0
    blobs_skipped: int = 0
    bytes_copied: int = 0
    manifests_pushed: int = 0
    manifests_skipped: int = 0
    pushed: list[str] = field(default_factory=list)
    referrers: list[str] = field(default_factory=list)
    """Referrers copied (their digests)."""
    referrers_present: int = 0
    """Referrers the destination listed already."""
    digest_tags: list[str] = field(default_factory=list)
    """cosign's older tags (``sha256-<hex>.sig``, ``.att``, ``.sbom``) copied or moved."""
    digest_tags_present: int = 0
    """cosign's older tags the destination had already, at the same digest."""


ProgressCallback = Callable[[str, Descriptor], None]
BytesCallback = Callable[[Descriptor, int], None]


class Transfer:
    """Copies manifest trees from ``source`` to ``target`` with at most ``jobs`` blobs in flight.

    ``on_progress(event, descriptor)`` is called with ``blob-start``, ``blob-done``,
    ``blob-skip`` and ``manifest-done`` events (the CLI draws its progress bar from them);
    ``on_bytes(descriptor, n)`` each time ``n`` more bytes of a streamed blob were read.
    """

    def __init__(
        self,
        source: Repository,
        target: Repository,
        *,
        jobs: int = 8,
        on_progress: ProgressCallback | None = None,
        on_bytes: BytesCallback | None = None,
        locations: BlobLocations | None = None,
    ) -> None:
        self.source = source
        self.target = target
        self.stats = TransferStats()
        self._locations = locations
        """Where blobs were seen before (:mod:`splitbuild.blobcache`): a blob the target's registry
        holds in another repository is mounted from there instead of streamed."""
        self._limiter = anyio.CapacityLimiter(jobs)
        self._on_progress = on_progress
        self._on_bytes = on_bytes
        self._same_location = source.location == target.location
        self._done_blobs: dict[str, _Shared] = {}
        self._children_in_flight = 2 * jobs
        """Children of one index copied at once (each a task; a big index has thousands)."""
        self._reading = anyio.CapacityLimiter(jobs)
        """Manifests being read from the source at once (each is parsed whole)."""
        self._descriptors: dict[str, Descriptor] = {}
        """One object per distinct index entry, shared by every index listing it."""
        self._settled: dict[str, _Shared] = {}
        """Manifests this transfer has started on, and whether each is done (pushed or skipped)."""
        self._digest_tags: set[str] = set()
        """cosign's older tags this transfer has started on."""

    @property
    def same_repository(self) -> bool:
        return self._same_location and self.source.name == self.target.name

    def _emit(self, event: str, desc: Descriptor) -> None:
        if self._on_progress is not None:
            self._on_progress(event, desc)

    async def blob(self, desc: Descriptor) -> None:
        """Copy one blob unless the target has it. A blob shared by several manifests is copied
        once; the other callers wait until it is there (their manifest must not be put before)."""
        started = self._done_blobs.get(desc.digest)
        if started is not None:
            await started.wait()
            return
        done = self._done_blobs[desc.digest] = _Shared(f"blob {desc.digest}")
        async with done.run():
            await self._blob(desc)

    async def _blob(self, desc: Descriptor) -> None:
        async with self._limiter:
            if await self.target.has_blob(desc.digest):
                self.stats.blobs_skipped += 1
                self._remember(self.target, desc.digest)
                self._emit("blob-skip", desc)
                return
            self._emit("blob-start", desc)
            source = self.source
            on_bytes = self._on_bytes

            def opener() -> AbstractAsyncContextManager[AsyncIterator[bytes]]:
                if on_bytes is None:
                    return source.open_blob(desc)
                return _counted(source.open_blob(desc), desc, on_bytes)

            if await self._mount_or_put(desc, opener):
                self.stats.blobs_mounted += 1
                self._remember(self.target, desc.digest)
                self._emit("blob-done", desc)
                return
            self.stats.blobs_copied += 1
            self.stats.bytes_copied += desc.size
            self._remember(self.source, desc.digest)
            self._remember(self.target, desc.digest)
            self._emit("blob-done", desc)

    async def _mount_or_put(self, desc: Descriptor, blob: BlobOpener) -> bool:
        """Put ``desc`` into the target, mounted where it can be (True) instead of uploaded (False):
        from the source when both share a location, then from the other repositories of the
        target's registry that the blob location cache says hold it (at most two tried; a refused
        or failed mount forgets that entry). The registry authorises each mount with this client's
        own token (pull on that repository)."""
        lenders: list[Repository] = [self.source] if self._same_location else []
        known = self._known_holders(desc)
        if not isinstance(self.target, Mounter) or not (lenders or known):
            await self.target.put_blob(desc, blob)
            return False
        tried = [*lenders, *known]
        lender = await self.target.mount_blob(desc, tried, blob)
        refused = len(tried) if lender is None else next(i for i, r in enumerate(tried) if r is lender)
        if self._locations is not None:
            for sibling in known[: max(0, refused - len(lenders))]:
                self._locations.forget(sibling.ref.registry, sibling.ref.repository, desc.digest)
        return lender is not None

    def _known_holders(self, desc: Descriptor) -> list[RegistryRepository]:
        """The repositories of the target's registry that the blob location cache says hold
        ``desc`` (at most two; none without a cache or when the target is not a registry)."""
        target = _registry_repository(self.target) if self._locations is not None else None
        if target is None or self._locations is None:
            return []
        registry, repository = target.ref.registry, target.ref.repository
        holders = self._locations.holders(registry, desc.digest, exclude=repository, limit=2)
        return [target.client.repository(Reference(registry, holder)) for holder in holders]

    def _remember(self, repo: Repository, digest: str) -> None:
        found = _registry_repository(repo) if self._locations is not None else None
        if found is not None and self._locations is not None:
            self._locations.remember(found.ref.registry, found.ref.repository, [digest])

    async def manifest(
        self,
        desc: Descriptor,
        manifest: Manifest | None = None,
        *,
        check_target: bool = True,
        children: Sequence[Descriptor] | None = None,
        depth: int = 0,
    ) -> bool:
        """Copy the manifest ``desc`` (and everything it references) into the target, by digest.

        ``manifest``: the bytes when already fetched. ``check_target``: HEAD the target first and
        skip the subtree if it is there. ``children``: for an index, copy only these children
        (the caller filtered the platforms); the index itself is then not pushed. A manifest with a
        ``subject`` this transfer is copying too is pushed after it. A manifest another task of this
        transfer is copying is waited for. ``depth``: how many indexes above it this transfer has
        come through (nesting is bounded by :data:`~splitbuild.models.MAX_INDEX_DEPTH`). True when
        this call pushed it.
        """
        started = self._settled.get(desc.digest)
        if started is not None:  # copied by another task: done once that one is
            await started.wait()
            return False
        settled = self._settled[desc.digest] = _Shared(f"manifest {desc.digest}")
        return await self._manifest(settled, desc, manifest, check_target, children, depth)

    async def _manifest(
        self,
        settled: _Shared,
        desc: Descriptor,
        manifest: Manifest | None,
        check_target: bool,
        children: Sequence[Descriptor] | None,
        depth: int,
    ) -> bool:
        async with settled.run():
            if self.same_repository:
                return False
            if check_target and await self.target.head_manifest(desc.digest) is not None:
                self.stats.manifests_skipped += 1
                return False
            if manifest is None:
                async with self._reading:  # parsed whole: a few at a time, then kept compact
                    packed = _Packed.of(await self.source.get_manifest(desc.digest), self._descriptors)
            else:
                packed = _Packed.of(manifest, self._descriptors)
            del manifest
            await self._references(packed.parsed, packed.digest, children, depth)
            if children is not None and isinstance(packed.parsed, ImageIndex):
                return False
            manifest = packed.unpack()
            subject = manifest.parsed.subject
            if subject is not None and subject.digest in self._settled:
                await self._settled[subject.digest].wait()
            await self.target.put_manifest(manifest)
            self.stats.manifests_pushed += 1
            self.stats.pushed.append(manifest.digest)
            self._emit("manifest-done", desc)
            return True
        raise AssertionError("unreachable")  # pragma: no cover

    async def tree(
        self, manifest: Manifest, *, children: Sequence[Descriptor] | None = None, depth: int = 0
    ) -> None:
        """Copy what ``manifest`` references, but not the manifest itself: the children of an index
        (only ``children`` when given), or the blobs of an image. The caller then puts the manifest
        (by digest or under a tag).

        A child another task of this transfer copies already is waited for, not copied again: a
        hundred indexes listing the same images cost one task per image, not one per path."""
        await self._references(manifest.parsed, manifest.digest, children, depth)

    async def _references(
        self,
        parsed: ImageManifest | ImageIndex,
        digest: str,
        children: Sequence[Descriptor] | None,
        depth: int,
    ) -> None:
        if isinstance(parsed, ImageManifest):
            async with task_group() as tg:
                for blob in [parsed.config, *parsed.layers]:
                    tg.start_soon(self.blob, blob)
            return
        if depth >= MAX_INDEX_DEPTH:
            raise too_deep(f"{self.source.name}@{digest}")
        waits: dict[str, _Shared] = {}
        pending: list[tuple[_Shared, Descriptor]] = []
        for child in children if children is not None else parsed.manifests:
            started = self._settled.get(child.digest)
            if started is not None:
                waits.setdefault(child.digest, started)
                continue
            settled = self._settled[child.digest] = _Shared(f"manifest {child.digest}")
            pending.append((settled, child))
        work = iter(pending)

        async def worker() -> None:
            for settled, child in work:
                await self._manifest(settled, child, None, True, None, depth + 1)

        try:
            async with task_group() as tg:
                for _ in range(min(len(pending), self._children_in_flight)):
                    tg.start_soon(worker)
        finally:
            for settled, _ in work:  # not reached (a sibling failed): their waiters must not hang
                settled.abandon()
        for started in waits.values():
            await started.wait()

    async def referrers(self, finder: ReferrerFinder, subject: str) -> None:
        """Copy the referrers of ``subject`` (and theirs, level by level) that the target does not
        list yet; ``finder`` looks them up in the source. Call once ``subject`` is in the target.

        Referrers listed by the source that it no longer holds (a stale referrers tag) are skipped.
        """
        if self.same_repository:
            return
        for level in await finder.levels(subject):
            by_subject: dict[str, list[Referrer]] = {}
            for referrer in level:
                by_subject.setdefault(referrer.subject, []).append(referrer)
            async with task_group() as tg:
                for parent, found in by_subject.items():
                    tg.start_soon(self._referrers_of, parent, found)

    async def _referrers_of(self, subject: str, found: list[Referrer]) -> None:
        listed = {d.digest for d in await self.target.list_referrers(subject)}
        async with task_group() as tg:
            for referrer in found:
                if referrer.digest in listed:
                    self.stats.referrers_present += 1
                else:
                    # Present but not listed (an interrupted earlier copy): pushed again, which
                    # lists it.
                    tg.start_soon(self._referrer, referrer.descriptor)

    async def _referrer(self, desc: Descriptor) -> None:
        try:
            pushed = await self.manifest(desc, check_target=False)
        except NotFound:
            if await self.source.head_manifest(desc.digest) is not None:
                raise
            return
        if pushed:
            self.stats.referrers.append(desc.digest)

    async def digest_tags(self, finder: DigestTagFinder, subject: str) -> None:
        """Copy cosign's older tags of ``subject`` (``<alg>-<hex>.sig``, ``.att``, ``.sbom``; then
        those of what they point at, level by level) under the same names, with the manifests they
        point at; ``finder`` looks them up in the source. Call once ``subject`` is in the target.

        A tag the target has at the same digest is left alone; one pointing elsewhere is moved, as
        a copied tag is (a signature added only at the destination is replaced)."""
        if self.same_repository:
            return
        for level in await finder.levels(subject):
            async with task_group() as tg:
                for found in level:
                    if found.tag not in self._digest_tags:
                        self._digest_tags.add(found.tag)
                        tg.start_soon(self._digest_tag, found)

    async def _digest_tag(self, found: DigestTag) -> None:
        manifest = found.manifest
        current = await self.target.head_manifest(found.tag)
        if current is not None and current.digest == manifest.digest:
            self.stats.digest_tags_present += 1
            return
        await self.tree(manifest)
        subject = manifest.parsed.subject
        if subject is not None and subject.digest in self._settled:
            await self._settled[subject.digest].wait()
        await self.target.put_manifest(manifest, found.tag)
        self.stats.manifests_pushed += 1
        self.stats.pushed.append(manifest.digest)
        self.stats.digest_tags.append(found.tag)
        self._emit("manifest-done", manifest.descriptor())


@asynccontextmanager
async def _counted(
    opened: AbstractAsyncContextManager[AsyncIterator[bytes]], desc: Descriptor, on_bytes: BytesCallback
) -> AsyncIterator[AsyncIterator[bytes]]:
    async with opened as stream:

        async def counting() -> AsyncIterator[bytes]:
            async for chunk in stream:
                on_bytes(desc, len(chunk))
                yield chunk

        yield counting()
