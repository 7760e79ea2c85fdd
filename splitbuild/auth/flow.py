"""Registry auth as an ``httpx.Auth`` flow: bearer tokens, basic auth, one shared session.

:class:`AuthSession` holds what is learnt during a run: per registry host the challenge
(scheme, realm, service), per registry the credential, and the tokens, cached per
(registry, credential, scope set). :meth:`AuthSession.auth_for` gives the ``httpx.Auth`` to pass
with each request. The flow:

* host not seen yet: send the request as is (a request with a streamed body is preceded by a
  ``GET /v2/`` instead, since it cannot be sent twice). Concurrent first requests to one host
  wait for the first answer, so only one of them takes the 401;
* a challenge known for the host: authorise up front (a cached token, or a token fetched now),
  so later requests cost no extra round trip;
* 401: remember the challenge, fetch a token for the requested scopes plus the challenge's
  (``GET`` with basic credentials or anonymous; ``POST grant_type=refresh_token`` with an identity
  token, falling back to ``GET`` on 404), resend. A cached token that is refused is replaced
  once. A 401 on a request that carried a token fetched for it (unless the challenge names
  scopes that token was not asked for), basic credentials or a registry token raises
  :class:`~splitbuild.errors.AuthError` naming the registry and the scope refused; so does a 403.
  Responses from another host (after a redirect) are returned as they are;
* token service failures: 401/403 raise ``AuthError``; 408, 429 and 5xx raise a retryable
  ``RegistryError`` (with ``retry_after``). Connection errors to the token service surface as
  ``httpx.TransportError`` for the caller's one translation point.

Concurrent requests needing the same token share one fetch (a lock per token key). The decision
logic is one generator (:meth:`RegistryAuth._flow`) driven by the async driver, which adds the
locks, the thread for credential helpers, and the body reads (there is no sync driver).
"""

from __future__ import annotations

import enum
import logging
import threading
import time
from collections.abc import AsyncGenerator, Callable, Generator, Hashable, Sequence
from dataclasses import dataclass
from typing import Any

import anyio
import anyio.to_thread
import httpx

from splitbuild._http import TRUNCATED, read_bounded
from splitbuild.auth.challenge import Challenge, challenges_from_response, select_challenge
from splitbuild.auth.credentials import Credential, Keychain
from splitbuild.auth.realm import canonical_address, realm_allowed
from splitbuild.auth.refusal import (
    credentials_hint,
    describe,
    error_details,
    missing_credentials,
    redact,
    refused,
    retry_after,
)
from splitbuild.auth.scope import add_challenge_scopes, merge_scopes, parse_scope
from splitbuild.auth.tokens import (
    CLIENT_ID,
    MAX_TOKEN_RESPONSE,
    Token,
    TokenCache,
    TokenResponseError,
    basic_header,
    parse_token_response,
    token_get_request,
    token_post_request,
)
from splitbuild.errors import AuthError, RegistryError

__all__ = ["AuthSession", "RegistryAuth"]

_log = logging.getLogger("splitbuild.auth")

MAX_TOKEN_REDIRECTS = 10
ERROR_BODY_LIMIT = 64 * 1024
"""The most read of a 401/403 body (for its error details); more is dropped, never read."""
MAX_RESENDS = 2
_RETRYABLE = frozenset({408, 429, 500, 502, 503, 504})


class _State(enum.Enum):
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class _NeedCredential:
    registry: str
    repository: str | None


@dataclass(frozen=True)
class _NeedToken:
    key: Hashable
    stale: Token | None
    fetch: Callable[[], Generator[httpx.Request, httpx.Response, Token]]


@dataclass(frozen=True)
class _Sent:
    """What a request carried: nothing, basic credentials, or a token (fresh = fetched for it)."""

    attached: bool = False
    fresh: bool = False
    token: Token | None = None
    credential: Credential | None = None
    key: Hashable = None


_Effect = httpx.Request | _NeedCredential | _NeedToken
_Flow = Generator[_Effect, Any, None]


def _origin(url: httpx.URL) -> str:
    return f"{url.scheme}://{canonical_address(url.scheme, url.netloc.decode('ascii'))}"


def _replayable(request: httpx.Request) -> bool:
    return isinstance(request.stream, httpx.ByteStream)


def _adds_scopes(token: Token | None, challenge: Challenge) -> bool:
    """Does the challenge ask for scopes the token was not requested with?"""
    if token is None:
        return False
    return set(merge_scopes(token.scopes, challenge.scopes)) != set(merge_scopes(token.scopes))


