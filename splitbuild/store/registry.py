"""Registry backend: the OCI distribution API over one shared ``httpx.AsyncClient``.

:class:`RegistryClient` owns the connection pool, the auth session, the retry policy, per-host
concurrency limits and a request counter; :meth:`RegistryClient.repository` hands out
:class:`RegistryRepository` handles implementing :class:`splitbuild.store.base.Repository`.
"""

from __future__ import annotations

import json
import logging
import os
import re
import secrets
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import quote, urlencode, urljoin, urlsplit, urlunsplit

import anyio
import httpx

from splitbuild._http import error_details, read_bounded, redact_url, retry_after
from splitbuild._tasks import task_group
from splitbuild._version import __version__
from splitbuild.digest import Verifier, compute, verify_bytes
from splitbuild.errors import (
    AuthError,
    ConfigError,
    InvalidManifest,
    NotFound,
    RegistryError,
    SplitbuildError,
)
from splitbuild.models import (
    MANIFEST_ACCEPT,
    MAX_MANIFEST_SIZE,
    OCI_EMPTY,
    OCI_INDEX,
    OCI_MANIFEST,
    Descriptor,
    Manifest,
)
from splitbuild.reference import DOCKER_HUB, DOCKER_HUB_ENDPOINT, is_loopback
from splitbuild.referrers import only_type, referrer_descriptor, referrers_tag, with_referrer
from splitbuild.retry import RetryPolicy
from splitbuild.store.base import BlobSource, Precondition, TagChanged

if TYPE_CHECKING:
    from splitbuild.auth import AuthSession, Keychain
    from splitbuild.reference import Reference

__all__ = [
    "INSECURE_ENV",
    "RegistryClient",
    "RegistryRepository",
    "deletion_help",
    "placeholder_manifest",
]

T = TypeVar("T")

_TAG_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")

MAX_REDIRECTS = 5
MAX_PAGE_SIZE = 32 * 1024 * 1024
"""The most a page of tags may weigh (a million tags of 32 characters)."""
ERROR_BODY_LIMIT = 64 * 1024
"""The most read of any answer whose body is not the object asked for (errors, PUT/POST answers)."""
DEADLINE = 120.0
"""Overall deadline of one request (redirects, auth, headers and body), on top of the per-phase
timeouts; a request moving a blob gets one more second per ``DEADLINE_RATE`` bytes of it."""
DEADLINE_RATE = 256 * 1024
DEADLINE_ENV = "SPLITBUILD_REQUEST_DEADLINE"
MAX_PAGES = 10_000
"""The most pages one paginated listing (tags, referrers) may take."""
MAX_ENTRIES = 1_000_000
"""The most entries (tags, referrers) one listing may return."""
_DEADLINE_KEY = "splitbuild.deadline"
_log = logging.getLogger("splitbuild.http")


def _origin_of(url: httpx.URL) -> tuple[str, str, int | None]:
    port = url.port or (443 if url.scheme == "https" else 80)
    return (url.scheme, url.host.lower(), port)


INSECURE_ENV = "SPLITBUILD_INSECURE_REGISTRIES"
"""Comma-separated registry hosts (``host[:port]``) that may be reached over plain HTTP."""

RETRYABLE_STATUS = frozenset({408, 429, 500, 502, 503, 504})
DEFAULT_CHUNK_SIZE = 64 * 1024 * 1024
STREAM_CHUNK = 1024 * 1024


def error_from_response(response: httpx.Response, what: str) -> RegistryError | NotFound:
    """Turn an unexpected response into the matching error; ``what`` names the object at fault."""
    request = response.request
    status = response.status_code
    details = error_details(response)
    codes = ", ".join(d.code for d in details if d.code)
    detail = f" {codes}" if codes else ""
    message = f"{what}: {request.method} {redact_url(request.url)}: {status}{detail}"
    first = next((d.message for d in details if d.message), "")
    if first:
        message += f" ({first[:200]})"
    if status == 404:
        return NotFound(message)
    if status in (401, 403):
        return AuthError(
            message, status=status, method=request.method, url=redact_url(request.url), details=details
        )
    hint = None
    if status == 405 and request.method == "DELETE":
        hint = "this registry does not allow deletion through the registry API"
    return RegistryError(
        message,
        status=status,
        method=request.method,
        url=redact_url(request.url),
        details=details,
        retryable=status in RETRYABLE_STATUS,
        retry_after=retry_after(response) if status in (429, 503) else None,
        hint=hint,
    )


