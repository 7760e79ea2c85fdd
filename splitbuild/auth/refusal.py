"""Turning refusals into errors: one line naming the registry and the scope, never a secret.

``127.0.0.1:5000 refused push access to repository acme/app (401 UNAUTHORIZED)``: the scope comes
from the 401 challenge (``scope=``), else from the request path and method, else from what was
asked; when the token is a JWT its ``access`` claim narrows it to the actions actually missing.
URLs lose their query, fragment and user info.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from email.utils import parsedate_to_datetime

import httpx

from splitbuild.auth.challenge import Challenge, challenges_from_response
from splitbuild.auth.credentials import Credential
from splitbuild.auth.environment import registry_env_prefix
from splitbuild.auth.scope import Scope, parse_scope, required_scope
from splitbuild.auth.tokens import granted_access
from splitbuild.errors import AuthError, ErrorDetail

__all__ = [
    "credentials_hint",
    "describe",
    "error_details",
    "missing_credentials",
    "redact",
    "refused",
    "retry_after",
]


def redact(url: httpx.URL | str) -> str:
    """The URL without query, fragment or userinfo (which may carry secrets)."""
    try:
        parsed = httpx.URL(url) if isinstance(url, str) else url
        return str(parsed.copy_with(query=None, fragment=None, username=None, password=None))
    except (httpx.InvalidURL, TypeError, ValueError):
        return "<invalid URL>"


def retry_after(response: httpx.Response) -> float | None:
    """``Retry-After`` in seconds (delta or HTTP date), or None."""
    value = response.headers.get("Retry-After")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


def error_details(response: httpx.Response) -> tuple[ErrorDetail, ...]:
    """The ``errors`` list of a registry error body, when the body was read and is JSON."""
    try:
        document = json.loads(response.content)
    except (httpx.ResponseNotRead, ValueError):
        return ()
    errors = document.get("errors") if isinstance(document, dict) else None
    if not isinstance(errors, list):
        return ()
    details = []
    for item in errors:
        if isinstance(item, dict) and isinstance(item.get("code"), str):
            message = item.get("message")
            details.append(ErrorDetail(item["code"], message if isinstance(message, str) else ""))
    return tuple(details)


def describe(scopes: Sequence[Scope]) -> str:
    """``pull,push access to repository acme/app and pull access to repository acme/base``."""
    return " and ".join(f"{','.join(s.actions)} access to {s.kind} {s.name}" for s in scopes)


def credentials_hint(registry: str, credential: Credential | None) -> str:
    """Where the credential came from, or how to provide one."""
    if credential is None:
        prefix = registry_env_prefix(registry)
        return (
            f"no credentials found for {registry}: run `docker login {registry}` "
            f"or set {prefix}USERNAME and {prefix}PASSWORD"
        )
    return f"credentials from {credential.source}" if credential.source else "check the credentials"


def missing_credentials(registry: str, request: httpx.Request, scheme: str) -> AuthError:
    return AuthError(
        f"{registry} requires credentials ({scheme} auth) and none were found",
        status=401,
        method=request.method,
        url=redact(request.url),
        hint=credentials_hint(registry, None),
    )


def _needed(request: httpx.Request, challenge: Challenge | None, requested: Sequence[str]) -> list[Scope]:
    needed = [s for s in map(parse_scope, challenge.scopes if challenge else ()) if s is not None]
    if needed:
        return needed
    fallback = required_scope(request.method, request.url)
    if fallback is not None:
        return [fallback]
    return [s for s in map(parse_scope, requested) if s is not None]


def _narrowed(needed: list[Scope], token: str | None) -> list[Scope]:
    granted = granted_access(token) if token is not None else None
    if granted is None:
        return needed
    narrowed = []
    for scope in needed:
        have = granted.get((scope.kind, scope.name), frozenset())
        missing = tuple(a for a in scope.actions if a not in have and "*" not in have)
        if missing:
            narrowed.append(Scope(scope.resource_type, scope.name, missing))
    return narrowed or needed


def refused(
    registry: str,
    request: httpx.Request,
    response: httpx.Response,
    *,
    challenge: Challenge | None,
    requested: Sequence[str],
    token: str | None,
    hint: str | None,
    denied: bool = False,
) -> AuthError:
    """The error for a registry's 401 (``refused``) or 403 (``denied``) to ``request``."""
    status = response.status_code
    details = error_details(response)
    code = details[0].code if details else (challenge.error or "") if challenge else ""
    needed = _narrowed(_needed(request, challenge, requested), token)
    verb = "denied" if denied else "refused"
    if challenge is None and status == 401:
        schemes = sorted({c.scheme for c in challenges_from_response(response)})
        if schemes:
            verb = f"asks for unsupported authentication ({', '.join(schemes)}) and {verb}"
    tail = f"{status} {code}" if code else str(status)
    return AuthError(
        f"{registry} {verb} {describe(needed) or 'access'} ({tail})",
        status=status,
        method=request.method,
        url=redact(request.url),
        details=details,
        hint=hint,
    )
