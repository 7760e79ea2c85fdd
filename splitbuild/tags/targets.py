"""Publish targets from metadata-action rules: every ``IMAGE:TAG`` the rules give for an event.

:func:`rule_targets` is what ``splitbuild merge --image ... --tags ...`` publishes to; it returns
the computed labels as index annotations too, and leaves merging them with other annotations to
the caller.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from splitbuild.errors import UsageError
from splitbuild.tags.compute import compute_metadata
from splitbuild.tags.inputlist import parse_rule_lines
from splitbuild.tags.models import Context, Inputs

__all__ = ["RuleTargets", "rule_targets"]


@dataclass(frozen=True)
class RuleTargets:
    """The ``IMAGE:TAG`` targets the rules give, and the index annotations from the computed
    ``org.opencontainers.image.*`` labels (empty unless asked for)."""

    targets: tuple[str, ...]
    annotations: Mapping[str, str] = field(default_factory=dict)


def rule_targets(
    images: Sequence[str],
    tag_rules: Sequence[str],
    *,
    flavor: Sequence[str] = (),
    labels: Sequence[str] = (),
    context_file: str | Path | None = None,
    env: Mapping[str, str] | None = None,
    label_annotations: bool = False,
) -> RuleTargets:
    """The targets metadata-action's rules give: ``images`` and ``tag_rules``, ``flavor`` and
    ``labels`` lines as the action takes them.

    The event comes from ``context_file`` (JSON) or the CI environment ``env`` (default: this
    process's; GitHub Actions or GitLab CI). With ``label_annotations`` the computed labels are
    returned as index annotations. Raises :class:`UsageError` when the rules give no tag.
    """
    if context_file is not None:
        context = Context.from_file(context_file)
    else:
        context = Context.from_environment(os.environ if env is None else env)
    inputs = Inputs(
        images=parse_rule_lines(images, name="image"),
        tags=parse_rule_lines(tag_rules, name="tags") if tag_rules else [],
        flavor=parse_rule_lines(flavor, name="flavor"),
        labels=parse_rule_lines(labels, name="labels"),
    )
    metadata = compute_metadata(inputs, context)
    if not metadata.tags:
        raise UsageError(f"the tag rules give no tag for this {context.event_name} event; nothing to publish")
    annotations = dict(metadata.labels) if label_annotations else {}
    return RuleTargets(targets=tuple(metadata.tags), annotations=annotations)
