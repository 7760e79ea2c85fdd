"""Where credentials are looked for, in order: :func:`default_keychain`.

1. ``SPLITBUILD_AUTH_<REGISTRY>_*`` variables, then ``SPLITBUILD_REGISTRY_AUTH``, then
   ``DOCKER_AUTH_CONFIG`` (see :mod:`splitbuild.auth.environment`);
2. docker: ``$DOCKER_CONFIG/config.json``, else ``~/.docker/config.json``;
3. podman/skopeo/buildah: ``$REGISTRY_AUTH_FILE`` alone when set, else
   ``$XDG_RUNTIME_DIR/containers/auth.json`` (Linux; ``/run/containers/<uid>/auth.json`` without
   ``XDG_RUNTIME_DIR``), then ``${XDG_CONFIG_HOME:-~/.config}/containers/auth.json``;
4. the legacy ``~/.dockercfg``.

The first source that has a credential for the registry wins; none means anonymous.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path

from splitbuild.auth.authfile import AuthFileKeychain, Dialect
from splitbuild.auth.credentials import ChainKeychain, Keychain
from splitbuild.auth.environment import (
    DOCKER_AUTH_CONFIG,
    REGISTRY_AUTH,
    DocumentEnvKeychain,
    RegistryEnvKeychain,
)
from splitbuild.auth.helper import DEFAULT_HELPER_TIMEOUT

__all__ = ["default_keychain", "docker_config_path", "podman_auth_paths"]


def _home(env: Mapping[str, str]) -> Path:
    home = env.get("HOME")
    return Path(home) if home else Path.home()


def _display(path: Path, env: Mapping[str, str]) -> str:
    """``~/.docker/config.json`` rather than the full home path, in messages."""
    home = _home(env)
    try:
        return "~/" + path.relative_to(home).as_posix()
    except ValueError:
        return str(path)


def docker_config_path(env: Mapping[str, str]) -> Path:
    directory = env.get("DOCKER_CONFIG")
    if directory:
        return Path(directory) / "config.json"
    return _home(env) / ".docker" / "config.json"


def podman_auth_paths(
    env: Mapping[str, str],
    *,
    platform: str = sys.platform,
    uid: int | None = None,
    root: str | None = None,
) -> list[Path]:
    """The ``auth.json`` files containers/image reads, in order (``$REGISTRY_AUTH_FILE`` alone
    when set). ``root`` prefixes the implicit ``/run/...`` path, as containers/image's
    ``RootForImplicitAbsolutePaths`` does."""
    explicit = env.get("REGISTRY_AUTH_FILE")
    if explicit:
        return [Path(explicit)]
    paths: list[Path] = []
    if platform.startswith("linux"):
        runtime = env.get("XDG_RUNTIME_DIR")
        if runtime:
            if Path(runtime).is_dir():
                paths.append(Path(runtime) / "containers" / "auth.json")
        else:
            number = os.getuid() if uid is None else uid
            paths.append(Path(root or "/") / "run" / "containers" / str(number) / "auth.json")
    config_home = env.get("XDG_CONFIG_HOME")
    base = Path(config_home) if config_home else _home(env) / ".config"
    paths.append(base / "containers" / "auth.json")
    return paths


def default_keychain(
    env: Mapping[str, str] | None = None, *, helper_timeout: float = DEFAULT_HELPER_TIMEOUT
) -> Keychain:
    """The keychain splitbuild uses unless given another: environment, docker, podman, legacy.

    ``env`` defaults to ``os.environ``; it also supplies ``HOME`` and the ``PATH`` on which
    credential helpers are found. Files are read lazily, on the first lookup.
    """
    env = dict(os.environ if env is None else env)

    def file(path: Path, dialect: Dialect, legacy: bool = False) -> AuthFileKeychain:
        return AuthFileKeychain(
            path,
            dialect=dialect,
            display=_display(path, env),
            legacy=legacy,
            env=env,
            helper_timeout=helper_timeout,
        )

    keychains: list[Keychain] = [
        RegistryEnvKeychain(env),
        DocumentEnvKeychain(REGISTRY_AUTH, env, helper_timeout=helper_timeout),
        DocumentEnvKeychain(DOCKER_AUTH_CONFIG, env, strict_auth_only=True, helper_timeout=helper_timeout),
        file(docker_config_path(env), "docker"),
        *(file(path, "containers") for path in podman_auth_paths(env)),
        file(_home(env) / ".dockercfg", "containers", legacy=True),
    ]
    return ChainKeychain(keychains)
