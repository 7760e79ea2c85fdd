"""Registry authentication: credentials (docker/podman files, helpers, environment) and the
``httpx.Auth`` flow (bearer tokens with scopes, basic auth) shared by every registry request.

Public surface::

    from splitbuild.auth import AuthSession, Credential, Keychain, default_keychain

    session = AuthSession(default_keychain())
    await client.send(request, auth=session.auth_for("ghcr.io", ["repository:acme/app:pull,push"]))
"""

from __future__ import annotations

from splitbuild.auth.challenge import Challenge, parse_challenge, parse_challenges, select_challenge
from splitbuild.auth.credentials import ChainKeychain, Credential, Keychain, StaticKeychain
from splitbuild.auth.flow import AuthSession, RegistryAuth
from splitbuild.auth.scope import merge_scopes, repository_scope
from splitbuild.auth.sources import default_keychain

__all__ = [
    "AuthSession",
    "ChainKeychain",
    "Challenge",
    "Credential",
    "Keychain",
    "RegistryAuth",
    "StaticKeychain",
    "default_keychain",
    "merge_scopes",
    "parse_challenge",
    "parse_challenges",
    "repository_scope",
    "select_challenge",
]
