"""The expressions metadata-action offers in templates (``{{branch}}``, ``{{date 'YYYYMMDD'}}``...).

:func:`global_scope` serves tag ``value``/``prefix``/``suffix``/``enable``, the flavor affixes and
custom labels and annotations; :func:`schedule_scope` serves ``type=schedule`` patterns, which only
know ``date`` and ``commit_date``.
"""

from __future__ import annotations

import math
import re
from datetime import datetime
from typing import Any

from splitbuild.tags.jsvalues import js_number, js_string, js_truthy
from splitbuild.tags.momentfmt import format_moment
from splitbuild.tags.resolve import ResolvedContext, dig
from splitbuild.tags.template import Helper, Scope, TemplateError

__all__ = ["SHORT_SHA_ENV", "branch_of", "global_scope", "schedule_scope", "short_sha", "tag_of"]

SHORT_SHA_ENV = "DOCKER_METADATA_SHORT_SHA_LENGTH"
_DEFAULT_SHORT_SHA_LENGTH = 7
_DEFAULT_BRANCH_EVENTS = ("create", "discussion", "issues", "schedule")


def branch_of(ref: str) -> str | None:
    """The branch name of a ``refs/heads/`` ref, else ``None``."""
    return ref.removeprefix("refs/heads/") if ref.startswith("refs/heads/") else None


def tag_of(ref: str) -> str | None:
    """The tag name of a ``refs/tags/`` ref, else ``None``."""
    return ref.removeprefix("refs/tags/") if ref.startswith("refs/tags/") else None


def short_sha(sha: str, env: dict[str, str] | Any) -> str:
    """The first ``DOCKER_METADATA_SHORT_SHA_LENGTH`` (default 7) characters of ``sha``."""
    length: float = _DEFAULT_SHORT_SHA_LENGTH
    setting = env.get(SHORT_SHA_ENV, "")
    if setting:
        length = js_number(setting)
        if math.isnan(length):
            raise TemplateError(f"{SHORT_SHA_ENV} is not a valid number: {setting!r}")
    if length >= len(sha):
        return sha
    return sha[: max(0, int(length))]


def _date_helper(instant: datetime, name: str) -> Helper:
    def render_date(args: list[Any], hash_args: dict[str, Any] | None) -> Any:
        if hash_args is None or len(args) != 1:
            raise TemplateError(f"{{{{{name}}}}} needs one format argument, e.g. {{{{{name} 'YYYYMMDD'}}}}")
        zone: Any = "UTC"
        for key, value in hash_args.items():
            if key != "tz":
                raise TemplateError(f"Unknown {key} attribute of {{{{{name}}}}} (only tz is known)")
            zone = value
        if not isinstance(zone, str) or not zone:
            raise TemplateError(f"the tz of {{{{{name}}}}} must be a time zone name such as 'Asia/Tokyo'")
        fmt = args[0]
        if js_truthy(fmt) and not isinstance(fmt, str):
            raise TemplateError(f"the format of {{{{{name}}}}} must be a quoted string")
        return format_moment(instant, fmt if isinstance(fmt, str) else None, zone)

    return Helper(render_date)


def schedule_scope(context: ResolvedContext) -> Scope:
    return {
        "date": _date_helper(context.now, "date"),
        "commit_date": _date_helper(context.commit_date, "commit_date"),
    }


def _is_default_branch(context: ResolvedContext) -> str:
    branch = context.ref.removeprefix("refs/heads/")
    if not branch:
        return "false"
    default = dig(context.payload, "repository", "default_branch")
    if default is not None and js_string(default) == branch:
        return "true"
    if any(event in context.event_name for event in _DEFAULT_BRANCH_EVENTS):
        return "true"
    return "false"


def _base_ref(context: ResolvedContext) -> Any:
    base_ref = dig(context.payload, "base_ref")
    if context.ref.startswith("refs/tags/") and base_ref is not None:
        return re.sub(r"^refs/heads/", "", js_string(base_ref))
    pr_base = dig(context.payload, "pull_request", "base", "ref")
    if context.ref.startswith("refs/pull/") and pr_base is not None:
        return pr_base
    return ""


def _constant(compute: Any) -> Helper:
    return Helper(lambda _args, _hash: compute())


def global_scope(context: ResolvedContext) -> Scope:
    return {
        "branch": _constant(lambda: branch_of(context.ref) or ""),
        "tag": _constant(lambda: tag_of(context.ref) or ""),
        "sha": _constant(lambda: short_sha(context.sha, context.env)),
        "base_ref": _constant(lambda: _base_ref(context)),
        "commit_date": _date_helper(context.commit_date, "commit_date"),
        "is_default_branch": _constant(lambda: _is_default_branch(context)),
        "is_not_default_branch": _constant(
            lambda: "true" if _is_default_branch(context) == "false" else "false"
        ),
        "date": _date_helper(context.now, "date"),
    }
