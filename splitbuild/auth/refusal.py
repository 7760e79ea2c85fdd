"""Turning refusals into errors: one line naming the registry and the scope, never a secret.

``127.0.0.1:5000 refused push access to repository acme/app (401 UNAUTHORIZED)``: the scope comes
from the 401 challenge (``scope=``), else from the request path and method, else from what was
asked; when the token is a JWT its ``access`` claim narrows it to the actions actually missing.
URLs lose their query, fragment and user info.
"""

from __future__ import annotations

from collections.abc import Sequence

import httpx

from splitbuild._http import error_details, retry_after
from splitbuild._http import redact_url as redact
from splitbuild.auth.challenge import Challenge, challenges_from_response
from splitbuild.auth.credentials import Credential
from splitbuild.auth.environment import registry_env_prefix
from splitbuild.auth.scope import Scope, parse_scope, required_scope
from splitbuild.auth.tokens import granted_access
from splitbuild.errors import AuthError

__all__ = [
    "credentials_hint",
    "describe",
    "error_details",
    "missing_credentials",
    "redact",
    "refused",
    "retry_after",
]


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
