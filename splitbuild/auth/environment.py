"""Credentials from environment variables, for CI jobs that have secrets but no ``docker login``.

Per registry (the name upper-cased, every character other than A-Z and 0-9 replaced by ``_``;
Docker Hub is ``DOCKER_IO`` whichever alias is used)::

    SPLITBUILD_AUTH_GHCR_IO_USERNAME / SPLITBUILD_AUTH_GHCR_IO_PASSWORD
    SPLITBUILD_AUTH_127_0_0_1_5000_IDENTITY_TOKEN     (OAuth2 refresh token)
    SPLITBUILD_AUTH_DOCKER_IO_REGISTRY_TOKEN          (sent as Bearer as is)

and whole documents: ``SPLITBUILD_REGISTRY_AUTH`` holds docker ``config.json`` JSON (``auths``
with ``auth``/``username``/``password``/``identitytoken``/``registrytoken``, ``credHelpers``,
``credsStore``); ``DOCKER_AUTH_CONFIG`` is honoured with the docker CLI's rule (entries hold only
``auth``). Empty variables count as unset (CI systems expand missing secrets to "").
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from splitbuild.auth.authfile import AuthFile, parse_auth_file
from splitbuild.auth.credentials import Credential, Keychain
from splitbuild.auth.helper import DEFAULT_HELPER_TIMEOUT
from splitbuild.errors import ConfigError

__all__ = [
    "DOCKER_AUTH_CONFIG",
    "ENV_PREFIX",
    "REGISTRY_AUTH",
    "DocumentEnvKeychain",
    "RegistryEnvKeychain",
    "registry_env_prefix",
]

ENV_PREFIX = "SPLITBUILD_AUTH_"
REGISTRY_AUTH = "SPLITBUILD_REGISTRY_AUTH"
DOCKER_AUTH_CONFIG = "DOCKER_AUTH_CONFIG"
_HUB_ALIASES = frozenset({"docker.io", "index.docker.io", "registry-1.docker.io"})


def registry_env_prefix(registry: str) -> str:
    """``ghcr.io`` -> ``SPLITBUILD_AUTH_GHCR_IO_``; every Docker Hub alias -> ``..._DOCKER_IO_``."""
    name = "docker.io" if registry in _HUB_ALIASES else registry
    return ENV_PREFIX + re.sub(r"[^A-Z0-9]", "_", name.upper()) + "_"


class RegistryEnvKeychain(Keychain):
    """``SPLITBUILD_AUTH_<REGISTRY>_{USERNAME,PASSWORD,IDENTITY_TOKEN,REGISTRY_TOKEN}``."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self._env = env

    def resolve(self, registry: str, repository: str | None = None) -> Credential | None:
        prefix = registry_env_prefix(registry)

        def get(suffix: str) -> str | None:
            return self._env.get(prefix + suffix) or None

        username, password = get("USERNAME"), get("PASSWORD")
        identity, token = get("IDENTITY_TOKEN"), get("REGISTRY_TOKEN")
        if password and not username:
            raise ConfigError(f"{prefix}PASSWORD is set but {prefix}USERNAME is not")
        if username and not (password or identity or token):
            raise ConfigError(f"{prefix}USERNAME is set but {prefix}PASSWORD is empty")
        credential = Credential(username, password, identity, token, source=f"${prefix}*")
        return None if credential.is_empty else credential


class DocumentEnvKeychain(Keychain):
    """A docker-config JSON document held in an environment variable (parsed on first use)."""

    def __init__(
        self,
        variable: str,
        env: Mapping[str, str],
        *,
        strict_auth_only: bool = False,
        helper_timeout: float = DEFAULT_HELPER_TIMEOUT,
    ) -> None:
        self.variable = variable
        self._env = env
        self._strict = strict_auth_only
        self._helper_timeout = helper_timeout
        self._document: AuthFile | None = None

    def _parsed(self) -> AuthFile | None:
        text = self._env.get(self.variable)
        if not text:
            return None
        if self._document is None:
            self._document = parse_auth_file(
                text, display=f"${self.variable}", dialect="docker", strict_auth_only=self._strict
            )
        return self._document

    def resolve(self, registry: str, repository: str | None = None) -> Credential | None:
        document = self._parsed()
        if document is None:
            return None
        return document.lookup(registry, repository, env=self._env, helper_timeout=self._helper_timeout)
