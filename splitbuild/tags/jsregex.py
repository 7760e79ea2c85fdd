"""JavaScript regular expressions (as ``String.prototype.match`` uses them) on Python's ``re``.

The translation covers what differs for patterns people write in tag rules: ``$`` (end of input
only, unless ``m``), ``(?<name>...)``/``\\k<name>``, ``\\d``/``\\w``/``\\b`` being ASCII-only,
``\\/``, and the ``i``, ``m``, ``s``, ``g`` and ``y`` flags (``u``, ``v``, ``d`` change nothing
here). A pattern Python cannot compile (a variable-length look-behind...) is a :class:`JsRegexError`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

__all__ = ["JsRegex", "JsRegexError", "compile_js_regex", "js_match"]

_FLAG_CHARS = frozenset("dgimsuvy")


class JsRegexError(ValueError):
    """The pattern or its flags are not a valid regular expression."""


@dataclass(frozen=True)
class JsRegex:
    pattern: re.Pattern[str]
    global_: bool
    sticky: bool


def _translate(source: str, multiline: bool) -> str:
    out: list[str] = []
    i = 0
    in_class = False
    while i < len(source):
        char = source[i]
        if char == "\\":
            nxt = source[i + 1 : i + 2]
            if nxt == "":
                raise JsRegexError("\\ at end of pattern")
            if nxt == "k" and source[i + 2 : i + 3] == "<" and not in_class:
                end = source.find(">", i + 3)
                if end < 0:
                    raise JsRegexError("unterminated \\k<name>")
                out.append(f"(?P={source[i + 3 : end]})")
                i = end + 1
                continue
            if nxt == "d":
                out.append("0-9" if in_class else "[0-9]")
            elif nxt == "D":
                out.append("\\D" if in_class else "[^0-9]")
            else:
                out.append(char + nxt)
            i += 2
            continue
        if in_class:
            if char == "]":
                in_class = False
            elif char == "[":
                out.append("\\[")
                i += 1
                continue
            out.append(char)
            i += 1
            continue
        if char == "[":
            if source.startswith("[]", i):  # JS: a class that matches nothing
                out.append("(?!)")
                i += 2
                continue
            if source.startswith("[^]", i):  # JS: any character
                out.append(r"[\s\S]")
                i += 3
                continue
            in_class = True
            out.append(char)
            if source.startswith("[^", i):
                out.append("^")
                i += 1
            i += 1
            continue
        if char == "(" and source.startswith("(?<", i) and source[i + 3 : i + 4] not in ("=", "!"):
            out.append("(?P<")
            i += 3
            continue
        if char == "$" and not multiline:
            out.append(r"\Z")
            i += 1
            continue
        out.append(char)
        i += 1
    return "".join(out)


@lru_cache(maxsize=256)
def compile_js_regex(source: str, flags: str = "") -> JsRegex:
    """Compile ``new RegExp(source, flags)``."""
    if set(flags) - _FLAG_CHARS or len(set(flags)) != len(flags):
        raise JsRegexError(f"invalid flags {flags!r}")
    py_flags = re.ASCII
    if "i" in flags:
        py_flags |= re.IGNORECASE
    if "m" in flags:
        py_flags |= re.MULTILINE
    if "s" in flags:
        py_flags |= re.DOTALL
    try:
        compiled = re.compile(_translate(source, "m" in flags), py_flags)
    except re.error as exc:
        raise JsRegexError(str(exc)) from None
    return JsRegex(compiled, global_="g" in flags, sticky="y" in flags)


def js_match(regex: JsRegex, text: str) -> list[str | None] | None:
    """``text.match(regex)``: full match and groups, every full match with ``g``, ``None`` if none."""
    if regex.global_:
        if regex.sticky:
            found: list[str | None] = []
            pos = 0
            while (m := regex.pattern.match(text, pos)) is not None:
                found.append(m.group(0))
                pos = m.end() if m.end() > pos else pos + 1
            return found or None
        matches = [m.group(0) for m in regex.pattern.finditer(text)]
        return list(matches) or None
    match = regex.pattern.match(text) if regex.sticky else regex.pattern.search(text)
    if match is None:
        return None
    return [match.group(0), *match.groups()]
