"""Platforms: the ``os/arch[/variant]`` grammar and its normalisation, in one place.

User input (config files, ``--platform`` of every command) is parsed strictly by
:func:`split_platform`, as containerd's ``platforms.Normalize`` does and with a did-you-mean
for a mistyped name: ``linux/aarch64`` -> ``linux/arm64``, ``linux/arm64/v8`` -> ``linux/arm64``,
``linux/arm`` -> ``linux/arm/v7``, ``linux/armel`` -> ``linux/arm/v6``, ``Linux/ARM64`` ->
``linux/arm64``. Platforms read from registries are compared through :func:`platform_key`, the
same normalisation that never refuses (a registry may name any platform).
"""

from __future__ import annotations

import re
from typing import NamedTuple

from splitbuild.errors import ConfigError

__all__ = [
    "KNOWN_ARCHITECTURES",
    "KNOWN_OPERATING_SYSTEMS",
    "PlatformParts",
    "normalize_arch",
    "normalize_os",
    "normalize_platform",
    "normalize_platform_prefix",
    "platform_key",
    "split_platform",
]

_OS_ALIASES = {"macos": "darwin"}
KNOWN_OPERATING_SYSTEMS = frozenset(
    {
        "aix",
        "android",
        "darwin",
        "dragonfly",
        "freebsd",
        "illumos",
        "ios",
        "js",
        "linux",
        "netbsd",
        "openbsd",
        "plan9",
        "solaris",
        "wasip1",
        "windows",
    }
)
# Architecture spellings seen in the wild -> (GOARCH, implied variant or None).
_ARCH_ALIASES: dict[str, tuple[str, str | None]] = {
    "x86_64": ("amd64", None),
    "x86-64": ("amd64", None),
    "x64": ("amd64", None),
    "i386": ("386", None),
    "i686": ("386", None),
    "x86": ("386", None),
    "aarch64": ("arm64", None),
    "armhf": ("arm", "v7"),
    "armel": ("arm", "v6"),
    "armv5": ("arm", "v5"),
    "armv5l": ("arm", "v5"),
    "armv6": ("arm", "v6"),
    "armv6l": ("arm", "v6"),
    "armv7": ("arm", "v7"),
    "armv7l": ("arm", "v7"),
    "ppc64el": ("ppc64le", None),
}
KNOWN_ARCHITECTURES = frozenset(
    {
        "386",
        "amd64",
        "arm",
        "arm64",
        "loong64",
        "mips",
        "mips64",
        "mips64le",
        "mipsle",
        "ppc64",
        "ppc64le",
        "riscv64",
        "s390x",
        "wasm",
    }
)
_ARM64_VARIANTS = frozenset({f"v8.{n}" for n in range(1, 10)} | {f"v9.{n}" for n in range(1, 6)} | {"v9"})
_COMPONENT = re.compile(r"^[a-z0-9_.-]+$")


class PlatformParts(NamedTuple):
    """A parsed platform: ``os``, ``architecture`` and ``variant`` (``None`` when there is none)."""

    os: str
    architecture: str
    variant: str | None

    def __str__(self) -> str:
        parts = [self.os, self.architecture] + ([self.variant] if self.variant else [])
        return "/".join(parts)


def normalize_arch(architecture: str, variant: str | None = None) -> tuple[str, str | None]:
    """Normalise an architecture and its variant; raise :class:`ConfigError` when unknown."""
    arch = architecture.strip().lower()
    var = variant.strip().lower() if variant is not None else None
    if arch in _ARCH_ALIASES:
        arch, implied = _ARCH_ALIASES[arch]
        if implied is not None:
            if var not in (None, implied, implied.lstrip("v")):
                raise ConfigError(f"architecture {architecture!r} already implies variant {implied!r}")
            var = implied
    if arch not in KNOWN_ARCHITECTURES:
        allowed = ", ".join(sorted(KNOWN_ARCHITECTURES))
        suggestion = _did_you_mean(arch, KNOWN_ARCHITECTURES, set(_ARCH_ALIASES))
        raise ConfigError(f"unknown architecture {architecture!r} (allowed: {allowed}){suggestion}")
    if var is not None and var and not var.startswith("v") and var[0].isdigit():
        var = "v" + var
    if var == "":
        raise ConfigError("empty platform variant")
    return arch, _normalize_variant(arch, var)


