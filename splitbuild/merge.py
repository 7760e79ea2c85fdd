"""Merge: assemble the multi-arch index from per-platform sources and publish it under every tag.

``plan_merge`` reads (sources, their platforms, what each target tag points at now) and checks
everything; ``execute`` writes, in the only safe order: children by digest into every target
repository, then the index by digest into each of them when there are several, then the tags (with
one repository the index goes in with the first tag written: a manifest ``PUT`` is atomic, so no tag
ever points at an incomplete index). A failure before the tags, or one that every tag's write meets
(push refused, index rejected), leaves every tag untouched; a failure among the tags is reported
tag by tag, and a re-run completes the rest (a tag already pointing at the index is not pushed
again).

Tags are written so that two merges onto the same tags cannot both succeed with the tags split
between their indexes, nor shrink a tag the other published after this one planned:

1. every tag is re-checked just before the writes: one no longer where the plan saw it (and not
   already on this index) was moved by another writer, and nothing is written. :func:`merge`
   reads the tags in the plan's last round trip; when nothing is copied before the writes those
   reads are the re-check, and the tags are not read again;
2. the writes are conditional on that (``If-None-Match: *`` / ``If-Match``; layouts check under
   their lock): a registry that honours it refuses a write racing another;
3. every tag is read back after the last write: one on another index is :class:`TagsConflict`
   (exit 8), naming the tags.

Each step runs on every tag at once (one round trip each whatever the number of tags). Whichever
merge writes last reads every tag after every write, so it sees a split. A registry that ignores
conditional requests (distribution 2.x) leaves one window per tag, between the re-check and the
write landing (one round trip): a write of another merge landing inside it is overwritten, unseen
by either.

A cancellation (Ctrl-C, SIGTERM or SIGHUP from a cancelled CI job) once the tags are being
written lets them finish, so it cannot leave them split either; it takes effect after.

Publishing never goes backwards: the order of indexes is their ``org.opencontainers.image.created``
annotation. A tag whose current index (or image) is annotated newer than the new index stays where
it is (``kept``, not an error) unless ``allow_rollback``; the other tags move. Without the annotation
on either side the tag moves. Generated workflows and ``splitbuild build`` set it to the commit's
date, so a late run of an older commit cannot roll ``latest`` back.

Attestation manifests in the source indexes are kept with the images they attest. Referrers of
the children (signatures, SBOMs, attestations pushed with a ``subject``) travel with every child
copied into another repository, after the child and before the index. A child already in the
target repository has its referrers there, so the usual split build (legs push by digest into the
target repository) looks nothing up: referrers cost requests only where something is copied, one
lookup per child whatever the number of targets, plus one per source registry (its first lookup
asks the referrers API and reads the referrers tag at once), run beside the copies.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeVar

import anyio

from splitbuild._tasks import task_group
from splitbuild.client import Client
from splitbuild.digest import parse_digest
from splitbuild.errors import InvalidInput, NotFound, Refused, RegistryError, SplitbuildError, UsageError
from splitbuild.index import Annotations, Entry, assemble, parse_annotation, platform_set, select
from splitbuild.models import MAX_MANIFEST_SIZE, ConfigFile, Descriptor, Manifest, Platform
from splitbuild.optional_platforms import PlatformSets, check_coverage
from splitbuild.reference import AnyReference, parse_reference
from splitbuild.referrers import ReferrerFinder
from splitbuild.store.base import Precondition, Repository, TagChanged
from splitbuild.timestamps import parse_rfc3339
from splitbuild.transfer import Transfer

__all__ = [
    "CREATED",
    "KEPT_NEWER",
    "CleanupFailure",
    "CleanupReport",
    "MergeOptions",
    "MergePlan",
    "MergeResult",
    "TagConflict",
    "TagFailure",
    "TagsConflict",
    "TagsFailed",
    "TargetState",
    "execute",
    "merge",
    "merge_options",
    "parse_sources",
    "parse_targets",
    "plan_merge",
    "read_digests_dir",
]


_T = TypeVar("_T")

CREATED = "org.opencontainers.image.created"
"""The annotation that orders published indexes (RFC 3339)."""
KEPT_NEWER = "newer index already published"
"""Why a tag stayed: its current index is annotated newer than this merge's."""


