"""docker ``config.json`` and podman ``auth.json``: parsing and lookup rules.

Both files share one shape (``auths`` keyed by registry, ``credHelpers``, docker's ``credsStore``)
but are read by two families of clients with different rules, and splitbuild follows each:

* ``docker`` dialect (``config.json``, docker CLI): Docker Hub's key is
  ``https://index.docker.io/v1/``; a credential helper (``credHelpers[key]``, else ``credsStore``)
  answers instead of the file (and is asked with that key); ``auth`` must be padded base64 of
  ``user:password`` with a non-empty user. As extensions, namespace keys (``ghcr.io/acme``) are
  tried first, and after docker's exact-key and URL-key matches the podman normalisation below,
  so hand-written keys like ``docker.io`` also work.
* ``containers`` dialect (``auth.json``, containers/image): ``credHelpers[registry]``; keys may be
  namespaces (``quay.io/acme``), most specific first; then keys with a scheme or path, and the
  Docker Hub aliases, are normalised. Only ``auth`` and ``identitytoken`` are read.

When several keys of a file match after normalisation, the first in file order wins.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from splitbuild.auth.credentials import Credential, Keychain
from splitbuild.auth.helper import DEFAULT_HELPER_TIMEOUT, helper_get
from splitbuild.errors import ConfigError

__all__ = [
    "DOCKER_HUB_KEY",
    "AuthFile",
    "AuthFileKeychain",
    "Dialect",
    "ParsedAuthFileKeychain",
    "auth_key_lookup_order",
    "convert_to_hostname",
    "decode_auth",
    "docker_config_key",
    "normalize_registry",
    "parse_auth_file",
    "validate_auth_key",
]

Dialect = Literal["docker", "containers"]

DOCKER_HUB_KEY = "https://index.docker.io/v1/"
_HUB_NAMES = frozenset({"docker.io", "index.docker.io"})
_ENTRY_FIELDS = ("auth", "username", "password", "identitytoken", "registrytoken", "email", "serveraddress")


class AuthDecodeError(ValueError):
    """An ``auth`` field that is not base64 of ``username:password`` (message has no secret)."""


def decode_auth(value: str, dialect: Dialect) -> tuple[str, str]:
    """Decode an ``auth`` field into ``(username, password)``.

    Like Go's StdEncoding, embedded CR/LF are skipped and padding is required. The docker
    dialect rejects a missing colon or an empty username and trims trailing NULs from the
    password; the containers dialect skips a missing colon (``("", "")``) and allows an empty
    username. An empty field gives ``("", "")`` in both.
    """
    if not value:
        return "", ""
    cleaned = value.replace("\r", "").replace("\n", "")
    try:
        raw = base64.b64decode(cleaned, validate=True)
    except (binascii.Error, ValueError):
        raise AuthDecodeError("not valid base64") from None
    text = raw.decode("utf-8", errors="replace")
    username, sep, password = text.partition(":")
    if not sep:
        if dialect == "containers":
            return "", ""
        raise AuthDecodeError("not base64 of username:password")
    password = password.rstrip("\x00")
    if dialect == "docker" and not username:
        raise AuthDecodeError("has an empty username")
    return username, password


def docker_config_key(registry: str) -> str:
    """The key ``docker login`` writes for a registry (Docker Hub's is a URL)."""
    return DOCKER_HUB_KEY if registry in _HUB_NAMES else registry


def _split_host_port(hostport: str) -> tuple[str, str] | None:
    """Go ``url`` host parsing: ``(hostname, port)``, or None where Go's parser errors."""
    if hostport.startswith("["):
        end = hostport.find("]")
        if end < 0:
            return None
        rest = hostport[end + 1 :]
        if rest and not ((rest.startswith(":") and rest[1:].isdigit()) or rest == ":"):
            return None
        return hostport[1:end], rest[1:]
    colon = hostport.rfind(":")
    if colon >= 0:
        port = hostport[colon + 1 :]
        if port and not port.isdigit():
            return None
        return hostport[:colon], port
    return hostport, ""


def convert_to_hostname(maybe_url: str) -> str:
    """docker/cli ``ConvertToHostname``: strip a scheme and a path, keep an explicit port."""
    if "://" in maybe_url:
        rest = maybe_url.split("://", 1)[1]
        hostport = rest.split("/", 1)[0].rsplit("@", 1)[-1]
        parts = _split_host_port(hostport)
        if parts is not None and parts[0]:
            host, port = parts
            if not port:
                return host
            return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    return maybe_url.split("/", 1)[0]


def normalize_registry(registry: str) -> str:
    """containers/image: the Docker Hub aliases compare as ``index.docker.io``."""
    return "index.docker.io" if registry in ("registry-1.docker.io", "docker.io") else registry


def _normalize_file_key(key: str, legacy: bool) -> str:
    stripped = key.removeprefix("http://").removeprefix("https://")
    if legacy or stripped != key:
        stripped = stripped.split("/", 1)[0]
    return normalize_registry(stripped)


def validate_auth_key(key: str) -> bool:
    """containers/image ``validateKey``: raise ValueError for a bad key, return "is namespaced"."""
    if key.startswith(("http://", "https://")):
        raise ValueError(f"auth key {key!r} must not contain a scheme")
    if "@" in key:
        raise ValueError(f"auth key {key!r} must not contain a digest")
    _host, slash, path = key.partition("/")
    if slash and ":" in path:
        raise ValueError(f"auth key {key!r} must not contain a tag")
    return bool(slash)


def auth_key_lookup_order(key: str, legacy: bool = False) -> list[str]:
    """``quay.io/a/b/img`` -> the key, then each parent namespace, then the registry."""
    if legacy:
        return [key.split("/", 1)[0]]
    order = [key]
    while "/" in key:
        key = key.rsplit("/", 1)[0]
        order.append(key)
    return order


@dataclass(frozen=True)
class AuthFile:
    """One parsed file. ``display`` names it in messages (``~/.docker/config.json``)."""

    display: str
    dialect: Dialect
    auths: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    creds_store: str | None = None
    cred_helpers: Mapping[str, str] = field(default_factory=dict)
    legacy: bool = False

    def lookup(
        self,
        registry: str,
        repository: str | None = None,
        *,
        env: Mapping[str, str] | None = None,
        helper_timeout: float = DEFAULT_HELPER_TIMEOUT,
    ) -> Credential | None:
        """The credential this file gives for ``registry`` (and ``repository``), or None."""
        key = f"{registry}/{repository}" if repository else registry
        try:
            validate_auth_key(key)
        except ValueError:
            key = registry
        if self.dialect == "docker":
            return self._lookup_docker(registry, key, env, helper_timeout)
        helper = self.cred_helpers.get(registry)
        if helper:
            return helper_get(helper, registry, configured_in=self.display, env=env, timeout=helper_timeout)
        return self._lookup_namespaced(registry, key)

    def _lookup_docker(
        self, registry: str, key: str, env: Mapping[str, str] | None, helper_timeout: float
    ) -> Credential | None:
        server = docker_config_key(registry)
        helper = self.cred_helpers.get(server) or self.cred_helpers.get(registry) or self.creds_store
        if helper:
            found = helper_get(helper, server, configured_in=self.display, env=env, timeout=helper_timeout)
            entry = self._find_docker_entry(server)
            token = entry[1].get("registrytoken") if entry else None
            if token and isinstance(token, str):
                base = found or Credential(source=self.display)
                return Credential(base.username, base.password, base.identity_token, token, base.source)
            return found
        for namespace in auth_key_lookup_order(key)[:-1]:
            if namespace in self.auths:
                return self._credential(namespace, self.auths[namespace])
        entry = self._find_docker_entry(server)
        if entry is not None:
            credential = self._credential(*entry)
            if credential is not None:
                return credential
        return self._lookup_namespaced(registry, key)

    def _find_docker_entry(self, server: str) -> tuple[str, Mapping[str, Any]] | None:
        if server in self.auths:
            return server, self.auths[server]
        for name, entry in self.auths.items():
            if convert_to_hostname(name) == server:
                return name, entry
        return None

    def _lookup_namespaced(self, registry: str, key: str) -> Credential | None:
        lookup_key = key if not self.legacy else registry
        for candidate in auth_key_lookup_order(lookup_key, self.legacy):
            if candidate in self.auths:
                return self._credential(candidate, self.auths[candidate])
        wanted = normalize_registry(registry)
        for name, entry in self.auths.items():
            if _normalize_file_key(name, self.legacy) == wanted:
                return self._credential(name, entry)
        return None

    def _credential(self, key: str, entry: Mapping[str, Any]) -> Credential | None:
        source = f"{self.display} (auths[{key!r}])"
        auth = entry.get("auth") or ""
        try:
            username, password = decode_auth(auth, self.dialect)
        except AuthDecodeError as exc:
            raise ConfigError(f"{self.display}: auths[{key!r}].auth {exc}") from None
        identity = entry.get("identitytoken") or None
        registry_token = None
        if self.dialect == "docker":
            if not auth:
                username, password = entry.get("username") or "", entry.get("password") or ""
            registry_token = entry.get("registrytoken") or None
        credential = Credential(
            username=username or None,
            password=password or None,
            identity_token=identity,
            registry_token=registry_token,
            source=source,
        )
        return None if credential.is_empty else credential


def _string_map(value: Any, where: str, display: str) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise ConfigError(f"{display}: {where} must be an object of strings")
    return dict(value)


def _entries(value: Any, display: str, strict_auth_only: bool) -> Iterator[tuple[str, dict[str, Any]]]:
    if not isinstance(value, dict):
        raise ConfigError(f"{display}: auths must be an object")
    for key, entry in value.items():
        if not isinstance(entry, dict):
            raise ConfigError(f"{display}: auths[{key!r}] must be an object")
        for name, item in entry.items():
            if strict_auth_only and name != "auth":
                raise ConfigError(f"{display}: auths[{key!r}] may only contain 'auth', not {name!r}")
            if name in _ENTRY_FIELDS and item is not None and not isinstance(item, str):
                raise ConfigError(f"{display}: auths[{key!r}].{name} must be a string")
        yield key, entry


def parse_auth_file(
    text: str, *, display: str, dialect: Dialect, legacy: bool = False, strict_auth_only: bool = False
) -> AuthFile:
    """Parse a config/auth file's text. ``legacy`` reads the old ``~/.dockercfg`` top-level map;
    ``strict_auth_only`` applies ``DOCKER_AUTH_CONFIG``'s rule (entries hold only ``auth``)."""
    try:
        document = json.loads(text) if text.strip() else {}
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{display}: invalid JSON ({exc.msg} at line {exc.lineno})") from None
    if not isinstance(document, dict):
        raise ConfigError(f"{display}: expected a JSON object")
    if legacy:
        return AuthFile(display, dialect, dict(_entries(document, display, False)), legacy=True)
    if strict_auth_only and set(document) - {"auths"}:
        extra = sorted(set(document) - {"auths"})[0]
        raise ConfigError(f"{display}: only 'auths' is allowed, not {extra!r}")
    raw_auths = document.get("auths")
    auths = dict(_entries({} if raw_auths is None else raw_auths, display, strict_auth_only))
    store = document.get("credsStore") if dialect == "docker" else None
    if store is not None and not isinstance(store, str):
        raise ConfigError(f"{display}: credsStore must be a string")
    helpers = _string_map(document.get("credHelpers"), "credHelpers", display)
    return AuthFile(display, dialect, auths, creds_store=store or None, cred_helpers=helpers)


class AuthFileKeychain(Keychain):
    """A keychain backed by one file (read on first use; a missing file gives no credentials)."""

    def __init__(
        self,
        path: Path,
        *,
        dialect: Dialect,
        display: str | None = None,
        legacy: bool = False,
        env: Mapping[str, str] | None = None,
        helper_timeout: float = DEFAULT_HELPER_TIMEOUT,
    ) -> None:
        self.path = path
        self.dialect = dialect
        self.display = display or str(path)
        self.legacy = legacy
        self._env = env
        self._helper_timeout = helper_timeout
        self._file: AuthFile | None = None
        self._loaded = False

    def _load(self) -> AuthFile | None:
        if not self._loaded:
            try:
                text = self.path.read_text(encoding="utf-8")
            except FileNotFoundError:
                text = None
            except OSError as exc:
                raise ConfigError(f"{self.display}: cannot read ({exc.strerror})") from None
            if text is not None:
                self._file = parse_auth_file(
                    text, display=self.display, dialect=self.dialect, legacy=self.legacy
                )
            self._loaded = True
        return self._file

    def resolve(self, registry: str, repository: str | None = None) -> Credential | None:
        auth_file = self._load()
        if auth_file is None:
            return None
        return auth_file.lookup(registry, repository, env=self._env, helper_timeout=self._helper_timeout)


class ParsedAuthFileKeychain(Keychain):
    """A keychain backed by an already parsed document (environment variables)."""

    def __init__(
        self,
        auth_file: AuthFile,
        *,
        env: Mapping[str, str] | None = None,
        helper_timeout: float = DEFAULT_HELPER_TIMEOUT,
    ) -> None:
        self.auth_file = auth_file
        self._env = env
        self._helper_timeout = helper_timeout

    def resolve(self, registry: str, repository: str | None = None) -> Credential | None:
        return self.auth_file.lookup(registry, repository, env=self._env, helper_timeout=self._helper_timeout)
