"""Registry providers: deleting where the registry API cannot (GHCR, Docker Hub), chosen by host.

GHCR answers the registry API's ``DELETE`` with 405, Docker Hub answers it for tags (it deletes
only untagged, unreferenced manifests by digest); they delete through their own APIs. A
:class:`Provider` does the deleting for ``delete`` and ``prune`` (which still decide *what*
goes from the registry's own manifests, so the children, attestations and referrers of a kept index
are never touched), and knows what the registry API does not say: when each tag was pushed, and which
manifests no tag points at (GHCR's untagged versions).

:func:`provider_name` picks the provider from the registry host: ``ghcr.io`` is ``ghcr``, Docker
Hub (``docker.io`` and its aliases, as :mod:`splitbuild.reference` normalises them) is
``dockerhub``, anything else ``registry`` (the registry API alone). ``SPLITBUILD_PROVIDERS``
(``HOST=NAME,...``) or an explicit name overrides it.

:class:`ProviderRepository` wraps a repository so that its deletions go through the provider; reads
and writes stay on the registry API.
"""

from __future__ import annotations

import datetime as dt
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from types import TracebackType
from typing import Self

import anyio

from splitbuild.errors import UsageError
from splitbuild.models import Descriptor, Manifest
from splitbuild.reference import DOCKER_HUB, Reference
from splitbuild.store.base import BlobSource, Precondition, Repository

__all__ = [
    "PROVIDERS",
    "PROVIDERS_ENV",
    "Provider",
    "ProviderRepository",
    "Version",
    "provider_name",
]

PROVIDERS_ENV = "SPLITBUILD_PROVIDERS"
PROVIDERS = ("ghcr", "dockerhub", "registry")
GHCR_HOST = "ghcr.io"


@dataclass(frozen=True)
class Version:
    """One manifest as the provider records it (a GHCR package version, a Hub tag's image)."""

    id: str
    digest: str
    tags: tuple[str, ...] = ()
    created: dt.datetime | None = None
    pushed: dt.datetime | None = None
    """When the provider says it was last pushed (a tag put on it, for GHCR's ``updated_at``)."""


def _overrides(env: Mapping[str, str]) -> dict[str, str]:
    found: dict[str, str] = {}
    for item in env.get(PROVIDERS_ENV, "").split(","):
        host, sep, name = item.strip().partition("=")
        if not item.strip():
            continue
        if not sep or name.strip() not in PROVIDERS:
            raise UsageError(
                f"{PROVIDERS_ENV}: {item.strip()!r} is not HOST=NAME with NAME one of {', '.join(PROVIDERS)}"
            )
        found[host.strip()] = name.strip()
    return found


def provider_name(ref: Reference, env: Mapping[str, str], override: str | None = None) -> str:
    """The provider for ``ref``'s registry: ``override``, else ``SPLITBUILD_PROVIDERS``, else by host."""
    if override is not None:
        if override not in PROVIDERS:
            raise UsageError(f"unknown provider {override!r}: expected one of {', '.join(PROVIDERS)}")
        return override
    chosen = _overrides(env).get(ref.registry)
    if chosen is not None:
        return chosen
    if ref.registry == GHCR_HOST:
        return "ghcr"
    if ref.registry == DOCKER_HUB:
        return "dockerhub"
    return "registry"


class Provider(ABC):
    """Deletes manifests and tags of one repository through the registry's own API."""

    name: str = ""
    requests: int = 0
    """API requests made so far."""
    records_push_time: bool = False
    lists_untagged: bool = False
    untagged_help: str = ""
    """Why and what instead, where the provider cannot list untagged manifests."""

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    @abstractmethod
    async def aclose(self) -> None: ...

    @abstractmethod
    async def versions(self) -> list[Version]:
        """Every manifest the provider records for the repository (read once, then cached)."""

    @abstractmethod
    async def delete_manifest(self, digest: str, repo: Repository) -> None:
        """Delete the manifest ``digest`` and the tags on it; NotFound when it is not there.
        ``repo`` is the repository on the registry API (for what the provider deletes there)."""

    @abstractmethod
    async def delete_tag(self, tag: str, repo: Repository) -> str:
        """Remove ``tag`` and keep its manifest; returns the method (see ``Repository.delete_tag``)."""

    async def pushed(self) -> dict[str, dt.datetime]:
        """Tag to the time it was last pushed, where the provider records it."""
        times: dict[str, dt.datetime] = {}
        for version in await self.versions():
            if version.pushed is not None:
                for tag in version.tags:
                    times[tag] = version.pushed
        return times

    async def untagged(self) -> list[str]:
        """Digests of the manifests no tag points at (only where ``lists_untagged``)."""
        return [v.digest for v in await self.versions() if not v.tags]

    def wrap(self, repo: Repository) -> ProviderRepository:
        return ProviderRepository(repo, self)


class ProviderRepository:
    """``repo`` with its deletions done by ``provider``; everything else goes to ``repo``."""

    def __init__(self, repo: Repository, provider: Provider) -> None:
        self.inner = repo
        self.provider = provider
        self._lock = anyio.Lock()

    @property
    def name(self) -> str:
        return self.inner.name

    @property
    def location(self) -> str:
        return self.inner.location

    async def head_manifest(self, ref: str) -> Descriptor | None:
        return await self.inner.head_manifest(ref)

    async def get_manifest(self, ref: str) -> Manifest:
        return await self.inner.get_manifest(ref)

    async def put_manifest(
        self, manifest: Manifest, tag: str | None = None, *, precondition: Precondition | None = None
    ) -> None:
        await self.inner.put_manifest(manifest, tag, precondition=precondition)

    async def delete_manifest(self, ref: str) -> None:
        if ":" in ref:
            await self.provider.delete_manifest(ref, self.inner)
        else:
            await self.delete_tag(ref)

    async def delete_tag(self, tag: str) -> str:
        # One tag at a time: GHCR's placeholder dance must not interleave (see GhcrProvider).
        async with self._lock:
            return await self.provider.delete_tag(tag, self.inner)

    async def list_tags(self) -> list[str]:
        return await self.inner.list_tags()

    async def list_referrers(self, digest: str, artifact_type: str | None = None) -> list[Descriptor]:
        return await self.inner.list_referrers(digest, artifact_type)

    async def has_blob(self, digest: str) -> bool:
        return await self.inner.has_blob(digest)

    def open_blob(self, desc: Descriptor) -> AbstractAsyncContextManager[AsyncIterator[bytes]]:
        return self.inner.open_blob(desc)

    async def read_blob(self, desc: Descriptor) -> bytes:
        return await self.inner.read_blob(desc)

    async def put_blob(self, desc: Descriptor, source: BlobSource) -> None:
        await self.inner.put_blob(desc, source)