class AuthSession:
    """Auth state shared by every request of a run (one per ``httpx`` client).

    ``keychain`` finds credentials (:func:`~splitbuild.auth.default_keychain` when None);
    ``token_timeout`` bounds each token request; ``clock`` (wall-clock seconds) decides expiry.
    """

    def __init__(
        self,
        keychain: Keychain | None = None,
        *,
        token_timeout: float = 30.0,
        clock: Callable[[], float] = time.time,
        client_id: str = CLIENT_ID,
    ) -> None:
        if keychain is None:
            from splitbuild.auth.sources import default_keychain

            keychain = default_keychain()
        self.keychain = keychain
        self.token_timeout = token_timeout
        self.clock = clock
        self.client_id = client_id
        self.tokens = TokenCache()
        self._challenges: dict[str, Challenge | None] = {}
        self._credentials: dict[tuple[str, str | None], Credential | None] = {}
        self._identity_tokens: dict[tuple[str, Credential], str] = {}
        self._guard = threading.Lock()
        self._async_locks: dict[Hashable, anyio.Lock] = {}

    def auth_for(self, registry: str, scopes: Sequence[str]) -> RegistryAuth:
        """The auth for one request to ``registry`` needing ``scopes`` (all in one token)."""
        return RegistryAuth(self, registry, tuple(scopes))

    def challenge(self, url: str | httpx.URL) -> Challenge | None:
        """The challenge (scheme, realm, service) remembered for the host of ``url``, if any."""
        return self._challenges.get(_origin(httpx.URL(url)))

    # -- state used by the flow -------------------------------------------------------------
    def _state(self, origin: str) -> Challenge | _State | None:
        return self._challenges.get(origin, _State.UNKNOWN)

    def _learn(self, origin: str, response: httpx.Response) -> Challenge | None:
        """Record what ``response`` says about the host; a 401's usable challenge is returned."""
        if response.status_code != 401:
            self._challenges.setdefault(origin, None)
            return None
        challenge = select_challenge(challenges_from_response(response))
        if challenge is not None:
            kept = {k: v for k, v in challenge.params.items() if k in ("realm", "service")}
            self._challenges[origin] = Challenge(challenge.scheme, kept)
        return challenge

    def _cached_credential(self, need: _NeedCredential) -> Credential | _State | None:
        return self._credentials.get((need.registry, need.repository), _State.UNKNOWN)

    def _resolve_credential(self, need: _NeedCredential) -> Credential | None:
        key = (need.registry, need.repository)
        if key not in self._credentials:
            credential = self.keychain.resolve(need.registry, need.repository)
            self._credentials[key] = None if credential is None or credential.is_empty else credential
        return self._credentials[key]

    def _identity_token(self, registry: str, credential: Credential | None) -> str | None:
        if credential is None:
            return None
        return self._identity_tokens.get((registry, credential), credential.identity_token)

    def _set_identity_token(self, registry: str, credential: Credential, value: str) -> None:
        self._identity_tokens[(registry, credential)] = value

    def _async_lock(self, key: Hashable) -> anyio.Lock:
        with self._guard:
            lock = self._async_locks.get(key)
            if lock is None:
                lock = self._async_locks[key] = anyio.Lock()
            return lock


