"""A repository's tags and the manifests they hold, read with as few requests as possible.

``delete`` and ``prune`` decide from this graph what a tag still needs: the manifest it points at,
the children of an index (images and attestation manifests), nested indexes, and the artifacts a
referrers tag (``sha256-<hex>``, the OCI tag-schema fallback, and cosign's ``.sig``/``.att``/``.sbom``)
holds for its subject.

Requests: one ``HEAD`` per tag, one ``GET`` per distinct index. Where the creation time is wanted
(``dated`` tags) the tag is read with one ``GET`` instead, then the time comes from the manifest's
``org.opencontainers.image.created`` annotation if set, else from the image config (one blob read
per distinct config); for an index without the annotation, from its first platform image.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Awaitable, Callable, Collection, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

import anyio
from anyio.abc import TaskGroup

from splitbuild._tasks import task_group
from splitbuild.errors import NotFound
from splitbuild.models import MAX_INDEX_DEPTH, Descriptor, Manifest, too_deep
from splitbuild.ops._common import DEFAULT_JOBS
from splitbuild.store.base import Repository
from splitbuild.timestamps import parse_rfc3339

__all__ = ["CREATED_ANNOTATION", "Graph", "Node", "check_depth", "referrers_subject", "scan"]

T = TypeVar("T")

CREATED_ANNOTATION = "org.opencontainers.image.created"
_REFERRERS_TAG = re.compile(r"^(sha256|sha384|sha512)-([0-9a-f]+)(?:\.[A-Za-z0-9_.-]+)?$")
_HEX_LENGTH = {"sha256": 64, "sha384": 96, "sha512": 128}
_MAX_CONFIG = 4 * 1024 * 1024


def referrers_subject(tag: str) -> str | None:
    """For a referrers tag (``sha256-<hex>`` with an optional ``.sig``-like suffix), its subject digest."""
    m = _REFERRERS_TAG.match(tag)
    if m is None or len(m.group(2)) != _HEX_LENGTH[m.group(1)]:
        return None
    return f"{m.group(1)}:{m.group(2)}"


@dataclass(frozen=True)
class Node:
    """One manifest: its descriptor, and its children when it is an index."""

    descriptor: Descriptor
    children: tuple[Descriptor, ...] = ()

    @property
    def digest(self) -> str:
        return self.descriptor.digest

    @property
    def is_index(self) -> bool:
        return self.descriptor.is_index


@dataclass
class Graph:
    """Tags (in the registry's order), the manifests they reach, and creation times read."""

    repository: str
    tags: dict[str, str] = field(default_factory=dict)
    """Tag to digest."""
    nodes: dict[str, Node] = field(default_factory=dict)
    created: dict[str, dt.datetime | None] = field(default_factory=dict)
    """Digest to creation time, for the manifests of ``dated`` tags."""
    vanished: list[str] = field(default_factory=list)
    """Tags listed but gone when resolved (deleted meanwhile)."""

    def tags_of(self, digest: str) -> list[str]:
        return [t for t, d in self.tags.items() if d == digest]

    def children(self, digest: str) -> tuple[Descriptor, ...]:
        node = self.nodes.get(digest)
        return node.children if node is not None else ()

    def walk(self, root: str) -> Iterator[tuple[str, Descriptor | None, str | None]]:
        """``(digest, descriptor in its parent, parent digest)`` for ``root`` and everything below it."""
        seen: set[str] = set()
        stack: list[tuple[str, Descriptor | None, str | None]] = [(root, None, None)]
        while stack:
            digest, desc, parent = stack.pop()
            if digest in seen:
                continue
            seen.add(digest)
            yield digest, desc, parent
            for child in reversed(self.children(digest)):
                stack.append((child.digest, child, digest))

    def media_type(self, digest: str) -> str | None:
        node = self.nodes.get(digest)
        return node.descriptor.media_type if node is not None else None


@dataclass(frozen=True)
class _Dating:
    """What :meth:`_Scanner.created` needs of a manifest (kept instead of the manifest itself)."""

    annotated: dt.datetime | None
    first_image: str | None = None
    """For an index: its first platform image."""
    config: Descriptor | None = None
    """For an image: its config."""

    @classmethod
    def of(cls, manifest: Manifest) -> _Dating:
        annotated = parse_rfc3339((manifest.parsed.annotations or {}).get(CREATED_ANNOTATION))
        if manifest.is_index:
            for child in manifest.children():
                platform = child.platform
                if child.is_attestation or (platform is not None and platform.is_unknown):
                    continue
                return cls(annotated, first_image=child.digest)
            return cls(annotated)
        return cls(annotated, config=manifest.image().config)


class _Scanner:
    """Builds the graph: each distinct index read once, whatever the number of paths to it.

    Children are kept as one shared descriptor per distinct entry (an entry listed by a hundred
    indexes costs one object), manifests are dropped once their node is built, and indexes are
    nested :data:`~splitbuild.models.MAX_INDEX_DEPTH` levels at most."""

    def __init__(self, repo: Repository, jobs: int) -> None:
        self.repo = repo
        self.graph = Graph(repo.name)
        self.limiter = anyio.CapacityLimiter(jobs)
        self._datings: dict[str, _Dating] = {}
        self._descriptors: dict[str, Descriptor] = {}
        self._started: set[str] = set()
        self._memo: dict[str, object] = {}
        self._locks: dict[str, anyio.Lock] = {}

    async def _once(self, key: str, fn: Callable[[], Awaitable[T]]) -> T:
        lock = self._locks.setdefault(key, anyio.Lock())
        async with lock:
            if key not in self._memo:
                self._memo[key] = await fn()
            return self._memo[key]  # type: ignore[return-value]

    async def _dating(self, digest: str) -> _Dating:
        dating = self._datings.get(digest)
        if dating is None:
            async with self.limiter:
                manifest = await self.repo.get_manifest(digest)
            dating = self._datings[digest] = _Dating.of(manifest)
        return dating

    def _shared(self, desc: Descriptor) -> Descriptor:
        key = desc.model_dump_json()
        return self._descriptors.setdefault(key, desc)

    async def tag(self, tag: str, dated: bool, resolved: dict[str, str], tg: TaskGroup) -> None:
        manifest: Manifest | None = None
        async with self.limiter:
            if dated:
                try:
                    manifest = await self.repo.get_manifest(tag)
                except NotFound:
                    manifest = None
                desc = manifest.descriptor() if manifest is not None else None
            else:
                desc = await self.repo.head_manifest(tag)
        if desc is None:
            self.graph.vanished.append(tag)
            return
        resolved[tag] = desc.digest
        if manifest is not None:
            self._datings.setdefault(desc.digest, _Dating.of(manifest))
        if desc.digest not in self._started:
            self._started.add(desc.digest)
            await self.node(desc, 0, tg, manifest)
        del manifest
        if dated:
            self.graph.created[desc.digest] = await self.created(desc.digest)

    async def node(
        self, desc: Descriptor, depth: int, tg: TaskGroup, manifest: Manifest | None = None
    ) -> None:
        """Add ``desc`` (at ``depth`` indexes below a tag) to the graph; the indexes it lists are
        read by new tasks in ``tg``, each distinct one once."""
        if not desc.is_index:
            self.graph.nodes.setdefault(desc.digest, Node(desc))
            return
        if depth >= MAX_INDEX_DEPTH:
            raise too_deep(f"{self.repo.name}@{desc.digest}")
        if manifest is None:
            async with self.limiter:
                manifest = await self.repo.get_manifest(desc.digest)
        children = tuple(self._shared(child) for child in manifest.children())
        self.graph.nodes[desc.digest] = Node(manifest.descriptor(), children)
        for child in children:
            if child.is_index:
                if child.digest not in self._started:
                    self._started.add(child.digest)
                    tg.start_soon(self.node, child, depth + 1, tg)
            else:
                self.graph.nodes.setdefault(child.digest, Node(child))

    async def created(self, digest: str) -> dt.datetime | None:
        """When ``digest`` was created; None when unknown, including when a manifest or config it
        would be read from is missing (a damaged tag is kept, it does not stop the whole prune)."""

        async def read() -> dt.datetime | None:
            try:
                return await dated()
            except NotFound:
                return None

        async def dated() -> dt.datetime | None:
            current, depth = digest, 0
            while True:  # down the first platform images of nested indexes
                dating = await self._dating(current)
                if dating.annotated is not None:
                    return dating.annotated
                if dating.config is not None:
                    break
                if dating.first_image is None:
                    return None
                current, depth = dating.first_image, depth + 1
                if depth > MAX_INDEX_DEPTH:
                    raise too_deep(f"{self.repo.name}@{digest}")
            config = dating.config
            if config.size > _MAX_CONFIG:
                return None
            return await self._once(f"config:{config.digest}", lambda: self._config_created(config))

        return await self._once(f"created:{digest}", read)

    async def _config_created(self, config: Descriptor) -> dt.datetime | None:
        async with self.limiter:
            raw = await self.repo.read_blob(config)
        try:
            doc = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            return None
        return parse_rfc3339(doc.get("created")) if isinstance(doc, dict) else None


def check_depth(graph: Graph) -> None:
    """Raise InvalidManifest when a tag reaches an image through more than
    :data:`~splitbuild.models.MAX_INDEX_DEPTH` nested indexes (counted along every path, not only
    the first one the scan took). Iterative: no recursion whatever the graph."""
    height: dict[str, int] = {}
    for tag, root in graph.tags.items():
        stack: list[tuple[str, bool]] = [(root, False)]
        on_path: set[str] = set()
        while stack:
            digest, expanded = stack.pop()
            if expanded:
                on_path.discard(digest)
                node = graph.nodes.get(digest)
                below = [height.get(c.digest, 0) for c in graph.children(digest) if c.digest not in on_path]
                height[digest] = 1 + max(below, default=0) if node is not None and node.is_index else 0
                if height[digest] > MAX_INDEX_DEPTH:
                    raise too_deep(f"{graph.repository}:{tag}")
                continue
            if digest in height or digest in on_path:
                continue
            on_path.add(digest)
            stack.append((digest, True))
            stack.extend((c.digest, False) for c in graph.children(digest) if c.digest not in height)


async def scan(
    repo: Repository,
    *,
    tags: Sequence[str] | None = None,
    dated: Collection[str] = (),
    jobs: int = DEFAULT_JOBS,
) -> Graph:
    """Resolve ``tags`` (default: every tag) and the manifests below them.

    ``dated``: tags whose creation time is wanted (in :attr:`Graph.created`, by digest).
    """
    scanner = _Scanner(repo, jobs)
    names = list(tags) if tags is not None else await repo.list_tags()
    wanted = set(dated)
    resolved: dict[str, str] = {}
    async with task_group() as tg:
        for name in names:
            tg.start_soon(scanner.tag, name, name in wanted, resolved, tg)
    scanner.graph.tags = {t: resolved[t] for t in names if t in resolved}
    scanner.graph.vanished.sort(key=names.index)
    check_depth(scanner.graph)
    return scanner.graph
