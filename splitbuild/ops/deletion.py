"""Deciding and carrying out deletions safely; shared by ``delete`` and ``prune``.

:func:`plan_deletion` takes a :class:`~splitbuild.ops.graph.Graph` and the tags to remove, and
works out which manifests go with them: everything those tags reach (index children, attestation
manifests, nested indexes) that no remaining tag still needs, directly or through an index or a
referrers tag. A removed tag whose manifest is still needed is only untagged.

Referrers tags (``sha256-<hex>``, and cosign's ``.sig``, ``.att`` and ``.sbom``) follow their
subject: removed when the subject manifest is deleted, kept otherwise.

:func:`execute_deletion` untags first, then deletes manifests parents before children (an index
before the images it lists) and referrers before their subject, so no index or referrer that still
exists ever points at a deleted manifest. The
tags of a deleted manifest go with it; a final tag listing checks that, and untags any the registry
left behind.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Collection, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import anyio

from splitbuild._tasks import task_group
from splitbuild.errors import NotFound, SplitbuildError
from splitbuild.models import INDEX_TYPES, Descriptor
from splitbuild.ops._common import DEFAULT_JOBS, short
from splitbuild.ops.graph import Graph, referrers_subject
from splitbuild.store.base import Repository

if TYPE_CHECKING:
    from splitbuild.client import Client
    from splitbuild.providers import Provider
    from splitbuild.reference import AnyReference

__all__ = [
    "DeletionIncomplete",
    "DeletionOutcome",
    "DeletionPlan",
    "Doomed",
    "add_untagged",
    "execute_deletion",
    "plan_deletion",
    "provided",
    "remove_tag",
]


@dataclass(frozen=True)
class Doomed:
    """A manifest to delete: what it is, and which tags go with it."""

    digest: str
    kind: str
    """``index``, ``image``, ``attestation`` or ``manifest``, with the platform for an image."""
    tags: tuple[str, ...] = ()
    parent: str | None = None
    """The deleted index it was reached through (None for a tag's own manifest)."""

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"digest": self.digest, "kind": self.kind, "tags": list(self.tags)}
        if self.parent:
            data["parent"] = self.parent
        return data


@dataclass
class DeletionPlan:
    repository: str
    remove: dict[str, str] = field(default_factory=dict)
    """Tags removed, with the reason."""
    digests: dict[str, str] = field(default_factory=dict)
    """What each removed tag points at."""
    keep: dict[str, str] = field(default_factory=dict)
    """Tags kept, with the reason."""
    untag: list[str] = field(default_factory=list)
    """Removed tags whose manifest stays (another tag still needs it): only the tag is deleted."""
    levels: list[list[Doomed]] = field(default_factory=list)
    """Manifests to delete, parents first: every level after the one before."""
    protected: dict[str, str] = field(default_factory=dict)
    """Manifests reached from removed tags but kept, with the kept tag that needs them."""
    collateral: list[str] = field(default_factory=list)
    """Kept tags that point at a manifest deleted by force (they go with it)."""

    @property
    def manifests(self) -> list[Doomed]:
        return [d for level in self.levels for d in level]

    @property
    def empty(self) -> bool:
        return not self.untag and not self.levels

    def to_dict(self) -> dict[str, Any]:
        return {
            "repository": self.repository,
            "remove": [
                {"tag": t, "digest": self.digests.get(t), "reason": r} for t, r in sorted(self.remove.items())
            ],
            "keep": [{"tag": t, "reason": r} for t, r in sorted(self.keep.items())],
            "untagOnly": sorted(self.untag),
            "manifests": [d.to_dict() for d in self.manifests],
            "protected": [{"digest": d, "reason": r} for d, r in self.protected.items()],
            "collateralTags": sorted(self.collateral),
        }


def _kind(desc: Descriptor | None, media_type: str | None) -> str:
    if desc is not None and desc.is_attestation:
        return "attestation"
    if (desc is not None and desc.is_index) or media_type in INDEX_TYPES:
        return "index"
    if desc is not None and desc.platform is not None and not desc.platform.is_unknown:
        return f"image {desc.platform}"
    return "manifest"


def _needs(graph: Graph, tags: Collection[str]) -> dict[str, str]:
    """Every manifest the tags reach, with the first reason found."""
    needed: dict[str, str] = {}
    for tag in tags:
        root = graph.tags.get(tag)
        if root is None:
            continue
        for digest, desc, _parent in graph.walk(root):
            if digest in needed:
                continue
            if desc is None:
                needed[digest] = f"tag {tag}"
            elif desc.is_attestation:
                needed[digest] = f"attestation in {tag}"
            elif desc.platform is not None and not desc.platform.is_unknown:
                needed[digest] = f"{desc.platform} image of {tag}"
            else:
                needed[digest] = f"child of {tag}"
    return needed