@dataclass(frozen=True)
class Source:
    text: str
    ref: AnyReference


@dataclass
class MergeOptions:
    """What :func:`merge` publishes: the target tags, the per-platform sources, the exact platform set,
    annotations, and whether a tag may lose platforms or referrers are copied."""

    targets: list[AnyReference]
    sources: list[Source]
    platforms: list[str] | None = None
    annotations: Annotations = field(default_factory=Annotations)
    allow_shrink: bool = False
    referrers: bool = True
    """Copy the referrers of children copied into another repository."""
    allow_rollback: bool = False
    """Move a tag even when its current index is annotated newer than this one."""
    optional_platforms: list[str] = field(default_factory=list)
    """Platforms the index may lack (a failed optional leg): left out and reported, never
    required; a tag may lose them without ``allow_shrink`` (:mod:`splitbuild.optional_platforms`)."""

    def __post_init__(self) -> None:
        if self.platforms is not None:
            self.platforms = [Platform.parse(p).key for p in self.platforms]
        self.optional_platforms = [Platform.parse(p).key for p in self.optional_platforms]


@dataclass(frozen=True)
class TargetState:
    ref: AnyReference
    current: Descriptor | None
    """What the tag points at before the merge (None: the tag does not exist)."""
    current_created: str | None = None
    """The current index's ``created`` annotation, when it was read."""
    newer: bool = False
    """The current index is newer than the new one: the tag stays (see the module docstring)."""


@dataclass(frozen=True)
class MergePlan:
    index: Manifest
    children: list[Entry]
    sources: list[Source]
    targets: list[TargetState]
    referrers: bool = True
    left_out: tuple[str, ...] = ()
    """Optional platforms the index lacks (their sources were not given)."""
    repositories: dict[str, Repository] = field(default_factory=dict, compare=False, repr=False)
    """The target repositories the tags were read through (by name): :func:`execute` writes through
    them, so conditional writes use the ETags those reads saw."""

    @property
    def created(self) -> str | None:
        """The new index's ``created`` annotation (what orders it), if any."""
        return (self.index.parsed.annotations or {}).get(CREATED)

    @property
    def tags_to_push(self) -> list[TargetState]:
        return [
            t
            for t in self.targets
            if not t.newer and (t.current is None or t.current.digest != self.index.digest)
        ]

    @property
    def tags_kept(self) -> list[TargetState]:
        """Tags left on a newer index."""
        return [t for t in self.targets if t.newer]

    @property
    def writes_anything(self) -> bool:
        """False when no tag moves because every other tag stays on a newer index: then nothing
        (not even the index by digest) is written."""
        return bool(self.tags_to_push) or not self.tags_kept

    @property
    def tags_unchanged(self) -> list[TargetState]:
        return [t for t in self.targets if t.current is not None and t.current.digest == self.index.digest]

    def planned_writes(self) -> list[str]:
        writes: list[str] = []
        if not self.writes_anything:
            return writes
        repos = _unique_repos(self.targets)
        for name, target in repos.items():
            foreign = sorted(
                {self.sources[c.source].ref.repo().name for c in self.children} - {target.ref.repo().name}
            )
            what = "children and their referrers" if self.referrers else "children"
            for src in foreign:
                writes.append(f"copy {what} from {src} to {name} (missing ones only)")
        if len(repos) > 1:
            writes.extend(f"PUT {name}@{self.index.digest}" for name in repos)
        writes.extend(f"PUT {t.ref}" for t in self.tags_to_push)
        return writes


@dataclass(frozen=True)
class TagFailure:
    ref: str
    error: str


@dataclass(frozen=True)
class TagConflict:
    ref: str
    found: str | None
    """What another writer left the tag pointing at (None: absent)."""


