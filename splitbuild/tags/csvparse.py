"""The CSV reading metadata-action relies on (``csv-parse``), reduced to what its inputs use.

Two modes:

* strict (a tag, flavor or image line): a ``"`` may only open a field at its first character and
  close it before a ``,``/line end; ``""`` inside quotes is one quote;
* relaxed (a whole multi-line input, :func:`parse_document`): a quote in the middle of a field is a
  literal character, and a line whose first character is ``#`` is a comment.

Both skip empty lines, accept ``\\n``, ``\\r\\n`` and ``\\r`` as line ends, and fail on an unclosed
quote. Fields are never trimmed here.
"""

from __future__ import annotations

__all__ = ["CsvError", "parse_document", "parse_record"]

_QUOTE = '"'
_DELIMITER = ","
_LINE_ENDS = "\r\n"


class CsvError(ValueError):
    """The text is not CSV in the mode asked for; the message says where."""


def parse_record(text: str) -> list[str]:
    """The first record of ``text`` read strictly; an input without any record is an error."""
    records = _parse(text, relaxed=False, comments=False)
    if not records:
        raise CsvError("empty entry")
    return records[0]


def parse_document(text: str) -> list[list[str]]:
    """Every record of a multi-line input, quotes relaxed and ``#`` comment lines dropped."""
    return _parse(text, relaxed=True, comments=True)


def _parse(text: str, *, relaxed: bool, comments: bool) -> list[list[str]]:
    records: list[list[str]] = []
    record: list[str] = []
    field: list[str] = []
    quoting = False
    was_quoting = False
    commenting = False
    pos = 0
    length = len(text)
    while pos < length:
        char = text[pos]
        if quoting:
            if char == _QUOTE:
                nxt = text[pos + 1] if pos + 1 < length else ""
                if nxt == _QUOTE:
                    field.append(_QUOTE)
                    pos += 2
                    continue
                if nxt in ("", _DELIMITER) or nxt in _LINE_ENDS or (comments and nxt == "#"):
                    quoting = False
                    was_quoting = True
                    pos += 1
                    continue
                if not relaxed:
                    raise CsvError(f"closing quote followed by {nxt!r} at position {pos + 1}")
                # csv-parse (relax_quotes) keeps the opening quote and goes on unquoted.
                field.insert(0, _QUOTE)
                quoting = False
                was_quoting = True
                pos += 1
                continue
            field.append(char)
            pos += 1
            continue
        if char in _LINE_ENDS:
            step = 2 if char == "\r" and text[pos + 1 : pos + 2] == "\n" else 1
            if commenting:
                commenting = False
            elif record or field or was_quoting:
                record.append("".join(field))
                records.append(record)
                record = []
            field = []
            was_quoting = False
            pos += step
            continue
        if commenting:
            pos += 1
            continue
        if comments and char == "#" and not record and not field and not was_quoting:
            commenting = True
            pos += 1
            continue
        if char == _DELIMITER:
            record.append("".join(field))
            field = []
            was_quoting = False
            pos += 1
            continue
        if char == _QUOTE and not was_quoting:
            if not field:
                quoting = True
                pos += 1
                continue
            if not relaxed:
                raise CsvError(f"quote inside an unquoted field at position {pos}")
        field.append(char)
        pos += 1
    if quoting:
        raise CsvError("quote not closed")
    if not commenting and (record or field or was_quoting):
        record.append("".join(field))
        records.append(record)
    return records
