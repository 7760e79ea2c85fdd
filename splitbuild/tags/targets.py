"""Publish targets from metadata-action rules: every ``IMAGE:TAG`` the rules give for an event.

:func:`rule_targets` is what ``splitbuild merge --image ... --tags ...`` publishes to; it returns
the computed labels as index annotations too, and leaves merging them with other annotations to
the caller. Its annotations hold ``org.opencontainers.image.created``, the commit's date (metadata-action's
``commit_date``) when the event gives it: it orders the published indexes (:mod:`splitbuild.merge`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from splitbuild.errors import UsageError
from splitbuild.tags.compute import compute_metadata
from splitbuild.tags.inputlist import parse_rule_lines
from splitbuild.tags.resolve import iso_utc, known_commit_date
from splitbuild.tags.schema import Context, Inputs

__all__ = ["RuleTargets", "rule_targets"]


@dataclass(frozen=True)
class RuleTargets:
    """The ``IMAGE:TAG`` targets the rules give, and the index annotations from the computed
    ``org.opencontainers.image.*`` labels (empty unless asked for)."""

    targets: tuple[str, ...]
    annotations: Mapping[str, str] = field(default_factory=dict)


CREATED = "org.opencontainers.image.created"


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
    returned as index annotations; ``created`` is the commit's date when known. Raises
    :class:`UsageError` when the rules give no tag.
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
    # The commit's date, not the run's (metadata-action's created label is the run's): a late run
    # of an older commit then cannot move a tag off a newer commit's index.
    # Unknown (no commit in the event): not set, rather than the run's time, so that re-running
    # the merge gives the same index; such tags then move as without ordering.
    commit_date = known_commit_date(context)
    if commit_date is not None:
        annotations[CREATED] = iso_utc(commit_date)
    return RuleTargets(targets=tuple(metadata.tags), annotations=annotations)
