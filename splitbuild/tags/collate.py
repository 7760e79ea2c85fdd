"""Label key order: JavaScript ``localeCompare`` (ICU, en-US) reproduced for printable ASCII.

ICU compares primary weights first (punctuation, then digits, then letters, case-blind), then case
(lower before upper). Other characters: accented letters weigh like their base letter with the
accent as a secondary difference, control and format characters are ignored, anything else sorts
after the Latin letters by code point (an approximation of the full collation).
"""

from __future__ import annotations

import unicodedata

__all__ = ["locale_key"]

_ORDER = " _-,;:!?.'\"()[]{}@*/\\&#%`^+<=>|~$0123456789abcdefghijklmnopqrstuvwxyz"
_WEIGHT = {char: index for index, char in enumerate(_ORDER)}
_AFTER_LETTERS = len(_ORDER)

CollationKey = tuple[tuple[int, ...], tuple[int, ...], tuple[bool, ...]]


def locale_key(text: str) -> CollationKey:
    """A sort key ordering strings as ``a.localeCompare(b)`` does."""
    primary: list[int] = []
    secondary: list[int] = []
    tertiary: list[bool] = []
    for char in text:
        weight = _WEIGHT.get(char.lower())
        accent = 0
        if weight is None:
            if unicodedata.category(char) in ("Cc", "Cf"):
                continue
            decomposed = unicodedata.normalize("NFD", char)
            weight = _WEIGHT.get(decomposed[0].lower())
            if weight is None:
                weight = _AFTER_LETTERS + ord(char)
            else:
                accent = sum(ord(mark) for mark in decomposed[1:])
                char = decomposed[0]
        primary.append(weight)
        secondary.append(accent)
        tertiary.append(char.isupper())
    return tuple(primary), tuple(secondary), tuple(tertiary)
