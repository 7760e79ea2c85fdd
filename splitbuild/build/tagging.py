"""The tags and labels of a local build: the config's tag rules on the local git context."""

from __future__ import annotations

from splitbuild.build.gitcontext import GitState
from splitbuild.config import Config
from splitbuild.errors import UsageError
from splitbuild.reference import validate_tag
from splitbuild.tags import Context, Inputs, compute_metadata

__all__ = ["build_labels", "default_tags", "explicit_tags"]


def default_tags(config: Config, context: Context, state: GitState) -> list[str]:
    """The tag names ``[tags] rules`` and ``flavor`` give for ``context``; raises
    :class:`UsageError` when they give none (name the tags with ``tags``)."""
    inputs = Inputs(tags=list(config.tags.rules), flavor=list(config.tags.flavor))
    names = compute_metadata(inputs, context).tag_names
    if not names:
        raise UsageError(
            f"the tag rules give no tag for this checkout ({state.describe()})",
            hint="name the tags with `tags` (e.g. dev)",
        )
    return list(names)


def explicit_tags(texts: list[str]) -> list[str]:
    """``--tag`` values: bare tag names, validated, duplicates dropped."""
    tags: list[str] = []
    for text in texts:
        if "/" in text or ":" in text or "@" in text:
            raise UsageError(
                f"`tags` {text!r}: give a tag name only (e.g. 1.2.3); the repository comes from `outputs`"
            )
        tag = validate_tag(text)
        if tag not in tags:
            tags.append(tag)
    return tags


def build_labels(state: GitState) -> dict[str, str]:
    """The labels the generated CI build sets, from the local state: source and revision."""
    labels: dict[str, str] = {}
    if state.url:
        labels["org.opencontainers.image.source"] = state.url
    if state.sha:
        labels["org.opencontainers.image.revision"] = state.sha
    return labels
