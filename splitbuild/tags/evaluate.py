"""Rules to a version record (metadata-action's ``getVersion``): ``main``, ``partial``, ``latest``.

Rules run in priority order. Each one either yields nothing or a value plus an "auto latest" flag;
the value gets its prefix/suffix, is sanitised (runs of characters outside ``[A-Za-z0-9._-]`` become
one ``-``) and recorded. The first recorded value is ``main`` and decides ``latest``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from splitbuild.errors import ConfigError
from splitbuild.tags.expressions import branch_of, global_scope, schedule_scope, short_sha, tag_of
from splitbuild.tags.flavor import Flavor
from splitbuild.tags.jsregex import JsRegexError, compile_js_regex, js_match
from splitbuild.tags.jsvalues import is_array_index
from splitbuild.tags.pep440 import parse_pep440
from splitbuild.tags.resolve import ResolvedContext
from splitbuild.tags.rules import RuleType, TagRule
from splitbuild.tags.schema import VersionInfo
from splitbuild.tags.semver import parse_semver
from splitbuild.tags.template import Helper, Scope, TemplateError, is_raw_statement, render

__all__ = ["evaluate_rules", "latest_tag", "sanitize_tag", "split_regex_literal"]

_INVALID_TAG_CHARS = re.compile(r"[^a-zA-Z0-9._-]+")
_REGEX_LITERAL = re.compile(r"/(.+)/(.*)")


def sanitize_tag(value: str) -> str:
    return _INVALID_TAG_CHARS.sub("-", value)


def latest_tag(flavor: Flavor) -> str:
    """The ``latest`` tag with the flavor affixes that apply to it (inserted without evaluation)."""
    prefix = flavor.prefix if flavor.prefixLatest else ""
    suffix = flavor.suffix if flavor.suffixLatest else ""
    return sanitize_tag(f"{prefix}latest{suffix}")


def split_regex_literal(pattern: str) -> tuple[str, str]:
    """``/body/flags`` to ``(body, flags)``; any other pattern is a body without flags."""
    literal = _REGEX_LITERAL.fullmatch(pattern)
    return (literal.group(1), literal.group(2)) if literal else (pattern, "")


@dataclass
class _Record:
    main: str | None = None
    partial: list[str] = field(default_factory=list)
    latest: bool | None = None

    def add(self, value: str, auto_latest: bool, flavor: Flavor) -> None:
        if not value:
            return
        value = sanitize_tag(value)
        if self.main is None:
            self.main = value
        elif value != self.main:
            self.partial.append(value)
        if self.latest is None:
            self.latest = auto_latest if flavor.latest == "auto" else flavor.latest == "true"

    def result(self) -> VersionInfo:
        return VersionInfo(
            main=self.main, partial=list(dict.fromkeys(self.partial)), latest=bool(self.latest)
        )


class _Evaluator:
    def __init__(self, context: ResolvedContext, flavor: Flavor) -> None:
        self.context = context
        self.flavor = flavor
        self.scope = global_scope(context)
        self.record = _Record()

    def run(self, rule: TagRule) -> None:
        enabled = render(rule.get("enable"), self.scope)
        if enabled not in ("true", "false"):
            raise TemplateError(f"enable must evaluate to true or false, got {enabled!r}")
        if enabled == "false":
            return
        handlers: dict[RuleType, Callable[[TagRule], None]] = {
            RuleType.SCHEDULE: self._schedule,
            RuleType.SEMVER: self._semver,
            RuleType.PEP440: self._pep440,
            RuleType.MATCH: self._match,
            RuleType.EDGE: self._edge,
            RuleType.REF: self._ref,
            RuleType.RAW: self._raw,
            RuleType.SHA: self._sha,
        }
        handlers[rule.type](rule)

    def _add(self, rule: TagRule, value: str, auto_latest: bool) -> None:
        self.record.add(self._affixed(rule, value), auto_latest, self.flavor)

    def _affixed(self, rule: TagRule, value: str) -> str:
        if rule.has("prefix"):
            value = render(rule.get("prefix"), self.scope) + value
        elif self.flavor.prefix:
            value = render(self.flavor.prefix, self.scope) + value
        if rule.has("suffix"):
            value += render(rule.get("suffix"), self.scope)
        elif self.flavor.suffix:
            value += render(self.flavor.suffix, self.scope)
        return value

    def _source(self, rule: TagRule) -> str | None:
        """The string a semver/pep440/match rule reads: ``value`` if set, else the tag name."""
        if rule.get("value"):
            return render(rule.get("value"), self.scope)
        return tag_of(self.context.ref)

    def _version_source(self, rule: TagRule) -> str | None:
        source = self._source(rule)
        if source is None:
            return None
        if rule.get("match"):
            found = js_match(compile_js_regex(rule.get("match")), source)
            if found is not None:
                if len(found) < 2 or found[1] is None:
                    raise TemplateError(f"match {rule.get('match')!r} has no capture group 1 in {source!r}")
                source = found[1]
        return source.replace("/", "-")

    def _schedule(self, rule: TagRule) -> None:
        if "schedule" in self.context.event_name:
            self._add(rule, render(rule.get("pattern"), schedule_scope(self.context)), False)

    def _semver(self, rule: TagRule) -> None:
        source = self._version_source(rule)
        version = parse_semver(source) if source is not None else None
        if version is None:
            return
        data = version.render_data()
        if version.prerelease:
            pattern = rule.get("pattern") if is_raw_statement(rule.get("pattern")) else "{{version}}"
            self._add(rule, render(pattern, data), False)
        else:
            self._add(rule, render(rule.get("pattern"), data), True)

    def _pep440(self, rule: TagRule) -> None:
        source = self._version_source(rule)
        version = parse_pep440(source) if source is not None else None
        if source is None or version is None:
            return
        if version.is_prerelease or version.is_postrelease or version.is_devrelease:
            value = source if is_raw_statement(rule.get("pattern")) else version.clean()
            self._add(rule, value, False)
            return
        raw = source
        data: Scope = {
            "raw": Helper(lambda _a, _h: raw),
            "version": Helper(lambda _a, _h: version.clean()),
            "major": Helper(lambda _a, _h: version.component(0)),
            "minor": Helper(lambda _a, _h: version.component(1)),
            "patch": Helper(lambda _a, _h: version.component(2)),
        }
        self._add(rule, render(rule.get("pattern"), data), True)

    def _match(self, rule: TagRule) -> None:
        source = self._source(rule)
        if source is None:
            return
        found = js_match(compile_js_regex(*split_regex_literal(rule.get("pattern"))), source)
        group = rule.get("group")
        if found is None or not is_array_index(group) or int(group) >= len(found):
            return
        value = found[int(group)]
        if value is not None:
            self._add(rule, value, True)

    def _edge(self, rule: TagRule) -> None:
        branch = branch_of(self.context.ref)
        wanted = rule.get("branch") or self.context.default_branch
        if branch is not None and wanted == branch:
            self._add(rule, "edge", False)

    def _ref(self, rule: TagRule) -> None:
        ref = self.context.ref
        event = rule.get("event")
        if event == "branch" and (branch := branch_of(ref)) is not None:
            self._add(rule, branch, False)
        elif event == "tag" and (tag := tag_of(ref)) is not None:
            self._add(rule, tag, True)
        elif event == "pr" and ref.startswith("refs/pull/"):
            self._add(rule, ref.removeprefix("refs/pull/").removesuffix("/merge"), False)

    def _raw(self, rule: TagRule) -> None:
        self._add(rule, render(rule.get("value"), self.scope), False)

    def _sha(self, rule: TagRule) -> None:
        sha = self.context.sha
        if sha:
            value = sha if rule.get("format") == "long" else short_sha(sha, self.context.env)
            self._add(rule, value, False)


def evaluate_rules(rules: Sequence[TagRule], flavor: Flavor, context: ResolvedContext) -> VersionInfo:
    """Run ``rules`` (already in priority order) against ``context``."""
    evaluator = _Evaluator(context, flavor)
    for rule in rules:
        try:
            evaluator.run(rule)
        except (TemplateError, JsRegexError) as exc:
            raise ConfigError(f"tag rule {rule.source!r}: {exc}") from None
    return evaluator.record.result()
