"""Removing a tag from a registry while keeping the manifest it points at: the tag-delete ladder.

:class:`TagDeletion` owns the ladder: ``DELETE /manifests/<tag>`` where the registry deletes tags
natively, else pointing the tag at a unique placeholder manifest (:func:`placeholder_manifest`)
and deleting that by digest, putting the tag back if that fails (even when cancelled). Which rung
a registry needs is learnt once per run (``RegistryTransport.native_tag_delete``). It works on the
:class:`~splitbuild.store.base.Repository` interface of the repository it serves, so the requests
are that repository's own (manifest PUTs keep the referrers tag index up to date).
"""

from __future__ import annotations

import json
import secrets

import anyio

from splitbuild.digest import compute
from splitbuild.errors import AuthError, NotFound, RegistryError, SplitbuildError
from splitbuild.models import OCI_EMPTY, OCI_MANIFEST, Manifest
from splitbuild.store.base import Repository

__all__ = ["EMPTY_JSON", "PLACEHOLDER_ANNOTATION", "TagDeletion", "placeholder_manifest"]

EMPTY_JSON = b"{}"
PLACEHOLDER_ANNOTATION = "dev.splitbuild.placeholder"


def placeholder_manifest(tag: str) -> Manifest:
    """A unique, empty OCI manifest used to delete ``tag`` where the registry cannot delete tags."""
    doc = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_EMPTY, "digest": compute(EMPTY_JSON), "size": len(EMPTY_JSON)},
        "layers": [],
        "annotations": {
            PLACEHOLDER_ANNOTATION: f"deleting tag {tag}",
            "dev.splitbuild.nonce": secrets.token_hex(16),
        },
    }
    return Manifest.from_bytes(json.dumps(doc, indent=2).encode())


class TagDeletion:
    """Tag deletion for ``repo``, a repository of ``registry``; ``native`` is the run's record of
    which registries delete tags natively (shared by every repository of the run)."""

    def __init__(self, repo: Repository, registry: str, native: dict[str, bool]) -> None:
        self.repo = repo
        self.registry = registry
        self.native = native
        self._empty_blob_present = False

    async def delete(self, tag: str) -> str:
        """Remove ``tag`` and keep its manifest (the tag-delete ladder).

        1. ``DELETE /manifests/<tag>`` as the OCI distribution spec allows (distribution 3, zot, ...).
        2. Where the registry refuses that other than with 405 (distribution 2.x answers
           400 DIGEST_INVALID), point the tag at a unique placeholder manifest and delete the
           placeholder by digest: the registry drops the tag with it, the old manifest stays. If that
           delete fails, the tag is put back where it was.

        A 405 means no deletion through the registry API at all: raised, naming the registry's own
        API. Which rung works is remembered per registry. Returns ``"tag"`` or ``"placeholder"``.
        """
        if self.native.get(self.registry, True):
            try:
                await self.repo.delete_manifest(tag)
            except NotFound:
                if await self.repo.head_manifest(tag) is None:
                    raise NotFound(f"{self.repo.name}:{tag}: tag not found") from None
            except RegistryError as exc:
                if isinstance(exc, AuthError) or exc.status in (None, 405) or exc.retryable:
                    raise
            else:
                self.native[self.registry] = True
                return "tag"
            self.native[self.registry] = False
        await self._by_placeholder(tag)
        return "placeholder"

    async def _by_placeholder(self, tag: str) -> None:
        what = f"{self.repo.name}:{tag}"
        current = await self.repo.head_manifest(tag)
        if current is None:
            raise NotFound(f"{what}: tag not found")
        placeholder = placeholder_manifest(tag)
        empty = placeholder.image().config
        if not self._empty_blob_present and not await self.repo.has_blob(empty.digest):
            await self.repo.put_blob(empty, EMPTY_JSON)
        self._empty_blob_present = True
        original = await self.repo.get_manifest(current.digest)
        placed = False
        try:
            # Inside the try: a cancellation while the PUT's answer is awaited may find it applied.
            await self.repo.put_manifest(placeholder, tag)
            placed = True
            await self.repo.delete_manifest(placeholder.digest)
        except BaseException as exc:
            # Never leave the tag on the placeholder, even when cancelled (Ctrl-C, a cancelled CI
            # job): put it back, shielded from the cancellation, then report.
            with anyio.CancelScope(shield=True):
                await self.repo.put_manifest(original, tag)
            if not isinstance(exc, SplitbuildError):
                raise
            if not placed:
                raise
            error = AuthError if isinstance(exc, AuthError) else RegistryError
            raise error(
                f"{what}: the registry refused to delete the placeholder {placeholder.digest} "
                f"({exc.message}); the tag points at {current.digest} again",
                status=getattr(exc, "status", None),
                hint=exc.hint,
            ) from None
