"""A repository's tags and the manifests they hold, read with as few requests as possible.

``delete`` and ``prune`` decide from this graph what a tag still needs: the manifest it points at,
the children of an index (images and attestation manifests), nested indexes, and the artifacts a
referrers tag (``sha256-<hex>``, the OCI tag-schema fallback and cosign's ``.sig``/``.att``) holds
for its subject.

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

from splitbuild._tasks import task_group
from splitbuild.errors import NotFound
from splitbuild.models import Descriptor, Manifest
from splitbuild.ops._common import DEFAULT_JOBS, parse_time
from splitbuild.store.base import Repository

__all__ = ["CREATED_ANNOTATION", "Graph", "Node", "referrers_subject", "scan"]

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


class _Scanner:
    def __init__(self, repo: Repository, jobs: int) -> None:
        self.repo = repo
        self.graph = Graph(repo.name)
        self.limiter = anyio.CapacityLimiter(jobs)
        self.manifests: dict[str, Manifest] = {}
        self._memo: dict[str, object] = {}
        self._locks: dict[str, anyio.Lock] = {}

    async def _once(self, key: str, fn: Callable[[], Awaitable[T]]) -> T:
        lock = self._locks.setdefault(key, anyio.Lock())
        async with lock:
            if key not in self._memo:
                self._memo[key] = await fn()
            return self._memo[key]  # type: ignore[return-value]

    async def _get(self, digest: str) -> Manifest:
        manifest = self.manifests.get(digest)
        if manifest is None:
            async with self.limiter:
                manifest = await self.repo.get_manifest(digest)
            self.manifests[digest] = manifest
        return manifest

    async def tag(self, tag: str, dated: bool, resolved: dict[str, str]) -> None:
        async with self.limiter:
            if dated:
                try:
                    manifest: Manifest | None = await self.repo.get_manifest(tag)
                except NotFound:
                    manifest = None
                if manifest is not None:
                    self.manifests.setdefault(manifest.digest, manifest)
                desc = manifest.descriptor() if manifest is not None else None
            else:
                desc = await self.repo.head_manifest(tag)
        if desc is None:
            self.graph.vanished.append(tag)
            return
        resolved[tag] = desc.digest
        await self.node(desc)
        if dated:
            self.graph.created[desc.digest] = await self.created(desc.digest)

    async def node(self, desc: Descriptor) -> None:
        async def build() -> None:
            if not desc.is_index:
                self.graph.nodes[desc.digest] = Node(desc)
                return
            manifest = await self._get(desc.digest)
            descriptor = manifest.descriptor()
            self.graph.nodes[desc.digest] = Node(descriptor, tuple(manifest.children()))
            async with task_group() as tg:
                for child in manifest.children():
                    if child.is_index:
                        tg.start_soon(self.node, child)
                    else:
                        self.graph.nodes.setdefault(child.digest, Node(child))

        await self._once(f"node:{desc.digest}", build)

    async def created(self, digest: str) -> dt.datetime | None:
        """When ``digest`` was created; None when unknown, including when a manifest or config it
        would be read from is missing (a damaged tag is kept, it does not stop the whole prune)."""

        async def read() -> dt.datetime | None:
            try:
                return await dated()
            except NotFound:
                return None

        async def dated() -> dt.datetime | None:
            manifest = await self._get(digest)
            annotated = parse_time((manifest.parsed.annotations or {}).get(CREATED_ANNOTATION))
            if annotated is not None:
                return annotated
            if manifest.is_index:
                for child in manifest.children():
                    platform = child.platform
                    if child.is_attestation or (platform is not None and platform.is_unknown):
                        continue
                    return await self.created(child.digest)
                return None
            config = manifest.image().config
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
        return parse_time(doc.get("created")) if isinstance(doc, dict) else None


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
            tg.start_soon(scanner.tag, name, name in wanted, resolved)
    scanner.graph.tags = {t: resolved[t] for t in names if t in resolved}
    scanner.graph.vanished.sort(key=names.index)
    return scanner.graph
