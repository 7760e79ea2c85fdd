"""JavaScript value semantics that metadata-action's results depend on.

``Number(text)`` decides which ``priority``/``group`` values are accepted and how a short sha is
cut; ``String(value)`` is how template output is written; object key order is how the ``json``
output lists labels.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

__all__ = ["JS_SPACE", "is_array_index", "js_number", "js_object_order", "js_string", "js_truthy"]

# ECMAScript StringToNumber: StrWhiteSpaceChar is WhiteSpace plus LineTerminator.
JS_SPACE = (
    "\t\n\v\f\r \u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a"
    "\u2028\u2029\u202f\u205f\u3000\ufeff"
)
_DECIMAL = re.compile(r"[+-]?(?:Infinity|(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?)", re.ASCII)
_RADIX = re.compile(r"0([xXoObB])([0-9a-fA-F]+)", re.ASCII)
_RADIX_BASE = {"x": 16, "o": 8, "b": 2}
_ARRAY_INDEX = re.compile(r"0|[1-9][0-9]*", re.ASCII)
_MAX_ARRAY_INDEX = 2**32 - 2


def js_number(text: str) -> float:
    """``Number(text)`` for a string: ``NaN`` when JavaScript would give ``NaN``."""
    stripped = text.strip(JS_SPACE)
    if not stripped:
        return 0.0
    if _DECIMAL.fullmatch(stripped):
        return float(stripped.replace("Infinity", "inf"))
    radix = _RADIX.fullmatch(stripped)
    if radix:
        try:
            return float(int(radix.group(2), _RADIX_BASE[radix.group(1).lower()]))
        except ValueError:
            return math.nan
    return math.nan


def is_array_index(key: str) -> bool:
    """Whether ``key`` names an array element (canonical decimal, no sign, no leading zero)."""
    return bool(_ARRAY_INDEX.fullmatch(key)) and int(key) <= _MAX_ARRAY_INDEX


def js_truthy(value: Any) -> bool:
    """JavaScript truthiness: ``""``, ``0``, ``NaN``, ``false``, ``null``/``undefined`` are false."""
    if value is None or value is False:
        return False
    if isinstance(value, str):
        return value != ""
    if isinstance(value, int | float):
        return value != 0 and not (isinstance(value, float) and math.isnan(value))
    return True


def js_string(value: Any) -> str:
    """``String(value)``; ``None`` (``undefined``/``null``) inside arrays becomes ``""``."""
    if value is None:
        return "undefined"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, str):
        return value
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _number_string(value)
    if isinstance(value, list | tuple):
        return ",".join("" if item is None else js_string(item) for item in value)
    if isinstance(value, Mapping):
        return "[object Object]"
    return ""


def _number_string(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    if value.is_integer() and abs(value) < 1e21:
        return str(int(value))
    return repr(value)


def js_object_order(keys: list[str]) -> list[str]:
    """The order ``Object.keys`` gives for keys inserted in ``keys`` order (array indices first)."""
    indices = sorted((key for key in keys if is_array_index(key)), key=int)
    return indices + [key for key in keys if not is_array_index(key)]
