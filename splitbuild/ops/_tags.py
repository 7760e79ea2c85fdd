"""``ls`` and ``tag``: list a repository's tags (every page), add tags without moving data."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from splitbuild.errors import UsageError
from splitbuild.ops._common import RefLike, as_reference, bounded, compile_pattern, identifier
from splitbuild.reference import validate_tag

if TYPE_CHECKING:
    from splitbuild.client import Client

__all__ = ["TagList", "TagResult", "add_tags", "list_tags", "tag_filter"]


def tag_filter(include: str | None = None, exclude: str | None = None) -> Callable[[str], bool]:
    """Whole-tag regular expressions: a tag is selected when it matches ``include`` (if given) and
    does not match ``exclude`` (if given). ``^sha-`` needs no anchors: ``sha-.*`` says the same."""
    inc = compile_pattern(include, "`include`")
    exc = compile_pattern(exclude, "`exclude`")

    def selected(tag: str) -> bool:
        if inc is not None and inc.fullmatch(tag) is None:
            return False
        return exc is None or exc.fullmatch(tag) is None

    return selected


@dataclass
class TagList:
    """The tags :func:`list_tags` found, sorted and filtered; ``total`` counts the repository's tags before
    filtering."""

    repository: str
    tags: list[str]
    total: int
    """Tags in the repository before filtering (``inRepository`` in :meth:`to_dict`)."""
    requests: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "repository": self.repository,
            "tags": list(self.tags),
            "count": len(self.tags),
            "inRepository": self.total,
            "requests": self.requests,
        }


async def list_tags(
    client: Client, repository: RefLike, *, include: str | None = None, exclude: str | None = None
) -> TagList:
    """Every tag of ``repository`` (all pages, ``Link`` followed), filtered (see :func:`tag_filter`)
    and sorted (the spec's lexical order, which some registries do not keep)."""
    ref = as_reference(repository)
    if ref.identifier is not None:
        raise UsageError(f"{str(ref)!r} names one tag or digest: tags are listed for a repository")
    selected = tag_filter(include, exclude)
    start = client.requests
    tags = await client.repository(ref).list_tags()
    chosen = sorted(t for t in tags if selected(t))
    return TagList(str(ref.repo()), chosen, len(tags), client.requests - start)


@dataclass
class TagResult:
    """What :func:`add_tags` did: the tags written and those already on the digest."""

    source: str
    digest: str
    added: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    """Tags that already pointed at the digest (not written again)."""
    requests: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "digest": self.digest,
            "added": list(self.added),
            "unchanged": list(self.unchanged),
            "requests": self.requests,
        }


async def add_tags(client: Client, source: RefLike, tags: Sequence[str], *, jobs: int = 8) -> TagResult:
    """Point each of ``tags`` (bare tags, same repository) at what ``source`` points at.

    One ``GET`` of the source, one ``HEAD`` per tag (a tag already there is not written, which
    registries with immutable tags require), one ``PUT`` per new tag. No blob moves.
    """
    ref = as_reference(source)
    if ref.identifier is None:  # never a silent ``latest``: the source of new tags is named
        raise UsageError(f"source {str(ref)!r} names no tag or digest: give REPO:TAG or REPO@DIGEST")
    if not tags:
        raise UsageError("no tag given")
    for tag in tags:
        if "/" in tag or ":" in tag or "@" in tag:
            raise UsageError(
                f"{tag!r} is not a bare tag: use `splitbuild copy` to tag into another repository"
            )
        validate_tag(tag)
    client.will_write([ref])
    repo = client.repository(ref)
    start = client.requests
    manifest = await repo.get_manifest(identifier(ref))
    wanted = list(dict.fromkeys(tags))
    current = await bounded(wanted, repo.head_manifest, jobs)
    result = TagResult(str(ref), manifest.digest)

    async def put(tag: str) -> None:
        await repo.put_manifest(manifest, tag)

    todo = [
        t for t, desc in zip(wanted, current, strict=True) if desc is None or desc.digest != manifest.digest
    ]
    await bounded(todo, put, jobs)
    result.added = todo
    result.unchanged = [t for t in wanted if t not in todo]
    result.requests = client.requests - start
    return result
