"""``delete``: remove a tag (and what only it needed), or a manifest by digest (refused while in use).

A tag: the tag goes; its manifest (and the children and attestations of an index) go too unless
another tag, an index under another tag, or a referrers tag still needs them, in which case only
the tag is removed (the tag-delete ladder: OCI tag ``DELETE``, else the placeholder manifest).
``tag_only`` removes only the tag, without reading the rest of the repository.

A digest: refused (:class:`~splitbuild.errors.Refused`) while a tag points at it or at an index
that lists it, unless ``force``; its tags go with it.

Unused manifests (:func:`delete_unused`, what ``merge --delete-displaced`` runs on the indexes its
tags left): each one nothing reaches any more goes, with what only it needed (children,
attestations, referrers); one in use stays, with the uses as the reason. One repository scan for all.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from splitbuild.errors import NotFound, Refused, UsageError
from splitbuild.ops._common import DEFAULT_JOBS, RefLike, as_reference, short
from splitbuild.ops.deletion import (
    DeletionOutcome,
    DeletionPlan,
    execute_deletion,
    plan_deletion,
    provided,
    remove_tag,
)
from splitbuild.ops.graph import Graph, Node, scan
from splitbuild.store.base import Repository

if TYPE_CHECKING:
    from splitbuild.client import Client
    from splitbuild.providers import Provider

__all__ = ["DeleteResult", "UnusedResult", "delete", "delete_unused", "users_of"]


@dataclass
class DeleteResult:
    """What :func:`delete` planned and, unless a dry run, did: the plan, its outcome and how the tag was
    removed; ``to_dict()`` is the ``--json`` document."""

    reference: str
    digest: str | None
    plan: DeletionPlan | None = None
    """None with ``tag_only`` (no repository scan)."""
    outcome: DeletionOutcome | None = None
    """None in a dry run."""
    tag_method: str | None = None
    """With ``tag_only``: how the tag was removed."""
    dry_run: bool = False
    requests: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "reference": self.reference,
            "digest": self.digest,
            "dryRun": self.dry_run,
            "plan": self.plan.to_dict() if self.plan is not None else None,
            "result": self.outcome.to_dict() if self.outcome is not None else None,
            "tagMethod": self.tag_method,
            "requests": self.requests,
        }


def users_of(graph: Graph, digest: str) -> list[str]:
    """How tags use ``digest``: ``tag v1``, ``linux/arm64 image of v1``, ``attestation in v1``..."""
    uses = []
    for tag, root in graph.tags.items():
        for found, desc, _parent in graph.walk(root):
            if found != digest:
                continue
            if desc is None:
                uses.append(f"tag {tag}")
            elif desc.is_attestation:
                uses.append(f"attestation in {tag}")
            elif desc.platform is not None and not desc.platform.is_unknown:
                uses.append(f"{desc.platform} image of {tag}")
            else:
                uses.append(f"child of {tag}")
            break
    return uses


async def _add_untagged(repo: Repository, graph: Graph, digest: str) -> None:
    """Put an untagged manifest (and an index's children) into the graph; NotFound when absent."""
    desc = await repo.head_manifest(digest)
    if desc is None:
        raise NotFound(f"{repo.name}@{digest}: manifest not found")
    if not desc.is_index:
        graph.nodes[digest] = Node(desc)
        return
    manifest = await repo.get_manifest(digest)
    graph.nodes[digest] = Node(desc, tuple(manifest.children()))
    for child in manifest.children():
        graph.nodes.setdefault(child.digest, Node(child))


async def delete(
    client: Client,
    ref: RefLike,
    *,
    force: bool = False,
    tag_only: bool = False,
    dry_run: bool = False,
    jobs: int = DEFAULT_JOBS,
    provider: str | Provider | None = None,
) -> DeleteResult:
    """Delete ``ref`` (``REPO:TAG`` or ``REPO@DIGEST``); see the module docstring.

    ``provider``: who deletes (a :class:`~splitbuild.providers.Provider` or its name); by default
    the registry's own API where it has one (GHCR, Docker Hub), else the registry API."""
    reference = as_reference(ref)
    if reference.tag is None and reference.digest is None:
        raise UsageError(f"{reference}: name a tag (REPO:TAG) or a digest (REPO@sha256:...) to delete")
    if reference.tag is not None and reference.digest is not None:
        raise UsageError(f"{reference}: give a tag or a digest, not both")
    if tag_only and reference.tag is None:
        raise UsageError("`tag_only` applies to a tag, not a digest")
    repo = client.repository(reference)
    start = client.requests
    result = DeleteResult(str(reference), reference.digest, dry_run=dry_run)
    if reference.tag is not None and tag_only:
        current = await repo.head_manifest(reference.tag)
        if current is None:
            raise NotFound(f"{reference}: tag not found")
        result.digest = current.digest
        if not dry_run:
            async with provided(client, reference, provider) as deleter:
                target = deleter.wrap(repo) if deleter is not None else repo
                result.tag_method = await remove_tag(target, reference.tag)
        result.requests = client.requests - start
        return result
    graph = await scan(repo, jobs=jobs)
    if reference.tag is not None:
        if reference.tag not in graph.tags:
            raise NotFound(f"{reference}: tag not found")
        result.digest = graph.tags[reference.tag]
        plan = plan_deletion(graph, {reference.tag: "named on the command line"})
    else:
        digest = reference.digest
        assert digest is not None
        if digest not in graph.nodes:
            await _add_untagged(repo, graph, digest)
        uses = users_of(graph, digest)
        if uses and not force:
            raise Refused(
                f"{reference} is in use ({'; '.join(uses[:5])}{'; ...' if len(uses) > 5 else ''}): "
                f"not deleted",
                hint="delete those tags instead, or pass `force` to delete it anyway (breaks them)",
            )
        direct = {t: f"points at {short(digest)}" for t in graph.tags_of(digest)}
        plan = plan_deletion(graph, direct, force_digests=[digest])
    result.plan = plan
    if not dry_run:
        async with provided(client, reference, provider) as deleter:
            target = deleter.wrap(repo) if deleter is not None else repo
            result.outcome = await execute_deletion(target, plan, jobs=jobs)
    result.requests = client.requests - start
    return result


@dataclass
class UnusedResult:
    """What :func:`delete_unused` did in one repository: the plan, its outcome, the manifests kept
    (digest to the uses that keep it) and those already gone; ``to_dict()`` is JSON."""

    repository: str
    plan: DeletionPlan | None = None
    """None when nothing was unused."""
    outcome: DeletionOutcome | None = None
    kept: dict[str, str] = field(default_factory=dict)
    already_gone: list[str] = field(default_factory=list)
    requests: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "repository": self.repository,
            "plan": self.plan.to_dict() if self.plan is not None else None,
            "result": self.outcome.to_dict() if self.outcome is not None else None,
            "kept": [{"digest": d, "reason": r} for d, r in sorted(self.kept.items())],
            "alreadyGone": sorted(self.already_gone),
            "requests": self.requests,
        }