def _deadline_setting(deadline: float | None, env: Mapping[str, str]) -> float:
    if deadline is not None:
        if not deadline > 0:
            raise ConfigError(f"the request deadline must be a positive number of seconds, not {deadline}")
        return float(deadline)
    text = env.get(DEADLINE_ENV, "").strip()
    if not text:
        return DEADLINE
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not 0 < value < 10**7:
        raise ConfigError(f"{DEADLINE_ENV} must be a positive number of seconds, not {text[:40]!r}")
    return value


def deadline_error(request: httpx.Request, what: str, seconds: float) -> RegistryError:
    return RegistryError(
        f"{what}: {request.method} {redact_url(request.url)}: no complete answer within the "
        f"{seconds:.0f} s request deadline",
        method=request.method,
        url=redact_url(request.url),
    )


def response_deadline(response: httpx.Response) -> tuple[float, float] | None:
    """(the :func:`anyio.current_time` by which a streamed body must be read, the seconds allowed)."""
    found = response.extensions.get(_DEADLINE_KEY)
    return found if isinstance(found, tuple) else None


def _trust_with(ca_file: Path) -> ssl.SSLContext:
    """The default trust (certifi, or ``SSL_CERT_FILE``/``SSL_CERT_DIR``) plus the CAs in ``ca_file``."""
    context = httpx.create_ssl_context(trust_env=True)
    try:
        context.load_verify_locations(cafile=str(ca_file))
    except FileNotFoundError:
        raise ConfigError(f"--ca-file {ca_file}: no such file") from None
    except (ssl.SSLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", None) or type(exc).__name__
        raise ConfigError(f"--ca-file {ca_file}: not a PEM bundle of CA certificates ({reason})") from None
    return context


def _ssl_cause(exc: BaseException) -> ssl.SSLError | None:
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLError):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


def transport_error(exc: httpx.RequestError, request: httpx.Request, what: str) -> RegistryError:
    """The one place httpx's request errors become :class:`RegistryError` (retryable or not)."""
    where = f"{what}: {request.method} {redact_url(request.url)}"
    common: dict[str, Any] = {"method": request.method, "url": redact_url(request.url)}
    if isinstance(exc, httpx.TimeoutException):
        return RegistryError(f"{where}: timed out ({type(exc).__name__})", retryable=True, **common)
    if isinstance(exc, httpx.TooManyRedirects):
        return RegistryError(f"{where}: too many redirects", **common)
    if isinstance(exc, httpx.DecodingError):
        return RegistryError(f"{where}: the response body could not be decoded ({exc})", **common)
    tls = _ssl_cause(exc)
    if isinstance(tls, ssl.SSLCertVerificationError):
        return RegistryError(
            f"{where}: TLS certificate verify failed: {tls.verify_message} ({tls.reason})",
            hint="pass --ca-file FILE with the CA that signed the registry's certificate",
            **common,
        )
    if tls is not None:
        return RegistryError(
            f"{where}: TLS handshake failed ({tls.reason or tls})",
            hint="if the registry serves plain HTTP, allow it with --insecure-registry HOST",
            **common,
        )
    unreachable = _unreachable(exc)
    if unreachable is not None:
        address = request.url.netloc.decode("ascii", errors="replace")
        hint = (
            f"check the registry address and that a registry is listening on {address}"
            if unreachable == "connection refused"
            else f"check the registry name: {request.url.host} cannot be resolved"
        )
        return RegistryError(f"{where}: {unreachable}", hint=hint, **common)
    reason = str(exc) or type(exc).__name__
    return RegistryError(f"{where}: {reason}", retryable=True, **common)


def _unreachable(exc: BaseException) -> str | None:
    """``connection refused`` or ``unknown host`` when that is why ``exc`` happened: not transient,
    so not retried (a registry that is down or misnamed fails at once, as skopeo does)."""
    import socket

    seen: list[BaseException] = []
    todo: list[BaseException] = [exc]
    while todo and len(seen) < 32:
        current = todo.pop()
        seen.append(current)
        todo.extend(e for e in (current.__cause__, current.__context__) if e is not None)
        if isinstance(current, BaseExceptionGroup):
            todo.extend(current.exceptions)
    resolution = next((e for e in seen if isinstance(e, socket.gaierror)), None)
    if resolution is not None:
        return f"unknown host ({resolution.strerror or 'name resolution failed'})"
    errors = [e for e in seen if isinstance(e, OSError) and type(e) is not OSError]
    if errors and all(isinstance(e, ConnectionRefusedError) for e in errors):
        return "connection refused"
    return None


