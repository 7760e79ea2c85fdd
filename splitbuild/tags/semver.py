"""Strict SemVer 2.0 parsing as node-semver 7 does it (``semver.valid`` / ``semver.parse``).

A version is ``v?MAJOR.MINOR.PATCH[-PRERELEASE][+BUILD]`` after trimming surrounding whitespace,
at most 256 characters, with numeric parts no larger than ``Number.MAX_SAFE_INTEGER``.
:meth:`SemVer.render_data` is the object metadata-action renders ``type=semver`` patterns against.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from splitbuild.tags.jsvalues import JS_SPACE

__all__ = ["SemVer", "parse_semver"]

_MAX_LENGTH = 256
_MAX_SAFE_INTEGER = 2**53 - 1
_NUMERIC = r"0|[1-9][0-9]*"
_NON_NUMERIC = r"[0-9]*[a-zA-Z-][a-zA-Z0-9-]*"
_PRE_ID = rf"(?:{_NON_NUMERIC}|{_NUMERIC})"
_BUILD_ID = r"[a-zA-Z0-9-]+"
_FULL = re.compile(
    rf"v?({_NUMERIC})\.({_NUMERIC})\.({_NUMERIC})"
    rf"(?:-({_PRE_ID}(?:\.{_PRE_ID})*))?"
    rf"(?:\+({_BUILD_ID}(?:\.{_BUILD_ID})*))?"
)


@dataclass(frozen=True)
class SemVer:
    raw: str
    major: int
    minor: int
    patch: int
    prerelease: tuple[int | str, ...]
    build: tuple[str, ...]

    @property
    def version(self) -> str:
        """``MAJOR.MINOR.PATCH[-PRERELEASE]``: no ``v``, no build metadata."""
        core = f"{self.major}.{self.minor}.{self.patch}"
        if self.prerelease:
            core += "-" + ".".join(str(part) for part in self.prerelease)
        return core

    def render_data(self) -> dict[str, Any]:
        """The own properties of node-semver's ``SemVer`` object (parsed with ``loose: true``)."""
        return {
            "options": {"loose": True},
            "loose": True,
            "includePrerelease": False,
            "raw": self.raw,
            "major": self.major,
            "minor": self.minor,
            "patch": self.patch,
            "prerelease": list(self.prerelease),
            "build": list(self.build),
            "version": self.version,
        }


def _prerelease_part(part: str) -> int | str:
    if part.isdigit():
        number = int(part)
        if number < _MAX_SAFE_INTEGER:
            return number
    return part


def parse_semver(text: str) -> SemVer | None:
    """The parsed version, or ``None`` when node-semver would call ``text`` invalid."""
    if len(text) > _MAX_LENGTH:
        return None
    match = _FULL.fullmatch(text.strip(JS_SPACE))
    if not match:
        return None
    numbers = [int(match.group(i)) for i in (1, 2, 3)]
    if any(number > _MAX_SAFE_INTEGER for number in numbers):
        return None
    pre = match.group(4)
    build = match.group(5)
    return SemVer(
        raw=text,
        major=numbers[0],
        minor=numbers[1],
        patch=numbers[2],
        prerelease=tuple(_prerelease_part(p) for p in pre.split(".")) if pre else (),
        build=tuple(build.split(".")) if build else (),
    )