@dataclass(frozen=True)
class CleanupFailure:
    repository: str
    error: str


class CleanupReport(Protocol):
    """What the clean-up of displaced indexes did in one repository (see :mod:`splitbuild.publish`)."""

    @property
    def repository(self) -> str: ...

    def to_dict(self) -> dict[str, Any]: ...


@dataclass
class MergeResult:
    """What :func:`merge` did: the plan (index, platforms, attestations), the tags pushed and the requests
    made; ``to_dict()`` is the ``--json`` document."""

    plan: MergePlan
    pushed: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    failed: list[TagFailure] = field(default_factory=list)
    conflicts: list[TagConflict] = field(default_factory=list)
    """Tags another writer moved while this merge ran (found on another index)."""
    not_written: list[str] = field(default_factory=list)
    """Tags left alone after a conflict stopped the writes."""
    referrers: list[str] = field(default_factory=list)
    """Referrers copied into a target repository (digests, each once)."""
    requests: int = 0
    dry_run: bool = False
    cleanup: list[CleanupReport] = field(default_factory=list)
    """With ``delete_displaced`` (:func:`splitbuild.publish.publish`): what was deleted, per repository."""
    cleanup_failed: list[CleanupFailure] = field(default_factory=list)
    """Clean-ups that failed (the tags stay moved)."""

    @property
    def displaced(self) -> dict[str, list[str]]:
        """Per target repository, the manifests the pushed tags pointed at before (now maybe unused)."""
        pushed = set(self.pushed)
        found: dict[str, list[str]] = {}
        for target in self.plan.targets:
            if str(target.ref) in pushed and target.current is not None:
                digests = found.setdefault(target.ref.repo().name, [])
                if target.current.digest not in digests and target.current.digest != self.plan.index.digest:
                    digests.append(target.current.digest)
        return {repo: sorted(digests) for repo, digests in found.items() if digests}

    def to_dict(self) -> dict[str, object]:
        index = self.plan.index
        platforms = []
        attestations = []
        for child in self.plan.children:
            if child.descriptor.is_attestation:
                attestations.append({"digest": child.digest, "attests": child.descriptor.attests})
            else:
                platforms.append({"platform": str(child.descriptor.platform), "digest": child.digest})
        return {
            "digest": index.digest,
            "mediaType": index.media_type,
            "size": index.size,
            "platforms": platforms,
            "attestations": attestations,
            "tags": self.pushed,
            "unchanged": self.unchanged,
            "failed": [{"tag": f.ref, "error": f.error} for f in self.failed],
            "conflicts": [{"tag": c.ref, "found": c.found} for c in self.conflicts],
            "notWritten": self.not_written,
            "kept": [
                {"tag": str(t.ref), "digest": _digest(t), "created": t.current_created, "reason": KEPT_NEWER}
                for t in self.plan.tags_kept
            ],
            "created": self.plan.created,
            "leftOut": list(self.plan.left_out),
            "displaced": self.displaced,
            "cleanup": [c.to_dict() for c in self.cleanup],
            "cleanupFailed": [{"repository": f.repository, "error": f.error} for f in self.cleanup_failed],
            "referrers": self.referrers,
            "requests": self.requests,
            "dryRun": self.dry_run,
        }


# -- parsing the command line --------------------------------------------------------------------


def parse_targets(texts: Sequence[str]) -> list[AnyReference]:
    targets: list[AnyReference] = []
    for text in texts:
        ref = parse_reference(text)
        if ref.tag is None or ref.digest is not None:
            raise UsageError(
                f"target {text!r} must name a tag (e.g. ghcr.io/acme/app:1.2.3), without a digest"
            )
        if str(ref) not in {str(t) for t in targets}:
            targets.append(ref)
    if not targets:
        raise UsageError("no target: give a tag in `targets` (or an `image` with tag rules)")
    return targets


