"""One repository's URL space on a registry, and the request helpers every concept module uses.

:class:`Endpoint` owns the repository's base URL (``<origin>/v2/<repository>``), its pull and push
scopes, and :meth:`Endpoint.call`: one request, retried when transient, with a bounded body and the
``404`` conventions (absent, or gone on a retry of a DELETE). Pagination (:func:`next_page`) and
the listing caps (:meth:`Endpoint.check_listing`) are shared by the tag and referrer listings.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Sequence
from urllib.parse import urljoin

import httpx

from splitbuild.errors import AuthError, InvalidManifest, RegistryError, SplitbuildError
from splitbuild.reference import Reference
from splitbuild.store.registry.transport import (
    ERROR_BODY_LIMIT,
    RegistryTransport,
    error_from_response,
    read_limited,
)

__all__ = ["Endpoint", "next_page"]


class Endpoint:
    """Requests to one repository of a registry, through the run's :class:`RegistryTransport`."""

    def __init__(self, client: RegistryTransport, ref: Reference) -> None:
        self.client = client
        self.ref = ref.repo()
        self.base = f"{client.base_url(ref)}/v2/{self.ref.repository}"
        self._pull = (ref.scope("pull"),)
        self.push = (ref.scope("pull", "push"),)

    @property
    def pull(self) -> tuple[str, ...]:
        """The scopes of a read: push too in a repository the run will write (one token for both)."""
        return self.push if self.ref.name in self.client.written else self._pull

    @property
    def name(self) -> str:
        return self.ref.name

    async def call(
        self,
        method: str,
        url: str,
        *,
        what: str,
        scopes: Sequence[str] | None = None,
        ok: Iterable[int] = (200,),
        headers: dict[str, str] | None = None,
        content: bytes | AsyncIterator[bytes] | None = None,
        missing_ok: bool = False,
        gone_on_retry_ok: bool = False,
        max_body: int | None = None,
        too_large: type[SplitbuildError] = InvalidManifest,
    ) -> httpx.Response | None:
        """One request (retried when transient); None for a 404 when ``missing_ok``.

        ``gone_on_retry_ok`` (for DELETE): a 404 on a retry means an earlier attempt went through
        and only its answer was lost, so it counts as success (None). ``max_body``: read at most
        that many bytes of a successful answer (a manifest, a page of tags), never the whole of an
        oversized one (``too_large`` is the error then).
        """
        expected = set(ok)
        attempts = 0

        async def attempt() -> httpx.Response | None:
            nonlocal attempts
            attempts += 1
            response = await self.send(
                method,
                url,
                what=what,
                scopes=scopes or self.pull,
                headers=headers,
                content=content,
                stream=max_body is not None,
            )
            if max_body is not None:  # read a bounded body, then go on as with a read response
                try:
                    limit = max_body if response.status_code in expected else ERROR_BODY_LIMIT
                    body = await read_limited(
                        response, limit, what, truncate=limit == ERROR_BODY_LIMIT, too_large=too_large
                    )
                finally:
                    await response.aclose()
                response = httpx.Response(
                    response.status_code, headers=response.headers, content=body, request=response.request
                )
            if response.status_code in expected:
                return response
            if response.status_code == 404 and (missing_ok or (gone_on_retry_ok and attempts > 1)):
                return None
            raise error_from_response(response, what)

        return await self.client.retrying(attempt)

    async def send(
        self,
        method: str,
        url: str,
        *,
        what: str,
        scopes: Sequence[str],
        headers: dict[str, str] | None = None,
        content: bytes | AsyncIterator[bytes] | None = None,
        stream: bool = False,
        size: int = 0,
    ) -> httpx.Response:
        """One request to this repository's registry, not retried (:meth:`RegistryTransport.send`:
        ``stream`` leaves the body to the caller, ``size`` is the blob bytes it moves).

        A read that asked for push too (a repository the run will write) and was refused is sent
        again asking for pull alone, and this repository's reads ask for pull alone from then on:
        some token services refuse a token with more than the account may do instead of granting
        what it may (so a run that turns out to write nothing still succeeds; a write is refused)."""
        request = self.client.build(method, url, headers=headers, content=content)
        try:
            return await self.client.send(
                request, registry=self.ref.registry, scopes=scopes, what=what, stream=stream, size=size
            )
        except AuthError:
            widened = (
                method in ("GET", "HEAD")
                and tuple(scopes) == self.push
                and self.ref.name in self.client.written
            )
            if not widened:
                raise
        self.client.written.discard(self.ref.name)
        request = self.client.build(method, url, headers=headers, content=content)
        return await self.client.send(
            request, registry=self.ref.registry, scopes=self._pull, what=what, stream=stream, size=size
        )

    def check_listing(self, what: str, pages: int, entries: int) -> None:
        """A listing that goes on past the page or entry cap is the registry's fault (exit 5)."""
        if pages >= self.client.max_pages:
            raise RegistryError(
                f"{what}: the registry kept sending pages (more than {self.client.max_pages})"
            )
        if entries > self.client.max_entries:
            raise RegistryError(f"{what}: the registry listed more than {self.client.max_entries} entries")


def next_page(response: httpx.Response, visited: set[str], what: str) -> str | None:
    """The ``Link: <...>; rel="next"`` URL; an error when malformed or pointing at a page already read."""
    link = response.links.get("next", {}).get("url")
    if not link:
        return None
    try:
        url = str(httpx.URL(urljoin(str(response.url), link)))
    except (ValueError, httpx.InvalidURL):
        raise RegistryError(f"{what}: malformed Link header from the registry") from None
    if url in visited:
        raise RegistryError(f"{what}: the Link header points back at a page already read")
    return url