def plan_deletion(
    graph: Graph,
    remove: Mapping[str, str],
    keep: Mapping[str, str] | None = None,
    *,
    force_digests: Collection[str] = (),
    tag_only: bool = False,
) -> DeletionPlan:
    """The deletions for removing the tags ``remove`` (tag to reason) from ``graph``.

    ``keep``: reasons for the other tags (default: "not selected"). ``force_digests``: manifests
    deleted even though kept tags need them (``delete --force``). ``tag_only``: delete tags only,
    never a manifest.
    """
    keep = dict(keep or {})
    removed = {t: r for t, r in remove.items() if t in graph.tags}
    kept = {t: keep.get(t, "not selected") for t in graph.tags if t not in removed}
    # Referrers tags follow their subject: decided after the other tags.
    followers = {t: s for t in kept if t not in keep and (s := referrers_subject(t)) is not None}
    plain_kept = [t for t in kept if t not in followers]

    def doomed_set(needed: Mapping[str, str]) -> set[str]:
        if tag_only:
            return set(force_digests)
        candidates = {d for t in removed for d, _, _ in graph.walk(graph.tags[t])}
        for forced in force_digests:
            candidates |= {d for d, _, _ in graph.walk(forced)}
        return {d for d in candidates if d not in needed} | set(force_digests)

    needed = _needs(graph, plain_kept)
    doomed = doomed_set(needed)
    # To a fixed point: deleting a referrers tag can doom a referrer (an SBOM) whose own referrers
    # tag (a signature on it) must then go too.
    pending = dict(followers)
    while True:
        gone = {t: s for t, s in pending.items() if s in doomed}
        for tag, subject in gone.items():
            removed[tag] = f"referrers of deleted {short(subject)}"
            del kept[tag], pending[tag]
        for tag, subject in pending.items():
            if subject in graph.nodes or subject in needed:
                kept[tag] = f"referrers of kept {short(subject)}"
            else:
                kept[tag] = f"referrers tag; subject {short(subject)} is not held by any tag (left alone)"
        needed = _needs(graph, kept)
        doomed = doomed_set(needed)
        if not gone and not any(s in doomed for s in pending.values()):
            break

    plan = DeletionPlan(graph.repository, remove=removed, keep=kept)
    plan.digests = {t: graph.tags[t] for t in removed}
    plan.collateral = [t for t in kept if graph.tags[t] in doomed]
    plan.untag = [t for t in removed if graph.tags[t] not in doomed]
    for tag in removed:
        for digest, _, _ in graph.walk(graph.tags[tag]):
            if digest in needed and digest not in doomed:
                plan.protected.setdefault(digest, needed[digest])
    plan.levels = _levels(graph, doomed)
    return plan


def _levels(graph: Graph, doomed: set[str]) -> list[list[Doomed]]:
    parents: dict[str, list[str]] = {d: [] for d in doomed}
    described: dict[str, Descriptor] = {}
    for digest in doomed:
        for child in graph.children(digest):
            if child.digest in doomed:
                parents[child.digest].append(digest)
                described.setdefault(child.digest, child)
    # A subject goes after its referrers (what its referrers tags hold): no referrer ever points at a
    # deleted manifest, and registries that refuse to delete a referenced manifest (Docker Hub) agree.
    waits = {d: list(p) for d, p in parents.items()}
    for tag, root in graph.tags.items():
        subject = referrers_subject(tag)
        if subject in doomed and root in doomed and root != subject:
            waits[subject].extend(d for d, _, _ in graph.walk(root) if d in doomed and d != subject)
    depth = _depths(waits)

    def level(digest: str) -> int:
        return depth[digest]

    levels: list[list[Doomed]] = []
    # Parents first; within a level, the children of one index together.
    for digest in sorted(doomed, key=lambda d: (level(d), parents[d][0] if parents[d] else d, d)):
        n = depth[digest]
        while len(levels) <= n:
            levels.append([])
        desc = described.get(digest)
        levels[n].append(
            Doomed(
                digest=digest,
                kind=_kind(desc, graph.media_type(digest)),
                tags=tuple(graph.tags_of(digest)),
                parent=parents[digest][0] if parents[digest] else None,
            )
        )
    return levels


def add_untagged(
    graph: Graph, plan: DeletionPlan, roots: Collection[str], keep: Collection[str] = ()
) -> list[str]:
    """Also delete the untagged manifests ``roots`` (in ``graph``) and what below them nothing kept
    needs; a root a kept tag reaches stays, and so do the manifests ``keep`` (referrers of kept
    manifests). Returns the roots added to ``plan``."""
    needed = _needs(graph, plan.keep)
    for kept in keep:  # a referrer that stays keeps what it lists
        needed.update({d: "kept" for d, _, _ in graph.walk(kept) if d not in needed})
    doomed = {d.digest for d in plan.manifests}
    added = [r for r in roots if r not in needed and r not in doomed]
    for root in added:
        doomed |= {d for d, _, _ in graph.walk(root) if d not in needed}
    plan.levels = _levels(graph, doomed)
    return added