def _normalize_variant(arch: str, variant: str | None) -> str | None:
    if arch == "arm":
        if variant is None:
            return "v7"
        if variant in ("v5", "v6", "v7", "v8"):
            return variant
        raise ConfigError(f"unknown variant {variant!r} for arm (allowed: v5, v6, v7, v8)")
    if arch == "arm64":
        if variant in (None, "v8", "v8.0"):
            return None
        if variant == "v9.0":
            return "v9"
        if variant in _ARM64_VARIANTS:
            return variant
        raise ConfigError(f"unknown variant {variant!r} for arm64 (allowed: v8, v8.1-v8.9, v9, v9.1-v9.5)")
    if arch == "amd64":
        if variant in (None, "v1"):
            return None
        if variant in ("v2", "v3", "v4"):
            return variant
        raise ConfigError(f"unknown variant {variant!r} for amd64 (allowed: v1, v2, v3, v4)")
    if variant is not None:
        raise ConfigError(f"architecture {arch!r} has no variants (got {variant!r})")
    return None


def normalize_os(text: str) -> str:
    os_name = text.strip().lower()
    os_name = _OS_ALIASES.get(os_name, os_name)
    if os_name not in KNOWN_OPERATING_SYSTEMS:
        allowed = ", ".join(sorted(KNOWN_OPERATING_SYSTEMS))
        suggestion = _did_you_mean(os_name, KNOWN_OPERATING_SYSTEMS, set(_OS_ALIASES))
        raise ConfigError(f"unknown operating system {text!r} (allowed: {allowed}){suggestion}")
    return os_name


def _did_you_mean(word: str, *choices: set[str] | frozenset[str]) -> str:
    """``; did you mean 'x'?`` for the closest of the first set of ``choices`` that has one."""
    import difflib  # only on the error path

    for names in choices:
        close = difflib.get_close_matches(word, sorted(names), n=1, cutoff=0.6)
        if close:
            return f"; did you mean {close[0]!r}?"
    return ""


def _components(text: str, what: str) -> list[str]:
    parts = text.strip().lower().split("/")
    for part in parts:
        if not _COMPONENT.match(part):
            raise ConfigError(f"malformed {what} {text!r} (expected os/arch[/variant], e.g. linux/arm64)")
    return parts


def split_platform(text: str) -> PlatformParts:
    """Parse and normalise ``os/arch[/variant]``; raise :class:`ConfigError` naming what is wrong."""
    if not isinstance(text, str):
        raise ConfigError(f"platform must be a string, not {type(text).__name__}")
    parts = _components(text, "platform")
    if len(parts) not in (2, 3):
        raise ConfigError(f"malformed platform {text!r} (expected os/arch[/variant], e.g. linux/arm64)")
    os_name = normalize_os(parts[0])
    arch, variant = normalize_arch(parts[1], parts[2] if len(parts) == 3 else None)
    return PlatformParts(os_name, arch, variant)


def normalize_platform_prefix(text: str, what: str = "platform prefix") -> str:
    """Normalise an OS (``linux``), an OS/arch prefix (``linux/arm``: every arm variant) or a full
    platform; ``what`` names the input in errors."""
    parts = _components(text, what)
    if len(parts) == 1:
        return normalize_os(parts[0])
    if len(parts) == 2:
        arch = parts[1]
        if arch in _ARCH_ALIASES and _ARCH_ALIASES[arch][1] is not None:
            # armhf, armv7 ... name one variant: a full platform, not a prefix.
            return normalize_platform(text)
        arch = _ARCH_ALIASES.get(arch, (arch, None))[0]
        normalize_arch(arch)  # validates
        return f"{normalize_os(parts[0])}/{arch}"
    if len(parts) == 3:
        return normalize_platform(text)
    raise ConfigError(f"malformed {what} {text!r} (expected os, os/arch or os/arch/variant)")


def normalize_platform(text: str) -> str:
    """Validate and normalise a platform string: ``"linux/arm64/v8"`` -> ``"linux/arm64"``."""
    return str(split_platform(text))


def platform_key(os_name: str, architecture: str, variant: str | None = None) -> str:
    """The normalised ``os/arch[/variant]`` of a platform a registry names, for comparisons: the
    normalisation of :func:`split_platform` where it applies, the name as given (lower case)
    where it does not (``windows/amd64``, ``unknown/unknown``, an architecture splitbuild does not
    know). Never raises."""
    try:
        return str(split_platform("/".join(x for x in (os_name, architecture, variant) if x)))
    except ConfigError:
        parts = [os_name, architecture] + ([variant] if variant else [])
        return "/".join(part.strip().lower() for part in parts)
