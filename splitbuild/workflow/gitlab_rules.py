"""When the GitLab jobs run: ``[ci]`` triggers as GitLab ``rules:``.

``[ci] branches`` and ``tags`` are GitHub Actions filter patterns (``*`` stops at ``/``, ``**``
does not, ``?`` and ``+`` repeat the character before them, ``[a-z0-9]`` is a class, ``\\``
escapes, a leading ``!`` excludes). :func:`filter_regex` turns one into an anchored RE2 regex
literal for a rule such as ``$CI_COMMIT_BRANCH =~ /^release\\/[^\\/]*$/``; exclusions become
``when: never`` rules placed before the others, which is GitHub's meaning when every exclusion
follows the patterns it narrows (anything else is refused).

The rules, first match wins:

* merge requests targeting a configured branch (any branch when ``branches`` is empty), build
  jobs only: they build and push nothing (``SPLITBUILD_PUSH`` stays ``false``) and are
  interruptible, so a newer push cancels them;
* pushes of a configured tag, pushes to a configured branch, pipelines run from the UI
  (``workflow-dispatch``) on the default branch or a ``[ci.gitlab] web-branches`` branch (a
  "Run pipeline" on any other branch or on a tag adds no job, so a branch named ``latest``
  cannot publish ``:latest``), scheduled pipelines (``schedule``): these publish.

``interruptible`` inside ``rules:`` needs GitLab 16.10 or later.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Literal

from splitbuild.config import CiConfig
from splitbuild.errors import ConfigError
from splitbuild.workflow.gitlab_model import Rule

__all__ = [
    "PUSH_VARIABLE",
    "SAME_PROJECT",
    "filter_regex",
    "preview_rules",
    "publish_rules",
    "split_patterns",
]

PUSH_VARIABLE = "SPLITBUILD_PUSH"
_CLASS_BODY = re.compile(r"^[A-Za-z0-9-]+$")
_SPECIAL = set(".^$|(){}/")
_MR = '$CI_PIPELINE_SOURCE == "merge_request_event"'
_PUSH = '$CI_PIPELINE_SOURCE == "push"'
_WEB = '$CI_PIPELINE_SOURCE == "web"'
SAME_PROJECT = (
    f"{_MR} && $CI_MERGE_REQUEST_SOURCE_PROJECT_ID && $CI_MERGE_REQUEST_PROJECT_ID"
    " && $CI_MERGE_REQUEST_SOURCE_PROJECT_ID == $CI_MERGE_REQUEST_PROJECT_ID"
    " && $CI_MERGE_REQUEST_PROJECT_ID == $CI_PROJECT_ID"
)
"""A merge request from a branch of the project it targets, in that project's pipeline. A fork's
merge request has another source project, whether its pipeline runs in the parent project or (the
default) in the fork itself, where ``CI_PROJECT_ID`` is the fork's."""


def filter_regex(pattern: str) -> str:
    """The anchored regex (``/`` escaped, for a GitLab ``/.../`` literal) that matches what the
    GitHub filter ``pattern`` matches. Raises :class:`ConfigError` for patterns it cannot mean."""
    out = ["^"]
    index = 0
    repeatable = False
    while index < len(pattern):
        char = pattern[index]
        if char == "*":
            double = pattern.startswith("**", index)
            out.append(".*" if double else "[^\\/]*")
            index += 2 if double else 1
            repeatable = False
            continue
        if char in "?+":
            if not repeatable:
                raise ConfigError(f"pattern {pattern!r}: {char!r} must follow a character it repeats")
            out.append(char)
            repeatable = False
        elif char == "[":
            end = pattern.find("]", index + 1)
            body = pattern[index + 1 : end] if end > index else ""
            if not _CLASS_BODY.match(body):
                raise ConfigError(f"pattern {pattern!r}: a [...] class holds letters, digits and ranges")
            out.append(f"[{body}]")
            index = end + 1
            repeatable = True
            continue
        elif char == "\\":
            if index + 1 >= len(pattern):
                raise ConfigError(f"pattern {pattern!r} ends with a lone \\")
            out.append(_literal(pattern[index + 1]))
            index += 2
            repeatable = True
            continue
        elif char.isspace():
            raise ConfigError(f"pattern {pattern!r} contains whitespace")
        else:
            out.append(_literal(char))
            repeatable = True
        index += 1
    out.append("$")
    return "".join(out)


