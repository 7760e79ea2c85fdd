"""Referrers on a registry: listing them, and keeping the referrers tag index up to date.

:class:`Referrers` owns ``/v2/<name>/referrers/<digest>`` (every page, with the ``artifactType``
filter where the registry applies it) and, for registries without that API, the referrers tag
index ``<alg>-<hex>``: read for a listing, and updated (conditionally, retried on 412) after a
manifest with a ``subject`` was put where the registry did not process the subject. Whether a
registry has the API is learnt once per run (``RegistryTransport.referrers_api``). The tag name,
descriptors and index update themselves are the pure helpers of :mod:`splitbuild.referrers`.
"""

from __future__ import annotations

from urllib.parse import urlencode

import httpx

from splitbuild._tasks import task_group
from splitbuild.errors import InvalidManifest, RegistryError
from splitbuild.models import MAX_MANIFEST_SIZE, OCI_INDEX, Descriptor, Manifest
from splitbuild.referrers import only_type, referrer_descriptor, referrers_tag, with_referrer
from splitbuild.store.registry.endpoint import Endpoint, next_page
from splitbuild.store.registry.manifests import Manifests

__all__ = ["Referrers"]


class Referrers:
    """The referrers of the manifests of one registry repository."""

    def __init__(self, endpoint: Endpoint, manifests: Manifests) -> None:
        self.endpoint = endpoint
        self.manifests = manifests

    async def list_referrers(self, digest: str, artifact_type: str | None = None) -> list[Descriptor]:
        """The referrers of ``digest``: from the referrers API, else from the referrers tag index.

        Whether the registry has the API is learnt from its first answer (a 404 says it has not) and
        remembered for the run. The first lookup on a registry asks the API and reads the tag at
        once, and the others wait for it: a registry costs one request more per run (the tag read
        where the API answered, or the API's 404), not one more per manifest, and one round trip.
        """
        registry = self.endpoint.ref.registry
        if registry not in self.endpoint.client.referrers_api:
            async with self.endpoint.client.lock(f"referrers-api:{registry}"):
                if registry not in self.endpoint.client.referrers_api:
                    return await self._first(digest, artifact_type)
        if self.endpoint.client.referrers_api[registry]:
            found = await self._from_api(digest, artifact_type)
            if found is not None:
                return found
        return await self._from_tag(digest, artifact_type)

    async def _first(self, digest: str, artifact_type: str | None) -> list[Descriptor]:
        from_api: list[Descriptor] | None = None
        from_tag: list[Descriptor] = []

        async def api() -> None:
            nonlocal from_api
            from_api = await self._from_api(digest, artifact_type)

        async def tag() -> None:
            nonlocal from_tag
            from_tag = await self._from_tag(digest, artifact_type)

        async with task_group() as tg:
            tg.start_soon(api)
            tg.start_soon(tag)
        self.endpoint.client.referrers_api[self.endpoint.ref.registry] = from_api is not None
        return from_api if from_api is not None else from_tag

    async def _from_api(self, digest: str, artifact_type: str | None) -> list[Descriptor] | None:
        """``GET /referrers/<digest>`` (every page); None when the registry has no referrers API
        (404, or an answer that is not an image index, as from a login page)."""
        what = f"{self.endpoint.name} referrers of {digest}"
        query = f"?{urlencode({'artifactType': artifact_type})}" if artifact_type else ""
        url: str | None = f"{self.endpoint.base}/referrers/{digest}{query}"
        found: list[Descriptor] = []
        filtered = artifact_type is not None
        first = True
        visited: set[str] = set()
        while url is not None:
            self.endpoint.check_listing(what, len(visited), len(found))
            response = await self.endpoint.call(
                "GET",
                url,
                what=what,
                headers={"Accept": OCI_INDEX},
                missing_ok=first,
                max_body=MAX_MANIFEST_SIZE,
            )
            if response is None:
                return None
            try:
                page = Manifest.from_bytes(
                    response.content, media_type=response.headers.get("Content-Type"), source=what
                )
            except InvalidManifest:
                if first:
                    return None
                raise
            if not page.is_index:
                if first:
                    return None
                raise InvalidManifest(f"{what}: the registry answered with {page.media_type}")
            found.extend(page.children())
            applied = {p.strip() for p in response.headers.get("OCI-Filters-Applied", "").split(",")}
            filtered = filtered and "artifactType" in applied
            visited.add(url)
            url = next_page(response, visited, what)
            first = False
        self.endpoint.check_listing(what, 0, len(found))
        # A registry that did not apply the filter says so by leaving the header out.
        return found if filtered or artifact_type is None else only_type(found, artifact_type)

    async def _from_tag(self, digest: str, artifact_type: str | None) -> list[Descriptor]:
        """The referrers tag index of ``digest``; none when the tag is absent or not an index."""
        try:
            found = await self.manifests.fetch(referrers_tag(digest), missing_ok=True)
        except InvalidManifest:
            return []
        if found is None or not found[0].is_index:
            return []
        return only_type(found[0].children(), artifact_type)

    async def after_put(self, manifest: Manifest, response: httpx.Response) -> None:
        """Once ``manifest`` is put: one with a ``subject`` that the registry did not process (no
        ``OCI-Subject`` in ``response``, its answer: no referrers API) is added to the referrers tag
        index; an ``OCI-Subject`` says the registry has the API."""
        subject = manifest.parsed.subject
        if subject is None:
            return
        if response.headers.get("OCI-Subject"):
            self.endpoint.client.referrers_api[self.endpoint.ref.registry] = True
        else:
            await self.add_to_tag(manifest, subject.digest)

    async def add_to_tag(self, manifest: Manifest, subject: str) -> None:
        """Add ``manifest`` to the referrers tag index of ``subject`` (read, add, write back).

        This is racy, as the spec says: two clients adding a referrer to the same subject at the
        same time can each write an index without the other's. The write is conditional
        (``If-Match`` on the ETag read, ``If-None-Match: *`` for a new tag) so that a registry
        honouring those refuses the stale write with 412, and the update is done again;
        distribution 2.x ignores them. Within one run, updates of one tag are serialised.
        """
        tag = referrers_tag(subject)
        what = f"{self.endpoint.name}:{tag}"
        entry = referrer_descriptor(manifest)
        async with self.endpoint.client.lock(f"tag:{self.endpoint.name}:{tag}"):
            for _ in range(3):
                found = await self.manifests.fetch(tag, missing_ok=True)
                current, response = found if found is not None else (None, None)
                updated = with_referrer(current, entry, what=what)
                if updated is None:
                    return
                etag = response.headers.get("ETag") if response is not None else None
                condition = {"If-Match": etag} if etag else {}
                if current is None:
                    condition = {"If-None-Match": "*"}
                try:
                    await self.manifests.put_raw(updated, tag, condition)
                except RegistryError as exc:
                    if exc.status == 412:
                        continue
                    raise
                return
        raise RegistryError(f"{what}: the referrers index kept changing while adding {manifest.digest}")
