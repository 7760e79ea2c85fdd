"""Checks of every rule, whatever the event (``strict`` mode of :func:`compute_metadata`).

metadata-action only evaluates what the event needs: a broken ``type=match`` pattern or a
``{{date}}`` without format in a ``type=schedule`` rule fails on the release or the nightly run, not
on the pull request that introduced it; and a misspelt ``{{verison}}`` or ``prefx=`` is no error at
all (Handlebars renders an unknown name as ``""``, unknown attributes are ignored), so the tag is
silently missing. These checks compile every template and regular expression, check that each
template only names what its scope holds and each rule only keys its type reads (with a
did-you-mean suggestion), and check the date helpers' arguments up front, so such a configuration
fails on any event, when the config is loaded (``splitbuild generate``), in ``splitbuild tags`` and
before ``splitbuild merge`` pushes anything.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence

from splitbuild.errors import ConfigError, shorten
from splitbuild.platforms import normalize_platform
from splitbuild.tags.evaluate import split_regex_literal
from splitbuild.tags.flavor import Flavor
from splitbuild.tags.images import Image
from splitbuild.tags.jsregex import JsRegexError, compile_js_regex
from splitbuild.tags.rules import RULE_KEYS, RuleType, TagRule
from splitbuild.tags.template import TemplateError, compile_template

__all__ = [
    "ANNOTATION_LEVELS",
    "GLOBAL_NAMES",
    "PEP440_NAMES",
    "SCHEDULE_NAMES",
    "SEMVER_NAMES",
    "check_annotation_levels",
    "check_configuration",
    "check_image_names",
]

_DATE_HELPERS = ("date", "commit_date")
# What each template's scope holds (splitbuild.tags.expressions and splitbuild.tags.evaluate build
# the scopes; tests check that these lists match them). The first names are the ones metadata-action
# documents; the others render too, so they are accepted, but not suggested.
GLOBAL_NAMES = (
    "branch",
    "tag",
    "sha",
    "base_ref",
    "is_default_branch",
    "is_not_default_branch",
    "date",
    "commit_date",
)
SCHEDULE_NAMES = ("date", "commit_date")
SEMVER_NAMES = ("raw", "version", "major", "minor", "patch", "prerelease", "build")
_SEMVER_INTERNALS = ("options", "loose", "includePrerelease")  # node-semver's other own properties
PEP440_NAMES = ("raw", "version", "major", "minor", "patch")


def _suggest(word: str, known: Sequence[str], *, template: bool) -> str:
    close = difflib.get_close_matches(word, known, n=1, cutoff=0.6)
    shown = [f"{{{{{name}}}}}" if template else name for name in known]
    mean = ""
    if close:
        mean = f"; did you mean {{{{{close[0]}}}}}?" if template else f"; did you mean {close[0]}?"
    return f"{mean} (known: {', '.join(shown)})"


def _check_template(
    source: str, where: str, names: Sequence[str], *, hidden: Sequence[str] = (), date_helpers: bool = True
) -> None:
    template = compile_template(source)
    for name, called in template.references():
        if name not in names and name not in hidden:
            what = "function" if called else "variable"
            raise TemplateError(
                f"unknown {what} {{{{{name}}}}} in {where}{_suggest(name, names, template=True)}"
            )
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


def _check_keys(rule: TagRule) -> None:
    known = RULE_KEYS[rule.type]
    for key in rule.attrs:
        if key not in known:
            raise TemplateError(
                f"unknown key {key!r} for type={rule.type.value}{_suggest(key, known, template=False)}"
            )


def _check_rule(rule: TagRule) -> None:
    _check_keys(rule)
    enable = rule.get("enable")
    _check_template(enable, "enable", GLOBAL_NAMES)
    if "{{" not in enable and enable not in ("true", "false"):
        raise TemplateError(f"enable must be true or false (or an expression), not {enable!r}")
    for key in ("prefix", "suffix"):
        if rule.has(key):
            _check_template(rule.get(key), key, GLOBAL_NAMES)
    if rule.type in (RuleType.RAW, RuleType.SEMVER, RuleType.PEP440, RuleType.MATCH):
        _check_template(rule.get("value"), "value", GLOBAL_NAMES)
    if rule.type is RuleType.SCHEDULE:
        _check_template(rule.get("pattern"), "pattern", SCHEDULE_NAMES)
    elif rule.type is RuleType.SEMVER:
        _check_template(
            rule.get("pattern"), "pattern", SEMVER_NAMES, hidden=_SEMVER_INTERNALS, date_helpers=False
        )
    elif rule.type is RuleType.PEP440:
        _check_template(rule.get("pattern"), "pattern", PEP440_NAMES, date_helpers=False)
    if rule.type in (RuleType.SEMVER, RuleType.PEP440) and rule.get("match"):
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
            _check_template(text, what, GLOBAL_NAMES)
        except TemplateError as exc:
            raise ConfigError(f"{what} {text!r}: {exc}") from None
    for what, entries in (("label", labels), ("annotation", annotations)):
        for entry in entries:
            try:
                _check_template(entry, what, GLOBAL_NAMES)
            except TemplateError as exc:
                raise ConfigError(f"{what} {entry!r}: {exc}") from None


ANNOTATION_LEVELS = ("manifest", "index", "manifest-descriptor", "index-descriptor")
"""The annotation levels buildx (and so docker/metadata-action's output) knows."""
_PLATFORM_LEVELS = ("manifest", "manifest-descriptor")
"""The levels that may name one platform, ``manifest[linux/arm64]``."""
_LEVEL = r"(?P<level>[a-z-]+)(?:\[(?P<platform>[^\[\]]*)\])?"


def check_image_names(images: Sequence[Image]) -> None:
    """Refuse an ``--images`` name with a tag or digest: the tags are what the command computes,
    so ``ghcr.io/acme/app:latest`` would print ``ghcr.io/acme/app:latest:pr-7``."""
    for image in images:
        last = image.name.rsplit("/", 1)[-1]  # a ':' before the last '/' is a registry port
        if "@" in image.name or ":" in last:
            raise ConfigError(
                f"`images` {shorten(image.name)!r}: an image name has no tag or digest; "
                "give the name alone (the tags come from the rules)"
            )


def check_annotation_levels(text: str) -> list[str]:
    """The ``--annotation-levels`` list, each a level buildx knows (``manifest`` and
    ``manifest-descriptor`` optionally with a platform: ``manifest[linux/arm64]``)."""
    levels = [item.strip() for item in text.split(",")]
    for level in levels:
        match = re.fullmatch(_LEVEL, level)
        name, platform = (match.group("level"), match.group("platform")) if match else (level, None)
        if name not in ANNOTATION_LEVELS:
            raise ConfigError(
                f"`annotation_levels`: unknown level {shorten(level)!r} "
                f"(expected {', '.join(ANNOTATION_LEVELS)}, comma-separated)"
            )
        if platform is not None:
            if name not in _PLATFORM_LEVELS:
                raise ConfigError(
                    f"`annotation_levels`: level {shorten(level)!r}: only manifest and "
                    "manifest-descriptor name a platform"
                )
            try:
                normalize_platform(platform)
            except ConfigError as exc:
                raise ConfigError(f"`annotation_levels`: level {shorten(level)!r}: {exc.message}") from None
    return levels
