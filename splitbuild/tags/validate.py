"""Checks of every rule, whatever the event (``strict`` mode of :func:`compute_metadata`).

metadata-action only evaluates what the event needs: a broken ``type=match`` pattern or a
``{{date}}`` without format in a ``type=schedule`` rule fails on the release or the nightly run, not
on the pull request that introduced it. These checks compile every template and regular expression
and check the date helpers' arguments up front, so such a configuration fails on any event.
"""

from __future__ import annotations

from collections.abc import Sequence

from splitbuild.errors import ConfigError
from splitbuild.tags.evaluate import split_regex_literal
from splitbuild.tags.flavor import Flavor
from splitbuild.tags.jsregex import JsRegexError, compile_js_regex
from splitbuild.tags.rules import RuleType, TagRule
from splitbuild.tags.template import TemplateError, compile_template

__all__ = ["check_configuration"]

_DATE_HELPERS = ("date", "commit_date")


def _check_template(source: str, *, date_helpers: bool = True) -> None:
    template = compile_template(source)
    if not date_helpers:
        return
    for name, count, keys in template.calls():
        if name not in _DATE_HELPERS:
            continue
        if count != 1:
            raise TemplateError(f"{{{{{name}}}}} needs one format argument, e.g. {{{{{name} 'YYYYMMDD'}}}}")
        unknown = [key for key in keys if key != "tz"]
        if unknown:
            raise TemplateError(f"Unknown {unknown[0]} attribute of {{{{{name}}}}} (only tz is known)")


def _check_rule(rule: TagRule) -> None:
    enable = rule.get("enable")
    _check_template(enable)
    if "{{" not in enable and enable not in ("true", "false"):
        raise TemplateError(f"enable must be true or false (or an expression), not {enable!r}")
    for key in ("prefix", "suffix"):
        if rule.has(key):
            _check_template(rule.get(key))
    if rule.type is RuleType.RAW or (rule.type in (RuleType.SEMVER, RuleType.PEP440, RuleType.MATCH)):
        _check_template(rule.get("value"))
    if rule.type is RuleType.SCHEDULE:
        _check_template(rule.get("pattern"))
    elif rule.type in (RuleType.SEMVER, RuleType.PEP440):
        _check_template(rule.get("pattern"), date_helpers=False)
        if rule.get("match"):
            compile_js_regex(rule.get("match"))
    elif rule.type is RuleType.MATCH:
        compile_js_regex(*split_regex_literal(rule.get("pattern")))


def check_configuration(
    rules: Sequence[TagRule], flavor: Flavor, labels: Sequence[str], annotations: Sequence[str]
) -> None:
    """Raise :class:`ConfigError` naming the first rule or entry that cannot work on some event."""
    for rule in rules:
        try:
            _check_rule(rule)
        except (TemplateError, JsRegexError) as exc:
            raise ConfigError(f"tag rule {rule.source!r}: {exc}") from None
    for what, text in (("flavor prefix", flavor.prefix), ("flavor suffix", flavor.suffix)):
        try:
            _check_template(text)
        except TemplateError as exc:
            raise ConfigError(f"{what} {text!r}: {exc}") from None
    for what, entries in (("label", labels), ("annotation", annotations)):
        for entry in entries:
            try:
                _check_template(entry)
            except TemplateError as exc:
                raise ConfigError(f"{what} {entry!r}: {exc}") from None
