"""``splitbuild merge``: the final job of a split build."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from splitbuild.cli._common import (
    AllowRollbackOpt,
    AllowShrinkOpt,
    CaFileOpt,
    DeleteDisplacedOpt,
    InsecureOpt,
    JsonOpt,
    NoCacheOpt,
    handle_errors,
    make_client,
    print_json,
    run_async,
    split_commas,
)

if TYPE_CHECKING:
    from splitbuild.merge import MergeResult

TargetOpt = Annotated[
    list[str] | None,
    typer.Option(
        "-t",
        "--tag",
        metavar="REF:TAG",
        help="Target REF:TAG or oci:PATH:TAG; repeat for every tag and registry.",
    ),
]


def register(app: typer.Typer) -> None:
    app.command("merge", short_help="Merge per-platform digests into one index under every tag.")(
        merge_command
    )


def merge_command(
    sources: Annotated[
        list[str] | None,
        typer.Argument(
            metavar="SOURCE",
            help="repo@sha256:..., repo:tag, oci:PATH@sha256:... or bare sha256:... (first target's repo).",
        ),
    ] = None,
    tag: TargetOpt = None,
    digests_dir: Annotated[
        Path | None,
        typer.Option("--digests-dir", metavar="DIR", help="Directory of digest files (one source each)."),
    ] = None,
    platform: Annotated[
        str | None,
        typer.Option(
            "--platform", metavar="PLATFORMS", help="Exact platform set the index must hold, comma-separated."
        ),
    ] = None,
    optional_platform: Annotated[
        list[str] | None,
        typer.Option(
            "--optional-platform",
            metavar="PLATFORMS",
            help="Platforms the index may lack (their build failed): left out and reported, exit 0 "
            "(repeatable, comma-separated).",
        ),
    ] = None,
    annotation: Annotated[
        list[str] | None,
        typer.Option(
            "--annotation",
            metavar="[LEVEL:]KEY=VALUE",
            help="[index:|manifest-descriptor[PLATFORM]:]KEY=VALUE (forces an OCI index).",
        ),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Resolve and check; print the index and the planned writes.")
    ] = False,
    json_output: JsonOpt = False,
    allow_shrink: AllowShrinkOpt = False,
    allow_rollback: AllowRollbackOpt = False,
    delete_displaced: DeleteDisplacedOpt = False,
    referrers: Annotated[
        bool,
        typer.Option(
            "--referrers/--no-referrers",
            help="Copy the referrers (signatures, SBOMs, attestations with a subject) of children "
            "copied from another repository.",
        ),
    ] = True,
    image: Annotated[
        list[str] | None,
        typer.Option(
            "--image",
            metavar="REPO",
            help="Repository to publish to, with tags computed from --tags rules (repeatable).",
        ),
    ] = None,
    tag_rules: Annotated[
        list[str] | None,
        typer.Option(
            "--tags",
            metavar="RULES",
            help="docker/metadata-action tag rules (newline-separated; repeatable).",
        ),
    ] = None,
    flavor: Annotated[
        list[str] | None, typer.Option("--flavor", metavar="LINES", help="metadata-action flavor lines.")
    ] = None,
    labels: Annotated[
        list[str] | None, typer.Option("--labels", metavar="KEY=VALUE", help="metadata-action extra labels.")
    ] = None,
    context: Annotated[
        Path | None,
        typer.Option(
            "--context", metavar="FILE", help="JSON event context file (default: the CI environment)."
        ),
    ] = None,
    label_annotations: Annotated[
        bool,
        typer.Option("--label-annotations", help="Put the computed OCI labels on the index as annotations."),
    ] = False,
    insecure_registry: InsecureOpt = None,
    ca_file: CaFileOpt = None,
    no_cache: NoCacheOpt = False,
) -> None:
    """Assemble the multi-arch index from per-platform digests and push it under every tag."""
    with handle_errors():
        from splitbuild.cli.output import merge_report

        rules = _Rules(image or [], tag_rules or [], flavor or [], labels or [], context, label_annotations)
        result = run_async(
            lambda: _merge(
                sources or [],
                tag or [],
                rules,
                digests_dir,
                _Platforms(platform, optional_platform or []),
                annotation or [],
                dry_run,
                _Policy(allow_shrink, allow_rollback, delete_displaced, referrers),
                insecure_registry,
                ca_file,
                not no_cache,
            )
        )
        data = result.to_dict()
        if json_output:
            print_json(data)
        else:
            merge_report(result)
        _left_out_warning(data)
        _github_report(data)


@dataclass(frozen=True)
class _Platforms:
    required: str | None
    optional: list[str]


@dataclass(frozen=True)
class _Policy:
    allow_shrink: bool
    allow_rollback: bool
    delete_displaced: bool
    referrers: bool


@dataclass(frozen=True)
class _Rules:
    images: list[str]
    tags: list[str]
    flavor: list[str]
    labels: list[str]
    context: Path | None
    label_annotations: bool


async def _merge(
    sources: list[str],
    targets: list[str],
    rules: _Rules,
    digests_dir: Path | None,
    platforms: _Platforms,
    annotations: list[str],
    dry_run: bool,
    policy: _Policy,
    insecure_registry: list[str] | None,
    ca_file: Path | None,
    blob_cache: bool,
) -> MergeResult:
    from splitbuild.errors import UsageError
    from splitbuild.merge import merge_options
    from splitbuild.publish import publish

    label_annotations: dict[str, str] = {}
    if rules.images:
        from splitbuild.tags.targets import rule_targets  # the tag rules only when given

        computed = rule_targets(
            rules.images,
            rules.tags,
            flavor=rules.flavor,
            labels=rules.labels,
            context_file=rules.context,
            label_annotations=rules.label_annotations,
        )
        targets = targets + list(computed.targets)
        label_annotations = dict(computed.annotations)
    elif rules.tags:
        raise UsageError("--tags rules need at least one --image")
    options = merge_options(
        targets,
        sources,
        digests_dir=digests_dir,
        platforms=split_commas(platforms.required) if platforms.required else None,
        optional_platforms=split_commas(platforms.optional),
        annotations=annotations,
        default_annotations=label_annotations,
        allow_shrink=policy.allow_shrink,
        allow_rollback=policy.allow_rollback,
        referrers=policy.referrers,
    )
    async with make_client(insecure_registry, ca_file, blob_cache=blob_cache) as client:
        return await publish(client, options, delete_displaced=policy.delete_displaced, dry_run=dry_run)


def _left_out_warning(data: dict[str, Any]) -> None:
    """One warning line on stderr naming the optional platforms left out (stdout stays the report
    or the one ``--json`` document); in GitHub Actions, as an annotation on the run's page."""
    import os
    import sys

    left_out = ", ".join(data.get("leftOut", []))
    if not left_out:
        return
    # The platforms are normalised keys: no ``::``, no line break.
    what = "dry run: would leave out" if data.get("dryRun") else "published without"
    message = f"{what} the optional platforms {left_out} (no image given for them)"
    if os.environ.get("GITHUB_ACTIONS") == "true":
        sys.stderr.write(f"::warning title=splitbuild merge::{message}\n")
    else:
        sys.stderr.write(f"splitbuild: warning: {message}\n")


def _github_report(data: dict[str, Any]) -> None:
    import os

    if os.environ.get("GITHUB_ACTIONS") != "true":
        return
    import sys

    from splitbuild.report import github_merge_summary

    writes = []
    summary_path = os.environ.get("GITHUB_STEP_SUMMARY")
    if summary_path:
        writes.append(("$GITHUB_STEP_SUMMARY", summary_path, github_merge_summary(data)))
    output_path = os.environ.get("GITHUB_OUTPUT")
    left_out = ",".join(data.get("leftOut", []))
    if output_path and not data.get("dryRun"):
        text = f"digest={data['digest']}\n" + (f"left-out={left_out}\n" if left_out else "")
        writes.append(("$GITHUB_OUTPUT", output_path, text))
    for name, path, text in writes:
        # The merge itself is done (and printed): a report that cannot be written is a warning.
        try:
            with open(path, "a", encoding="utf-8") as handle:
                handle.write(text)
        except OSError as exc:
            sys.stderr.write(f"splitbuild: warning: could not write {name} ({path}): {exc.strerror or exc}\n")