class _Deadline:
    """The overall deadline of one request: ``seconds`` from the moment it first got a slot."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.at: float | None = None

    def start(self) -> None:
        if self.at is None:
            self.at = anyio.current_time() + self.seconds

    def left(self) -> float:
        self.start()
        assert self.at is not None
        return max(0.0, self.at - anyio.current_time())


class RegistryClient:
    """Shared state for talking to registries during one run.

    Keyword-only settings (defaults): ``keychain`` (credentials from the environment, docker and
    podman config), ``insecure`` (hosts allowed over plain HTTP besides loopback; also read from
    ``SPLITBUILD_INSECURE_REGISTRIES``), ``ca_file`` (extra CA bundle for TLS), ``timeout`` (30 s per
    request phase), ``retry`` (:class:`RetryPolicy`: 5 attempts, 120 s budget), ``per_host`` (16
    concurrent requests per registry), ``chunk_size`` (uploads larger than this go in chunks of this
    size; 64 MiB), ``page_size`` (tags per page when listing; 1000, ECR's maximum), ``deadline``
    (overall seconds per request, 120 s plus 1 s per 256 KiB of a blob moved; also read from
    ``SPLITBUILD_REQUEST_DEADLINE``), ``max_pages`` and ``max_entries`` (the most pages and entries one
    listing may take: 10,000 and 1,000,000), ``transport`` (for tests).
    """

    def __init__(
        self,
        *,
        keychain: Keychain | None = None,
        insecure: Iterable[str] = (),
        ca_file: str | Path | None = None,
        timeout: float = 30.0,
        retry: RetryPolicy | None = None,
        per_host: int = 16,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        page_size: int = 1000,
        deadline: float | None = None,
        max_pages: int = MAX_PAGES,
        max_entries: int = MAX_ENTRIES,
        transport: httpx.AsyncBaseTransport | None = None,
        env: Mapping[str, str] | None = None,
    ) -> None:
        from splitbuild.auth import AuthSession, default_keychain

        environ = os.environ if env is None else env
        self.insecure = {h.strip() for h in insecure if h.strip()}
        self.insecure |= {h.strip() for h in environ.get(INSECURE_ENV, "").split(",") if h.strip()}
        self.retry = retry or RetryPolicy.from_env(environ)
        self.chunk_size = chunk_size
        self.page_size = page_size
        self.deadline = _deadline_setting(deadline, environ)
        self.max_pages = max_pages
        self.max_entries = max_entries
        self.per_host = per_host
        self.requests = 0
        self.auth: AuthSession = AuthSession(
            keychain if keychain is not None else default_keychain(environ), token_timeout=timeout
        )
        verify: ssl.SSLContext | bool = True if ca_file is None else _trust_with(Path(ca_file))
        self._http = httpx.AsyncClient(
            timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),
            limits=httpx.Limits(max_connections=64, max_keepalive_connections=32),
            verify=verify,
            transport=transport,
            follow_redirects=False,
            headers={"User-Agent": f"splitbuild/{__version__}"},
            event_hooks={"request": [self._count]},
        )
        self._limiters: dict[str, anyio.CapacityLimiter] = {}
        self._locks: dict[str, anyio.Lock] = {}
        self.native_tag_delete: dict[str, bool] = {}
        """Per registry: whether ``DELETE /manifests/<tag>`` works (learnt on first use)."""
        self.referrers_api: dict[str, bool] = {}
        """Per registry: whether it has the OCI referrers API (learnt from the first answer)."""

    async def _count(self, request: httpx.Request) -> None:
        self.requests += 1

    async def __aenter__(self) -> RegistryClient:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    def repository(self, ref: Reference) -> RegistryRepository:
        return RegistryRepository(self, ref)

    def base_url(self, ref: Reference) -> str:
        return self.origin(ref.registry)

    def origin(self, registry: str) -> str:
        """``scheme://host[:port]`` of a registry: the only place its credentials are sent."""
        host = DOCKER_HUB_ENDPOINT if registry == DOCKER_HUB else registry
        plain = is_loopback(host) or host in self.insecure or registry in self.insecure
        return f"{'http' if plain else 'https'}://{host}"

    def limiter(self, host: str) -> anyio.CapacityLimiter:
        limiter = self._limiters.get(host)
        if limiter is None:
            limiter = self._limiters[host] = anyio.CapacityLimiter(self.per_host)
        return limiter

    def lock(self, key: str) -> anyio.Lock:
        """The lock serialising work on ``key`` in this run (a referrers tag, a first probe)."""
        lock = self._locks.get(key)
        if lock is None:
            lock = self._locks[key] = anyio.Lock()
        return lock

    async def send(
        self,
        request: httpx.Request,
        *,
        registry: str,
        scopes: Sequence[str],
        what: str,
        stream: bool = False,
        size: int = 0,
    ) -> httpx.Response:
        """Send one request, translating transport failures into ``RegistryError``.

        The whole exchange (redirects, token requests, headers, and the body unless ``stream``) must
        end within the request's deadline (:meth:`deadline_for` ``size``, the bytes of blob it
        moves); a streamed body is read by the caller under the same deadline
        (:func:`response_deadline`). Without ``stream``, at most ``ERROR_BODY_LIMIT`` bytes of the
        body are read (the answer to a PUT, POST, DELETE or HEAD, or an error): never a whole
        endless one.

        Credentials (and tokens) go only to the registry's own origin: a ``Link``, ``Location`` or
        redirect naming another host is followed without them. Redirects of GET and HEAD are
        followed here (at most 5), not by httpx, so that the auth flow sees every redirect of a
        token service itself.
        """
        clock = _Deadline(self.deadline_for(size))
        try:
            response = await self._send(request, registry=registry, scopes=scopes, what=what, clock=clock)
            if not stream:
                try:
                    with anyio.fail_after(clock.left()):
                        await read_bounded(response, ERROR_BODY_LIMIT)
                except httpx.RequestError as exc:
                    raise transport_error(exc, response.request, what) from None
        except TimeoutError:
            raise deadline_error(request, what, clock.seconds) from None
        response.extensions[_DEADLINE_KEY] = (clock.at, clock.seconds)
        return response

    def deadline_for(self, size: int = 0) -> float:
        """Seconds one request may take: the deadline, plus one per ``DEADLINE_RATE`` bytes moved."""
        return self.deadline + max(0, size) / DEADLINE_RATE

    async def _send(
        self, request: httpx.Request, *, registry: str, scopes: Sequence[str], what: str, clock: _Deadline
    ) -> httpx.Response:
        own = _origin_of(httpx.URL(self.origin(registry)))
        for _ in range(MAX_REDIRECTS + 1):
            auth = self.auth.auth_for(registry, scopes) if _origin_of(request.url) == own else None
            _log.debug("HTTP Request: %s %s", request.method, redact_url(request.url))
            async with self.limiter(request.url.netloc.decode("ascii")):
                clock.start()  # time spent queueing for a connection slot does not count
                try:
                    with anyio.fail_after(clock.left()):
                        response = await self._http.send(request, auth=auth, stream=True)
                except httpx.RequestError as exc:
                    raise transport_error(exc, request, what) from None
            _log.debug(
                "HTTP Response: %s %s: %s", request.method, redact_url(request.url), response.status_code
            )
            if not (response.is_redirect and request.method in ("GET", "HEAD")):
                return response
            await response.aclose()
            try:
                target = response.url.join(response.headers["Location"])
            except (httpx.InvalidURL, ValueError, KeyError):
                raise RegistryError(
                    f"{what}: {request.method} {redact_url(request.url)}: bad redirect"
                ) from None
            headers = {k: v for k, v in request.headers.items() if k.lower() not in ("authorization", "host")}
            request = self.build(request.method, str(target), headers=headers)
        raise RegistryError(f"{what}: {request.method} {redact_url(request.url)}: too many redirects")

    def build(self, method: str, url: str, **kwargs: Any) -> httpx.Request:
        return self._http.build_request(method, url, **kwargs)

    async def retrying(self, fn: Callable[[], Awaitable[T]]) -> T:
        return await self.retry.call(fn)


class RegistryRepository:
    """One repository on a registry. Implements :class:`splitbuild.store.base.Repository`,
    ``Mounter``, ``TagDeleter`` and ``ReferrerLister``."""

    def __init__(self, client: RegistryClient, ref: Reference) -> None:
        self.client = client
        self.ref = ref.repo()
        self._base = f"{client.base_url(ref)}/v2/{self.ref.repository}"
        self._pull = (ref.scope("pull"),)
        self._push = (ref.scope("pull", "push"),)
        self._pending_upload: dict[str, str] = {}
        self._empty_blob_present = False
        self._etags: dict[str, tuple[str, str]] = {}
        """Tag to (digest, ETag) from its last HEAD: the ``If-Match`` of a conditional write."""

    def __repr__(self) -> str:
        return f"RegistryRepository({self.name!r})"

    @property
    def name(self) -> str:
        return self.ref.name

    @property
    def location(self) -> str:
        return f"registry:{self.ref.registry}"

    async def _call(
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
            request = self.client.build(method, url, headers=headers, content=content)
            response = await self.client.send(
                request,
                registry=self.ref.registry,
                scopes=scopes or self._pull,
                what=what,
                stream=max_body is not None,
            )
            if max_body is not None:  # read a bounded body, then go on as with a read response
                try:
                    limit = max_body if response.status_code in expected else ERROR_BODY_LIMIT
                    body = await _read_limited(
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

    # -- manifests -------------------------------------------------------------------------

    async def head_manifest(self, ref: str) -> Descriptor | None:
        what = f"{self.name}:{ref}" if ":" not in ref else f"{self.name}@{ref}"
        response = await self._call(
            "HEAD",
            f"{self._base}/manifests/{ref}",
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
            manifest = await self.get_manifest(ref)
            return manifest.descriptor()
        if ref.startswith("sha") and ":" in ref and digest != ref:
            raise RegistryError(f"{what}: registry answered with digest {digest}")
        if ":" not in ref and (etag := response.headers.get("ETag")):
            self._etags[ref] = (digest, etag)
        return Descriptor.model_validate({"mediaType": media_type, "digest": digest, "size": int(length)})

    async def get_manifest(self, ref: str) -> Manifest:
        found = await self._fetch_manifest(ref)
        assert found is not None
        return found[0]

    async def _fetch_manifest(
        self, ref: str, *, missing_ok: bool = False
    ) -> tuple[Manifest, httpx.Response] | None:
        by_digest = ":" in ref
        what = f"{self.name}@{ref}" if by_digest else f"{self.name}:{ref}"
        response = await self._call(
            "GET",
            f"{self._base}/manifests/{ref}",
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
        return manifest, response

    async def put_manifest(
        self, manifest: Manifest, tag: str | None = None, *, precondition: Precondition | None = None
    ) -> None:
        """PUT the manifest. One with a ``subject`` that the registry did not process (no
        ``OCI-Subject`` in the answer: no referrers API) is then added to the referrers tag index.

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
            response = await self._put(manifest, tag, condition)
        except RegistryError as exc:
            if condition and exc.status == 412:
                what = f"{self.name}:{tag}"
                raise TagChanged(f"{what}: the tag changed since it was read; not written") from None
            raise
        subject = manifest.parsed.subject
        if subject is None:
            return
        if response.headers.get("OCI-Subject"):
            self.client.referrers_api[self.ref.registry] = True
        else:
            await self._list_in_referrers_tag(manifest, subject.digest)

    async def _put(
        self, manifest: Manifest, tag: str | None, headers: dict[str, str] | None = None
    ) -> httpx.Response:
        ref = tag or manifest.digest
        what = f"{self.name}:{tag}" if tag else f"{self.name}@{manifest.digest}"
        response = await self._call(
            "PUT",
            f"{self._base}/manifests/{ref}",
            what=what,
            scopes=self._push,
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

    async def delete_manifest(self, ref: str) -> None:
        """``DELETE /manifests/<ref>``. A 405 (deletion not offered) names the registry's own API."""
        what = f"{self.name}@{ref}" if ":" in ref else f"{self.name}:{ref}"
        scopes = (self.ref.scope("pull", "push", "delete"),)
        try:
            await self._call(
                "DELETE",
                f"{self._base}/manifests/{ref}",
                what=what,
                scopes=scopes,
                ok=(200, 202, 204),
                gone_on_retry_ok=True,
            )
        except RegistryError as exc:
            if exc.status != 405:
                raise
            raise RegistryError(
                f"{what}: {self.ref.registry} does not allow deletion through the registry API "
                "(405 Method Not Allowed)",
                status=405,
                method="DELETE",
                url=exc.url,
                details=exc.details,
                hint=deletion_help(self.ref, None if ":" in ref else ref),
            ) from None

    async def delete_tag(self, tag: str) -> str:
        """Remove ``tag`` and keep its manifest (the tag-delete ladder).

        1. ``DELETE /manifests/<tag>`` as the OCI distribution spec allows (distribution 3, zot, ...).
        2. Where the registry refuses that other than with 405 (distribution 2.x answers
           400 DIGEST_INVALID), point the tag at a unique placeholder manifest and delete the
           placeholder by digest: the registry drops the tag with it, the old manifest stays. If that
           delete fails, the tag is put back where it was.

        A 405 means no deletion through the registry API at all: raised, naming the registry's own
        API. Which rung works is remembered per registry. Returns ``"tag"`` or ``"placeholder"``.
        """
        registry = self.ref.registry
        if self.client.native_tag_delete.get(registry, True):
            try:
                await self.delete_manifest(tag)
            except NotFound:
                if await self.head_manifest(tag) is None:
                    raise NotFound(f"{self.name}:{tag}: tag not found") from None
            except RegistryError as exc:
                if isinstance(exc, AuthError) or exc.status in (None, 405) or exc.retryable:
                    raise
            else:
                self.client.native_tag_delete[registry] = True
                return "tag"
            self.client.native_tag_delete[registry] = False
        await self._delete_tag_by_placeholder(tag)
        return "placeholder"

    async def _delete_tag_by_placeholder(self, tag: str) -> None:
        what = f"{self.name}:{tag}"
        current = await self.head_manifest(tag)
        if current is None:
            raise NotFound(f"{what}: tag not found")
        placeholder = placeholder_manifest(tag)
        empty = placeholder.image().config
        if not self._empty_blob_present and not await self.has_blob(empty.digest):
            await self.put_blob(empty, EMPTY_JSON)
        self._empty_blob_present = True
        original = await self.get_manifest(current.digest)
        placed = False
        try:
            # Inside the try: a cancellation while the PUT's answer is awaited may find it applied.
            await self.put_manifest(placeholder, tag)
            placed = True
            await self.delete_manifest(placeholder.digest)
        except BaseException as exc:
            # Never leave the tag on the placeholder, even when cancelled (Ctrl-C, a cancelled CI
            # job): put it back, shielded from the cancellation, then report.
            with anyio.CancelScope(shield=True):
                await self.put_manifest(original, tag)
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

    async def list_tags(self) -> list[str]:
        tags: list[str] = []
        visited: set[str] = set()
        url: str | None = f"{self._base}/tags/list?{urlencode({'n': self.client.page_size})}"
        what = f"{self.name} tags"
        while url is not None:
            self._check_listing(what, len(visited), len(tags))
            response = await self._call(
                "GET", url, what=what, max_body=MAX_PAGE_SIZE, too_large=RegistryError
            )
            assert response is not None
            visited.add(url)
            tags.extend(self._tag_page(response))
            url = _next_page(response, visited, what)
        self._check_listing(what, 0, len(tags))
        return tags

    def _check_listing(self, what: str, pages: int, entries: int) -> None:
        """A listing that goes on past the page or entry cap is the registry's fault (exit 5)."""
        if pages >= self.client.max_pages:
            raise RegistryError(
                f"{what}: the registry kept sending pages (more than {self.client.max_pages})"
            )
        if entries > self.client.max_entries:
            raise RegistryError(f"{what}: the registry listed more than {self.client.max_entries} entries")

    def _tag_page(self, response: httpx.Response) -> list[str]:
        try:
            body = response.json()
        except ValueError:
            raise RegistryError(f"{self.name} tags: the registry returned invalid JSON") from None
        page = body.get("tags") if isinstance(body, dict) else None
        if page is None:
            return []
        if not isinstance(page, list) or not all(isinstance(t, str) and _TAG_RE.fullmatch(t) for t in page):
            raise RegistryError(
                f"{self.name} tags: the registry returned something that is not a list of tags"
            )
        return page

    # -- referrers -------------------------------------------------------------------------

    async def list_referrers(self, digest: str, artifact_type: str | None = None) -> list[Descriptor]:
        """The referrers of ``digest``: from the referrers API, else from the referrers tag index.

        Whether the registry has the API is learnt from its first answer (a 404 says it has not) and
        remembered for the run. The first lookup on a registry asks the API and reads the tag at
        once, and the others wait for it: a registry costs one request more per run (the tag read
        where the API answered, or the API's 404), not one more per manifest, and one round trip.
        """
        registry = self.ref.registry
        if registry not in self.client.referrers_api:
            async with self.client.lock(f"referrers-api:{registry}"):
                if registry not in self.client.referrers_api:
                    return await self._first_referrers(digest, artifact_type)
        if self.client.referrers_api[registry]:
            found = await self._referrers_api(digest, artifact_type)
            if found is not None:
                return found
        return await self._referrers_tag(digest, artifact_type)

    async def _first_referrers(self, digest: str, artifact_type: str | None) -> list[Descriptor]:
        from_api: list[Descriptor] | None = None
        from_tag: list[Descriptor] = []

        async def api() -> None:
            nonlocal from_api
            from_api = await self._referrers_api(digest, artifact_type)

        async def tag() -> None:
            nonlocal from_tag
            from_tag = await self._referrers_tag(digest, artifact_type)

        async with task_group() as tg:
            tg.start_soon(api)
            tg.start_soon(tag)
        self.client.referrers_api[self.ref.registry] = from_api is not None
        return from_api if from_api is not None else from_tag

    async def _referrers_api(self, digest: str, artifact_type: str | None) -> list[Descriptor] | None:
        """``GET /referrers/<digest>`` (every page); None when the registry has no referrers API
        (404, or an answer that is not an image index, as from a login page)."""
        what = f"{self.name} referrers of {digest}"
        query = f"?{urlencode({'artifactType': artifact_type})}" if artifact_type else ""
        url: str | None = f"{self._base}/referrers/{digest}{query}"
        found: list[Descriptor] = []
        filtered = artifact_type is not None
        first = True
        visited: set[str] = set()
        while url is not None:
            self._check_listing(what, len(visited), len(found))
            response = await self._call(
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
            url = _next_page(response, visited, what)
            first = False
        self._check_listing(what, 0, len(found))
        # A registry that did not apply the filter says so by leaving the header out.
        return found if filtered or artifact_type is None else only_type(found, artifact_type)

    async def _referrers_tag(self, digest: str, artifact_type: str | None) -> list[Descriptor]:
        """The referrers tag index of ``digest``; none when the tag is absent or not an index."""
        try:
            found = await self._fetch_manifest(referrers_tag(digest), missing_ok=True)
        except InvalidManifest:
            return []
        if found is None or not found[0].is_index:
            return []
        return only_type(found[0].children(), artifact_type)

    async def _list_in_referrers_tag(self, manifest: Manifest, subject: str) -> None:
        """Add ``manifest`` to the referrers tag index of ``subject`` (read, add, write back).

        This is racy, as the spec says: two clients adding a referrer to the same subject at the
        same time can each write an index without the other's. The write is conditional
        (``If-Match`` on the ETag read, ``If-None-Match: *`` for a new tag) so that a registry
        honouring those refuses the stale write with 412, and the update is done again;
        distribution 2.x ignores them. Within one run, updates of one tag are serialised.
        """
        tag = referrers_tag(subject)
        what = f"{self.name}:{tag}"
        entry = referrer_descriptor(manifest)
        async with self.client.lock(f"tag:{self.name}:{tag}"):
            for _ in range(3):
                found = await self._fetch_manifest(tag, missing_ok=True)
                current, response = found if found is not None else (None, None)
                updated = with_referrer(current, entry, what=what)
                if updated is None:
                    return
                etag = response.headers.get("ETag") if response is not None else None
                condition = {"If-Match": etag} if etag else {}
                if current is None:
                    condition = {"If-None-Match": "*"}
                try:
                    await self._put(updated, tag, condition)
                except RegistryError as exc:
                    if exc.status == 412:
                        continue
                    raise
                return
        raise RegistryError(f"{what}: the referrers index kept changing while adding {manifest.digest}")

    # -- blobs -----------------------------------------------------------------------------

    async def has_blob(self, digest: str) -> bool:
        response = await self._call(
            "HEAD", f"{self._base}/blobs/{digest}", what=f"{self.name}@{digest}", missing_ok=True
        )
        return response is not None

    def open_blob(self, desc: Descriptor) -> AbstractAsyncContextManager[AsyncIterator[bytes]]:
        return self._open_blob(desc)

    @asynccontextmanager
    async def _open_blob(self, desc: Descriptor) -> AsyncIterator[AsyncIterator[bytes]]:
        what = f"{self.name}@{desc.digest}"
        url = f"{self._base}/blobs/{desc.digest}"

        async def attempt() -> httpx.Response:
            request = self.client.build("GET", url)
            response = await self.client.send(
                request, registry=self.ref.registry, scopes=self._pull, what=what, stream=True, size=desc.size
            )
            if response.status_code != 200:
                await _read_limited(response, ERROR_BODY_LIMIT, what, truncate=True)
                raise error_from_response(response, what)
            return response

        response = await self.client.retrying(attempt)
        try:
            yield _verified_stream(response, desc, what)
        finally:
            await response.aclose()

    async def read_blob(self, desc: Descriptor) -> bytes:
        async def attempt() -> bytes:
            chunks = []
            async with self.open_blob(desc) as stream:
                async for chunk in stream:
                    chunks.append(chunk)
            return b"".join(chunks)

        return await self.client.retrying(attempt)

    async def mount_blob(self, desc: Descriptor, source: Any) -> bool:
        """Cross-repository mount (``POST ?mount=&from=``); same registry only.

        On 202 the registry opened an upload session instead; it is kept for the upload that follows.
        Refusals (401/403/404) fall back to an upload, as Harbor and others answer those to mounts.
        """
        if not isinstance(source, RegistryRepository) or source.ref.registry != self.ref.registry:
            return False
        query = urlencode({"mount": desc.digest, "from": source.ref.repository})
        scopes = (*self._push, source.ref.scope("pull"))
        what = f"mount {desc.digest} from {source.name} into {self.name}"
        try:
            response = await self._call(
                "POST", f"{self._base}/blobs/uploads/?{query}", what=what, scopes=scopes, ok=(201, 202)
            )
        except (AuthError, NotFound):
            return False
        assert response is not None
        if response.status_code == 201:
            return True
        location = response.headers.get("Location")
        if location:
            self._pending_upload[desc.digest] = urljoin(str(response.url), location)
        return False

    async def put_blob(self, desc: Descriptor, source: BlobSource) -> None:
        what = f"upload {desc.digest} to {self.name}"

        async def attempt() -> None:
            location = self._pending_upload.pop(desc.digest, None)
            if location is None:
                location = await self._start_upload(what)
            if desc.size > self.client.chunk_size:
                await self._upload_chunked(location, desc, source, what)
            else:
                await self._upload_monolithic(location, desc, source, what)

        await self.client.retrying(attempt)

    async def _start_upload(self, what: str) -> str:
        request = self.client.build("POST", f"{self._base}/blobs/uploads/")
        response = await self.client.send(request, registry=self.ref.registry, scopes=self._push, what=what)
        if response.status_code != 202:
            raise error_from_response(response, what)
        location: str | None = response.headers.get("Location")
        if not location:
            raise RegistryError(f"{what}: the registry returned no upload location")
        return urljoin(str(response.url), location)

    async def _finish(self, location: str, desc: Descriptor, what: str, size: int = 0, **kwargs: Any) -> None:
        request = self.client.build("PUT", _with_query(location, digest=desc.digest), **kwargs)
        response = await self.client.send(
            request, registry=self.ref.registry, scopes=self._push, what=what, size=size
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
                length = min(self.client.chunk_size, desc.size - offset)

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
                request = self.client.build("PATCH", location, headers=headers, content=body())
                response = await self.client.send(
                    request, registry=self.ref.registry, scopes=self._push, what=what, size=length
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


def deletion_help(ref: Reference, tag: str | None = None) -> str:
    """What to use instead when a registry answers 405 to DELETE (its own API, or the setting)."""
    host = ref.registry
    owner, _, package = ref.repository.partition("/")
    if host == "ghcr.io":
        path = f"/orgs/{owner}/packages/container/{quote(package or owner, safe='')}/versions"
        return (
            f"GHCR deletes through the GitHub Packages API: find the version id with `gh api {path}`, "
            f"then `gh api -X DELETE {path}/VERSION_ID` (a personal account uses /user/packages/...)"
        )
    if host == "docker.io":
        target = f"tags/{tag}/" if tag else "tags/TAG/"
        return (
            "Docker Hub deletes tags through its own API: DELETE "
            f"https://hub.docker.com/v2/repositories/{ref.repository}/{target} with a Hub token, "
            "or in the web UI"
        )
    if ".dkr.ecr." in host:
        ident = f"imageTag={tag}" if tag else "imageDigest=DIGEST"
        return (
            "ECR deletes through its API: aws ecr batch-delete-image "
            f"--repository-name {ref.repository} --image-ids {ident}"
        )
    return (
        "the registry has deletion turned off or only offers it in its own API "
        "(CNCF distribution: set REGISTRY_STORAGE_DELETE_ENABLED=true)"
    )


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


async def _read_limited(
    response: httpx.Response,
    limit: int,
    what: str,
    *,
    truncate: bool = False,
    too_large: type[SplitbuildError] = InvalidManifest,
) -> bytes:
    """At most ``limit`` bytes of a streamed body, under the request's deadline: more is a
    ``too_large`` error (or, with ``truncate``, dropped unread)."""
    deadline = response_deadline(response)
    try:
        body, more = await read_bounded(response, limit, deadline=deadline[0] if deadline else None)
    except httpx.RequestError as exc:
        raise transport_error(exc, response.request, what) from None
    except TimeoutError:
        raise deadline_error(response.request, what, deadline[1] if deadline else 0.0) from None
    if more and not truncate:
        raise too_large(f"{what}: the registry's answer exceeds the {_mib(limit)} limit")
    return body


def _mib(size: int) -> str:
    return f"{size // (1024 * 1024)} MiB" if size % (1024 * 1024) == 0 else f"{size} bytes"


def _next_page(response: httpx.Response, visited: set[str], what: str) -> str | None:
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