def parse_sources(texts: Sequence[str], first_target: AnyReference) -> list[Source]:
    """Parse sources: ``repo@sha256:…``, ``repo:tag``, ``oci:PATH@sha256:…``, or a bare digest.

    A bare digest names a manifest in the first target's repository.
    """
    sources = []
    for text in texts:
        text = text.strip()
        if text.startswith(("sha256:", "sha512:")):
            parse_digest(text)
            ref: AnyReference = first_target.repo().with_digest(text)
        else:
            ref = parse_reference(text)
            if ref.identifier is None:
                raise UsageError(f"source {text!r} needs a tag or a digest")
        sources.append(Source(text=text, ref=ref))
    return sources


def merge_options(
    targets: Sequence[str | AnyReference],
    sources: Sequence[str | AnyReference] = (),
    *,
    digests_dir: str | Path | None = None,
    platforms: Sequence[str] | None = None,
    optional_platforms: Sequence[str] = (),
    annotations: Annotations | Sequence[str] = (),
    default_annotations: Mapping[str, str] | None = None,
    allow_shrink: bool = False,
    allow_rollback: bool = False,
    referrers: bool = True,
) -> MergeOptions:
    """:class:`MergeOptions` from what a user writes (the command line's and the facade's words):
    targets as ``REPO:TAG`` text or parsed; sources as text (a bare digest names a manifest in the
    first target's repository) plus the digests in ``digests_dir``; annotations as
    ``[LEVEL:]KEY=VALUE`` texts or parsed. ``default_annotations`` are index annotations an
    explicit one of the same key overrides (the labels tag rules turn into annotations)."""
    target_refs = parse_targets([str(target) for target in targets])
    texts = [str(source) for source in sources]
    if digests_dir is not None:
        texts.extend(read_digests_dir(digests_dir))
    if isinstance(annotations, Annotations):
        parsed = annotations
    else:
        parsed = Annotations()
        for text in annotations:
            parse_annotation(text, parsed)
    for key, value in (default_annotations or {}).items():
        parsed.index.setdefault(key, value)
    return MergeOptions(
        targets=target_refs,
        sources=parse_sources(texts, target_refs[0]),
        platforms=list(platforms) if platforms is not None else None,
        optional_platforms=list(optional_platforms),
        annotations=parsed,
        allow_shrink=allow_shrink,
        allow_rollback=allow_rollback,
        referrers=referrers,
    )


def read_digests_dir(digests_dir: str | Path) -> list[str]:
    """Digests from a directory: empty files named by the hex digest, or files holding ``sha256:…``."""
    directory = Path(digests_dir)
    if not directory.is_dir():
        raise InvalidInput(f"`digests_dir` {directory}: not a directory")
    digests = []
    for entry in sorted(directory.iterdir()):
        if entry.name.startswith(".") or not entry.is_file():
            continue
        content = entry.read_text(errors="replace").strip()
        if content:
            text = content
        elif entry.name.startswith("sha256:"):
            text = entry.name
        else:
            text = f"sha256:{entry.name}"
        try:
            parse_digest(text)
        except InvalidInput:
            raise InvalidInput(
                f"`digests_dir` {directory}: file {entry.name!r} is neither named by a sha256 hex digest "
                "nor holds a sha256:<hex> digest"
            ) from None
        digests.append(text)
    if not digests:
        raise InvalidInput(f"`digests_dir` {directory}: no digest files")
    return digests


# -- planning ------------------------------------------------------------------------------------


def _unique_repos(targets: Sequence[TargetState]) -> dict[str, TargetState]:
    repos: dict[str, TargetState] = {}
    for t in targets:
        repos.setdefault(t.ref.repo().name, t)
    return repos


