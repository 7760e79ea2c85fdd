"""The interface every storage backend implements: a handle on one repository.

A :class:`Repository` is one registry repository (``ghcr.io/acme/app``) or one OCI image layout
directory (``oci:./build/oci``). Merge, copy and the maintenance commands are written against this
protocol only, so everything that works on a registry works on a layout directory too.

Identifiers (``ref`` arguments) are a tag or a digest, already validated by
:mod:`splitbuild.reference`. Every read is verified against its digest.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from splitbuild.errors import Refused
from splitbuild.models import Descriptor, Manifest

__all__ = [
    "BlobOpener",
    "BlobSource",
    "Mounter",
    "Precondition",
    "Repository",
    "TagChanged",
]

BlobOpener = Callable[[], AbstractAsyncContextManager[AsyncIterator[bytes]]]
"""Opens a (re-openable) stream of a blob's bytes; called again when an upload is retried."""

BlobSource = bytes | BlobOpener


@dataclass(frozen=True)
class Precondition:
    """A conditional tag write: only while the tag points at ``digest`` (None: while it is absent).

    Layouts check it under their ``index.json`` lock. Registries send it as ``If-Match`` (the
    ETag of the tag's last ``head_manifest``) or ``If-None-Match: *``; one that ignores those
    (distribution 2.x) writes anyway, so a caller still reads the tag back."""

    digest: str | None


class TagChanged(Refused):
    """A conditional tag write found the tag moved since it was read (another writer)."""


@runtime_checkable
class Repository(Protocol):
    """One repository: manifests by tag or digest, blobs by digest, its tags and referrers."""

    @property
    def name(self) -> str:
        """Display name: ``registry/repository`` or ``oci:PATH``."""
        ...

    @property
    def location(self) -> str:
        """Identifies the storage the repository lives in (registry host or layout path).

        Two repositories with the same location can share blobs by mounting.
        """
        ...

    async def head_manifest(self, ref: str) -> Descriptor | None:
        """The descriptor of the manifest ``ref`` points at, or None when it does not exist."""
        ...

    async def get_manifest(self, ref: str) -> Manifest:
        """The manifest's exact bytes, verified; raises NotFound when absent."""
        ...

    async def put_manifest(
        self, manifest: Manifest, tag: str | None = None, *, precondition: Precondition | None = None
    ) -> None:
        """Store the manifest by digest, or under ``tag`` when given.

        With ``precondition`` (and a tag) the write is conditional: :class:`TagChanged` when the
        backend saw the tag elsewhere. A manifest with a ``subject`` is also added to its
        subject's referrers tag index (``sha256-<hex>``) where the backend does not track
        referrers itself."""
        ...

    async def delete_manifest(self, ref: str) -> None:
        """Delete a manifest by digest, or a tag."""
        ...

    async def list_tags(self) -> list[str]:
        """Every tag, in the registry's (lexical) order."""
        ...

    async def delete_tag(self, tag: str) -> str:
        """Remove one tag and keep the manifest it points at (and its other tags).

        Returns how it was done (``"tag"``: the backend deletes tags natively, ``"placeholder"``:
        the tag was pointed at a placeholder manifest deleted by digest). Raises NotFound when
        the tag does not exist."""
        ...

    async def list_referrers(self, digest: str, artifact_type: str | None = None) -> list[Descriptor]:
        """Descriptors of the referrers of ``digest`` (the manifests whose ``subject`` it is, with
        ``artifactType`` and annotations), only those of ``artifact_type`` when given; empty when
        there are none.

        Registries answer from the OCI referrers API, or from the referrers tag index where they
        lack it; OCI layouts keep that tag index in ``index.json``."""
        ...

    async def has_blob(self, digest: str) -> bool: ...

    def open_blob(self, desc: Descriptor) -> AbstractAsyncContextManager[AsyncIterator[bytes]]:
        """Stream a blob; the stream raises DigestMismatch at its end if the bytes do not verify."""
        ...

    async def read_blob(self, desc: Descriptor) -> bytes:
        """A whole (small) blob, verified."""
        ...

    async def put_blob(self, desc: Descriptor, source: BlobSource) -> None:
        """Upload a blob from bytes or a re-openable stream."""
        ...


@runtime_checkable
class Mounter(Protocol):
    """Optional ability: put a blob by mounting it from another repository of the same location,
    so that its bytes do not travel (registries; a layout directory has none)."""

    async def mount_blob(
        self, desc: Descriptor, lenders: Sequence[Repository], blob: BlobSource
    ) -> Repository | None:
        """Put ``desc``, mounted from the first of ``lenders`` that lends it (those the backend
        cannot mount from are passed over without a request); when none does, upload ``blob``
        (in the upload session a refused mount opened, where the backend got one). Returns the
        lender it was mounted from, or None when it was uploaded. Leaves nothing behind for a
        later call."""
        ...