@asynccontextmanager
async def provided(
    client: Client, ref: AnyReference, provider: str | Provider | None
) -> AsyncIterator[Provider | None]:
    """The registry provider deleting for ``ref`` (chosen by host unless named; see
    :mod:`splitbuild.providers`); a given :class:`Provider` stays the caller's to close."""
    from splitbuild.providers import Provider, open_provider
    from splitbuild.reference import Reference

    if isinstance(provider, Provider):
        yield provider
        return
    opened = open_provider(client, ref, name=provider) if isinstance(ref, Reference) else None
    if opened is None:
        yield None
        return
    async with opened:
        yield opened


def _depths(parents: Mapping[str, Sequence[str]]) -> dict[str, int]:
    """Each digest's longest chain of parents (0: none), iteratively (no recursion however deep);
    a parent already on the chain being followed is ignored."""
    depth: dict[str, int] = {}
    for start in parents:
        stack: list[tuple[str, bool]] = [(start, False)]
        on_path: set[str] = set()
        while stack:
            digest, expanded = stack.pop()
            if expanded:
                on_path.discard(digest)
                above = [depth.get(p, 0) for p in parents[digest] if p not in on_path]
                depth[digest] = 1 + max(above, default=-1)
                continue
            if digest in depth or digest in on_path:
                continue
            on_path.add(digest)
            stack.append((digest, True))
            stack.extend((p, False) for p in parents[digest] if p not in depth)
    return depth


# -- execution -----------------------------------------------------------------------------------


class DeletionIncomplete(SplitbuildError):
    """Deletion stopped at a failure; ``outcome`` says what was done before it. A re-run finishes."""

    def __init__(self, cause: SplitbuildError, outcome: DeletionOutcome) -> None:
        done = len(outcome.deleted) + len(outcome.untagged)
        tail = f"{done} deletions done before it" if done else "nothing was deleted"
        super().__init__(f"{cause.message} ({tail})", hint=cause.hint or "run the same command again")
        self.exit_code = cause.exit_code
        self.cause = cause
        self.outcome = outcome


@dataclass
class DeletionOutcome:
    untagged: dict[str, str] = field(default_factory=dict)
    """Tag to the method used (``tag``: native; ``placeholder``: the dummy-manifest fallback)."""
    deleted: list[str] = field(default_factory=list)
    """Manifests deleted (with the tags pointing at them)."""
    already_gone: list[str] = field(default_factory=list)
    swept: list[str] = field(default_factory=list)
    """Tags the registry kept after their manifest was deleted, removed by the final check."""
    blobs: list[str] = field(default_factory=list)
    """Blob files deleted (an OCI layout pruned with ``untagged``)."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "untagged": [{"tag": t, "method": m} for t, m in self.untagged.items()],
            "deleted": list(self.deleted),
            "alreadyGone": list(self.already_gone),
            "swept": list(self.swept),
            "blobs": list(self.blobs),
        }


async def remove_tag(repo: Repository, tag: str) -> str:
    """Delete one tag and keep its manifest; returns the method (see :meth:`Repository.delete_tag`)."""
    return await repo.delete_tag(tag)


async def execute_deletion(
    repo: Repository, plan: DeletionPlan, *, jobs: int = DEFAULT_JOBS
) -> DeletionOutcome:
    """Untag, then delete level by level; stops (raising :class:`DeletionIncomplete`) at a failure."""
    outcome = DeletionOutcome()
    failures: list[SplitbuildError] = []
    limiter = anyio.CapacityLimiter(jobs)

    async def untag(tag: str) -> None:
        async with limiter:
            if failures:
                return
            try:
                outcome.untagged[tag] = await remove_tag(repo, tag)
            except NotFound:
                outcome.already_gone.append(tag)
            except SplitbuildError as exc:
                failures.append(exc)

    async def delete(doomed: Doomed) -> None:
        async with limiter:
            if failures:
                return
            try:
                await repo.delete_manifest(doomed.digest)
            except NotFound:
                outcome.already_gone.append(doomed.digest)
            except SplitbuildError as exc:
                failures.append(exc)
            else:
                outcome.deleted.append(doomed.digest)

    async with task_group() as tg:
        for tag in plan.untag:
            tg.start_soon(untag, tag)
    for level in plan.levels:
        if failures:
            break
        async with task_group() as tg:
            for doomed in level:
                tg.start_soon(delete, doomed)
    if failures:
        raise DeletionIncomplete(failures[0], outcome)
    gone_with_manifests = {t for d in plan.manifests for t in d.tags}
    if gone_with_manifests:
        left = [t for t in await repo.list_tags() if t in gone_with_manifests]
        for tag in left:
            try:
                outcome.untagged[tag] = await remove_tag(repo, tag)
            except NotFound:
                continue
            outcome.swept.append(tag)
    return outcome
