"""Moving content between repositories: blobs and manifest trees, byte for byte.

Used by ``merge`` (children pushed by digest into each target) and ``copy``. What the destination
already has is skipped (a manifest present by digest skips its whole subtree, as crane does);
blobs are mounted when source and destination share a registry, otherwise streamed through with
bounded memory. Digests are preserved because manifests are copied as their exact bytes.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field

import anyio

from splitbuild._tasks import task_group
from splitbuild.models import Descriptor, Manifest
from splitbuild.store.base import Mounter, Repository

__all__ = ["BytesCallback", "ProgressCallback", "Transfer", "TransferStats"]


@dataclass
class TransferStats:
    blobs_copied: int = 0
    blobs_mounted: int = 0
    blobs_skipped: int = 0
    bytes_copied: int = 0
    manifests_pushed: int = 0
    manifests_skipped: int = 0
    pushed: list[str] = field(default_factory=list)


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
    ) -> None:
        self.source = source
        self.target = target
        self.stats = TransferStats()
        self._limiter = anyio.CapacityLimiter(jobs)
        self._on_progress = on_progress
        self._on_bytes = on_bytes
        self._same_location = source.location == target.location
        self._done_blobs: set[str] = set()
        self._done_manifests: set[str] = set()

    @property
    def same_repository(self) -> bool:
        return self._same_location and self.source.name == self.target.name

    def _emit(self, event: str, desc: Descriptor) -> None:
        if self._on_progress is not None:
            self._on_progress(event, desc)

    async def blob(self, desc: Descriptor) -> None:
        if desc.digest in self._done_blobs:
            return
        self._done_blobs.add(desc.digest)
        async with self._limiter:
            if await self.target.has_blob(desc.digest):
                self.stats.blobs_skipped += 1
                self._emit("blob-skip", desc)
                return
            self._emit("blob-start", desc)
            mounter = self.target if self._same_location and isinstance(self.target, Mounter) else None
            if mounter is not None and await mounter.mount_blob(desc, self.source):
                self.stats.blobs_mounted += 1
                self._emit("blob-done", desc)
                return
            source = self.source
            on_bytes = self._on_bytes

            def opener() -> AbstractAsyncContextManager[AsyncIterator[bytes]]:
                if on_bytes is None:
                    return source.open_blob(desc)
                return _counted(source.open_blob(desc), desc, on_bytes)

            await self.target.put_blob(desc, opener)
            self.stats.blobs_copied += 1
            self.stats.bytes_copied += desc.size
            self._emit("blob-done", desc)

    async def manifest(
        self,
        desc: Descriptor,
        manifest: Manifest | None = None,
        *,
        check_target: bool = True,
        children: Sequence[Descriptor] | None = None,
    ) -> None:
        """Copy the manifest ``desc`` (and everything it references) into the target, by digest.

        ``manifest``: the bytes when already fetched. ``check_target``: HEAD the target first and
        skip the subtree if it is there. ``children``: for an index, copy only these children
        (the caller filtered the platforms); the index itself is then not pushed.
        """
        if desc.digest in self._done_manifests:
            return
        self._done_manifests.add(desc.digest)
        if self.same_repository:
            return
        if check_target and await self.target.head_manifest(desc.digest) is not None:
            self.stats.manifests_skipped += 1
            return
        if manifest is None:
            manifest = await self.source.get_manifest(desc.digest)
        await self.tree(manifest, children=children)
        if children is not None and manifest.is_index:
            return
        await self.target.put_manifest(manifest)
        self.stats.manifests_pushed += 1
        self.stats.pushed.append(manifest.digest)
        self._emit("manifest-done", desc)

    async def tree(self, manifest: Manifest, *, children: Sequence[Descriptor] | None = None) -> None:
        """Copy what ``manifest`` references, but not the manifest itself: the children of an index
        (only ``children`` when given), or the blobs of an image. The caller then puts the manifest
        (by digest or under a tag)."""
        async with task_group() as tg:
            if manifest.is_index:
                for child in children if children is not None else manifest.children():
                    tg.start_soon(self._child, child)
            else:
                for blob in manifest.blobs():
                    tg.start_soon(self.blob, blob)

    async def _child(self, desc: Descriptor) -> None:
        await self.manifest(desc)


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
