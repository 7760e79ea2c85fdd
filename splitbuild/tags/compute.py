"""Inputs + context to tags, labels and annotations (metadata-action's ``Meta``), and the dict adapter."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from splitbuild.errors import ConfigError
from splitbuild.tags.evaluate import evaluate_rules, latest_tag
from splitbuild.tags.expressions import global_scope
from splitbuild.tags.flavor import parse_flavor_lines
from splitbuild.tags.images import enabled_image_names, parse_image_lines
from splitbuild.tags.labels import base_entries, entries_to_object, finalize_entries, render_entries
from splitbuild.tags.resolve import resolve
from splitbuild.tags.rules import parse_tag_rules
from splitbuild.tags.schema import Context, Inputs, Metadata, VersionInfo
from splitbuild.tags.validate import check_configuration

__all__ = ["ANNOTATION_LEVELS_ENV", "annotation_levels", "compute", "compute_metadata", "tag_names"]

ANNOTATION_LEVELS_ENV = "DOCKER_METADATA_ANNOTATIONS_LEVELS"
_DEFAULT_LEVELS = "manifest"


def annotation_levels(inputs: Inputs, context: Context) -> list[str]:
    """``inputs.annotation_levels``, else ``DOCKER_METADATA_ANNOTATIONS_LEVELS``, else ``manifest``."""
    if inputs.annotation_levels is not None:
        return list(inputs.annotation_levels)
    return (context.env.get(ANNOTATION_LEVELS_ENV) or _DEFAULT_LEVELS).split(",")


def tag_names(version: VersionInfo, latest: str) -> list[str]:
    """``main``, the partial tags and ``latest`` (when decided), or nothing without ``main``."""
    if not version.main:
        return []
    return [version.main, *version.partial, *([latest] if version.latest else [])]


def compute_metadata(
    inputs: Inputs, context: Context, *, strict: bool = True, clock: datetime | None = None
) -> Metadata:
    """Compute what docker/metadata-action outputs for ``inputs`` on ``context``.

    ``strict`` also checks the rules the event does not evaluate (see
    :mod:`splitbuild.tags.validate`); ``strict=False`` fails exactly when metadata-action fails.
    ``clock`` stands in for the wall clock when ``context.now`` is not set.
    Raises :class:`~splitbuild.errors.ConfigError` naming the rule or entry at fault.
    """
    images = parse_image_lines(inputs.images)
    rules = parse_tag_rules(inputs.tags)
    flavor = parse_flavor_lines(inputs.flavor)
    if strict:
        check_configuration(rules, flavor, inputs.labels, inputs.annotations)
    resolved = resolve(context, clock=clock)
    version = evaluate_rules(rules, flavor, resolved)

    names = tag_names(version, latest_tag(flavor))
    image_names = enabled_image_names(images)
    tags = [f"{image}:{name}" for image in image_names for name in names] if image_names else list(names)

    scope = global_scope(resolved)
    base = base_entries(resolved.repo, version.main, resolved.now, resolved.sha)
    label_list = finalize_entries(base + render_entries(inputs.labels, scope, kind="label"))
    annotation_list = finalize_entries(base + render_entries(inputs.annotations, scope, kind="annotation"))
    levels = annotation_levels(inputs, context)
    return Metadata(
        version=version.main or "",
        version_info=version,
        tags=tags,
        tag_names=names,
        labels=entries_to_object(label_list),
        label_list=label_list,
        annotations=[f"{level}:{entry}" for level in levels for entry in annotation_list],
        annotation_list=annotation_list,
        annotation_levels=levels,
        images=image_names,
        bake_target=inputs.bake_target,
        sep_tags=inputs.sep_tags,
        sep_labels=inputs.sep_labels,
        sep_annotations=inputs.sep_annotations,
    )


def compute(context: Mapping[str, Any], inputs: Mapping[str, Any]) -> dict[str, Any]:
    """The conformance checker's contract: vector-format ``context`` and ``inputs`` in, plain data out.

    Computes like metadata-action (``strict=False``); raises :class:`ConfigError` where it fails.
    """
    if not isinstance(context, Mapping) or not isinstance(inputs, Mapping):
        raise ConfigError("compute() takes a context object and an inputs object")
    metadata = compute_metadata(Inputs.from_mapping(inputs), Context.from_mapping(context), strict=False)
    return {
        "version": metadata.version_info.model_dump(),
        "tags": list(metadata.tags),
        "tagNames": list(metadata.tag_names),
        "labels": list(metadata.label_list),
        "annotations": list(metadata.annotation_list),
        "annotationsLeveled": list(metadata.annotations),
        "bakeArgs": metadata.bake_args(),
        "json": metadata.to_json(),
        "outputs": metadata.outputs(),
    }