async def _platform_of(repo: Repository, manifest: Manifest, origin: str) -> Platform:
    config_desc = manifest.image().config
    if config_desc.size > MAX_MANIFEST_SIZE:
        raise InvalidInput(
            f"{origin}: config blob {config_desc.digest} of {config_desc.size} bytes is not an image config"
        )
    raw = await repo.read_blob(config_desc)
    try:
        config = ConfigFile.model_validate_json(raw)
    except ValueError:
        raise InvalidInput(f"{origin}: config blob {config_desc.digest} is not an image config") from None
    platform = config.platform()
    if platform is None:
        raise InvalidInput(f"{origin}: image config has no os/architecture; not a platform image")
    return platform


async def _top_manifest(client: Client, source: Source) -> Manifest:
    repo = client.repository(source.ref)
    identifier = source.ref.identifier
    assert identifier is not None
    try:
        return await repo.get_manifest(identifier)
    except NotFound:
        raise NotFound(f"source {source.text}: manifest not found in {repo.name}") from None


async def _resolve_source(client: Client, index: int, source: Source, manifest: Manifest) -> list[Entry]:
    """The entries of ``source``, whose manifest is read: what its platforms still need is read."""
    repo = client.repository(source.ref)
    if not manifest.is_index:
        platform = await _platform_of(repo, manifest, source.text)
        return [Entry(manifest.descriptor(platform=platform), source.text, index, manifest)]
    entries = []
    for child in manifest.children():
        if child.platform is None and not child.is_attestation:
            child_manifest = await repo.get_manifest(child.digest)
            if child_manifest.is_index:
                raise InvalidInput(f"{source.text}: nested index {child.digest} is not supported")
            platform = await _platform_of(repo, child_manifest, source.text)
            child = child.model_copy(update={"platform": platform})
            entries.append(Entry(child, source.text, index, child_manifest))
        else:
            entries.append(Entry(child, source.text, index))
    return entries


async def _target_state(
    repo: Repository, ref: AnyReference, *, read: bool
) -> tuple[TargetState, Manifest | None]:
    """What the tag ``ref`` points at now; with ``read`` the manifest too, in one ``GET`` instead
    of a ``HEAD`` (the ordering and the shrink check need it)."""
    assert ref.tag is not None
    if read:
        try:
            manifest = await repo.get_manifest(ref.tag)
        except NotFound:
            return TargetState(ref=ref, current=None), None
        return TargetState(ref=ref, current=manifest.descriptor()), manifest
    try:
        current = await repo.head_manifest(ref.tag)
    except NotFound:
        current = None
    return TargetState(ref=ref, current=current), None


def _digest(target: TargetState) -> str | None:
    return target.current.digest if target.current is not None else None


def _ordered(target: TargetState, current: Manifest, created: str | None) -> TargetState:
    """``target`` marked ``newer`` when its current manifest is annotated newer than ``created``."""
    text = (current.parsed.annotations or {}).get(CREATED)
    new, old = parse_rfc3339(created), parse_rfc3339(text)
    newer = new is not None and old is not None and old > new
    return TargetState(ref=target.ref, current=target.current, current_created=text, newer=newer)


async def _check_shrink(client: Client, target: TargetState, old_manifest: Manifest, new: set[str]) -> None:
    repo = client.repository(target.ref)
    if old_manifest.is_index:
        old = platform_set(old_manifest)
    else:
        old = {(await _platform_of(repo, old_manifest, str(target.ref))).key}
    lost = sorted(old - new)
    if lost:
        raise Refused(
            f"{target.ref} points at an index with {len(old)} platforms; the new one lacks {', '.join(lost)}",
            hint="pass `allow_shrink` to publish fewer platforms under this tag",
        )


