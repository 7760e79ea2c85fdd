"""Bearer tokens: the token request, the token response, and the cache.

Requests follow the distribution token spec: a ``GET <realm>?scope=..&service=..`` (with Basic
credentials when a username and password are known, anonymous otherwise) or, holding an identity
token, the OAuth2 form ``POST grant_type=refresh_token``. Query and body are encoded as Go's
``url.Values.Encode`` writes them (sorted by key, ``quote_plus`` escaping). A response gives
``access_token`` (preferred when non-empty) or ``token``, an ``expires_in`` in seconds (missing or
below 60 becomes 60) counted from ``issued_at`` when present, and possibly a new ``refresh_token``.
"""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import parse_qsl, urlencode

import httpx

from splitbuild.scrub import register_secret

__all__ = [
    "CLIENT_ID",
    "MAX_TOKEN_RESPONSE",
    "MIN_LIFETIME",
    "Token",
    "TokenCache",
    "TokenResponseError",
    "basic_header",
    "encode_form",
    "granted_access",
    "parse_token_response",
    "token_get_request",
    "token_post_request",
]

CLIENT_ID = "splitbuild"
MIN_LIFETIME = 60
MAX_TOKEN_RESPONSE = 64 * 1024


class TokenResponseError(ValueError):
    """A token response that cannot be used (the message never contains the body)."""


@dataclass(frozen=True)
class Token:
    value: str = field(repr=False)
    expires_at: float
    scopes: tuple[str, ...] = ()
    refresh_token: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        register_secret(self.value, self.refresh_token)  # masked in all output (splitbuild.scrub)

    def valid(self, now: float) -> bool:
        return now <= self.expires_at


def basic_header(username: str, password: str) -> str:
    """``Basic base64(username:password)`` (UTF-8, as docker and httpx encode it)."""
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode("ascii")


def encode_form(pairs: Iterable[tuple[str, str]]) -> str:
    """Go ``url.Values.Encode``: sorted by key (values of one key keep their order)."""
    return urlencode(sorted(pairs, key=lambda kv: kv[0]))


def _split_realm(realm: str) -> tuple[str, list[tuple[str, str]]]:
    base, _, query = realm.partition("?")
    base = base.partition("#")[0]
    return base, parse_qsl(query.partition("#")[0], keep_blank_values=True)


def token_get_request(
    realm: str,
    *,
    service: str | None,
    scopes: Sequence[str],
    username: str | None = None,
    password: str | None = None,
    extra: Iterable[tuple[str, str]] = (),
) -> httpx.Request:
    """``GET <realm>?...``; Basic auth and ``account=`` when both username and password are set."""
    base, pairs = _split_realm(realm)
    pairs += [("scope", scope) for scope in scopes]
    if service:
        pairs.append(("service", service))
    headers = {}
    if username and password:
        pairs.append(("account", username))
        headers["Authorization"] = basic_header(username, password)
    pairs += list(extra)
    return httpx.Request("GET", f"{base}?{encode_form(pairs)}", headers=headers)


def token_post_request(
    realm: str,
    *,
    service: str | None,
    scopes: Sequence[str],
    refresh_token: str,
    client_id: str = CLIENT_ID,
) -> httpx.Request:
    """OAuth2 ``POST``: ``grant_type=refresh_token``, scopes joined by spaces in one field."""
    pairs = [
        ("client_id", client_id),
        ("grant_type", "refresh_token"),
        ("refresh_token", refresh_token),
    ]
    if scopes:
        pairs.append(("scope", " ".join(scopes)))
    if service:
        pairs.append(("service", service))
    return httpx.Request(
        "POST",
        realm,
        content=encode_form(pairs).encode("ascii"),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )


def _parse_issued_at(value: object) -> float | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    if moment.year <= 1:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def parse_token_response(body: bytes, now: float, scopes: Sequence[str] = ()) -> Token:
    """Parse a token service's JSON answer into a :class:`Token` expiring at an absolute time."""
    if len(body) > MAX_TOKEN_RESPONSE:
        raise TokenResponseError("token response is larger than 64 KiB")
    try:
        document = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise TokenResponseError("token response is not JSON") from None
    if not isinstance(document, dict):
        raise TokenResponseError("token response is not a JSON object")
    value = ""
    for name in ("access_token", "token"):
        candidate = document.get(name)
        if isinstance(candidate, str) and candidate:
            value = candidate
            break
    if not value:
        raise TokenResponseError("token response has no token")
    expires_in = document.get("expires_in")
    if expires_in is None:
        lifetime = 0.0
    elif isinstance(expires_in, int | float) and not isinstance(expires_in, bool):
        lifetime = float(expires_in)
    else:
        raise TokenResponseError("token response has a non-numeric expires_in")
    issued = _parse_issued_at(document.get("issued_at"))
    refresh = document.get("refresh_token")
    return Token(
        value=value,
        expires_at=(now if issued is None else issued) + max(lifetime, MIN_LIFETIME),
        scopes=tuple(scopes),
        refresh_token=refresh if isinstance(refresh, str) and refresh else None,
    )


def granted_access(token: str) -> dict[tuple[str, str], frozenset[str]] | None:
    """The ``access`` claim of a JWT bearer token (unverified), or None for opaque tokens."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        payload = base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4))
        claims = json.loads(payload)
    except (ValueError, UnicodeDecodeError):
        return None
    access = claims.get("access") if isinstance(claims, dict) else None
    if not isinstance(access, list):
        return None
    out: dict[tuple[str, str], frozenset[str]] = {}
    for item in access:
        if not isinstance(item, dict):
            continue
        kind, name, actions = item.get("type"), item.get("name"), item.get("actions")
        if isinstance(kind, str) and isinstance(name, str) and isinstance(actions, list):
            key = (kind, name)
            out[key] = out.get(key, frozenset()) | {a for a in actions if isinstance(a, str)}
    return out


class TokenCache:
    """Tokens by key (registry, credential, scope set); expired entries are never returned."""

    def __init__(self) -> None:
        self._tokens: dict[Hashable, Token] = {}
        self._lock = threading.Lock()

    def get(self, key: Hashable, now: float) -> Token | None:
        with self._lock:
            token = self._tokens.get(key)
            if token is not None and not token.valid(now):
                del self._tokens[key]
                return None
            return token

    def put(self, key: Hashable, token: Token) -> None:
        with self._lock:
            self._tokens[key] = token

    def discard(self, key: Hashable, token: Token | None = None) -> None:
        """Forget ``key`` (only if it still holds ``token``, when given)."""
        with self._lock:
            if token is None or self._tokens.get(key) is token:
                self._tokens.pop(key, None)

    def __len__(self) -> int:
        with self._lock:
            return len(self._tokens)
