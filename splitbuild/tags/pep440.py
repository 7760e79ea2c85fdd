"""PEP 440 versions as ``@renovate/pep440`` (the library behind ``type=pep440``) reads them.

:func:`parse_pep440` accepts what ``valid()`` accepts (an optional ``v``, case-insensitive, no
surrounding whitespace); :meth:`Pep440.clean` is ``clean()``: the normalised form (``1.0dev4`` is
``1.0.dev4``, ``1.0-1`` is ``1.0.post1``, ``1!2.3`` keeps its epoch). Like the JavaScript library,
numbers go through ``Number()`` and the local segment is written with ``,`` between its parts.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from splitbuild.tags.jsvalues import js_number, js_string

__all__ = ["Pep440", "parse_pep440"]

_VERSION = re.compile(
    r"v?"
    r"(?:"
    r"(?:(?P<epoch>[0-9]+)!)?"
    r"(?P<release>[0-9]+(?:\.[0-9]+)*)"
    r"(?P<pre>[-_.]?(?P<pre_l>(a|b|c|rc|alpha|beta|pre|preview))[-_.]?(?P<pre_n>[0-9]+)?)?"
    r"(?P<post>(?:-(?P<post_n1>[0-9]+))|(?:[-_.]?(?P<post_l>post|rev|r)[-_.]?(?P<post_n2>[0-9]+)?))?"
    r"(?P<dev>[-_.]?(?P<dev_l>dev)[-_.]?(?P<dev_n>[0-9]+)?)?"
    r")"
    r"(?:\+(?P<local>[a-z0-9]+(?:[-_.][a-z0-9]+)*))?",
    re.IGNORECASE | re.ASCII,
)
_LETTERS = {"alpha": "a", "beta": "b", "c": "rc", "pre": "rc", "preview": "rc", "rev": "post", "r": "post"}


def _letter_version(letter: str | None, number: str | None) -> tuple[str, float] | None:
    if letter:
        lower = letter.lower()
        return _LETTERS.get(lower, lower), js_number(number or "0")
    if number:
        return "post", js_number(number)
    return None


@dataclass(frozen=True)
class Pep440:
    epoch: float
    release: tuple[float, ...]
    pre: tuple[str, float] | None
    post: tuple[str, float] | None
    dev: tuple[str, float] | None
    local: tuple[str | float, ...] | None

    @property
    def is_prerelease(self) -> bool:
        return self.pre is not None or self.dev is not None

    @property
    def is_postrelease(self) -> bool:
        return self.post is not None

    @property
    def is_devrelease(self) -> bool:
        return self.dev is not None

    def component(self, index: int) -> float:
        """Release component ``index`` (0 major, 1 minor, 2 patch); a missing one is ``0``."""
        return self.release[index] if index < len(self.release) else 0

    def clean(self) -> str:
        parts: list[str] = []
        if self.epoch != 0:
            parts.append(f"{js_string(self.epoch)}!")
        parts.append(".".join(js_string(number) for number in self.release))
        if self.pre:
            parts.append(self.pre[0] + js_string(self.pre[1]))
        if self.post:
            parts.append("." + self.post[0] + js_string(self.post[1]))
        if self.dev:
            parts.append("." + self.dev[0] + js_string(self.dev[1]))
        if self.local:
            parts.append("+" + ",".join(js_string(part) for part in self.local))
        return "".join(parts)


def _local_part(part: str) -> str | float:
    number = js_number(part)
    return part.lower() if math.isnan(number) else number


def parse_pep440(text: str) -> Pep440 | None:
    """The parsed version, or ``None`` when ``valid()`` rejects ``text``."""
    match = _VERSION.fullmatch(text)
    if not match:
        return None
    local = match.group("local")
    return Pep440(
        epoch=js_number(match.group("epoch") or "0"),
        release=tuple(js_number(part) for part in match.group("release").split(".")),
        pre=_letter_version(match.group("pre_l"), match.group("pre_n")),
        post=_letter_version(match.group("post_l"), match.group("post_n1") or match.group("post_n2")),
        dev=_letter_version(match.group("dev_l"), match.group("dev_n")),
        local=tuple(_local_part(part) for part in re.split(r"[._-]", local)) if local else None,
    )