async def delete_unused(
    client: Client,
    repository: RefLike,
    digests: Sequence[str],
    *,
    dry_run: bool = False,
    jobs: int = DEFAULT_JOBS,
    provider: str | Provider | None = None,
) -> UnusedResult:
    """Delete each manifest of ``digests`` in ``repository`` that no tag reaches (directly, as an index
    child, an attestation or through a referrers tag), with what only it needed; see the module
    docstring. A manifest in use is kept (``kept``), one already absent is listed, never an error."""
    reference = as_reference(repository)
    repo = client.repository(reference)
    start = client.requests
    result = UnusedResult(reference.repo().name)
    graph = await scan(repo, jobs=jobs)
    unused: list[str] = []
    for digest in dict.fromkeys(digests):
        if digest not in graph.nodes:
            try:
                await _add_untagged(repo, graph, digest)
            except NotFound:
                result.already_gone.append(digest)
                continue
        uses = users_of(graph, digest)
        if uses:
            result.kept[digest] = "; ".join(uses[:5]) + ("; ..." if len(uses) > 5 else "")
        else:
            unused.append(digest)
    if unused:
        result.plan = plan_deletion(graph, {}, force_digests=unused)
        if not dry_run:
            async with provided(client, reference, provider) as deleter:
                target = deleter.wrap(repo) if deleter is not None else repo
                result.outcome = await execute_deletion(target, result.plan, jobs=jobs)
    result.requests = client.requests - start
    return result