async def plan_merge(client: Client, options: MergeOptions) -> MergePlan:
    """Read and check everything; write nothing.

    Two rounds of reads: the sources' manifests, then what their platforms still need (configs,
    children of indexes without platforms) beside every target tag, read with the manifest it
    points at when the ordering or the shrink check needs it. So the tags are read in the last
    round trip before the writes (see :func:`execute`'s ``tags_just_read``).
    """
    if not options.sources:
        raise UsageError("no sources: give `sources`")
    sets = PlatformSets.of(options.platforms, options.optional_platforms)
    created = options.annotations.index.get(CREATED)
    ordering = not options.allow_rollback and parse_rfc3339(created) is not None
    read_current = ordering or not options.allow_shrink
    tops: list[Manifest | None] = [None] * len(options.sources)
    resolved: list[list[Entry]] = [[] for _ in options.sources]
    states: list[tuple[TargetState, Manifest | None] | None] = [None] * len(options.targets)
    repositories: dict[str, Repository] = {}
    for ref in options.targets:
        repositories.setdefault(ref.repo().name, client.repository(ref))

    async def top(i: int) -> None:
        tops[i] = await _top_manifest(client, options.sources[i])

    async def resolve(i: int) -> None:
        manifest = tops[i]
        assert manifest is not None
        resolved[i] = await _resolve_source(client, i, options.sources[i], manifest)

    async def state(i: int) -> None:
        ref = options.targets[i]
        states[i] = await _target_state(repositories[ref.repo().name], ref, read=read_current)

    async with task_group() as tg:
        for i in range(len(options.sources)):
            tg.start_soon(top, i)
    async with task_group() as tg:
        for i in range(len(options.sources)):
            tg.start_soon(resolve, i)
        for i in range(len(options.targets)):
            tg.start_soon(state, i)
    children = select([e for group in resolved for e in group])
    left_out = check_coverage(children, sets)
    index = assemble(children, options.annotations)
    found = [s for s in states if s is not None]
    current = {str(t.ref): m for t, m in found if m is not None}
    targets = [t for t, _ in found]
    moving = [t for t in targets if t.current is not None and t.current.digest != index.digest]
    if ordering:
        ordered = {str(t.ref): _ordered(t, current[str(t.ref)], created) for t in moving}
        targets = [ordered.get(str(t.ref), t) for t in targets]
    if moving and not options.allow_shrink:
        new = platform_set(index) | set(sets.optional)  # losing an optional platform is allowed
        async with task_group() as tg:
            for target in targets:
                moves = target.current is not None and target.current.digest != index.digest
                if moves and not target.newer:
                    tg.start_soon(_check_shrink, client, target, current[str(target.ref)], new)
    return MergePlan(
        index=index,
        children=children,
        sources=list(options.sources),
        targets=targets,
        referrers=options.referrers,
        left_out=tuple(left_out),
        repositories=repositories,
    )


# -- execution -----------------------------------------------------------------------------------


