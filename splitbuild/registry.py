"""``splitbuild.Registry``: the client with every operation as a coroutine method.

The facade maintenance scripts import::

    import anyio
    import splitbuild

    async def main() -> None:
        async with splitbuild.Registry() as reg:
            info = await reg.inspect("ghcr.io/acme/app:1.2")
            digest = await reg.digest("ghcr.io/acme/app:1.2")
            await reg.copy("ghcr.io/acme/app:1.2", "registry.example.com/acme/app:1.2", jobs=4)
            await reg.prune("ghcr.io/acme/app", splitbuild.RetentionPolicy(keep_last=10), dry_run=False)
            await reg.merge(targets=["ghcr.io/acme/app:1.3"], sources=["ghcr.io/acme/app@sha256:..."])

    anyio.run(main)

Each operation is a thin call into :mod:`splitbuild.ops` (or :mod:`splitbuild.merge`) with this
client and the same keyword options (``jobs``, progress callbacks...); references may be text
(``ghcr.io/acme/app:1.2``, ``oci:./out:v1``) or parsed.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from splitbuild import ops
from splitbuild.client import Client
from splitbuild.errors import NotFound, UsageError
from splitbuild.index import Annotations
from splitbuild.merge import MergeOptions, MergeResult, merge_options
from splitbuild.ops._common import DEFAULT_JOBS, RefLike, as_reference, identifier
from splitbuild.publish import publish

if TYPE_CHECKING:
    import httpx

    from splitbuild.auth import Keychain
    from splitbuild.blobcache import BlobLocations
    from splitbuild.models import Descriptor, Manifest
    from splitbuild.providers import Provider
    from splitbuild.retry import RetryPolicy
    from splitbuild.transfer import BytesCallback, ProgressCallback

__all__ = ["Registry"]


class Registry(Client):
    """A :class:`~splitbuild.client.Client` with the operations as methods (same keyword options).

    ``blob_cache`` is :class:`~splitbuild.client.Client`'s (mount blobs the target registry holds
    elsewhere). The constructor also takes the registry client's options; ``None`` keeps its default:
    ``keychain`` (where credentials come from; default: docker/podman auth files, credential
    helpers and ``SPLITBUILD_AUTH_*`` variables), ``insecure`` (hosts reached over plain HTTP),
    ``ca_file`` (extra trusted CA certificates, PEM), ``timeout`` (seconds per request),
    ``retry`` (backoff for transient failures), ``per_host`` (requests at once per registry),
    ``chunk_size`` and ``page_size`` (upload chunks, tag-list pages), ``transport`` (an httpx
    transport, for tests) and ``env`` (the environment read instead of this process's).
    """

    def __init__(
        self,
        *,
        keychain: Keychain | None = None,
        insecure: Iterable[str] = (),
        ca_file: str | Path | None = None,
        timeout: float | None = None,
        retry: RetryPolicy | None = None,
        per_host: int | None = None,
        chunk_size: int | None = None,
        page_size: int | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        env: Mapping[str, str] | None = None,
        deadline: float | None = None,
        max_pages: int | None = None,
        max_entries: int | None = None,
        blob_cache: bool | BlobLocations = False,
    ) -> None:
        given: dict[str, Any] = {
            "deadline": deadline,
            "max_pages": max_pages,
            "max_entries": max_entries,
            "keychain": keychain,
            "ca_file": ca_file,
            "timeout": timeout,
            "retry": retry,
            "per_host": per_host,
            "chunk_size": chunk_size,
            "page_size": page_size,
            "transport": transport,
            "env": env,
        }
        options = {name: value for name, value in given.items() if value is not None}
        super().__init__(insecure=tuple(insecure), blob_cache=blob_cache, **options)

    # --- reading ------------------------------------------------------------------------------

    async def head(self, ref: RefLike) -> Descriptor | None:
        """The descriptor (media type, digest, size) of the manifest ``ref`` names (its digest,
        else its tag, else ``latest``), or ``None`` when it does not exist. One ``HEAD`` request
        on a registry."""
        reference = as_reference(ref)
        return await self.repository(reference).head_manifest(identifier(reference))

    async def digest(self, ref: RefLike) -> str:
        """The digest ``ref`` resolves to (``sha256:...``); raises :class:`NotFound` when the tag
        or digest does not exist."""
        found = await self.head(ref)
        if found is None:
            raise NotFound(f"{as_reference(ref)}: manifest unknown")
        return found.digest

    async def get_manifest(self, ref: RefLike) -> Manifest:
        """The manifest or index ``ref`` names, as exact bytes verified against its digest;
        raises :class:`NotFound` when it does not exist."""
        reference = as_reference(ref)
        return await self.repository(reference).get_manifest(identifier(reference))

    async def inspect(
        self, ref: RefLike, *, platform: str | None = None, referrers: bool = True, jobs: int = DEFAULT_JOBS
    ) -> ops.InspectResult:
        """What ``ref`` is: the manifest, its image config or its children, and with ``referrers``
        the signatures, SBOMs and attestations attached (see :func:`splitbuild.ops.inspect`)."""
        return await ops.inspect(self, ref, platform=platform, referrers=referrers, jobs=jobs)

    async def list_tags(
        self, repository: RefLike, *, include: str | None = None, exclude: str | None = None
    ) -> ops.TagList:
        """The tags of ``repository``, filtered by the ``include``/``exclude`` regular expressions
        (see :func:`splitbuild.ops.list_tags`)."""
        return await ops.list_tags(self, repository, include=include, exclude=exclude)

    async def verify(
        self,
        refs: Sequence[RefLike],
        platforms: Sequence[str],
        *,
        exact: bool = False,
        deep: bool = False,
        require_attestations: bool = False,
        jobs: int = DEFAULT_JOBS,
    ) -> ops.VerifyResult:
        """Check that every reference holds ``platforms`` (``exact``: and no other), ``deep``:
        every blob present, ``require_attestations``: each image attested (see
        :func:`splitbuild.ops.verify`)."""
        return await ops.verify(
            self,
            refs,
            platforms,
            exact=exact,
            deep=deep,
            require_attestations=require_attestations,
            jobs=jobs,
        )

    # --- writing ------------------------------------------------------------------------------

    async def tag(self, source: RefLike, tags: Sequence[str], *, jobs: int = DEFAULT_JOBS) -> ops.TagResult:
        """Point every tag in ``tags`` at the manifest ``source`` names, in its repository (see
        :func:`splitbuild.ops.add_tags`)."""
        return await ops.add_tags(self, source, tags, jobs=jobs)

    async def copy(
        self,
        source: RefLike,
        destination: RefLike,
        *,
        platforms: Sequence[str] | None = None,
        referrers: bool = True,
        jobs: int = DEFAULT_JOBS,
        on_progress: ProgressCallback | None = None,
        on_bytes: BytesCallback | None = None,
        source_tags: Collection[str] | None = None,
    ) -> ops.CopyResult:
        """Copy the image or index ``source`` to ``destination`` (only ``platforms`` of an index
        when given), with its referrers; ``on_progress``/``on_bytes`` see each blob and the bytes
        moved; ``source_tags``: the source repository's tags when already listed (see
        :func:`splitbuild.ops.copy`)."""
        return await ops.copy(
            self,
            source,
            destination,
            platforms=platforms,
            referrers=referrers,
            jobs=jobs,
            on_progress=on_progress,
            on_bytes=on_bytes,
            source_tags=source_tags,
        )

    async def delete(
        self,
        ref: RefLike,
        *,
        force: bool = False,
        tag_only: bool = False,
        dry_run: bool = False,
        jobs: int = DEFAULT_JOBS,
        provider: str | Provider | None = None,
    ) -> ops.DeleteResult:
        """Delete the manifest ``ref`` names (``tag_only``: only the tag), refusing one other tags
        still use unless ``force``; ``provider`` deletes where the registry API cannot (GHCR,
        Docker Hub; chosen from the host by default). See :func:`splitbuild.ops.delete`."""
        return await ops.delete(
            self, ref, force=force, tag_only=tag_only, dry_run=dry_run, jobs=jobs, provider=provider
        )

    async def prune(
        self,
        repository: RefLike,
        policy: ops.RetentionPolicy,
        *,
        dry_run: bool = True,
        jobs: int = DEFAULT_JOBS,
        now: dt.datetime | None = None,
        max_delete: int | None = None,
        provider: str | Provider | None = None,
    ) -> ops.PruneResult:
        """Delete the tags (and their manifests) of ``repository`` that ``policy`` does not keep;
        only a plan unless ``dry_run=False``; refused with nothing deleted when more than
        ``max_delete`` would go (see :func:`splitbuild.ops.prune`)."""
        return await ops.prune(
            self,
            repository,
            policy,
            dry_run=dry_run,
            jobs=jobs,
            now=now,
            max_delete=max_delete,
            provider=provider,
        )

    async def merge(
        self,
        options: MergeOptions | None = None,
        *,
        targets: Sequence[RefLike] = (),
        sources: Sequence[RefLike] = (),
        platforms: Sequence[str] | None = None,
        annotations: Annotations | Sequence[str] = (),
        allow_shrink: bool = False,
        referrers: bool = True,
        allow_rollback: bool = False,
        delete_displaced: bool = False,
        dry_run: bool = False,
        optional_platforms: Sequence[str] = (),
    ) -> MergeResult:
        """Assemble one index from the per-platform ``sources`` and push it under every target
        tag (see :func:`splitbuild.merge.merge`).

        Give either ``options`` or the keywords: ``targets`` (``REPO:TAG`` or ``oci:PATH:TAG``),
        ``sources`` (``repo@sha256:...``, ``repo:tag``, ``oci:PATH@sha256:...`` or a bare digest
        in the first target's repository), ``platforms`` (the exact set the index must hold),
        ``annotations`` (``[LEVEL:]KEY=VALUE`` texts or parsed), ``allow_shrink`` (replace an index
        holding more platforms), ``referrers`` (copy the sources' referrers along) and
        ``allow_rollback`` (move a tag even off an index annotated newer), ``optional_platforms``
        (platforms the index may lack: left out, listed in ``plan.left_out``). ``delete_displaced``
        (with either form) then deletes the indexes the moved tags left where nothing uses them
        (see :mod:`splitbuild.publish`).
        """
        if options is None:
            options = merge_options(
                targets,
                sources,
                platforms=platforms,
                optional_platforms=optional_platforms,
                annotations=annotations,
                allow_shrink=allow_shrink,
                allow_rollback=allow_rollback,
                referrers=referrers,
            )
        elif (
            targets
            or sources
            or platforms is not None
            or annotations
            or allow_shrink
            or not referrers
            or allow_rollback
            or optional_platforms
        ):
            raise UsageError("merge: give either options or targets/sources/... keywords, not both")
        return await publish(self, options, delete_displaced=delete_displaced, dry_run=dry_run)
