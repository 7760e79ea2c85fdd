"""``splitbuild tags``: the tags, labels and annotations docker/metadata-action would compute."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from splitbuild.cli._common import handle_errors, print_json

_LINES = "Repeatable; one value may hold several newline-separated entries (as the action's input)."


def register(app: typer.Typer) -> None:
    app.command("tags", short_help="Compute tags, labels, annotations as metadata-action does.")(tags_command)


def tags_command(
    images: Annotated[
        list[str] | None,
        typer.Option("--images", metavar="IMAGE", help=f"Image (name/app or name=...,enable=...). {_LINES}"),
    ] = None,
    tags: Annotated[
        list[str] | None,
        typer.Option(
            "--tags", metavar="RULE", help=f"Tag rule, e.g. type=semver,pattern={{{{version}}}}. {_LINES}"
        ),
    ] = None,
    flavor: Annotated[
        list[str] | None,
        typer.Option(
            "--flavor",
            metavar="ENTRY",
            help=f"Flavor entry: latest=auto|true|false, prefix=..., suffix=... {_LINES}",
        ),
    ] = None,
    labels: Annotated[
        list[str] | None,
        typer.Option("--labels", metavar="KEY=VALUE", help=f"Extra KEY=VALUE label. {_LINES}"),
    ] = None,
    annotations: Annotated[
        list[str] | None,
        typer.Option("--annotations", metavar="KEY=VALUE", help=f"Extra KEY=VALUE annotation. {_LINES}"),
    ] = None,
    annotation_levels: Annotated[
        str | None,
        typer.Option(
            "--annotation-levels",
            metavar="LEVELS",
            help="Comma-separated levels, e.g. index,manifest (default: DOCKER_METADATA_ANNOTATIONS_LEVELS).",
        ),
    ] = None,
    context_file: Annotated[
        Path | None,
        typer.Option(
            "--context",
            metavar="FILE",
            help="JSON context file; default: the GitHub Actions or GitLab CI environment.",
        ),
    ] = None,
    save_context: Annotated[
        Path | None,
        typer.Option(
            "--save-context",
            metavar="FILE",
            help="Also write the context used to this file (for reproducible runs).",
        ),
    ] = None,
    json_output: Annotated[
        bool, typer.Option("--json", help="Print version, tags, tag-names, labels and annotations as JSON.")
    ] = False,
) -> None:
    """Compute tags like docker/metadata-action from its rules and the CI context."""
    with handle_errors():
        import json
        import os

        from splitbuild.tags import Context, Inputs, compute_metadata, parse_rule_lines
        from splitbuild.tags.images import parse_image_lines
        from splitbuild.tags.validate import check_annotation_levels, check_image_names

        image_lines = parse_rule_lines(images or [], name="--images")
        check_image_names(parse_image_lines(image_lines))
        levels = None if annotation_levels is None else check_annotation_levels(annotation_levels)
        context = Context.from_file(context_file) if context_file else Context.from_environment(os.environ)
        inputs = Inputs(
            images=image_lines,
            tags=parse_rule_lines(tags or [], name="--tags"),
            flavor=parse_rule_lines(flavor or [], name="--flavor"),
            labels=parse_rule_lines(labels or [], name="--labels"),
            annotations=parse_rule_lines(annotations or [], name="--annotations"),
            annotation_levels=levels or None,
        )
        metadata = compute_metadata(inputs, context)
        if save_context is not None:
            save_context.write_text(json.dumps(context.to_file_data(), indent=2) + "\n", encoding="utf-8")
        if json_output:
            print_json({"version": metadata.version, **metadata.to_json()})
            return
        if not metadata.tags:
            sys.stderr.write("splitbuild: warning: no tag was computed (check --tags and the context)\n")
        for tag in metadata.tags:
            sys.stdout.write(tag + "\n")