async def execute(client: Client, plan: MergePlan, *, tags_just_read: bool = False) -> MergeResult:
    """The children, then the index by digest where there are several target repositories, then
    the tags (only if everything before succeeded). With one repository the index goes in with the
    first tag written, each tag's ``PUT`` atomic, so no tag ever points at an incomplete index.

    ``tags_just_read``: the plan's tag reads came just before this call (:func:`merge` runs the
    two back to back; :func:`plan_merge` reads the tags in its second round of reads, a third
    only for the odd platform or shrink check). When nothing had to be copied either, they are
    the re-check (step 1 of the module docstring) and the tags are not read again.
    """
    start = client.requests
    result = MergeResult(plan=plan)
    if not plan.writes_anything:
        result.unchanged = [str(t.ref) for t in plan.tags_unchanged]
        return result
    repos = {
        name: plan.repositories.get(name) or client.repository(t.ref)
        for name, t in _unique_repos(plan.targets).items()
    }
    finders: dict[str, ReferrerFinder] = {}
    transfers: list[Transfer] = []

    def finder_for(source: Repository) -> ReferrerFinder | None:
        if not plan.referrers:
            return None
        return finders.setdefault(source.name, ReferrerFinder(source))

    async def copy_children(target: Repository) -> None:
        by_source: dict[int, list[Entry]] = {}
        for child in plan.children:
            by_source.setdefault(child.source, []).append(child)
        async with task_group() as tg:
            for source_index, entries in by_source.items():
                source_repo = client.repository(plan.sources[source_index].ref)
                same = source_repo.location == target.location and source_repo.name == target.name
                # the blob location cache only where blobs may move (it is a file to open)
                locations = None if same else client.blob_locations
                transfer = Transfer(source_repo, target, locations=locations)
                transfers.append(transfer)
                finder = finder_for(source_repo)
                for entry in entries:
                    tg.start_soon(_copy_entry, transfer, entry, finder)

    async with task_group() as tg:
        for target in repos.values():
            tg.start_soon(copy_children, target)
    result.referrers = list(dict.fromkeys(d for t in transfers for d in t.stats.referrers))
    if len(repos) > 1:
        # One repository refusing the index (push access, validation) stops the merge before a tag
        # moves in another: the index goes in by digest everywhere first. With one repository its
        # first tag PUT carries it, and a refusal there fails every tag alike (see _write_tags).
        async with task_group() as tg:
            for target in repos.values():
                tg.start_soon(target.put_manifest, plan.index)
    recheck = not tags_just_read or not all(t.same_repository for t in transfers)
    result.unchanged = [str(t.ref) for t in plan.tags_unchanged]
    # A cancellation (Ctrl-C, a cancelled CI job) while the tags are written lets them finish (a
    # few requests per tag, each with its timeouts) so that it never leaves them split; it takes
    # effect after.
    with anyio.CancelScope(shield=True):
        await _write_tags(repos, plan, result, recheck=recheck)
    order = {str(t.ref): i for i, t in enumerate(plan.targets)}
    result.pushed.sort(key=order.__getitem__)
    result.unchanged.sort(key=order.__getitem__)
    result.failed.sort(key=lambda f: order[f.ref])
    result.conflicts.sort(key=lambda c: order[c.ref])
    result.not_written.sort(key=order.__getitem__)
    result.requests = client.requests - start
    return result


async def _write_tags(
    repos: Mapping[str, Repository], plan: MergePlan, result: MergeResult, *, recheck: bool
) -> None:
    """Steps 1-3 of the module docstring (step 1 only with ``recheck``: otherwise the plan's reads
    are taken as it); fills ``result`` (pushed, unchanged, failed, conflicts)."""
    digest = plan.index.digest
    planned = {str(t.ref): t.current.digest if t.current is not None else None for t in plan.targets}

    def repo_of(target: TargetState) -> Repository:
        return repos[target.ref.repo().name]

    async def pointed(target: TargetState) -> str | None:
        assert target.ref.tag is not None
        found = await repo_of(target).head_manifest(target.ref.tag)
        return found.digest if found is not None else None

    async def put(target: TargetState) -> None:
        tag, was = target.ref.tag, planned[str(target.ref)]
        assert tag is not None
        try:
            await repo_of(target).put_manifest(plan.index, tag, precondition=Precondition(was))
        except TagChanged:
            # Another writer's, or an earlier attempt of this very PUT (its answer lost): read
            # back. A tag still where it was means the registry's condition is not to be trusted
            # (an ETag of another representation): written as without one.
            if await pointed(target) == was:
                await repo_of(target).put_manifest(plan.index, tag)

    errors: dict[str, SplitbuildError] = {}

    async def each(
        targets: Sequence[TargetState], fn: Callable[[TargetState], Awaitable[_T]], what: str = ""
    ) -> dict[str, _T]:
        """``fn`` on every target at once; a failure is recorded for its tag, the others go on."""
        done: dict[str, _T] = {}

        async def one(target: TargetState) -> None:
            try:
                done[str(target.ref)] = await fn(target)
            except SplitbuildError as exc:
                errors.setdefault(str(target.ref), exc)
                result.failed.append(TagFailure(str(target.ref), f"{what}{exc.message}"))

        async with task_group() as tg:
            for target in targets:
                tg.start_soon(one, target)
        return done

    # 1. Re-check: a tag moved since planning stops everything before any write.
    if recheck:
        now = await each(plan.tags_to_push, pointed)
    else:
        now = {str(t.ref): planned[str(t.ref)] for t in plan.tags_to_push}
    result.unchanged += [ref for ref, found in now.items() if found == digest]
    moved = [TagConflict(ref, found) for ref, found in now.items() if found not in (digest, planned[ref])]
    if moved:
        result.conflicts = moved
        result.not_written = [ref for ref, found in now.items() if found == planned[ref]]
        return
    # 2. Write, conditionally.
    todo = [t for t in plan.tags_to_push if str(t.ref) in now and now[str(t.ref)] != digest]
    if not todo:
        return
    written = await each(todo, put)
    if not written and len(repos) == 1:
        # No tag took the index (push refused, the index rejected): with one repository nothing
        # was written (the index goes in with the first tag), so this is the failure itself (its
        # own exit code), as if before the tags. With several, the index is in every repository by
        # digest already: the tags fail one by one, as reported.
        raise errors[str(todo[0].ref)]
    # 3. Read every tag left on this index back, after the last write.
    kept = {*written, *result.unchanged}
    back = await each([t for t in plan.targets if str(t.ref) in kept], pointed, "not read back: ")
    for ref, found in back.items():
        if found != digest:
            result.conflicts.append(TagConflict(ref, found))
        elif ref in written:
            result.pushed.append(ref)


