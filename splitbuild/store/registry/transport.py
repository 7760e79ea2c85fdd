"""Registry transport: the HTTP side every registry request goes through.

:class:`RegistryTransport` owns what one run shares across registries: the ``httpx.AsyncClient``
connection pool, the auth session, the retry policy, per-host concurrency limits, the overall
request deadline, the request counter, and what the run learnt about each registry (native tag
deletion, the referrers API). This module also owns the translation of what goes wrong on the wire
(unexpected statuses, transport failures, deadlines, oversized answers) into splitbuild errors.
It knows nothing of manifests, blobs or tags: :mod:`.endpoint` and the concept modules above it
build their requests on :meth:`RegistryTransport.send`.
"""

from __future__ import annotations

import logging
import os
import ssl
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self, TypeVar

import anyio
import httpx

from splitbuild._http import error_details, read_bounded, redact_url, retry_after
from splitbuild._tls import default_context
from splitbuild._version import __version__
from splitbuild.errors import (
    AuthError,
    ConfigError,
    InvalidManifest,
    NotFound,
    RegistryError,
    SplitbuildError,
)
from splitbuild.reference import DOCKER_HUB, DOCKER_HUB_ENDPOINT, is_loopback
from splitbuild.retry import RetryPolicy

if TYPE_CHECKING:
    from splitbuild.auth import AuthSession, Keychain
    from splitbuild.reference import Reference

__all__ = [
    "DEADLINE",
    "DEADLINE_ENV",
    "DEADLINE_RATE",
    "DEFAULT_CHUNK_SIZE",
    "ERROR_BODY_LIMIT",
    "INSECURE_ENV",
    "MAX_ENTRIES",
    "MAX_PAGES",
    "MAX_REDIRECTS",
    "RETRYABLE_STATUS",
    "RegistryTransport",
    "deadline_error",
    "error_from_response",
    "read_limited",
    "response_deadline",
    "transport_error",
]

T = TypeVar("T")

MAX_REDIRECTS = 5
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
        raise ConfigError(f"`ca_file` {ca_file}: no such file") from None
    except (ssl.SSLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", None) or type(exc).__name__
        raise ConfigError(f"`ca_file` {ca_file}: not a PEM bundle of CA certificates ({reason})") from None
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
            hint="pass the CA that signed the registry's certificate as `ca_file`",
            **common,
        )
    if tls is not None:
        return RegistryError(
            f"{where}: TLS handshake failed ({tls.reason or tls})",
            hint="if the registry serves plain HTTP, allow it with `insecure`",
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


class RegistryTransport:
    """Shared state for talking to registries during one run (what
    :class:`~splitbuild.store.registry.RegistryClient` is, besides handing out repositories).

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
        verify: ssl.SSLContext | bool = True  # unused with a given transport
        if transport is None:
            verify = default_context() if ca_file is None else _trust_with(Path(ca_file))
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
        self.written: set[str] = set()
        """Repositories (``registry/repository``) this run will write: see :meth:`will_write`."""

    async def _count(self, request: httpx.Request) -> None:
        self.requests += 1

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    def will_write(self, refs: Iterable[Reference]) -> None:
        """Say which repositories this run is going to write. Their reads then ask for push access
        too (``pull,push``), so one token serves the reads and the writes (as crane and regclient
        ask for a write target's token), instead of a second token fetch between them. A token
        service grants what the account may do (a pull-only account still reads), and the write is
        refused as before; one that refuses the whole request gets the read again for pull alone
        (:meth:`~splitbuild.store.registry.endpoint.Endpoint.send`)."""
        self.written.update(ref.repo().name for ref in refs)

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


async def read_limited(
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