class RegistryAuth(httpx.Auth):
    """The ``httpx.Auth`` for one request; made by :meth:`AuthSession.auth_for`."""

    def __init__(self, session: AuthSession, registry: str, scopes: tuple[str, ...]) -> None:
        self.session = session
        self.registry = registry
        self.scopes = scopes
        repositories = [s.name for s in map(parse_scope, scopes) if s is not None and s.kind == "repository"]
        self.repository = repositories[0] if repositories else None

    # -- drivers ----------------------------------------------------------------------------
    def sync_auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        """Refused: registry auth runs in an ``httpx.AsyncClient`` only (splitbuild has no sync driver)."""
        raise TypeError("splitbuild's registry auth needs an httpx.AsyncClient")

    async def async_auth_flow(self, request: httpx.Request) -> AsyncGenerator[httpx.Request, httpx.Response]:
        session = self.session
        origin = _origin(request.url)
        host_lock: anyio.Lock | None = None
        if session._state(origin) is _State.UNKNOWN:
            host_lock = session._async_lock(("host", origin))
            await host_lock.acquire()
            if session._state(origin) is not _State.UNKNOWN:
                host_lock.release()
                host_lock = None
        flow = self._flow(request)
        try:
            effect = next(flow)
            while True:
                if isinstance(effect, httpx.Request):
                    response = yield effect
                    if response.status_code in (401, 403):
                        await read_bounded(response, ERROR_BODY_LIMIT)
                    effect = flow.send(response)
                    if host_lock is not None:
                        host_lock.release()
                        host_lock = None
                elif isinstance(effect, _NeedCredential):
                    credential = session._cached_credential(effect)
                    if credential is _State.UNKNOWN:
                        async with session._async_lock(("credential", effect.registry, effect.repository)):
                            credential = await anyio.to_thread.run_sync(session._resolve_credential, effect)
                    effect = flow.send(credential)
                else:
                    async with session._async_lock(("token", effect.key)):
                        token = session.tokens.get(effect.key, session.clock())
                        fresh = token is None or token is effect.stale
                        if fresh:
                            fetch = effect.fetch()
                            try:
                                token_request = next(fetch)
                                while True:
                                    token_response = yield token_request
                                    await read_bounded(token_response, MAX_TOKEN_RESPONSE)
                                    token_request = fetch.send(token_response)
                            except StopIteration as done:
                                token = done.value
                            finally:
                                fetch.close()
                            session.tokens.put(effect.key, token)
                    effect = flow.send((token, fresh))
        except StopIteration:
            return
        finally:
            if host_lock is not None:
                host_lock.release()
            flow.close()

    # -- decisions --------------------------------------------------------------------------
    def _flow(self, request: httpx.Request) -> _Flow:
        session = self.session
        origin = _origin(request.url)
        state = session._state(origin)
        replayable = _replayable(request)
        if state is _State.UNKNOWN and not replayable:
            probe = httpx.Request("GET", request.url.copy_with(path="/v2/", query=None, fragment=None))
            if "User-Agent" in request.headers:
                probe.headers["User-Agent"] = request.headers["User-Agent"]
            session._learn(origin, (yield probe))
            state = session._state(origin)
        sent = _Sent()
        if isinstance(state, Challenge):
            sent = yield from self._authorize(request, state, stale=None, after_401=False)
        resends = 0
        while True:
            response = yield request
            if _origin(response.url) != origin:
                return
            if response.status_code == 403:
                raise self._refused(request, response, sent, None, denied=True)
            learned = session._learn(origin, response)
            if response.status_code != 401:
                return
            known = session._state(origin)
            challenge = learned if learned is not None else known if isinstance(known, Challenge) else None
            if (
                challenge is None
                or resends >= MAX_RESENDS
                or (sent.fresh and not _adds_scopes(sent.token, challenge))
            ):
                raise self._refused(request, response, sent, learned)
            if not replayable:
                if sent.token is not None:
                    session.tokens.discard(sent.key, sent.token)
                raise AuthError(
                    f"{self.registry} asked for authentication again during a streamed "
                    f"{request.method} {request.url.path}",
                    status=401,
                    method=request.method,
                    url=redact(request.url),
                    retryable=True,
                )
            resends += 1
            sent = yield from self._authorize(request, challenge, stale=sent.token, after_401=True)

    def _authorize(
        self, request: httpx.Request, challenge: Challenge, *, stale: Token | None, after_401: bool
    ) -> Generator[_Effect, Any, _Sent]:
        credential: Credential | None = yield _NeedCredential(self.registry, self.repository)
        if challenge.scheme == "basic":
            if credential is None or not credential.username or not credential.password:
                if after_401:
                    raise missing_credentials(self.registry, request, "basic")
                return _Sent(credential=credential)
            request.headers["Authorization"] = basic_header(credential.username, credential.password)
            return _Sent(attached=True, fresh=True, credential=credential)
        if credential is not None and credential.registry_token:
            request.headers["Authorization"] = f"Bearer {credential.registry_token}"
            return _Sent(attached=True, fresh=True, credential=credential)
        realm = self._checked_realm(request, challenge)
        scopes = add_challenge_scopes(
            merge_scopes(stale.scopes if stale else (), self.scopes), challenge.scopes if after_401 else ()
        )
        key = (self.registry, credential, frozenset(self.scopes))

        def fetch() -> Generator[httpx.Request, httpx.Response, Token]:
            return self._fetch_token(request, realm, challenge.service, scopes, credential)

        token, fresh = yield _NeedToken(key, stale, fetch)
        request.headers["Authorization"] = f"Bearer {token.value}"
        return _Sent(attached=True, fresh=fresh, token=token, credential=credential, key=key)

    def _checked_realm(self, request: httpx.Request, challenge: Challenge) -> str:
        realm = challenge.realm
        if not realm:
            raise AuthError(
                f"{self.registry}: malformed WWW-Authenticate challenge: bearer with missing realm",
                status=401,
                method=request.method,
                url=redact(request.url),
            )
        registry_host = request.url.netloc.decode("ascii")
        if not realm_allowed(realm, registry_host, insecure=request.url.scheme == "http"):
            raise AuthError(
                f"{self.registry}: refusing the token service {redact(realm)} it names "
                "(plain HTTP, or an internal address on another host)",
                method=request.method,
                url=redact(request.url),
            )
        return realm

    # -- token service ----------------------------------------------------------------------
    def _fetch_token(
        self,
        request: httpx.Request,
        realm: str,
        service: str | None,
        scopes: tuple[str, ...],
        credential: Credential | None,
    ) -> Generator[httpx.Request, httpx.Response, Token]:
        session = self.session
        identity = session._identity_token(self.registry, credential)
        if identity:
            _log.debug("token for %s %s: POST %s", self.registry, " ".join(scopes), realm)
            post = token_post_request(
                realm, service=service, scopes=scopes, refresh_token=identity, client_id=session.client_id
            )
            response = yield from self._send_token_request(request, post)
            if response.status_code != 404:
                token = self._token_from(response, scopes, credential)
                if credential is not None and token.refresh_token and token.refresh_token != identity:
                    session._set_identity_token(self.registry, credential, token.refresh_token)
                return token
        _log.debug("token for %s %s: GET %s", self.registry, " ".join(scopes), realm)
        get = token_get_request(
            realm,
            service=service,
            scopes=scopes,
            username=credential.username if credential else None,
            password=credential.password if credential else None,
        )
        response = yield from self._send_token_request(request, get)
        return self._token_from(response, scopes, credential)

    def _send_token_request(
        self, request: httpx.Request, token_request: httpx.Request
    ) -> Generator[httpx.Request, httpx.Response, httpx.Response]:
        """Send, following up to 10 redirects, each checked like the realm itself."""
        registry_host = request.url.netloc.decode("ascii")
        insecure = request.url.scheme == "http"
        timeout = httpx.Timeout(self.session.token_timeout).as_dict()
        agent = request.headers.get("User-Agent")
        for _ in range(MAX_TOKEN_REDIRECTS + 1):
            token_request.extensions["timeout"] = timeout
            if agent and "User-Agent" not in token_request.headers:
                token_request.headers["User-Agent"] = agent
            response = yield token_request
            for hop in [*response.history, response]:
                if not realm_allowed(str(hop.url), registry_host, insecure):
                    raise self._bad_redirect(request, hop.url)
            if not response.is_redirect or token_request.method != "GET":
                return response
            target = response.url.join(response.headers["Location"])
            if not realm_allowed(str(target), registry_host, insecure):
                raise self._bad_redirect(request, target)
            headers = httpx.Headers(token_request.headers)
            if _origin(target) != _origin(token_request.url):
                headers.pop("Authorization", None)
            token_request = httpx.Request("GET", target, headers=headers)
        raise RegistryError(
            f"{self.registry}: the token service redirected more than {MAX_TOKEN_REDIRECTS} times",
            method="GET",
        )

    def _bad_redirect(self, request: httpx.Request, url: httpx.URL) -> AuthError:
        return AuthError(
            f"{self.registry}: refusing a token service redirect to {redact(url)} "
            "(plain HTTP, or an internal address on another host)",
            method=request.method,
            url=redact(request.url),
        )

    def _token_from(
        self, response: httpx.Response, scopes: Sequence[str], credential: Credential | None
    ) -> Token:
        status = response.status_code
        where = f"{self.registry}: token service {response.url.host}"
        url = redact(response.url)
        method = response.request.method
        details = error_details(response)
        if 200 <= status < 300:
            if response.extensions.get(TRUNCATED):
                raise RegistryError(
                    f"{where}: token response is larger than 64 KiB", status=status, method=method, url=url
                )
            try:
                return parse_token_response(response.content, self.session.clock(), scopes)
            except TokenResponseError as exc:
                raise RegistryError(f"{where}: {exc}", status=status, method=method, url=url) from None
        if status in (401, 403):
            described = describe([s for s in map(parse_scope, scopes) if s is not None])
            who = "anonymous access" if credential is None else "the credentials"
            raise AuthError(
                f"{where} refused {who}" + (f" for {described}" if described else "") + f" ({status})",
                status=status,
                method=method,
                url=url,
                details=details,
                hint=credentials_hint(self.registry, credential),
            )
        raise RegistryError(
            f"{where} answered {status} {response.reason_phrase}".rstrip(),
            status=status,
            method=method,
            url=url,
            details=details,
            retryable=status in _RETRYABLE or status >= 500,
            retry_after=retry_after(response),
        )

    # -- errors -----------------------------------------------------------------------------
    def _refused(
        self,
        request: httpx.Request,
        response: httpx.Response,
        sent: _Sent,
        challenge: Challenge | None,
        *,
        denied: bool = False,
    ) -> AuthError:
        hint = None
        if sent.attached or sent.credential is None:
            hint = credentials_hint(self.registry, sent.credential)
        return refused(
            self.registry,
            request,
            response,
            challenge=challenge,
            requested=self.scopes,
            token=sent.token.value if sent.token is not None else None,
            hint=hint,
            denied=denied,
        )
