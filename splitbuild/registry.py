"""``splitbuild.Registry``: the client with every operation as a coroutine method.

The facade maintenance scripts import::

    import anyio
    import splitbuild

    async def main() -> None:
        async with splitbuild.Registry() as reg:
            info = await reg.inspect("ghcr.io/acme/app:1.2")
            await reg.copy("ghcr.io/acme/app:1.2", "registry.example.com/acme/app:1.2")
            await reg.prune("ghcr.io/acme/app", splitbuild.RetentionPolicy(keep_last=10), dry_run=False)

    anyio.run(main)

Each method is a thin call into :mod:`splitbuild.ops` (or :mod:`splitbuild.merge`) with this
client; references may be text (``ghcr.io/acme/app:1.2``, ``oci:./out:v1``) or parsed.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import TYPE_CHECKING

from splitbuild.client import Client

if TYPE_CHECKING:
    from splitbuild.merge import MergeOptions, MergeResult
    from splitbuild.ops import (
        CopyResult,
        DeleteResult,
        InspectResult,
        PruneResult,
        RetentionPolicy,
        TagList,
        TagResult,
        VerifyResult,
    )
    from splitbuild.ops._common import RefLike

__all__ = ["Registry"]


class Registry(Client):
    """A :class:`~splitbuild.client.Client` with the operations as methods (same keyword options)."""

    async def inspect(
        self, ref: RefLike, *, platform: str | None = None, referrers: bool = True
    ) -> InspectResult:
        from splitbuild import ops

        return await ops.inspect(self, ref, platform=platform, referrers=referrers)

    async def list_tags(
        self, repository: RefLike, *, include: str | None = None, exclude: str | None = None
    ) -> TagList:
        from splitbuild import ops

        return await ops.list_tags(self, repository, include=include, exclude=exclude)

    async def tag(self, source: RefLike, tags: Sequence[str]) -> TagResult:
        from splitbuild import ops

        return await ops.add_tags(self, source, tags)

    async def copy(
        self,
        source: RefLike,
        destination: RefLike,
        *,
        platforms: Sequence[str] | None = None,
        referrers: bool = True,
    ) -> CopyResult:
        from splitbuild import ops

        return await ops.copy(self, source, destination, platforms=platforms, referrers=referrers)

    async def delete(
        self, ref: RefLike, *, force: bool = False, tag_only: bool = False, dry_run: bool = False
    ) -> DeleteResult:
        from splitbuild import ops

        return await ops.delete(self, ref, force=force, tag_only=tag_only, dry_run=dry_run)

    async def prune(
        self,
        repository: RefLike,
        policy: RetentionPolicy,
        *,
        dry_run: bool = True,
        now: dt.datetime | None = None,
    ) -> PruneResult:
        from splitbuild import ops

        return await ops.prune(self, repository, policy, dry_run=dry_run, now=now)

    async def verify(
        self,
        refs: Sequence[RefLike],
        platforms: Sequence[str],
        *,
        exact: bool = False,
        deep: bool = False,
        require_attestations: bool = False,
    ) -> VerifyResult:
        from splitbuild import ops

        return await ops.verify(
            self, refs, platforms, exact=exact, deep=deep, require_attestations=require_attestations
        )

    async def merge(self, options: MergeOptions, *, dry_run: bool = False) -> MergeResult:
        from splitbuild.merge import merge

        return await merge(self, options, dry_run=dry_run)
