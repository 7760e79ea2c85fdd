"""``prune``: a retention policy over tags; a dry run unless asked to delete.

The policy picks tags to remove among those the ``include``/``exclude`` patterns select:

* ``keep_last=N`` keeps the N most recently created of them;
* ``older_than=AGE`` keeps those created less than AGE ago;
* both: a tag goes only when it is beyond the N most recent *and* older than AGE.

The creation time is the ``org.opencontainers.image.created`` annotation, else the image config's
``created`` (for an index, that of its first platform image). A tag without one is kept.
Referrers tags (``sha256-<hex>``) are never picked by the policy: they follow their subject.

Then :func:`~splitbuild.ops.deletion.plan_deletion` works out the manifests that go with the
removed tags, never one a kept tag still needs (itself, as an index child, or as an attestation).

With a registry provider (GHCR, Docker Hub; see :mod:`splitbuild.providers`) the deleting goes
through the registry's own API, the age can be the push time the provider records
(``age_from="pushed"``, the default there; ``"created"`` elsewhere), and ``untagged`` also deletes
the manifests no tag points at (GHCR's untagged versions) that nothing kept reaches, directly, as an
index child or as a referrer (``subject``). On an OCI layout ``untagged`` lists the layout's own
storage instead, and also deletes the blobs nothing left references
(:mod:`splitbuild.ops._layout_untagged`). Where neither can list them (Docker Hub, the registry API
alone) ``untagged`` is a :class:`~splitbuild.errors.UsageError` saying why and what instead.
``max_delete`` refuses, before deleting anything, a run that would delete more than that many
manifests and tags.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from splitbuild.errors import InvalidInput, NotFound, Refused, UsageError, shorten
from splitbuild.ops._common import DEFAULT_JOBS, RefLike, as_reference, bounded
from splitbuild.ops._tags import tag_filter
from splitbuild.ops.deletion import (
    DeletionOutcome,
    DeletionPlan,
    add_untagged,
    execute_deletion,
    plan_deletion,
    provided,
)
from splitbuild.ops.graph import Graph, Node, referrers_subject, scan
from splitbuild.store.base import Repository

if TYPE_CHECKING:
    from splitbuild.client import Client
    from splitbuild.ops._layout_untagged import BlobSweep, LayoutStorage
    from splitbuild.providers import Provider
    from splitbuild.reference import AnyReference
    from splitbuild.store.layout import LayoutRepository

AGE_SOURCES = ("pushed", "created")

__all__ = [
    "MAX_DURATION_DAYS",
    "PruneResult",
    "RetentionPolicy",
    "format_duration",
    "parse_duration",
    "prune",
]

_UNITS = {"w": 7 * 86400, "d": 86400, "h": 3600, "m": 60, "s": 1}
_DURATION = re.compile(r"(\d+)([wdhms])")


MAX_DURATION_DAYS = 36500
"""The longest duration accepted: 100 years (36500d)."""


def parse_duration(text: str) -> dt.timedelta:
    """``90d``, ``2w``, ``36h``, ``1d12h``, ``30m``, ``45s`` (weeks, days, hours, minutes, seconds),
    at most :data:`MAX_DURATION_DAYS` days in all."""
    compact = text.strip().lower().replace(" ", "")
    parts = _DURATION.findall(compact) if len(compact) <= 64 else []
    if not compact or "".join(n + u for n, u in parts) != compact:
        raise InvalidInput(f"invalid duration {shorten(text)!r}: expected e.g. 30d, 2w, 12h or 1d12h")
    seconds = sum(int(n) * _UNITS[u] for n, u in parts)
    if seconds > MAX_DURATION_DAYS * 86400:
        raise InvalidInput(
            f"duration {shorten(text)!r} is over the limit of {MAX_DURATION_DAYS}d (100 years)"
        )
    return dt.timedelta(seconds=seconds)


def format_duration(value: dt.timedelta) -> str:
    seconds = int(value.total_seconds())
    out = []
    for unit, size in _UNITS.items():
        if unit == "w":
            continue
        if seconds >= size:
            out.append(f"{seconds // size}{unit}")
            seconds %= size
    return "".join(out) or "0s"


@dataclass(frozen=True)
class RetentionPolicy:
    """Which tags :func:`prune` deletes: beyond the ``keep_last`` most recent, and/or older than
    ``older_than`` (a :class:`datetime.timedelta`, or text as the command line takes it: ``"30d"``,
    ``"2w"``, ``"1d12h"``), among the tags ``include``/``exclude`` select. Validated when built."""

    keep_last: int | None = None
    older_than: dt.timedelta | str | None = None
    include: str | None = None
    exclude: str | None = None
    untagged: bool = False
    """Also delete untagged manifests nothing kept reaches (where the provider lists them)."""
    age_from: str | None = None
    """``pushed`` or ``created``; None: pushed where the provider records it, else created."""

    def __post_init__(self) -> None:
        if isinstance(self.older_than, str):
            object.__setattr__(self, "older_than", parse_duration(self.older_than))
        elif self.older_than is not None and not isinstance(self.older_than, dt.timedelta):
            raise InvalidInput(
                "older_than must be a timedelta or a duration such as '30d', "
                f"not {type(self.older_than).__name__}"
            )
        if self.keep_last is not None and (
            isinstance(self.keep_last, bool) or not isinstance(self.keep_last, int)
        ):
            raise InvalidInput(f"keep_last must be a whole number, not {self.keep_last!r}")
        if self.keep_last is None and self.older_than is None and not self.untagged:
            raise UsageError("a retention policy needs `keep_last` and/or `older_than`")
        if self.age_from is not None and self.age_from not in AGE_SOURCES:
            raise UsageError(f"age from {self.age_from!r}: expected pushed or created")
        if self.keep_last is not None and self.keep_last < 0:
            raise UsageError(f"`keep_last` must be 0 or more (got {self.keep_last})")
        tag_filter(self.include, self.exclude)  # validates the patterns

    @property
    def age(self) -> dt.timedelta | None:
        """``older_than`` as a :class:`datetime.timedelta` (text was parsed when the policy was built)."""
        return self.older_than if isinstance(self.older_than, dt.timedelta) else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "keepLast": self.keep_last,
            "olderThan": format_duration(self.age) if self.age is not None else None,
            "include": self.include,
            "exclude": self.exclude,
            "untagged": self.untagged,
            "ageFrom": self.age_from,
        }


@dataclass
class PruneResult:
    """What :func:`prune` planned and, unless a dry run, did: the policy, each tag's age and where it came
    from, the deletion plan and outcome."""

    repository: str
    policy: RetentionPolicy
    plan: DeletionPlan
    created: dict[str, str | None] = field(default_factory=dict)
    """Creation time of each considered tag (ISO 8601), None when unknown."""
    outcome: DeletionOutcome | None = None
    dry_run: bool = True
    requests: int = 0
    age_from: str = "created"
    """Where the ages came from: ``created`` (annotation or config) or ``pushed`` (the provider)."""
    provider: str = "registry"
    untagged: list[str] = field(default_factory=list)
    """Untagged manifests deleted as roots (``policy.untagged``)."""
    sweep: BlobSweep | None = None
    """OCI layouts with ``policy.untagged``: the blobs nothing left references, deleted after the
    manifests (:mod:`splitbuild.ops._layout_untagged`)."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "repository": self.repository,
            "policy": self.policy.to_dict(),
            "dryRun": self.dry_run,
            "provider": self.provider,
            "ageFrom": self.age_from,
            "untaggedRoots": list(self.untagged),
            "blobs": _sweep_dict(self.sweep),
            "created": dict(sorted(self.created.items())),
            "plan": self.plan.to_dict(),
            "result": self.outcome.to_dict() if self.outcome is not None else None,
            "requests": self.requests,
        }


