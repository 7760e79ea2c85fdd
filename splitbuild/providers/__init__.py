"""Registry providers (GHCR, Docker Hub): deletion through the registry's own API.

See :mod:`splitbuild.providers.base`. :func:`open_provider` builds the provider for a reference from
the client's credentials and retry policy; ``None`` means the registry API alone.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING

from splitbuild.providers.base import (
    PROVIDERS,
    PROVIDERS_ENV,
    Provider,
    ProviderRepository,
    Version,
    provider_name,
)
from splitbuild.reference import Reference

if TYPE_CHECKING:
    from splitbuild.client import Client

__all__ = [
    "GITHUB_API_ENV",
    "HUB_API_ENV",
    "PROVIDERS",
    "PROVIDERS_ENV",
    "Provider",
    "ProviderRepository",
    "Version",
    "open_provider",
    "provider_name",
]

GITHUB_API_ENV = "GITHUB_API_URL"
"""The GitHub API base URL (set by GitHub Actions; GitHub Enterprise Server has its own)."""
HUB_API_ENV = "SPLITBUILD_HUB_API_URL"


def open_provider(
    client: Client, ref: Reference, *, name: str | None = None, env: Mapping[str, str] | None = None
) -> Provider | None:
    """The provider for ``ref`` (``name`` overrides the choice by host), or None for the registry API."""
    environ = os.environ if env is None else env
    chosen = provider_name(ref, environ, name)
    if chosen == "registry":
        return None
    registry = client.registry
    keychain = registry.auth.keychain
    if chosen == "ghcr":
        from splitbuild.providers.ghcr import DEFAULT_API_URL, GhcrProvider, github_token

        return GhcrProvider(
            ref,
            github_token(keychain, ref, environ),
            retry=registry.retry,
            api_url=environ.get(GITHUB_API_ENV) or DEFAULT_API_URL,
        )
    from splitbuild.providers.dockerhub import DEFAULT_HUB_URL, DockerHubProvider

    credential = keychain.resolve(ref.registry, ref.repository)
    return DockerHubProvider(
        ref,
        credential.username if credential is not None else None,
        (credential.password or credential.identity_token) if credential is not None else None,
        retry=registry.retry,
        api_url=environ.get(HUB_API_ENV) or DEFAULT_HUB_URL,
    )
