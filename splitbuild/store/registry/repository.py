"""The registry backend's public face: :class:`RegistryClient` and :class:`RegistryRepository`.

:class:`RegistryClient` is the run's :class:`~.transport.RegistryTransport` plus the factory of
repository handles. :class:`RegistryRepository` implements :class:`splitbuild.store.base.Repository`
(and ``Mounter``) for one repository by wiring the concept modules together; it holds no protocol
logic of its own beyond that wiring: manifests (:mod:`.manifests`), tags (:mod:`.tags`), tag
deletion (:mod:`.tag_deletion`), referrers (:mod:`.referrers`) and blobs (:mod:`.blobs`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING

from splitbuild.models import Descriptor, Manifest
from splitbuild.store.base import BlobSource, Precondition, Repository
from splitbuild.store.registry.blobs import Blobs
from splitbuild.store.registry.endpoint import Endpoint
from splitbuild.store.registry.manifests import Manifests
from splitbuild.store.registry.referrers import Referrers
from splitbuild.store.registry.tag_deletion import TagDeletion
from splitbuild.store.registry.tags import Tags
from splitbuild.store.registry.transport import RegistryTransport

if TYPE_CHECKING:
    from splitbuild.reference import Reference

__all__ = ["RegistryClient", "RegistryRepository"]


class RegistryClient(RegistryTransport):
    """Shared state for talking to registries during one run, and the repositories it serves.

    The settings, connection pool, auth, retries, limits and deadlines are those of
    :class:`~splitbuild.store.registry.transport.RegistryTransport`.
    """

    def repository(self, ref: Reference) -> RegistryRepository:
        return RegistryRepository(self, ref)


class RegistryRepository:
    """One repository on a registry. Implements :class:`splitbuild.store.base.Repository` and
    ``Mounter``."""

    def __init__(self, client: RegistryClient, ref: Reference) -> None:
        self.client = client
        self.ref = ref.repo()
        endpoint = Endpoint(client, ref)
        self._manifests = Manifests(endpoint)
        self._tags = Tags(endpoint)
        self._blobs = Blobs(endpoint)
        self._referrers = Referrers(endpoint, self._manifests)
        self._tag_deletion = TagDeletion(self, self.ref.registry, client.native_tag_delete)

    def __repr__(self) -> str:
        return f"RegistryRepository({self.name!r})"

    @property
    def name(self) -> str:
        return self.ref.name

    @property
    def location(self) -> str:
        return f"registry:{self.ref.registry}"

    # -- manifests -------------------------------------------------------------------------

    async def head_manifest(self, ref: str) -> Descriptor | None:
        return await self._manifests.head(ref)

    async def get_manifest(self, ref: str) -> Manifest:
        return await self._manifests.get(ref)

    async def put_manifest(
        self, manifest: Manifest, tag: str | None = None, *, precondition: Precondition | None = None
    ) -> None:
        """PUT the manifest (conditionally with ``precondition``: see :meth:`Manifests.put`), then
        list it in its subject's referrers tag index where the registry did not process the
        ``subject`` itself (:meth:`Referrers.after_put`)."""
        response = await self._manifests.put(manifest, tag, precondition=precondition)
        await self._referrers.after_put(manifest, response)

    async def delete_manifest(self, ref: str) -> None:
        await self._manifests.delete(ref)

    # -- tags ------------------------------------------------------------------------------

    async def list_tags(self) -> list[str]:
        return await self._tags.list_tags()

    async def delete_tag(self, tag: str) -> str:
        """Remove ``tag`` and keep its manifest (the ladder of :class:`TagDeletion`)."""
        return await self._tag_deletion.delete(tag)

    # -- referrers -------------------------------------------------------------------------

    async def list_referrers(self, digest: str, artifact_type: str | None = None) -> list[Descriptor]:
        return await self._referrers.list_referrers(digest, artifact_type)

    # -- blobs -----------------------------------------------------------------------------

    async def has_blob(self, digest: str) -> bool:
        return await self._blobs.has(digest)

    def open_blob(self, desc: Descriptor) -> AbstractAsyncContextManager[AsyncIterator[bytes]]:
        return self._blobs.open(desc)

    async def read_blob(self, desc: Descriptor) -> bytes:
        return await self._blobs.read(desc)

    async def put_blob(self, desc: Descriptor, source: BlobSource) -> None:
        await self._blobs.put(desc, source)

    async def mount_blob(
        self, desc: Descriptor, lenders: Sequence[Repository], blob: BlobSource
    ) -> Repository | None:
        """Cross-repository mount (``POST ?mount=&from=``) from the first of ``lenders`` on this
        registry that lends ``desc`` (the others, on other registries or not registries, are passed
        over without a request); when none does, ``blob`` is uploaded (:meth:`Blobs.mount`).
        Returns the lender mounted from, None when uploaded."""
        same = [
            lender
            for lender in lenders
            if isinstance(lender, RegistryRepository) and lender.ref.registry == self.ref.registry
        ]
        found = await self._blobs.mount(desc, [lender.ref for lender in same], blob)
        return None if found is None else same[found]
