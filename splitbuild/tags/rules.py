"""``tags`` entries (``type=semver,pattern={{version}}``...): parsing, defaults and priority order.

Each entry is one CSV record (quotes as CSV: ``type=match,"pattern=\\d{1,2}"``). A field is split at
its first ``=`` (the key is trimmed and lower-cased, the value trimmed); a field without a usable
``=`` sets ``value``. Unknown keys are kept and ignored, as metadata-action does (:data:`RULE_KEYS`
lists the known ones, which the strict checks hold rules to).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from functools import cmp_to_key
from typing import Any

from splitbuild.errors import ConfigError
from splitbuild.tags.csvparse import CsvError, parse_record
from splitbuild.tags.jsvalues import js_number

__all__ = [
    "COMMON_KEYS",
    "DEFAULT_RULES",
    "RULE_KEYS",
    "RuleType",
    "TagRule",
    "parse_tag",
    "parse_tag_rule",
    "parse_tag_rules",
    "transform_tags",
]


class RuleType(StrEnum):
    SCHEDULE = "schedule"
    SEMVER = "semver"
    PEP440 = "pep440"
    MATCH = "match"
    EDGE = "edge"
    REF = "ref"
    RAW = "raw"
    SHA = "sha"


DEFAULT_PRIORITY: dict[RuleType, str] = {
    RuleType.SCHEDULE: "1000",
    RuleType.SEMVER: "900",
    RuleType.PEP440: "900",
    RuleType.MATCH: "800",
    RuleType.EDGE: "700",
    RuleType.REF: "600",
    RuleType.RAW: "200",
    RuleType.SHA: "100",
}
DEFAULT_RULES = ("type=schedule", "type=ref,event=branch", "type=ref,event=tag", "type=ref,event=pr")
# The attributes each type reads (metadata-action's README); the parser keeps others and ignores
# them, as metadata-action does, and the strict checks (splitbuild.tags.validate) refuse them.
COMMON_KEYS = ("enable", "priority", "prefix", "suffix")
RULE_KEYS: dict[RuleType, tuple[str, ...]] = {
    RuleType.SCHEDULE: ("pattern", *COMMON_KEYS),
    RuleType.SEMVER: ("pattern", "value", "match", *COMMON_KEYS),
    RuleType.PEP440: ("pattern", "value", "match", *COMMON_KEYS),
    RuleType.MATCH: ("pattern", "group", "value", *COMMON_KEYS),
    RuleType.EDGE: ("branch", *COMMON_KEYS),
    RuleType.REF: ("event", *COMMON_KEYS),
    RuleType.RAW: ("value", *COMMON_KEYS),
    RuleType.SHA: ("format", *COMMON_KEYS),
}
REF_EVENTS = ("branch", "tag", "pr")
SHA_FORMATS = ("short", "long")


@dataclass(frozen=True)
class TagRule:
    """One parsed entry: its type, its attributes with defaults filled in, and the line it came from."""

    type: RuleType
    attrs: dict[str, str] = field(hash=False)
    source: str = ""

    def has(self, key: str) -> bool:
        return key in self.attrs

    def get(self, key: str) -> str:
        return self.attrs.get(key, "")

    @property
    def priority(self) -> float:
        return js_number(self.attrs["priority"])

    def as_dict(self) -> dict[str, Any]:
        return {"type": self.type.value, "attrs": dict(self.attrs)}


def _fail(line: str, reason: str) -> ConfigError:
    return ConfigError(f"invalid tag rule {line!r}: {reason}")


def _split_field(text: str) -> tuple[str, str] | None:
    """``key=value`` split at the first ``=`` that has at least one character before it."""
    index = text.find("=", 1)
    if index < 0 or text.startswith("="):
        return None
    return text[:index].strip().lower(), text[index + 1 :].strip()


def parse_tag_rule(line: str) -> TagRule:
    """Parse one ``tags`` entry and fill in its type's defaults (``tag.ts`` ``Parse``)."""
    try:
        fields = parse_record(line)
    except CsvError as exc:
        raise _fail(line, f"not a valid CSV record ({exc})") from None
    rule_type: RuleType | None = None
    attrs: dict[str, str] = {}
    for text in fields:
        pair = _split_field(text)
        if pair is None:
            attrs["value"] = text.strip()
            continue
        key, value = pair
        if key == "type":
            try:
                rule_type = RuleType(value)
            except ValueError:
                known = ", ".join(t.value for t in RuleType)
                raise _fail(line, f"unknown type {value!r} (expected one of {known})") from None
        else:
            attrs[key] = value
    rule_type = rule_type or RuleType.RAW
    _apply_defaults(line, rule_type, attrs)
    attrs.setdefault("enable", "true")
    attrs.setdefault("priority", DEFAULT_PRIORITY[rule_type])
    return TagRule(rule_type, attrs, line)


def _apply_defaults(line: str, rule_type: RuleType, attrs: dict[str, str]) -> None:
    if rule_type is RuleType.SCHEDULE:
        attrs.setdefault("pattern", "nightly")
    elif rule_type in (RuleType.SEMVER, RuleType.PEP440):
        if "pattern" not in attrs:
            raise _fail(
                line, f"type={rule_type.value} needs a pattern attribute, e.g. pattern={{{{version}}}}"
            )
        attrs.setdefault("value", "")
        attrs.setdefault("match", "")
    elif rule_type is RuleType.MATCH:
        if "pattern" not in attrs:
            raise _fail(line, "type=match needs a pattern attribute (a regular expression)")
        attrs.setdefault("group", "0")
        if math.isnan(js_number(attrs["group"])):
            raise _fail(line, f"group {attrs['group']!r} is not a number")
        attrs.setdefault("value", "")
    elif rule_type is RuleType.EDGE:
        attrs.setdefault("branch", "")
    elif rule_type is RuleType.REF:
        if "event" not in attrs:
            raise _fail(line, "type=ref needs an event attribute (branch, tag or pr)")
        if attrs["event"] not in REF_EVENTS:
            raise _fail(line, f"event {attrs['event']!r} is not one of branch, tag, pr")
        if attrs["event"] == "pr":
            attrs.setdefault("prefix", "pr-")
    elif rule_type is RuleType.RAW:
        if "value" not in attrs:
            raise _fail(line, "type=raw needs a value attribute")
    elif rule_type is RuleType.SHA:
        attrs.setdefault("prefix", "sha-")
        attrs.setdefault("format", "short")
        if attrs["format"] not in SHA_FORMATS:
            raise _fail(line, f"format {attrs['format']!r} is not one of short, long")


def _by_priority(first: TagRule, second: TagRule) -> int:
    """metadata-action's comparator: higher priority first; ``NaN`` compares equal to anything."""
    a, b = first.priority, second.priority
    if a < b:
        return 1
    if a > b:
        return -1
    return 0


def parse_tag_rules(lines: Sequence[str]) -> list[TagRule]:
    """Parse every entry (the four default rules when there is none), highest priority first."""
    rules = [parse_tag_rule(line) for line in (lines or DEFAULT_RULES)]
    return sorted(rules, key=cmp_to_key(_by_priority))


def parse_tag(line: str) -> dict[str, Any]:
    """:func:`parse_tag_rule` as plain data (the conformance checker's ``parse_tag``)."""
    return parse_tag_rule(line).as_dict()


def transform_tags(lines: Sequence[str]) -> list[dict[str, Any]]:
    """:func:`parse_tag_rules` as plain data (the conformance checker's ``transform_tags``)."""
    return [rule.as_dict() for rule in parse_tag_rules(lines)]