async def _copy_entry(transfer: Transfer, entry: Entry, finder: ReferrerFinder | None) -> None:
    if finder is None or transfer.same_repository:
        await transfer.manifest(entry.descriptor, entry.manifest)
        return
    async with task_group() as tg:  # the referrers are looked up while the child is copied
        tg.start_soon(transfer.manifest, entry.descriptor, entry.manifest)
        tg.start_soon(finder.levels, entry.digest)
    await transfer.referrers(finder, entry.digest)


async def merge(client: Client, options: MergeOptions, *, dry_run: bool = False) -> MergeResult:
    start = client.requests
    if not dry_run:
        client.will_write(options.targets)
    plan = await plan_merge(client, options)
    if dry_run:
        result = MergeResult(plan=plan, dry_run=True, requests=client.requests - start)
        result.unchanged = [str(t.ref) for t in plan.tags_unchanged]
        return result
    result = await execute(client, plan, tags_just_read=True)
    result.requests = client.requests - start
    if result.conflicts:
        raise TagsConflict(result)
    if result.failed:
        done = ", ".join(result.pushed) or "none"
        failed = "; ".join(f"{f.ref}: {f.error}" for f in result.failed)
        raise TagsFailed(
            f"index {plan.index.digest} pushed, but tags failed: {failed} (updated: {done})", result
        )
    return result


class TagsFailed(RegistryError):
    """Some tags were not updated; the others were. Re-running the merge completes the rest."""

    def __init__(self, message: str, result: MergeResult) -> None:
        super().__init__(message, hint="re-run the same merge: tags already updated are skipped")
        self.result = result


def _short(digest: str | None) -> str:
    return "no manifest" if digest is None else digest[: digest.find(":") + 13]


class TagsConflict(Refused):
    """Another writer moved tags of this merge while it ran (exit 8): see the module docstring."""

    def __init__(self, result: MergeResult) -> None:
        moved = {c.ref for c in result.conflicts}
        moved_text = ", ".join(f"{c.ref} (now {_short(c.found)})" for c in result.conflicts)
        on = [r for r in [*result.pushed, *result.unchanged] if r not in moved] or ["no tag"]
        message = (
            f"another writer moved tags while this merge ran: {moved_text}; "
            f"index {result.plan.index.digest} is on {', '.join(on)}"
        )
        if result.not_written:
            message += f"; not written: {', '.join(result.not_written)}"
        if result.failed:
            message += "; failed: " + "; ".join(f"{f.ref}: {f.error}" for f in result.failed)
        super().__init__(
            message,
            hint="two merges published these tags at once: re-run this merge to publish its index "
            "over the other's (its checks run again), or keep the other's",
        )
        self.result = result
