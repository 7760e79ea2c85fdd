"""OCI image layout backend: an ``oci-layout`` directory as a repository.

Follows the OCI image-layout spec: ``oci-layout`` (``{"imageLayoutVersion": "1.0.0"}``),
``index.json`` (an OCI index whose entries carry their tag in the
``org.opencontainers.image.ref.name`` annotation, as skopeo and buildah write them) and
``blobs/<alg>/<hex>``. Manifests pushed by digest only are stored as blobs (reachable from
the index that references them). Writes are atomic (temp file + rename) and ``index.json``
updates are serialised, within the process and across processes (``flock``).

Referrers: the image-layout spec has no referrers API, so a layout keeps them the way a registry
without that API does: an image index of the referrers of ``<alg>:<hex>``, tagged ``<alg>-<hex>``
in ``index.json`` (updated under the same locks, so not racy here). That is one read per lookup,
skopeo and oras see an ordinary tagged index, and copying a layout to a registry carries the tag
along. Listing also takes untagged ``index.json`` entries whose manifest names the subject (where
other tools put referrers in a layout); tagged entries are not opened.

Hostile layouts (:mod:`splitbuild.store.layout_files`): nothing below the layout directory is
reached through a symbolic link, only regular files are read, a file's size is checked before it
is read (manifests 4 MiB, ``index.json`` 8 MiB, a blob the size its descriptor gives) and while it
is read, and ``index.json`` must have the shape of an image index (every entry an object with a
string digest and string annotations). Each refusal is invalid input (exit 3).
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
from pydantic import ValidationError

from splitbuild.digest import Verifier, parse_digest, verify_bytes
from splitbuild.errors import (
    DigestMismatch,
    InvalidDigest,
    InvalidInput,
    InvalidManifest,
    NotFound,
    shorten,
)
from splitbuild.models import (
    ANNOTATION_REF_NAME,
    INDEX_TYPES,
    MANIFEST_TYPES,
    MAX_MANIFEST_SIZE,
    OCI_INDEX,
    Descriptor,
    Manifest,
)
from splitbuild.referrers import only_type, referrer_descriptor, referrers_tag, with_referrer
from splitbuild.store.base import BlobSource, Precondition, TagChanged
from splitbuild.store.layout_files import LayoutFiles, read_at_most

__all__ = ["BlobFile", "LayoutRepository"]

LAYOUT_FILE = "oci-layout"
INDEX_FILE = "index.json"
LOCK_FILE = ".splitbuild.lock"
LAYOUT_VERSION = {"imageLayoutVersion": "1.0.0"}
CHUNK = 1024 * 1024
MAX_INDEX_JSON = 8 * 1024 * 1024
"""``index.json`` over this size is refused (about 25,000 tags), before it is read."""
MAX_LAYOUT_FILE = 64 * 1024
"""``oci-layout`` over this size is refused."""

_locks: dict[str, anyio.Lock] = {}
_PEEK = 64


@dataclass(frozen=True)
class BlobFile:
    """One file of ``blobs/<alg>/``: its digest (from its name), size, and whether it could be a
    manifest (at most the manifest size limit, and its first byte past white space is ``{``)."""

    digest: str
    size: int
    json_like: bool


def _lock_for(path: Path) -> anyio.Lock:
    key = str(path.resolve())
    lock = _locks.get(key)
    if lock is None:
        lock = _locks[key] = anyio.Lock()
    return lock


class LayoutRepository:
    """An OCI image layout directory. Implements :class:`splitbuild.store.base.Repository`.

    The directory is created on the first write; reading one that is not a layout raises
    :class:`NotFound`.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.files = LayoutFiles(self.path, self.shown)

    def __repr__(self) -> str:
        return f"LayoutRepository({str(self.path)!r})"

    @property
    def name(self) -> str:
        return f"oci:{self.path}"

    @property
    def shown(self) -> str:
        """The name as messages show it (a very long path shortened)."""
        return shorten(self.name)

    @property
    def location(self) -> str:
        return f"oci:{self.path.resolve()}"

    # -- layout files ----------------------------------------------------------------------

    def _blob_path(self, digest: str) -> str:
        """The blob's path relative to the layout (``blobs/<alg>/<hex>``)."""
        algorithm, hexpart = parse_digest(digest)
        return f"blobs/{algorithm}/{hexpart}"

    def _is_layout(self) -> bool:
        return self.files.exists(INDEX_FILE) or self.files.exists(LAYOUT_FILE)

    def _read_index(self) -> dict[str, Any]:
        try:
            raw = self.files.read(
                INDEX_FILE,
                MAX_INDEX_JSON,
                too_big=f"{self.shown}: index.json is over the {MAX_INDEX_JSON // (1024 * 1024)} MiB limit",
            )
        except FileNotFoundError:
            if self.files.exists(LAYOUT_FILE):
                return {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []}
            raise NotFound(f"{self.shown}: not an OCI image layout (no index.json)") from None
        try:
            doc = json.loads(raw)
        except ValueError:
            raise InvalidInput(f"{self.shown}: index.json is not valid JSON") from None
        except RecursionError:
            raise InvalidInput(f"{self.shown}: index.json is not valid JSON (nested too deeply)") from None
        return _checked_index(doc, self.shown)

    def _ensure_layout(self) -> None:
        if not self.files.exists(LAYOUT_FILE):
            self.files.write(LAYOUT_FILE, json.dumps(LAYOUT_VERSION).encode(), replace=False)
        if not self.files.exists(INDEX_FILE):
            empty = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []}
            self.files.write(INDEX_FILE, json.dumps(empty, indent=2).encode(), replace=False)

    def _entries(self) -> list[dict[str, Any]]:
        entries: list[dict[str, Any]] = self._read_index().get("manifests", [])
        return entries

    def _find_tag(self, tag: str) -> dict[str, Any] | None:
        for entry in self._entries():
            if (entry.get("annotations") or {}).get(ANNOTATION_REF_NAME) == tag:
                return entry
        return None

    def _write_blob(self, digest: str, data: bytes) -> None:
        path = self._blob_path(digest)
        if not self.files.exists(path):
            self.files.write(path, data)

    def _read_manifest_file(self, digest: str, what: str) -> bytes:
        """A manifest's bytes, refused unread when the file is over the manifest size limit."""
        try:
            return self.files.read(
                self._blob_path(digest),
                MAX_MANIFEST_SIZE,
                too_big=f"{what}: manifest file exceeds the 4 MiB limit",
            )
        except FileNotFoundError:
            raise NotFound(f"{what}: manifest not found") from None

    async def _update_index(self, change: Any) -> None:
        """Apply ``change(entries) -> entries`` to index.json under both locks."""
        async with _lock_for(self.path):

            def update() -> None:
                self._ensure_layout()
                with self.files.locked(LOCK_FILE):
                    doc = self._read_index()
                    doc["manifests"] = change(list(doc.get("manifests", [])))
                    doc.setdefault("schemaVersion", 2)
                    doc.setdefault("mediaType", OCI_INDEX)
                    self.files.write(INDEX_FILE, json.dumps(doc, indent=2).encode())

            await anyio.to_thread.run_sync(update)

    # -- manifests -------------------------------------------------------------------------

    async def head_manifest(self, ref: str) -> Descriptor | None:
        if ":" in ref:
            if not await anyio.to_thread.run_sync(self.files.exists, self._blob_path(ref)):
                return None
            manifest = await self.get_manifest(ref)
            return manifest.descriptor()
        if not await anyio.to_thread.run_sync(self._is_layout):
            return None
        entry = self._find_tag(ref)
        if entry is None:
            return None
        clean = {k: v for k, v in entry.items() if k != "annotations"}
        try:
            return Descriptor.model_validate(clean)
        except ValidationError:
            raise InvalidManifest(f"{self.shown}:{ref}: index.json entry is not a valid descriptor") from None

    async def get_manifest(self, ref: str) -> Manifest:
        what = f"{self.shown}@{ref}" if ":" in ref else f"{self.shown}:{ref}"
        if ":" in ref:
            digest, media_type = ref, None
        else:
            entry = self._find_tag(ref)
            if entry is None:
                raise NotFound(f"{what}: tag not found")
            digest, media_type = str(entry.get("digest")), entry.get("mediaType")
        raw = await anyio.to_thread.run_sync(self._read_manifest_file, digest, what)
        return Manifest.from_bytes(raw, media_type=media_type, digest=digest, source=what)

    async def put_manifest(
        self, manifest: Manifest, tag: str | None = None, *, precondition: Precondition | None = None
    ) -> None:
        """``precondition`` is checked under the ``index.json`` locks: no other writer between."""
        await anyio.to_thread.run_sync(self._ensure_layout)
        await anyio.to_thread.run_sync(self._write_blob, manifest.digest, manifest.raw)
        subject = manifest.parsed.subject
        if subject is not None:
            await self._list_in_referrers_tag(manifest, subject.digest)
        if tag is None:
            return
        entry = manifest.descriptor(annotations={ANNOTATION_REF_NAME: tag}).to_dict()
        if manifest.is_index or manifest.media_type in INDEX_TYPES:
            entry.pop("platform", None)

        def change(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
            kept = [e for e in entries if (e.get("annotations") or {}).get(ANNOTATION_REF_NAME) != tag]
            if precondition is not None:
                now = [e.get("digest") for e in entries if e not in kept]
                if now != ([precondition.digest] if precondition.digest is not None else []):
                    raise TagChanged(f"{self.name}:{tag}: the tag changed since it was read; not written")
            return [*kept, entry]

        await self._update_index(change)

    async def delete_manifest(self, ref: str) -> None:
        if ":" not in ref:
            if self._find_tag(ref) is None:
                raise NotFound(f"{self.shown}:{ref}: tag not found")

            def untag(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
                return [e for e in entries if (e.get("annotations") or {}).get(ANNOTATION_REF_NAME) != ref]

            await self._update_index(untag)
            return
        path = self._blob_path(ref)
        if not self.files.exists(path):
            raise NotFound(f"{self.shown}@{ref}: manifest not found")

        def drop(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
            return [e for e in entries if e.get("digest") != ref]

        await self._update_index(drop)
        self.files.unlink(path)

    async def delete_tag(self, tag: str) -> str:
        """Remove the tag's entry from ``index.json``; the manifest stays (as a blob)."""
        await self.delete_manifest(tag)
        return "tag"

    async def list_tags(self) -> list[str]:
        tags = {
            str((e.get("annotations") or {}).get(ANNOTATION_REF_NAME))
            for e in self._entries()
            if (e.get("annotations") or {}).get(ANNOTATION_REF_NAME)
        }
        return sorted(tags)

    # -- referrers -------------------------------------------------------------------------

    async def list_referrers(self, digest: str, artifact_type: str | None = None) -> list[Descriptor]:
        """The referrers tag index of ``digest``, plus untagged entries whose manifest names it."""
        parse_digest(digest)
        found = await anyio.to_thread.run_sync(self._referrers, digest)
        return only_type(found, artifact_type)

    def _referrers(self, digest: str) -> list[Descriptor]:
        try:
            entries = self._entries()
        except NotFound:
            return []
        tag = referrers_tag(digest)
        found: dict[str, Descriptor] = {}
        for entry in entries:
            name = (entry.get("annotations") or {}).get(ANNOTATION_REF_NAME)
            if name is not None and name != tag:
                continue
            manifest = self._read_manifest(entry)
            if manifest is None:
                continue
            if name == tag:
                if manifest.is_index:
                    found.update((d.digest, d) for d in manifest.children())
            elif manifest.parsed.subject is not None and manifest.parsed.subject.digest == digest:
                found.setdefault(manifest.digest, referrer_descriptor(manifest))
        return list(found.values())

    def _read_manifest(self, entry: dict[str, Any]) -> Manifest | None:
        digest, media_type = entry.get("digest"), entry.get("mediaType")
        if not isinstance(digest, str) or media_type not in MANIFEST_TYPES:
            return None
        try:
            raw = self._read_manifest_file(digest, f"{self.shown}@{digest}")
            return Manifest.from_bytes(raw, media_type=str(media_type), digest=digest, source=self.shown)
        except (NotFound, InvalidInput):
            return None

    async def _list_in_referrers_tag(self, manifest: Manifest, subject: str) -> None:
        """Add ``manifest`` to the referrers tag index of ``subject``, under the index.json locks."""
        tag = referrers_tag(subject)
        entry = referrer_descriptor(manifest)

        def change(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
            current_entry = next(
                (e for e in entries if (e.get("annotations") or {}).get(ANNOTATION_REF_NAME) == tag), None
            )
            current = self._read_manifest(current_entry) if current_entry is not None else None
            if current_entry is not None and current is None:
                raise InvalidManifest(f"{self.shown}:{tag}: the referrers tag holds no readable manifest")
            updated = with_referrer(current, entry, what=f"{self.shown}:{tag}")
            if updated is None:
                return entries
            self._write_blob(updated.digest, updated.raw)
            tagged = updated.descriptor(annotations={ANNOTATION_REF_NAME: tag}).to_dict()
            return [*(e for e in entries if e is not current_entry), tagged]

        await self._update_index(change)

    # -- storage listing (``prune`` with ``untagged``) --------------------------------------------

    async def index_entries(self) -> list[tuple[str, str | None]]:
        """``(digest, tag)`` of every ``index.json`` entry; the tag is None for an untagged entry
        (no ``org.opencontainers.image.ref.name``, as ``skopeo copy`` to ``oci:PATH`` without a tag
        writes). Empty when the directory is not a layout."""
        try:
            entries = await anyio.to_thread.run_sync(self._entries)
        except NotFound:
            return []
        return [
            (str(e["digest"]), (e.get("annotations") or {}).get(ANNOTATION_REF_NAME) or None) for e in entries
        ]

    async def list_blobs(self) -> list[BlobFile]:
        """Every regular file in ``blobs/<alg>/`` whose name makes a valid digest, sorted by digest.
        Anything else (temporary files of a write in progress, links, directories) is left out,
        never read."""
        return await anyio.to_thread.run_sync(self._list_blobs)

    def _list_blobs(self) -> list[BlobFile]:
        found: list[BlobFile] = []
        try:
            with self.files.directory(["blobs"]) as fd:
                algorithms = sorted(e.name for e in os.scandir(fd) if e.is_dir(follow_symlinks=False))
        except FileNotFoundError:
            return []
        for algorithm in algorithms:
            sizes: dict[str, os.stat_result] = {}
            with self.files.directory(["blobs", algorithm]) as fd:
                for entry in sorted(os.scandir(fd), key=lambda e: e.name):
                    try:
                        parse_digest(f"{algorithm}:{entry.name}")
                    except InvalidDigest:
                        continue  # a temporary file or a stranger: never stat'ed, never read
                    try:
                        sizes[entry.name] = os.stat(entry.name, dir_fd=fd, follow_symlinks=False)
                    except FileNotFoundError:
                        continue  # removed since the listing
            for name, st in sizes.items():
                digest = f"{algorithm}:{name}"
                if not stat.S_ISREG(st.st_mode):
                    continue
                json_like = st.st_size <= MAX_MANIFEST_SIZE and self._starts_like_json(digest)
                found.append(BlobFile(digest, st.st_size, json_like))
        return found

    def _starts_like_json(self, digest: str) -> bool:
        try:
            with self.files.open_read(self._blob_path(digest)) as (handle, _size):
                return handle.read(_PEEK).lstrip().startswith(b"{")
        except (FileNotFoundError, InvalidInput):
            return False

    async def delete_blob(self, digest: str) -> None:
        """Remove the file ``blobs/<alg>/<hex>``; NotFound when it is not there. The caller makes
        sure nothing kept references it (``index.json`` is not consulted)."""
        path = self._blob_path(digest)

        def unlink() -> None:
            try:
                self.files.unlink(path)
            except FileNotFoundError:
                raise NotFound(f"{self.shown}@{digest}: blob not found") from None

        await anyio.to_thread.run_sync(unlink)

    # -- blobs -----------------------------------------------------------------------------

    async def has_blob(self, digest: str) -> bool:
        return await anyio.to_thread.run_sync(self.files.exists, self._blob_path(digest))

    def open_blob(self, desc: Descriptor) -> AbstractAsyncContextManager[AsyncIterator[bytes]]:
        return self._open_blob(desc)

    @asynccontextmanager
    async def _open_blob(self, desc: Descriptor) -> AsyncIterator[AsyncIterator[bytes]]:
        what = f"{self.shown}@{desc.digest}"
        path = self._blob_path(desc.digest)
        opened = self.files.open_read(path)
        try:
            file, size = await anyio.to_thread.run_sync(opened.__enter__)
        except FileNotFoundError:
            raise NotFound(f"{what}: blob not found") from None
        try:
            _check_size(size, desc, what)
            handle = anyio.wrap_file(file)

            async def stream() -> AsyncIterator[bytes]:
                verifier = Verifier(desc.digest, desc.size, what=what)
                while chunk := await handle.read(CHUNK):
                    verifier.update(chunk)
                    yield chunk
                verifier.verify()

            yield stream()
        finally:
            opened.__exit__(None, None, None)

    def _read_blob_file(self, desc: Descriptor) -> bytes:
        what = f"{self.shown}@{desc.digest}"
        try:
            with self.files.open_read(self._blob_path(desc.digest)) as (handle, size):
                _check_size(size, desc, what)
                return read_at_most(handle, desc.size, f"{what}: more than the expected {desc.size} bytes")
        except FileNotFoundError:
            raise NotFound(f"{what}: blob not found") from None

    async def read_blob(self, desc: Descriptor) -> bytes:
        data = await anyio.to_thread.run_sync(self._read_blob_file, desc)
        verify_bytes(data, desc.digest, what=f"{self.shown}@{desc.digest}")
        return data

    async def put_blob(self, desc: Descriptor, source: BlobSource) -> None:
        target = self._blob_path(desc.digest)
        if await self.has_blob(desc.digest):
            return
        await anyio.to_thread.run_sync(self._ensure_layout)
        if isinstance(source, bytes):
            verify_bytes(source, desc.digest, what=f"{self.shown}@{desc.digest}")
            await anyio.to_thread.run_sync(self._write_blob, desc.digest, source)
            return
        verifier = Verifier(desc.digest, desc.size, what=f"{self.shown}@{desc.digest}")
        with self.files.new_file(target) as (file, commit):
            out = anyio.wrap_file(file)
            async with source() as stream:
                async for chunk in stream:
                    verifier.update(chunk)
                    await out.write(chunk)
            await out.flush()
            verifier.verify()
            commit()


def _check_size(size: int, desc: Descriptor, what: str) -> None:
    """A blob file whose size differs from its descriptor's is refused before it is read."""
    if size != desc.size:
        raise DigestMismatch(f"{what}: the file holds {size} bytes, expected {desc.size}")


def _checked_index(doc: object, name: str) -> dict[str, Any]:
    """``doc`` when it has the shape of an image index whose entries splitbuild can read: every
    entry an object with a string digest, a string media type and string annotations."""
    if not isinstance(doc, dict) or not isinstance(doc.get("manifests", []), list):
        raise InvalidInput(f"{name}: index.json is not an OCI image index")
    for i, entry in enumerate(doc.get("manifests", [])):
        where = f"{name}: index.json manifests[{i}]"
        if not isinstance(entry, dict):
            raise InvalidInput(f"{where} is not an object")
        if not isinstance(entry.get("digest"), str):
            raise InvalidInput(f"{where}.digest is not a string")
        if not isinstance(entry.get("mediaType", ""), str):
            raise InvalidInput(f"{where}.mediaType is not a string")
        annotations = entry.get("annotations")
        if annotations is not None and not (
            isinstance(annotations, dict) and all(isinstance(v, str) for v in annotations.values())
        ):
            raise InvalidInput(f"{where}.annotations is not an object of strings")
    return doc
