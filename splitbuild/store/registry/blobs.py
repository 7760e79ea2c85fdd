"""Blobs on a registry: existence, verified streaming reads, uploads and cross-repository mounts.

:class:`Blobs` owns ``/v2/<name>/blobs/...``: HEAD, GET streamed through a digest
:class:`~splitbuild.digest.Verifier` under the request deadline, uploads (one PUT, or PATCH chunks
of the client's chunk size then PUT ``?digest=``, each attempt re-opening the source) and mounts
(``POST ?mount=&from=``). A mount is self-contained: :meth:`Blobs.mount` tries the lenders in order
and, when none lends the blob, uploads it in the same call, into the upload session a refused
mount opened (202) where there is one, so a refused mount costs no extra request and nothing is
left behind for a later call.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from urllib.parse import urlencode, urljoin, urlsplit, urlunsplit

import anyio
import httpx

from splitbuild.digest import Verifier, verify_bytes
from splitbuild.errors import AuthError, NotFound, RegistryError
from splitbuild.models import Descriptor
from splitbuild.reference import Reference
from splitbuild.store.base import BlobSource
from splitbuild.store.registry.endpoint import Endpoint
from splitbuild.store.registry.transport import (
    ERROR_BODY_LIMIT,
    deadline_error,
    error_from_response,
    read_limited,
    response_deadline,
    transport_error,
)

__all__ = ["STREAM_CHUNK", "Blobs"]

STREAM_CHUNK = 1024 * 1024


class Blobs:
    """The blobs of one registry repository."""

    def __init__(self, endpoint: Endpoint) -> None:
        self.endpoint = endpoint

    async def has(self, digest: str) -> bool:
        response = await self.endpoint.call(
            "HEAD",
            f"{self.endpoint.base}/blobs/{digest}",
            what=f"{self.endpoint.name}@{digest}",
            missing_ok=True,
        )
        return response is not None

    def open(self, desc: Descriptor) -> AbstractAsyncContextManager[AsyncIterator[bytes]]:
        return self._open(desc)

    @asynccontextmanager
    async def _open(self, desc: Descriptor) -> AsyncIterator[AsyncIterator[bytes]]:
        what = f"{self.endpoint.name}@{desc.digest}"
        url = f"{self.endpoint.base}/blobs/{desc.digest}"

        async def attempt() -> httpx.Response:
            response = await self.endpoint.send(
                "GET", url, what=what, scopes=self.endpoint.pull, stream=True, size=desc.size
            )
            if response.status_code != 200:
                await read_limited(response, ERROR_BODY_LIMIT, what, truncate=True)
                raise error_from_response(response, what)
            return response

        response = await self.endpoint.client.retrying(attempt)
        try:
            yield _verified_stream(response, desc, what)
        finally:
            await response.aclose()

    async def read(self, desc: Descriptor) -> bytes:
        async def attempt() -> bytes:
            chunks = []
            async with self.open(desc) as stream:
                async for chunk in stream:
                    chunks.append(chunk)
            return b"".join(chunks)

        return await self.endpoint.client.retrying(attempt)

    async def mount(self, desc: Descriptor, lenders: Sequence[Reference], blob: BlobSource) -> int | None:
        """Put ``desc`` by mounting it from the first of ``lenders`` (repositories of this registry)
        that lends it; the index of that lender, or None when none did and ``blob`` was uploaded.

        A lender that refuses (401/403/404, as Harbor and others answer mounts) is passed over; one
        that answers 202 opened an upload session instead, which the upload uses if no later
        lender mounts the blob (the registry drops an unused session).
        """
        session: str | None = None
        for index, lender in enumerate(lenders):
            query = urlencode({"mount": desc.digest, "from": lender.repository})
            scopes = (*self.endpoint.push, lender.scope("pull"))
            what = f"mount {desc.digest} from {lender.name} into {self.endpoint.name}"
            try:
                response = await self.endpoint.call(
                    "POST",
                    f"{self.endpoint.base}/blobs/uploads/?{query}",
                    what=what,
                    scopes=scopes,
                    ok=(201, 202),
                )
            except (AuthError, NotFound):
                continue
            assert response is not None
            if response.status_code == 201:
                return index
            location = response.headers.get("Location")
            if location:
                session = urljoin(str(response.url), location)
        await self.put(desc, blob, session=session)
        return None

    async def put(self, desc: Descriptor, source: BlobSource, *, session: str | None = None) -> None:
        """Upload a blob from bytes or a re-openable stream; the first attempt goes into ``session``
        (an upload the registry already opened) when given, each retry into a new one."""
        what = f"upload {desc.digest} to {self.endpoint.name}"
        opened = [session] if session else []

        async def attempt() -> None:
            location = opened.pop() if opened else await self._start_upload(what)
            if desc.size > self.endpoint.client.chunk_size:
                await self._upload_chunked(location, desc, source, what)
            else:
                await self._upload_monolithic(location, desc, source, what)

        await self.endpoint.client.retrying(attempt)

    async def _start_upload(self, what: str) -> str:
        url = f"{self.endpoint.base}/blobs/uploads/"
        response = await self.endpoint.send("POST", url, what=what, scopes=self.endpoint.push)
        if response.status_code != 202:
            raise error_from_response(response, what)
        location: str | None = response.headers.get("Location")
        if not location:
            raise RegistryError(f"{what}: the registry returned no upload location")
        return urljoin(str(response.url), location)

    async def _finish(
        self,
        location: str,
        desc: Descriptor,
        what: str,
        size: int = 0,
        *,
        headers: dict[str, str],
        content: bytes | AsyncIterator[bytes] | None = None,
    ) -> None:
        response = await self.endpoint.send(
            "PUT",
            _with_query(location, digest=desc.digest),
            what=what,
            scopes=self.endpoint.push,
            headers=headers,
            content=content,
            size=size,
        )
        if response.status_code not in (201, 204):
            raise error_from_response(response, what)

    async def _upload_monolithic(
        self, location: str, desc: Descriptor, source: BlobSource, what: str
    ) -> None:
        headers = {"Content-Type": "application/octet-stream", "Content-Length": str(desc.size)}
        if isinstance(source, bytes):
            verify_bytes(source, desc.digest, what=what)
            await self._finish(location, desc, what, desc.size, headers=headers, content=source)
            return
        async with source() as stream:
            await self._finish(location, desc, what, desc.size, headers=headers, content=stream)

    async def _upload_chunked(self, location: str, desc: Descriptor, source: BlobSource, what: str) -> None:
        """PATCH the blob in ``chunk_size`` pieces, then PUT ``?digest=``.

        Each PATCH body is streamed from the source, so at most one read piece is in memory (httpx
        keeps finished requests alive until the garbage collector runs: their bodies must not be
        the chunks themselves).
        """
        async with _open_source(source, desc, what) as stream:
            pieces = aiter(stream)
            pending = b""
            offset = 0
            while offset < desc.size:
                length = min(self.endpoint.client.chunk_size, desc.size - offset)

                async def body(length: int = length) -> AsyncIterator[bytes]:
                    nonlocal pending
                    remaining = length
                    while remaining:
                        if not pending:
                            try:
                                pending = await anext(pieces)
                            except StopAsyncIteration:
                                raise RegistryError(
                                    f"{what}: source ended before {desc.size} bytes"
                                ) from None
                        piece, pending = pending[:remaining], pending[remaining:]
                        remaining -= len(piece)
                        yield piece

                headers = {
                    "Content-Type": "application/octet-stream",
                    "Content-Length": str(length),
                    "Content-Range": f"{offset}-{offset + length - 1}",
                }
                response = await self.endpoint.send(
                    "PATCH",
                    location,
                    what=what,
                    scopes=self.endpoint.push,
                    headers=headers,
                    content=body(),
                    size=length,
                )
                if response.status_code != 202:
                    raise error_from_response(response, what)
                new_location = response.headers.get("Location")
                if new_location:
                    location = urljoin(str(response.url), new_location)
                offset += length
            # Drain the source: its end is where a stream verifies the digest.
            if pending or [piece async for piece in pieces if piece]:
                raise RegistryError(f"{what}: source produced more than {desc.size} bytes")
        await self._finish(location, desc, what, headers={"Content-Length": "0"})


@asynccontextmanager
async def _open_source(
    source: BlobSource, desc: Descriptor, what: str
) -> AsyncIterator[AsyncIterator[bytes]]:
    if not isinstance(source, bytes):
        async with source() as stream:
            yield stream
        return
    verify_bytes(source, desc.digest, what=what)

    async def pieces() -> AsyncIterator[bytes]:
        view = memoryview(source)
        for i in range(0, len(view), STREAM_CHUNK):
            yield bytes(view[i : i + STREAM_CHUNK])

    yield pieces()


async def _verified_stream(response: httpx.Response, desc: Descriptor, what: str) -> AsyncIterator[bytes]:
    verifier = Verifier(desc.digest, desc.size, what=what)
    deadline = response_deadline(response)
    chunks = aiter(response.aiter_bytes(STREAM_CHUNK))
    while True:
        try:
            if deadline is None:
                chunk = await anext(chunks)
            else:
                with anyio.fail_after(max(0.0, deadline[0] - anyio.current_time())):
                    chunk = await anext(chunks)
        except StopAsyncIteration:
            break
        except httpx.RequestError as exc:
            raise transport_error(exc, response.request, what) from None
        except TimeoutError:
            raise deadline_error(response.request, what, deadline[1] if deadline else 0.0) from None
        verifier.update(chunk)
        yield chunk
    verifier.verify()


def _with_query(url: str, **params: str) -> str:
    parts = urlsplit(url)
    query = parts.query + ("&" if parts.query else "") + urlencode(params)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, parts.fragment))