def _sweep_dict(sweep: BlobSweep | None) -> dict[str, Any]:
    """The blobs part of a prune result: the same keys whatever the repository."""
    if sweep is None:
        return {"delete": [], "bytes": 0, "skipped": None}
    return {
        "delete": [{"digest": d, "size": n} for d, n in sweep.blobs.items()],
        "bytes": sweep.bytes,
        "skipped": sweep.skipped,
    }


def _day(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M")


def decide(
    candidates: list[str],
    created: dict[str, dt.datetime | None],
    policy: RetentionPolicy,
    now: dt.datetime,
) -> tuple[dict[str, str], dict[str, str]]:
    """Split the candidate tags into (remove, keep), each tag with its reason."""
    remove: dict[str, str] = {}
    keep: dict[str, str] = {}
    dated = [t for t in candidates if created.get(t) is not None]
    for tag in candidates:
        if created.get(tag) is None:
            keep[tag] = "no creation time (neither annotation nor config 'created')"
    ranked = sorted(dated, key=lambda t: (created[t], t), reverse=True)
    for rank, tag in enumerate(ranked):
        when = created[tag]
        assert when is not None
        if policy.keep_last is not None and rank < policy.keep_last:
            keep[tag] = f"one of the {policy.keep_last} most recent (created {_day(when)})"
        elif policy.age is not None and now - when < policy.age:
            keep[tag] = f"created {_day(when)}, less than {format_duration(policy.age)} ago"
        else:
            why = [f"created {_day(when)}"]
            if policy.keep_last is not None:
                why.append(f"not among the {policy.keep_last} most recent")
            if policy.age is not None:
                why.append(f"older than {format_duration(policy.age)}")
            remove[tag] = ", ".join(why)
    return remove, keep


async def prune(
    client: Client,
    repository: RefLike,
    policy: RetentionPolicy,
    *,
    dry_run: bool = True,
    jobs: int = DEFAULT_JOBS,
    now: dt.datetime | None = None,
    max_delete: int | None = None,
    provider: str | Provider | None = None,
) -> PruneResult:
    """Apply ``policy`` to ``repository``; deletes only with ``dry_run=False``.

    Requests: the tag list, one ``GET`` per selected tag and one config read per distinct image
    (to date it), one ``HEAD`` per other tag, one ``GET`` per distinct index; then one ``DELETE``
    per manifest deleted (its tags go with it) and the tag-delete ladder per tag whose manifest
    stays; one tag listing at the end to check. With a provider: its listing (GHCR: one request
    per 100 versions), ages from push times without config reads, one ``GET`` per untagged
    candidate, and the deletions through its API. On an OCI layout (no requests) ``untagged``
    also reads every ``index.json`` entry and every small JSON-like blob file once.

    ``max_delete``: refuse (:class:`~splitbuild.errors.Refused`, nothing deleted) when the plan
    deletes more manifests and tags than this. ``provider``: see :func:`splitbuild.ops.delete`.
    """
    if max_delete is not None and max_delete < 0:
        raise UsageError(f"the deletion limit must be 0 or more (got {max_delete})")
    ref = as_reference(repository).repo()
    async with provided(client, ref, provider) as deleter:
        return await _prune(client, ref, policy, deleter, dry_run, jobs, now, max_delete)


async def _orphans(repo: Repository, graph: Graph, digests: list[str], jobs: int) -> dict[str, str]:
    """Put untagged manifests (and an index's children) into ``graph``; their subjects, if any."""
    subjects: dict[str, str] = {}

    async def read(digest: str) -> None:
        try:
            manifest = await repo.get_manifest(digest)
        except NotFound:
            return
        graph.nodes[digest] = Node(manifest.descriptor(), tuple(manifest.children()))
        for child in manifest.children():
            graph.nodes.setdefault(child.digest, Node(child))
        subject = manifest.parsed.subject
        if subject is not None:
            subjects[digest] = subject.digest

    await bounded([d for d in digests if d not in graph.nodes or graph.nodes[d].is_index], read, jobs)
    return subjects


def _cannot_list_untagged(ref: AnyReference, deleter: Provider | None) -> UsageError:
    if deleter is not None:
        return UsageError(
            f"{ref}: cannot prune untagged manifests: {deleter.untagged_help}",
            hint="prune the tags instead: the untagged manifests only they reach (index children, "
            "attestations, referrers) are deleted with them",
        )
    return UsageError(
        f"{ref}: cannot prune untagged manifests: the registry API lists tags, not untagged manifests",
        hint="prune the tags instead: what only they reach (index children, attestations, "
        "referrers) goes with them; on CNCF distribution 3 or later, its own 'registry "
        "garbage-collect --delete-untagged' removes them offline, but also untagged referrers "
        "(and on 2.x the images of every multi-arch index)",
    )


def _staying(graph: Graph, subjects: dict[str, str], alive: set[str]) -> set[str]:
    """The untagged referrers that stay: those whose subject stays (``alive``: what kept tags
    reach), to a fixed point, as a staying referrer (an SBOM) keeps its own referrers (a signature
    on it) and whatever it lists."""
    alive = set(alive)
    staying: set[str] = set()
    while True:
        found = {d for d, s in subjects.items() if d not in staying and s in alive}
        if not found:
            return staying
        staying |= found
        for digest in found:
            alive |= {d for d, _, _ in graph.walk(digest)}


async def _delete_blobs(layout: LayoutRepository, digests: list[str], jobs: int) -> list[str]:
    """Delete the blob files ``digests`` (those already gone are passed over); the ones deleted."""
    deleted: list[str] = []

    async def one(digest: str) -> None:
        try:
            await layout.delete_blob(digest)
        except NotFound:
            return
        deleted.append(digest)

    await bounded(digests, one, jobs)
    return sorted(deleted)


async def _prune(
    client: Client,
    ref: AnyReference,
    policy: RetentionPolicy,
    deleter: Provider | None,
    dry_run: bool,
    jobs: int,
    now: dt.datetime | None,
    max_delete: int | None,
) -> PruneResult:
    repo = client.repository(ref)
    now = now or dt.datetime.now(dt.UTC)
    start = client.requests
    api_start = deleter.requests if deleter is not None else 0
    records = deleter is not None and deleter.records_push_time
    age_from = policy.age_from or ("pushed" if records else "created")
    if age_from == "pushed" and not records:
        raise UsageError(f"{ref}: this registry records no push time; age the tags from created instead")
    from splitbuild.store.layout import LayoutRepository

    layout = repo if deleter is None and isinstance(repo, LayoutRepository) else None
    if policy.untagged and layout is None and (deleter is None or not deleter.lists_untagged):
        raise _cannot_list_untagged(ref, deleter)
    tags = await repo.list_tags()
    selected = tag_filter(policy.include, policy.exclude)
    followers = {t for t in tags if referrers_subject(t) is not None}
    candidates = [t for t in tags if t not in followers and selected(t)]
    last = policy.keep_last
    ruleless = last is None and policy.older_than is None
    undated = ruleless or (
        policy.older_than is None and last is not None and (last == 0 or len(candidates) <= last)
    )
    by_config = not undated and age_from == "created"
    graph = await scan(repo, tags=tags, dated=candidates if by_config else (), jobs=jobs)
    candidates = [t for t in candidates if t in graph.tags]
    if by_config or undated:
        created = {t: graph.created.get(graph.tags[t]) for t in candidates}
    else:
        assert deleter is not None
        pushed = await deleter.pushed()
        created = {t: pushed.get(t) for t in candidates}
    remove: dict[str, str]
    if ruleless:
        remove, keep = {}, dict.fromkeys(candidates, "no retention rule (untagged manifests only)")
    elif not undated:
        remove, keep = decide(candidates, created, policy, now)
        if age_from == "pushed":  # decide() words every age as a creation time
            remove = {t: r.replace("created ", "pushed ", 1) for t, r in remove.items()}
            keep = {
                t: r.replace("created ", "pushed ", 1).replace(
                    "no creation time (neither annotation nor config 'created')", "no push time recorded"
                )
                for t, r in keep.items()
            }
    elif last == 0:
        remove, keep = dict.fromkeys(candidates, "selected, and --keep-last is 0"), {}
    else:
        remove, keep = {}, dict.fromkeys(candidates, f"one of the {last} most recent (no more selected)")
    for tag in graph.tags:
        if tag not in candidates and tag not in followers:
            keep[tag] = "not selected by --include/--exclude"
    plan = plan_deletion(graph, remove, keep)
    result = PruneResult(
        repository=str(ref),
        policy=policy,
        plan=plan,
        created={t: (c.isoformat() if c is not None else None) for t, c in created.items() if not undated},
        dry_run=dry_run,
        age_from=age_from,
        provider=deleter.name if deleter is not None else ("layout" if layout is not None else "registry"),
    )
    storage: LayoutStorage | None = None
    if policy.untagged:
        reached = {d for root in graph.tags.values() for d, _, _ in graph.walk(root)}
        if layout is not None:
            from splitbuild.ops._layout_untagged import read_storage

            storage = await read_storage(layout, jobs)
            listed = storage.untagged(graph.tags.values())
        else:
            assert deleter is not None
            listed = await deleter.untagged()
        loose = [d for d in listed if d not in reached]
        subjects = await _orphans(repo, graph, loose, jobs)
        staying = _staying(graph, subjects, reached - {d.digest for d in plan.manifests})
        result.untagged = add_untagged(graph, plan, [d for d in loose if d not in staying], staying)
        if storage is not None:
            doomed = {d.digest for d in plan.manifests}
            result.sweep = storage.sweep(doomed, [d for d in loose if d not in doomed])
    planned = len(plan.manifests) + len(plan.untag)
    if max_delete is not None and planned > max_delete:
        raise Refused(
            f"{ref}: the plan deletes {planned} manifests and tags, more than the limit of "
            f"{max_delete}: nothing deleted",
            hint="check the policy with a dry run, or raise the limit",
        )
    if not dry_run and not plan.empty:
        target = deleter.wrap(repo) if deleter is not None else repo
        result.outcome = await execute_deletion(target, plan, jobs=jobs)
    if not dry_run and layout is not None and result.sweep is not None and result.sweep.blobs:
        result.outcome = result.outcome or DeletionOutcome()
        result.outcome.blobs = await _delete_blobs(layout, list(result.sweep.blobs), jobs)
    api = deleter.requests - api_start if deleter is not None else 0
    result.requests = client.requests - start + api
    return result