def _literal(char: str) -> str:
    return "\\" + char if char in _SPECIAL or char in "*?+[]\\" else char


def split_patterns(patterns: Sequence[str], what: str) -> tuple[list[str], list[str]]:
    """(included, excluded) regexes of a pattern list; exclusions (``!pattern``) must come after
    every inclusion they narrow, and need at least one inclusion."""
    included: list[str] = []
    excluded: list[str] = []
    for pattern in patterns:
        if pattern.startswith("!"):
            excluded.append(filter_regex(pattern[1:]))
        elif excluded:
            raise ConfigError(
                f"ci.{what}: {pattern!r} follows an exclusion; GitLab rules need every '!' pattern "
                "after the patterns it narrows"
            )
        else:
            included.append(filter_regex(pattern))
    if excluded and not included:
        raise ConfigError(f"ci.{what}: exclusions ('!') need a pattern to narrow")
    return included, excluded


def _rules(
    condition: str, variable: str, patterns: Sequence[str], what: str, variables: dict[str, str] | None
) -> list[Rule]:
    included, excluded = split_patterns(patterns, what)
    never = [Rule(if_=f"{condition} && {variable} =~ /{regex}/", when="never") for regex in excluded]
    return never + [
        Rule(if_=f"{condition} && {variable} =~ /{regex}/", variables=variables) for regex in included
    ]


def _merge_request_rules(
    ci: CiConfig,
    condition: str = _MR,
    *,
    variables: dict[str, str] | None = None,
    when: Literal["manual"] | None = None,
) -> list[Rule]:
    if not ci.pull_requests:
        return []
    interruptible = True if when is None else None
    if not ci.branches:
        return [Rule(if_=condition, variables=variables, when=when, interruptible=interruptible)]
    included, excluded = split_patterns(ci.branches, "branches")
    target = "$CI_MERGE_REQUEST_TARGET_BRANCH_NAME"
    never = [Rule(if_=f"{condition} && {target} =~ /{regex}/", when="never") for regex in excluded]
    return never + [
        Rule(
            if_=f"{condition} && {target} =~ /{regex}/",
            variables=variables,
            when=when,
            interruptible=interruptible,
        )
        for regex in included
    ]


def preview_rules(ci: CiConfig, job: Literal["build", "preview", "stop"]) -> list[Rule]:
    """``[ci] previews``: merge requests from the project itself (not a fork) push (build jobs,
    ``SPLITBUILD_PUSH=true``), merge into ``mr-<iid>`` (the preview job) and delete it (the stop
    job, ``when: manual``, which GitLab runs when the merge request closes). Empty without previews."""
    if not ci.previews:
        return []
    if job == "build":
        return _merge_request_rules(ci, SAME_PROJECT, variables={PUSH_VARIABLE: "true"})
    return _merge_request_rules(ci, SAME_PROJECT, when="manual" if job == "stop" else None)


def publish_rules(ci: CiConfig, *, merge_requests: bool) -> list[Rule]:
    """The rules of a job: the merge-request rules first when ``merge_requests`` (build jobs), then
    every publishing trigger, each setting ``SPLITBUILD_PUSH`` to ``true`` (on the build jobs;
    the merge job runs only when publishing and needs no switch)."""
    push = {PUSH_VARIABLE: "true"} if merge_requests else None
    rules = [*preview_rules(ci, "build"), *_merge_request_rules(ci)] if merge_requests else []
    rules += _rules(_PUSH, "$CI_COMMIT_TAG", ci.tags, "tags", push)
    rules += _rules(_PUSH, "$CI_COMMIT_BRANCH", ci.branches, "branches", push)
    if ci.workflow_dispatch:
        rules.append(Rule(if_=f"{_WEB} && $CI_COMMIT_BRANCH == $CI_DEFAULT_BRANCH", variables=push))
        if ci.gitlab.web_branches:
            rules += _rules(_WEB, "$CI_COMMIT_BRANCH", ci.gitlab.web_branches, "gitlab.web-branches", push)
    if ci.schedule:
        rules.append(Rule(if_='$CI_PIPELINE_SOURCE == "schedule"', variables=push))
    return rules
