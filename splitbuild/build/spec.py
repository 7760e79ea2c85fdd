"""What every platform build of a run shares: context, Dockerfile, target, args, labels, secrets.

Paths in ``[image]`` are relative to the repository root (as in CI, where the job runs at the root
of the checkout); :func:`spec_from_config` resolves them against the root it is given.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from splitbuild.config import Config
from splitbuild.errors import ConfigError, UsageError

__all__ = ["BuildSpec", "parse_build_args", "spec_from_config"]

_BUILD_ARG = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_REMOTE_CONTEXT_PREFIXES = ("docker-image://", "oci-layout://", "target:", "http://", "https://", "git@")


@dataclass(frozen=True)
class BuildSpec:
    """One build, minus the platform. ``secrets`` maps a secret id to the environment variable
    holding its value (read by the builder, never by splitbuild)."""

    context: Path
    dockerfile: Path
    target: str | None = None
    build_args: Mapping[str, str] = field(default_factory=dict)
    labels: Mapping[str, str] = field(default_factory=dict)
    build_contexts: Mapping[str, str] = field(default_factory=dict)
    secrets: Mapping[str, str] = field(default_factory=dict)

    def flags(self) -> list[str]:
        """The build flags buildah and docker buildx spell the same way (all but the context)."""
        argv = ["--file", str(self.dockerfile)]
        if self.target is not None:
            argv += ["--target", self.target]
        for key, value in self.build_args.items():
            argv += ["--build-arg", f"{key}={value}"]
        for key, value in self.labels.items():
            argv += ["--label", f"{key}={value}"]
        for key, value in self.build_contexts.items():
            argv += ["--build-context", f"{key}={value}"]
        for secret_id, variable in self.secrets.items():
            argv += ["--secret", f"id={secret_id},env={variable}"]
        return argv


def _resolve_context_value(value: str, root: Path) -> str:
    if value.startswith(_REMOTE_CONTEXT_PREFIXES):
        return value
    path = Path(value)
    return str(path if path.is_absolute() else (root / path).resolve())


def parse_build_args(texts: list[str]) -> dict[str, str]:
    """``--build-arg KEY=VALUE`` values (a later one wins)."""
    args: dict[str, str] = {}
    for text in texts:
        key, sep, value = text.partition("=")
        if not sep or not _BUILD_ARG.match(key):
            raise UsageError(f"`build_args` {text!r}: expected KEY=VALUE with KEY letters, digits and _")
        args[key] = value
    return args


def spec_from_config(
    config: Config,
    root: Path,
    *,
    labels: Mapping[str, str] | None = None,
    build_args: Mapping[str, str] | None = None,
    env: Mapping[str, str] | None = None,
) -> BuildSpec:
    """The build spec of ``config`` with paths under ``root``.

    ``labels`` come before the config's own ``[image] labels`` (which win); ``build_args`` override
    ``[image] build-args``. Raises :class:`ConfigError` for a missing context, Dockerfile or
    secret variable."""
    image = config.image
    environ = os.environ if env is None else env
    context = (root / image.context).resolve()
    if not context.is_dir():
        raise ConfigError(f"image.context {image.context!r}: {context} is not a directory")
    if image.dockerfile is not None:
        dockerfile = (root / image.dockerfile).resolve()
        where = f"image.dockerfile {image.dockerfile!r}"
    else:
        dockerfile = context / "Dockerfile"
        where = "Dockerfile"
    if not dockerfile.is_file():
        raise ConfigError(f"{where}: {dockerfile} does not exist")
    for secret_id, variable in image.secrets.items():
        if variable not in environ:
            raise ConfigError(
                f"image.secrets {secret_id!r}: set the environment variable {variable} for a local build"
            )
    return BuildSpec(
        context=context,
        dockerfile=dockerfile,
        target=image.target,
        build_args={**image.build_args, **(build_args or {})},
        labels={**(labels or {}), **image.labels},
        build_contexts={k: _resolve_context_value(v, root) for k, v in image.build_contexts.items()},
        secrets=dict(image.secrets),
    )
