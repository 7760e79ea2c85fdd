"""Credentials and keychains: who we are to a registry, and where that is looked up.

A :class:`Credential` is one of: username + password (basic auth, also sent to a token service),
an identity token (an OAuth2 refresh token, as ``docker login`` stores for Docker Hub and Azure),
or a registry token (sent as ``Bearer`` as is). A :class:`Keychain` maps a registry name, as it
appears in an image reference (``docker.io``, ``ghcr.io``, ``127.0.0.1:5000``), to a credential.
Secrets never appear in ``repr``/``str``; ``source`` says where a credential came from so that
error messages can point at the file or variable without showing it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from splitbuild.scrub import register_credential, register_secret

__all__ = ["ChainKeychain", "Credential", "Keychain", "StaticKeychain"]

_MASK = "***"


@dataclass(frozen=True)
class Credential:
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    identity_token: str | None = field(default=None, repr=False)
    registry_token: str | None = field(default=None, repr=False)
    source: str | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        # Every credential held is masked in whatever text splitbuild prints (splitbuild.scrub).
        register_credential(self.username, self.password)
        register_secret(self.identity_token, self.registry_token)

    def __repr__(self) -> str:
        parts = [f"username={self.username!r}"]
        for name in ("password", "identity_token", "registry_token"):
            if getattr(self, name):
                parts.append(f"{name}={_MASK!r}")
        if self.source:
            parts.append(f"source={self.source!r}")
        return f"Credential({', '.join(parts)})"

    __str__ = __repr__

    @property
    def has_basic(self) -> bool:
        """Both a username and a password: what basic auth and the token GET need."""
        return bool(self.username) and bool(self.password)

    @property
    def is_empty(self) -> bool:
        return not (self.username or self.password or self.identity_token or self.registry_token)

    @property
    def secrets(self) -> tuple[str, ...]:
        """The secret strings, e.g. for tests asserting that none of them leaks into output."""
        return tuple(s for s in (self.password, self.identity_token, self.registry_token) if s)


class Keychain(ABC):
    """Looks up the credential for a registry; ``None`` means anonymous.

    ``repository`` (``acme/app``) lets sources with per-namespace entries (podman's
    ``auth.json`` keys like ``quay.io/acme``) pick the most specific one; it may be omitted.
    """

    @abstractmethod
    def resolve(self, registry: str, repository: str | None = None) -> Credential | None: ...


class StaticKeychain(Keychain):
    """Credentials given in code: ``StaticKeychain({"ghcr.io": Credential(...)})``."""

    def __init__(self, credentials: Mapping[str, Credential]) -> None:
        self._credentials = dict(credentials)

    def resolve(self, registry: str, repository: str | None = None) -> Credential | None:
        return self._credentials.get(registry)


class ChainKeychain(Keychain):
    """Asks each keychain in order; the first non-empty credential wins."""

    def __init__(self, keychains: Iterable[Keychain]) -> None:
        self.keychains = tuple(keychains)

    def resolve(self, registry: str, repository: str | None = None) -> Credential | None:
        for keychain in self.keychains:
            credential = keychain.resolve(registry, repository)
            if credential is not None and not credential.is_empty:
                return credential
        return None
