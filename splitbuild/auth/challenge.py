"""``WWW-Authenticate`` parsing, byte for byte as the Go registry clients do it.

distribution, go-containerregistry and containers/image share one parser: one challenge per
header line, the scheme is the run of token characters at the very start of the line, then
``key=value`` pairs separated by commas. Parsing stops (keeping what it has) at the first thing
it does not expect: whitespace around ``=``, an empty value, a missing comma. Being exactly as
lenient and as strict as those clients means a registry that works with docker works here.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

import httpx

__all__ = ["Challenge", "challenges_from_response", "parse_challenge", "parse_challenges", "select_challenge"]

_SEPARATORS = frozenset('()<>@,;:\\"/[]?={}')
_SPACES = frozenset(" \t\r\n")


def _is_token_char(ch: str) -> bool:
    code = ord(ch)
    return 33 <= code <= 126 and ch not in _SEPARATORS


@dataclass(frozen=True)
class Challenge:
    """One authentication challenge: a lower-case scheme and its parameters (lower-case keys)."""

    scheme: str
    params: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))

    @property
    def realm(self) -> str | None:
        return self.params.get("realm")

    @property
    def service(self) -> str | None:
        return self.params.get("service")

    @property
    def scopes(self) -> tuple[str, ...]:
        """The challenge's ``scope`` parameter split on spaces (several scopes may be named)."""
        return tuple(self.params.get("scope", "").split())

    @property
    def error(self) -> str | None:
        return self.params.get("error")


def _take_token(s: str, i: int) -> int:
    while i < len(s) and _is_token_char(s[i]):
        i += 1
    return i


def _skip_spaces(s: str, i: int) -> int:
    while i < len(s) and s[i] in _SPACES:
        i += 1
    return i


def _take_quoted(s: str, i: int) -> tuple[str, int]:
    """Read a quoted string starting at ``s[i] == '"'``; an unterminated one gives ``""``."""
    out: list[str] = []
    i += 1
    while i < len(s):
        ch = s[i]
        if ch == '"':
            return "".join(out), i + 1
        if ch == "\\":
            if i + 1 >= len(s):
                return "", len(s)
            out.append(s[i + 1])
            i += 2
            continue
        out.append(ch)
        i += 1
    return "", len(s)


def parse_challenge(line: str) -> Challenge | None:
    """Parse one header line; ``None`` when the line has no scheme (empty, leading space, ``=``)."""
    end = _take_token(line, 0)
    if end == 0:
        return None
    scheme = line[:end].lower()
    params: dict[str, str] = {}
    s = "," + line[_skip_spaces(line, end) :]
    i = 0
    while i < len(s) and s[i] == ",":
        i = _skip_spaces(s, i + 1)
        key_end = _take_token(s, i)
        if key_end == i:
            break
        key = s[i:key_end].lower()
        i = key_end
        if i >= len(s) or s[i] != "=":
            break
        i += 1
        if i < len(s) and s[i] == '"':
            value, i = _take_quoted(s, i)
        else:
            value_end = _take_token(s, i)
            value, i = s[i:value_end], value_end
        if not value:
            break
        params[key] = value
        i = _skip_spaces(s, i)
    return Challenge(scheme=scheme, params=MappingProxyType(params))


def parse_challenges(lines: Iterable[str]) -> list[Challenge]:
    """Parse every ``WWW-Authenticate`` line in order, one challenge per line that has a scheme."""
    return [c for c in (parse_challenge(line) for line in lines) if c is not None]


def select_challenge(challenges: Iterable[Challenge]) -> Challenge | None:
    """The first ``bearer`` or ``basic`` challenge (what containers/image and ggcr pick), else None."""
    for challenge in challenges:
        if challenge.scheme in ("bearer", "basic"):
            return challenge
    return None


def challenges_from_response(response: httpx.Response) -> list[Challenge]:
    """All challenges of a response; header bytes are decoded as UTF-8 (bad bytes replaced)."""
    lines = [
        value.decode("utf-8", errors="replace")
        for name, value in response.headers.raw
        if name.lower() == b"www-authenticate"
    ]
    return parse_challenges(lines)
