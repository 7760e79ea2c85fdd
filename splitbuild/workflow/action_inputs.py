"""List inputs of docker's actions, written so that their parser gives back each item byte for byte.

``docker/build-push-action`` reads ``build-args``, ``build-contexts`` and ``labels`` with
``Util.getList(input, {ignoreComma: true})`` of ``@docker/actions-toolkit``: the input is parsed
as CSV (``csv-parse`` with ``relaxQuotes``), the fields of each record are joined again with
``,``, and every item is trimmed. An unquoted ``LIST=a,"b"`` therefore arrives as ``LIST=a,b``.
:func:`csv_list` quotes each item that holds a comma, a double quote or a line break (RFC 4180:
the item in double quotes, each ``"`` doubled), which that parser reads back exactly. Items with
leading or trailing white space cannot survive the final trim and are refused.
"""

from __future__ import annotations

from collections.abc import Iterable

from splitbuild.errors import ConfigError

__all__ = ["csv_item", "csv_list"]

_SPECIAL = (",", '"', "\n", "\r")


def csv_item(item: str, what: str) -> str:
    """``item`` as one CSV field: verbatim when it needs no quoting, else quoted."""
    if item != item.strip():
        raise ConfigError(
            f"{what} {item!r} begins or ends with white space, which docker/build-push-action trims",
            hint="remove the white space, or move it inside the value where it is not at the end",
        )
    if any(c in item for c in _SPECIAL):
        return '"' + item.replace('"', '""') + '"'
    return item


def csv_list(items: Iterable[str], what: str) -> str:
    """The multi-line input for ``items``, one field per line, with a final newline."""
    return "".join(csv_item(item, what) + "\n" for item in items)
