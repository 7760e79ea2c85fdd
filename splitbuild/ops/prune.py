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
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from splitbuild.errors import InvalidInput, UsageError, shorten
from splitbuild.ops._common import DEFAULT_JOBS, RefLike, as_reference
from splitbuild.ops.deletion import DeletionOutcome, DeletionPlan, execute_deletion, plan_deletion
from splitbuild.ops.graph import referrers_subject, scan
from splitbuild.ops.tags import tag_filter

if TYPE_CHECKING:
    from splitbuild.client import Client

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
    keep_last: int | None = None
    older_than: dt.timedelta | None = None
    include: str | None = None
    exclude: str | None = None

    def __post_init__(self) -> None:
        if self.keep_last is None and self.older_than is None:
            raise UsageError("a retention policy needs --keep-last N and/or --older-than AGE")
        if self.keep_last is not None and self.keep_last < 0:
            raise UsageError(f"--keep-last must be 0 or more (got {self.keep_last})")
        tag_filter(self.include, self.exclude)  # validates the patterns

    def to_dict(self) -> dict[str, Any]:
        return {
            "keepLast": self.keep_last,
            "olderThan": format_duration(self.older_than) if self.older_than is not None else None,
            "include": self.include,
            "exclude": self.exclude,
        }


@dataclass
class PruneResult:
    repository: str
    policy: RetentionPolicy
    plan: DeletionPlan
    created: dict[str, str | None] = field(default_factory=dict)
    """Creation time of each considered tag (ISO 8601), None when unknown."""
    outcome: DeletionOutcome | None = None
    dry_run: bool = True
    requests: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "repository": self.repository,
            "policy": self.policy.to_dict(),
            "dryRun": self.dry_run,
            "created": dict(self.created),
            **self.plan.to_dict(),
            "result": self.outcome.to_dict() if self.outcome is not None else None,
            "requests": self.requests,
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
        elif policy.older_than is not None and now - when < policy.older_than:
            keep[tag] = f"created {_day(when)}, less than {format_duration(policy.older_than)} ago"
        else:
            why = [f"created {_day(when)}"]
            if policy.keep_last is not None:
                why.append(f"not among the {policy.keep_last} most recent")
            if policy.older_than is not None:
                why.append(f"older than {format_duration(policy.older_than)}")
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
) -> PruneResult:
    """Apply ``policy`` to ``repository``; deletes only with ``dry_run=False``.

    Requests: the tag list, one ``GET`` per selected tag and one config read per distinct image
    (to date it), one ``HEAD`` per other tag, one ``GET`` per distinct index; then one ``DELETE``
    per manifest deleted (its tags go with it) and the tag-delete ladder per tag whose manifest
    stays; one tag listing at the end to check.
    """
    ref = as_reference(repository).repo()
    repo = client.repository(ref)
    now = now or dt.datetime.now(dt.UTC)
    start = client.requests
    tags = await repo.list_tags()
    selected = tag_filter(policy.include, policy.exclude)
    followers = {t for t in tags if referrers_subject(t) is not None}
    candidates = [t for t in tags if t not in followers and selected(t)]
    last = policy.keep_last
    undated = policy.older_than is None and last is not None and (last == 0 or len(candidates) <= last)
    graph = await scan(repo, tags=tags, dated=() if undated else candidates, jobs=jobs)
    candidates = [t for t in candidates if t in graph.tags]
    created = {t: graph.created.get(graph.tags[t]) for t in candidates}
    if not undated:
        remove, keep = decide(candidates, created, policy, now)
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
    )
    if not dry_run and not plan.empty:
        result.outcome = await execute_deletion(repo, plan, jobs=jobs)
    result.requests = client.requests - start
    return result
