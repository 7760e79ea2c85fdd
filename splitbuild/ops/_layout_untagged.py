"""``prune`` with ``untagged`` on an OCI image layout: its storage is listed, not asked.

A layout holds untagged manifests in two places: ``index.json`` entries without a
``org.opencontainers.image.ref.name`` (what ``skopeo copy`` to ``oci:PATH`` without a tag writes),
and manifest files in ``blobs/`` that nothing names (an index splitbuild pushed by digest, or the
old index and images of a tag that was moved or deleted: deleting a tag keeps its manifest). Both
are found here: every ``index.json`` entry and every ``blobs/`` file that starts like JSON and is
at most the manifest size limit is read once, and those that parse as manifests are recorded with
what they reference (index children, config, layers).

:func:`~splitbuild.ops._prune.prune` then applies the same rules as on GHCR: an untagged manifest
goes unless something kept reaches it (as a tag's manifest, an index child, a config or layer) or
it is a referrer of a manifest that stays. After the manifests, :meth:`LayoutStorage.sweep` gives
the blobs nothing left references: those only the deleted manifests used, and those earlier
deletions left behind (deleting a manifest from a layout removes its file, not its layers). The
sweep is skipped, and says why, when a manifest that stays cannot be read (what it references is
then unknown).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from splitbuild.errors import DigestMismatch, InvalidInput, NotFound
from splitbuild.ops._common import bounded, short

if TYPE_CHECKING:
    from splitbuild.store.layout import LayoutRepository

__all__ = ["BlobSweep", "LayoutStorage", "read_storage"]


@dataclass
class BlobSweep:
    """The blobs a layout prune deletes (digest to size), or why none are."""

    blobs: dict[str, int] = field(default_factory=dict)
    skipped: str | None = None

    @property
    def bytes(self) -> int:
        return sum(self.blobs.values())


@dataclass
class LayoutStorage:
    """What a layout holds, read once: ``index.json`` entries, blob files, and the references of
    every manifest among them."""

    entries: list[tuple[str, str | None]]
    sizes: dict[str, int]
    """Every blob file (digest to size)."""
    refs: dict[str, tuple[str, ...]] = field(default_factory=dict)
    """Each manifest read: the digests it references (index children, config, layers)."""
    failed: dict[str, str] = field(default_factory=dict)
    """Files read as manifests that did not parse (most are configs and layers), with why."""
    children: set[str] = field(default_factory=set)
    """Every digest an index read lists (so a manifest, whatever its file holds)."""

    def unreadable(self, digest: str) -> str | None:
        """Why the present file of ``digest``, which is a manifest (an ``index.json`` entry or an
        index child), cannot be read; None when it can, is absent, or is not a manifest."""
        if digest not in self.sizes or digest in self.refs:
            return None
        if digest not in self.children and digest not in {d for d, _ in self.entries}:
            return None
        return self.failed.get(digest, "not a JSON manifest within the 4 MiB limit")

    def closure(self, roots: Iterable[str]) -> set[str]:
        """``roots`` and everything they reference, transitively."""
        held: set[str] = set()
        stack = list(roots)
        while stack:
            digest = stack.pop()
            if digest in held:
                continue
            held.add(digest)
            stack.extend(r for r in self.refs.get(digest, ()) if r not in held)
        return held

    def untagged(self, tagged_roots: Iterable[str]) -> list[str]:
        """The untagged manifests nothing the tags hold references: untagged ``index.json`` entries
        and unnamed manifest files, each readable (an unreadable one is left alone)."""
        held = self.closure(tagged_roots)
        named = [d for d, tag in self.entries if tag is None]
        files = sorted(d for d in self.refs if d in self.sizes)
        out: list[str] = []
        for digest in [*named, *files]:
            if digest not in held and digest in self.refs and digest not in out:
                out.append(digest)
        return out

    def sweep(self, doomed: Collection[str], extra_roots: Iterable[str] = ()) -> BlobSweep:
        """The blob files nothing left references once ``doomed`` (manifests) are deleted.
        ``extra_roots``: untagged manifests that stay though no entry names them."""
        roots = [d for d, _ in self.entries if d not in doomed]
        roots += [d for d in extra_roots if d not in doomed]
        held = self.closure(roots)
        broken = sorted(d for d in held if self.unreadable(d) is not None)
        if broken:
            return BlobSweep(
                skipped=f"kept manifest {short(broken[0])} cannot be read ({self.unreadable(broken[0])}), "
                "so what it references is unknown"
            )
        return BlobSweep(
            {d: size for d, size in sorted(self.sizes.items()) if d not in held and d not in doomed}
        )


async def read_storage(repo: LayoutRepository, jobs: int) -> LayoutStorage:
    """List ``repo``'s ``index.json`` and ``blobs/``, and read every manifest there (one file read
    per ``index.json`` entry and per small JSON-like blob)."""
    entries = await repo.index_entries()
    files = await repo.list_blobs()
    storage = LayoutStorage(entries, {f.digest: f.size for f in files})
    listed = {d for d, _ in entries}
    candidates = sorted(listed | {f.digest for f in files if f.json_like})

    async def read(digest: str) -> None:
        try:
            manifest = await repo.get_manifest(digest)
        except NotFound:
            return
        except (InvalidInput, DigestMismatch) as exc:  # not a manifest, or a damaged one
            storage.failed[digest] = exc.message
            return
        storage.children.update(c.digest for c in manifest.children())
        storage.refs[digest] = tuple(
            [c.digest for c in manifest.children()] + [b.digest for b in manifest.blobs()]
        )

    await bounded(candidates, read, jobs)
    return storage
