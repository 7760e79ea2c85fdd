"""The entry point for scripts: one :class:`Client` per run, repositories opened by reference.

>>> async with Client() as client:                                   # doctest: +SKIP
...     repo = client.repository(parse_reference("ghcr.io/acme/app"))
...     manifest = await repo.get_manifest("1.2.3")

Registry references are served by :class:`~splitbuild.store.registry.RegistryClient`, ``oci:PATH``
references by :class:`~splitbuild.store.layout.LayoutRepository`; both implement
:class:`~splitbuild.store.base.Repository`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Self, TypedDict, Unpack

from splitbuild.reference import AnyReference, LayoutReference, Reference
from splitbuild.store.base import Repository

if TYPE_CHECKING:
    import httpx

    from splitbuild.auth import Keychain
    from splitbuild.blobcache import BlobLocations
    from splitbuild.retry import RetryPolicy
    from splitbuild.store.registry import RegistryClient

__all__ = ["Client", "RegistrySettings"]


class RegistrySettings(TypedDict, total=False):
    """The settings a :class:`Client` passes to its registry client; each is described at
    :class:`~splitbuild.store.registry.transport.RegistryTransport`. A misspelt name is a type
    error (mypy) and a ``TypeError`` at the call."""

    keychain: Keychain | None
    insecure: Iterable[str]
    ca_file: str | Path | None
    timeout: float
    retry: RetryPolicy | None
    per_host: int
    chunk_size: int
    page_size: int
    deadline: float | None
    max_pages: int
    max_entries: int
    transport: httpx.AsyncBaseTransport | None
    env: Mapping[str, str] | None


class Client:
    """Opens repositories for references; the registry settings (:class:`RegistrySettings`) go to
    :class:`~splitbuild.store.registry.RegistryClient`, created on first use.

    ``blob_cache``: remember where blobs live (:mod:`splitbuild.blobcache`) so that copies and
    merges into a registry mount a blob it holds elsewhere instead of streaming it: ``True`` opens
    the user's cache (unless ``SPLITBUILD_BLOB_CACHE=0``), or pass an open
    :class:`~splitbuild.blobcache.BlobLocations`; off by default for scripts, on for the CLI."""

    def __init__(
        self, *, blob_cache: bool | BlobLocations = False, **registry_options: Unpack[RegistrySettings]
    ) -> None:
        unknown = sorted(set(registry_options) - set(RegistrySettings.__annotations__))
        if unknown:
            raise TypeError(f"Client() got unexpected keyword arguments: {', '.join(unknown)}")
        self._options = registry_options
        self._registry: RegistryClient | None = None
        self._blob_cache = blob_cache
        self._locations: BlobLocations | None = None
        self._locations_opened = False

    @property
    def blob_locations(self) -> BlobLocations | None:
        """The blob location cache this client uses, opened on first use; None when off."""
        if not self._locations_opened:
            self._locations_opened = True
            if self._blob_cache is True:
                from splitbuild.blobcache import BlobLocations

                self._locations = BlobLocations.open()
            elif self._blob_cache is not False:
                self._locations = self._blob_cache
        return self._locations

    @property
    def registry(self) -> RegistryClient:
        """The registry client, created on first use (a run on OCI layouts never builds one)."""
        if self._registry is None:
            from splitbuild.store.registry import RegistryClient

            self._registry = RegistryClient(**self._options)
        return self._registry

    @property
    def requests(self) -> int:
        """HTTP requests made so far (token requests included)."""
        return self._registry.requests if self._registry is not None else 0

    def repository(self, ref: AnyReference) -> Repository:
        """The repository ``ref`` names: a registry repository, or an OCI layout for ``oci:PATH``."""
        if isinstance(ref, LayoutReference):
            from splitbuild.store.layout import LayoutRepository

            return LayoutRepository(ref.path)
        return self.registry.repository(ref)

    def will_write(self, refs: Iterable[AnyReference]) -> None:
        """Say which repositories this run is going to write (merge targets, copy destinations):
        their reads then ask a token service for push access too, so one token serves the whole
        run. Nothing changes for OCI layouts or registries without tokens."""
        names = [ref for ref in refs if isinstance(ref, Reference)]
        if names:
            self.registry.will_write(names)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the registry client's connections (``async with`` does it on exit)."""
        if self._locations is not None and self._blob_cache is True:
            self._locations.close()
        if self._registry is not None:
            await self._registry.aclose()
