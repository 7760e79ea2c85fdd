"""Manifests on a registry: read by tag or digest, written, deleted.

:class:`Manifests` owns ``/v2/<name>/manifests/<ref>``: HEAD (with the GET fallback for registries
that leave headers out), GET verified against the digest asked for (or the one the registry
names), PUT (checking the digest the registry says it stored) with the conditional-write
headers of a :class:`~splitbuild.store.base.Precondition`, and DELETE (a 405 names the vendor's
own deletion API, :mod:`.vendor_deletion`). It remembers each tag's last ETag for ``If-Match``.
Keeping the referrers tag index up to date after a PUT is :mod:`.referrers`' part.
"""

from __future__ import annotations

import httpx

from splitbuild.digest import verify_bytes
from splitbuild.errors import RegistryError
from splitbuild.models import MANIFEST_ACCEPT, MAX_MANIFEST_SIZE, Descriptor, Manifest
from splitbuild.store.base import Precondition, TagChanged
from splitbuild.store.registry.endpoint import Endpoint
from splitbuild.store.registry.vendor_deletion import deletion_help

__all__ = ["Manifests"]


class Manifests:
    """The manifests of one registry repository."""

    def __init__(self, endpoint: Endpoint) -> None:
        self.endpoint = endpoint
        self._etags: dict[str, tuple[str, str]] = {}
        """Tag to (digest, ETag) from its last HEAD or GET: the ``If-Match`` of a conditional write."""

    def _what(self, ref: str) -> str:
        """``repo:tag`` or ``repo@digest``, for messages."""
        return f"{self.endpoint.name}@{ref}" if ":" in ref else f"{self.endpoint.name}:{ref}"

    def _remember(self, ref: str, digest: str, response: httpx.Response) -> None:
        """A tag's (digest, ETag) from the answer that read it, for :meth:`put`'s ``If-Match``."""
        if ":" not in ref and (etag := response.headers.get("ETag")):
            self._etags[ref] = (digest, etag)

    async def head(self, ref: str) -> Descriptor | None:
        """The descriptor ``ref`` points at (None when absent); a tag's ETag is remembered."""
        what = self._what(ref)
        response = await self.endpoint.call(
            "HEAD",
            f"{self.endpoint.base}/manifests/{ref}",
            what=what,
            headers={"Accept": MANIFEST_ACCEPT},
            missing_ok=True,
        )
        if response is None:
            return None
        digest = response.headers.get("Docker-Content-Digest")
        media_type = response.headers.get("Content-Type", "").split(";")[0].strip()
        length = response.headers.get("Content-Length")
        if not digest or not media_type or length is None:
            # Some registries omit headers on HEAD: fall back to a GET.
            manifest = await self.get(ref)
            return manifest.descriptor()
        if ref.startswith("sha") and ":" in ref and digest != ref:
            raise RegistryError(f"{what}: registry answered with digest {digest}")
        self._remember(ref, digest, response)
        return Descriptor.model_validate({"mediaType": media_type, "digest": digest, "size": int(length)})

    async def get(self, ref: str) -> Manifest:
        """The manifest's exact bytes, verified; NotFound when absent."""
        found = await self.fetch(ref)
        assert found is not None
        return found[0]

    async def fetch(self, ref: str, *, missing_ok: bool = False) -> tuple[Manifest, httpx.Response] | None:
        """The manifest and the registry's answer (its headers: ETag, digest); None when absent
        and ``missing_ok``."""
        by_digest = ":" in ref
        what = self._what(ref)
        response = await self.endpoint.call(
            "GET",
            f"{self.endpoint.base}/manifests/{ref}",
            what=what,
            headers={"Accept": MANIFEST_ACCEPT},
            missing_ok=missing_ok,
            max_body=MAX_MANIFEST_SIZE,
        )
        if response is None:
            return None
        raw = response.content
        header_digest = response.headers.get("Docker-Content-Digest")
        expected = ref if by_digest else header_digest
        if by_digest and header_digest and header_digest != ref:
            # The body is what is verified; a differing header (other algorithm) is informative only.
            verify_bytes(raw, ref, what=what)
        manifest = Manifest.from_bytes(
            raw, media_type=response.headers.get("Content-Type"), digest=expected, source=what
        )
        self._remember(ref, manifest.digest, response)
        return manifest, response

    async def put(
        self, manifest: Manifest, tag: str | None = None, *, precondition: Precondition | None = None
    ) -> httpx.Response:
        """PUT the manifest (by digest, or under ``tag``); the registry's answer.

        ``precondition``: ``If-None-Match: *`` for an absent tag, ``If-Match`` with the ETag of the
        tag's last HEAD (when the registry gave one and the digest is the expected one); a 412
        answer is :class:`TagChanged`."""
        condition: dict[str, str] = {}
        if tag is not None and precondition is not None:
            known = self._etags.get(tag)
            if precondition.digest is None:
                condition = {"If-None-Match": "*"}
            elif known is not None and known[0] == precondition.digest:
                condition = {"If-Match": known[1]}
        try:
            response = await self.put_raw(manifest, tag, condition)
        except RegistryError as exc:
            if condition and exc.status == 412:
                what = f"{self.endpoint.name}:{tag}"
                raise TagChanged(f"{what}: the tag changed since it was read; not written") from None
            raise
        return response

    async def put_raw(
        self, manifest: Manifest, tag: str | None, headers: dict[str, str] | None = None
    ) -> httpx.Response:
        """PUT the manifest with exactly these extra ``headers`` (conditional ones included, as the
        referrers tag update sends them); no ETag bookkeeping, no :class:`TagChanged`."""
        ref = tag or manifest.digest
        what = self._what(ref)
        response = await self.endpoint.call(
            "PUT",
            f"{self.endpoint.base}/manifests/{ref}",
            what=what,
            scopes=self.endpoint.push,
            ok=(200, 201, 202),
            headers={"Content-Type": manifest.media_type, **(headers or {})},
            content=manifest.raw,
        )
        assert response is not None
        got = response.headers.get("Docker-Content-Digest")
        if (
            got
            and got.startswith("sha256:")
            and manifest.digest.startswith("sha256:")
            and got != manifest.digest
        ):
            raise RegistryError(f"{what}: registry stored digest {got}, expected {manifest.digest}")
        return response

    async def delete(self, ref: str) -> None:
        """``DELETE /manifests/<ref>``. A 405 (deletion not offered) names the registry's own API."""
        what = self._what(ref)
        scopes = (self.endpoint.ref.scope("pull", "push", "delete"),)
        try:
            await self.endpoint.call(
                "DELETE",
                f"{self.endpoint.base}/manifests/{ref}",
                what=what,
                scopes=scopes,
                ok=(200, 202, 204),
                gone_on_retry_ok=True,
            )
        except RegistryError as exc:
            if exc.status != 405:
                raise
            raise RegistryError(
                f"{what}: {self.endpoint.ref.registry} does not allow deletion through the registry API "
                "(405 Method Not Allowed)",
                status=405,
                method="DELETE",
                url=exc.url,
                details=exc.details,
                hint=deletion_help(self.endpoint.ref, None if ":" in ref else ref),
            ) from None
