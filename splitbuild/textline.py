"""Text that must stay on one line: config values, header comments, paths named in generated files.

A YAML reader ends a line at ``\\n``, ``\\r``, U+0085, U+2028 or U+2029 (YAML 1.1; 1.2 readers only at
the first two), Python's ``str.splitlines`` also at ``\\v``, ``\\f`` and U+001C-U+001E, and a YAML
reader refuses a file holding a control character. :func:`line_fault` says why a text cannot be
written as one line of a generated file: it holds any of those line breaks, another control
character (a tab is allowed), a bidirectional control (which makes a line read differently from
what it holds), or a character YAML cannot carry at all.
"""

from __future__ import annotations

import re

__all__ = ["LINE_BREAKS", "line_fault", "shown"]

LINE_BREAKS = "\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029"
_BIDI = "\u202a-\u202e\u2066-\u2069"
# Outside YAML's printable set (tab, LF and CR are in it), bidirectional controls, U+FEFF.
_FAULT = re.compile(
    f"[^\t\x20-\x7e\x85\xa0-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]|[{LINE_BREAKS}{_BIDI}\ufeff]"
)


def _describe(char: str) -> str:
    code = f"U+{ord(char):04X}"
    if char in LINE_BREAKS:
        return f"a line break ({code})"
    if "\u202a" <= char <= "\u202e" or "\u2066" <= char <= "\u2069":
        return f"a bidirectional control character ({code})"
    if ord(char) < 0x20 or 0x7F <= ord(char) <= 0x9F:
        return f"a control character ({code})"
    return f"a character YAML cannot hold ({code})"


def line_fault(text: str) -> str | None:
    """Why ``text`` cannot be one line of a generated file (``"a line break (U+2028)"``), or ``None``."""
    match = _FAULT.search(text)
    return None if match is None else _describe(match.group())


def shown(text: str) -> str:
    """``text`` for a one-line message: every character :func:`line_fault` refuses as an escape
    (``\\n``, ``\\u2028``), so the message stays one line and says what the text holds."""
    return _FAULT.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), text)
