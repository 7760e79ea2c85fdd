"""Publishing: the merge, then (optionally) the clean-up of the indexes its tags left.

:func:`publish` runs :func:`splitbuild.merge.merge`; with ``delete_displaced`` it then deletes
every index a moved tag pointed at before, in each target repository, when no tag reaches it any
more (its children, attestations and referrers too, unless something else still needs them: the
reachability rules of ``delete`` and ``prune``, :func:`splitbuild.ops.delete_unused`). The
clean-up never undoes the publish: its failures are reported in the result, the tags stay moved.
This module sits above merge and ops, which do not know each other.
"""

from __future__ import annotations

from splitbuild.client import Client
from splitbuild.errors import SplitbuildError
from splitbuild.merge import CleanupFailure, MergeOptions, MergeResult, merge

__all__ = ["publish"]


async def publish(
    client: Client, options: MergeOptions, *, delete_displaced: bool = False, dry_run: bool = False
) -> MergeResult:
    """Merge (see :mod:`splitbuild.merge`); then, with ``delete_displaced``, delete the displaced
    indexes nothing reaches any more (see the module docstring). Raises what :func:`merge` raises;
    never for the clean-up."""
    result = await merge(client, options, dry_run=dry_run)
    if not delete_displaced or dry_run:
        return result
    from splitbuild.ops._delete import delete_unused  # the clean-up's graph walk only when asked for

    start = client.requests
    for target in result.plan.targets:
        repository = target.ref.repo()
        digests = result.displaced.get(repository.name)
        if not digests or any(c.repository == repository.name for c in result.cleanup):
            continue
        try:
            result.cleanup.append(await delete_unused(client, repository, digests))
        except SplitbuildError as exc:
            result.cleanup_failed.append(CleanupFailure(repository.name, exc.message))
    result.requests += client.requests - start
    return result
