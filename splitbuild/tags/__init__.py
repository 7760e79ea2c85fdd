"""Tags, labels and annotations computed exactly like docker/metadata-action.

Typed API::

    inputs = Inputs(images=["ghcr.io/org/app"], tags=parse_rule_lines(["type=semver,pattern={{version}}"]))
    metadata = compute_metadata(inputs, Context.from_environment(os.environ))
    metadata.tags        # ["ghcr.io/org/app:1.2.3", "ghcr.io/org/app:latest"]
    rule_targets(["ghcr.io/org/app"], ["type=ref,event=tag"]).targets   # what merge publishes to

:func:`compute` is the dict adapter the shared conformance checker calls; the ``parse_*``,
``transform_tags``, ``is_raw_statement``, ``get_inputs`` and ``resolve_context`` functions are the
checker's optional hooks. Pure: no network, no typer.
"""

from __future__ import annotations

from splitbuild.tags.compute import compute, compute_metadata
from splitbuild.tags.flavor import Flavor, parse_flavor
from splitbuild.tags.images import Image, parse_images
from splitbuild.tags.inputlist import get_inputs, parse_rule_lines
from splitbuild.tags.resolve import resolve_context
from splitbuild.tags.rules import TagRule, parse_tag, transform_tags
from splitbuild.tags.schema import Context, Inputs, Metadata, RepoInfo, RepoLicense, VersionInfo
from splitbuild.tags.targets import RuleTargets, rule_targets
from splitbuild.tags.template import is_raw_statement

__all__ = [
    "Context",
    "Flavor",
    "Image",
    "Inputs",
    "Metadata",
    "RepoInfo",
    "RepoLicense",
    "RuleTargets",
    "TagRule",
    "VersionInfo",
    "compute",
    "compute_metadata",
    "get_inputs",
    "is_raw_statement",
    "parse_flavor",
    "parse_images",
    "parse_rule_lines",
    "parse_tag",
    "resolve_context",
    "rule_targets",
    "transform_tags",
]
