"""Multi-line inputs to entries, as metadata-action reads ``images``, ``tags``, ``flavor``, ``labels``.

The text is trimmed and read as CSV with relaxed quotes; a line whose first character is ``#`` is a
comment; each record's fields are joined again with ``,``, so CSV quotes are consumed here (to keep
a comma inside a pattern, put the whole line in double quotes and double the quotes inside it).
Lines are trimmed and empty ones dropped.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from splitbuild.errors import ConfigError
from splitbuild.tags.csvparse import CsvError, parse_document
from splitbuild.tags.schema import DEFAULT_BAKE_TARGET

__all__ = ["get_inputs", "parse_input_list", "parse_rule_lines"]

_LIST_INPUTS = ("images", "tags", "flavor", "labels", "annotations")


def parse_input_list(text: str, *, name: str = "input") -> list[str]:
    """The entries of one multi-line input value."""
    text = text.strip()
    if not text:
        return []
    try:
        records = parse_document(text)
    except CsvError as exc:
        raise ConfigError(f"invalid {name} {text!r}: {exc}") from None
    entries = [",".join(record) for record in records]
    return [entry.strip() for entry in entries if entry.strip()]


def parse_rule_lines(values: Sequence[str], *, name: str = "input") -> list[str]:
    """Entries of repeated option values, each holding one or more newline-separated entries.

    ``["type=ref,event=branch\\ntype=sha", "type=raw,value=x"]`` gives three entries; every value
    is read like one metadata-action multi-line input.
    """
    entries: list[str] = []
    for value in values:
        entries.extend(parse_input_list(value, name=name))
    return entries


def get_inputs(raw: Mapping[str, str]) -> dict[str, Any]:
    """metadata-action's ``getInputs`` over raw input strings (keys as in ``action.yml``)."""
    parsed: dict[str, Any] = {
        key: parse_input_list(raw.get(key, ""), name=f"{key} input") for key in _LIST_INPUTS
    }
    parsed.update(
        {
            "context": raw.get("context", "").strip() or "workflow",
            "bakeTarget": raw.get("bake-target", "").strip() or DEFAULT_BAKE_TARGET,
            "githubToken": raw.get("github-token", "").strip(),
            "sepTags": raw.get("sep-tags", "") or "\n",
            "sepLabels": raw.get("sep-labels", "") or "\n",
            "sepAnnotations": raw.get("sep-annotations", "") or "\n",
        }
    )
    return parsed
