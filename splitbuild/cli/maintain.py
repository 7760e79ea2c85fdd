"""Registry maintenance commands: inspect, ls, copy, tag, delete, prune, verify.

Every command takes registry references and ``oci:PATH`` references and has ``--json``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from splitbuild.cli._common import (
    CaFileOpt,
    InsecureOpt,
    JobsOpt,
    JsonOpt,
    NoCacheOpt,
    ReferrersOpt,
    fail,
    handle_errors,
    print_json,
    print_result,
    run_with_client,
    split_commas,
)

if TYPE_CHECKING:
    from splitbuild.client import Client
    from splitbuild.ops import (
        CopyResult,
        DeleteResult,
        InspectResult,
        PruneResult,
        TagList,
        TagResult,
        VerifyResult,
    )

IncludeOpt = Annotated[
    str | None,
    typer.Option(
        "--include", metavar="REGEX", help="Only tags matching this regular expression (whole tag)."
    ),
]
ExcludeOpt = Annotated[
    str | None,
    typer.Option(
        "--exclude", metavar="REGEX", help="Leave out tags matching this regular expression (whole tag)."
    ),
]


def register(app: typer.Typer) -> None:
    app.command("inspect", short_help="Show an index's platforms and attestations, or an image.")(
        inspect_command
    )
    app.command("ls", short_help="List the tags of a repository.")(ls_command)
    app.command("copy", short_help="Copy an image or index byte for byte (digests preserved).")(copy_command)
    app.command("tag", short_help="Add tags to an image or index without moving data.")(tag_command)
    app.command("delete", short_help="Delete a tag, or a manifest by digest (refused while in use).")(
        delete_command
    )
    app.command("prune", short_help="Apply a retention policy to a repository's tags (dry run).")(
        prune_command
    )
    app.command("verify", short_help="Check that references are indexes holding the platforms.")(
        verify_command
    )


def inspect_command(
    ref: Annotated[str, typer.Argument(metavar="REF", help="REPO:TAG, REPO@DIGEST or oci:PATH[:TAG].")],
    raw: Annotated[bool, typer.Option("--raw", help="Print the manifest's exact bytes.")] = False,
    platform: Annotated[
        str | None,
        typer.Option("--platform", metavar="PLATFORMS", help="Show this platform's image from an index."),
    ] = None,
    referrers: ReferrersOpt = True,
    no_trunc: Annotated[
        bool, typer.Option("--no-trunc", help="Full digests in tables even on a narrow terminal.")
    ] = False,
    json_output: JsonOpt = False,
    insecure_registry: InsecureOpt = None,
    ca_file: CaFileOpt = None,
) -> None:
    """Show what REF points at: an index's platforms and attestations (with their predicate types),
    an image's layers and labels, and the referrers of either."""
    if raw and json_output:
        fail("--raw and --json cannot be combined", 2)

    async def go(client: Client) -> InspectResult:
        from splitbuild.ops import inspect

        return await inspect(client, ref, platform=platform, referrers=referrers and not raw)

    result = run_with_client(go, insecure_registry, ca_file)
    with handle_errors():
        if raw:
            import sys

            sys.stdout.buffer.write(result.manifest.raw)
            sys.stdout.flush()
        elif json_output:
            print_json(result.to_dict())
        else:
            from splitbuild.cli.maintain_output import inspect_report, terminal_width

            inspect_report(result, terminal_width(no_trunc))


def ls_command(
    repository: Annotated[str, typer.Argument(metavar="REPO", help="REPO or oci:PATH.")],
    include: IncludeOpt = None,
    exclude: ExcludeOpt = None,
    json_output: JsonOpt = False,
    insecure_registry: InsecureOpt = None,
    ca_file: CaFileOpt = None,
) -> None:
    """List the tags of a repository (every page), one per line."""

    async def go(client: Client) -> TagList:
        from splitbuild.ops import list_tags

        return await list_tags(client, repository, include=include, exclude=exclude)

    print_result(run_with_client(go, insecure_registry, ca_file), json_output, _echo_tags)


def _echo_tags(result: TagList) -> None:
    for tag in result.tags:
        typer.echo(tag)


def copy_command(
    source: Annotated[str, typer.Argument(metavar="SOURCE", help="REPO:TAG, REPO@DIGEST or oci:PATH:TAG.")],
    destination: Annotated[
        str, typer.Argument(metavar="DEST", help="REPO[:TAG] or oci:PATH[:TAG]; without a tag, the source's.")
    ],
    platform: Annotated[
        list[str] | None,
        typer.Option(
            "--platform",
            metavar="PLATFORMS",
            help="Keep only these platforms (comma-separated): writes a new index.",
        ),
    ] = None,
    referrers: Annotated[
        bool,
        typer.Option(
            "--referrers/--no-referrers",
            help="Copy the referrers (signatures, SBOMs, attestations with a subject) of the image and "
            "its children, and cosign's older sha256-<hex>.sig/.att/.sbom tags.",
        ),
    ] = True,
    jobs: JobsOpt = 8,
    progress: Annotated[
        bool, typer.Option("--progress/--no-progress", help="Progress bar on a terminal (stderr).")
    ] = True,
    json_output: JsonOpt = False,
    insecure_registry: InsecureOpt = None,
    ca_file: CaFileOpt = None,
    no_cache: NoCacheOpt = False,
) -> None:
    """Copy an image or a whole index byte for byte (digests preserved); skips what is there."""
    from splitbuild.cli.maintain_output import copy_progress, copy_report

    platforms = split_commas(platform)

    async def go(client: Client) -> CopyResult:
        from splitbuild.ops import copy

        with copy_progress(progress and not json_output) as (on_progress, on_bytes):
            return await copy(
                client,
                source,
                destination,
                platforms=platforms or None,
                referrers=referrers,
                jobs=jobs,
                on_progress=on_progress,
                on_bytes=on_bytes,
            )

    result = run_with_client(go, insecure_registry, ca_file, blob_cache=not no_cache)
    print_result(result, json_output, copy_report)


def tag_command(
    source: Annotated[
        str, typer.Argument(metavar="SOURCE", help="REPO:TAG or REPO@DIGEST (or oci:PATH:TAG).")
    ],
    tags: Annotated[list[str], typer.Argument(metavar="TAG...", help="New tags in the same repository.")],
    json_output: JsonOpt = False,
    insecure_registry: InsecureOpt = None,
    ca_file: CaFileOpt = None,
) -> None:
    """Add tags to what SOURCE points at, without moving data."""
    from splitbuild.cli.maintain_output import tag_report

    async def go(client: Client) -> TagResult:
        from splitbuild.ops import add_tags

        return await add_tags(client, source, tags)

    print_result(run_with_client(go, insecure_registry, ca_file), json_output, tag_report)


def delete_command(
    ref: Annotated[str, typer.Argument(metavar="REF", help="REPO:TAG or REPO@DIGEST (or oci:PATH:TAG).")],
    force: Annotated[
        bool, typer.Option("--force", help="Delete a digest even though tags or indexes use it.")
    ] = False,
    tag_only: Annotated[
        bool, typer.Option("--tag-only", help="Remove only the tag; keep every manifest, read nothing else.")
    ] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print what would be deleted.")] = False,
    jobs: JobsOpt = 8,
    json_output: JsonOpt = False,
    insecure_registry: InsecureOpt = None,
    ca_file: CaFileOpt = None,
) -> None:
    """Delete a tag (and what only it needed), or a manifest by digest (refused while in use)."""
    from splitbuild.cli.maintain_output import delete_report

    async def go(client: Client) -> DeleteResult:
        from splitbuild.ops import delete

        return await delete(client, ref, force=force, tag_only=tag_only, dry_run=dry_run, jobs=jobs)

    print_result(run_with_client(go, insecure_registry, ca_file), json_output, delete_report)


def prune_command(
    repository: Annotated[str, typer.Argument(metavar="REPO", help="REPO or oci:PATH.")],
    keep_last: Annotated[
        int | None,
        typer.Option("--keep-last", metavar="N", min=0, help="Keep the N most recently created tags."),
    ] = None,
    older_than: Annotated[
        str | None,
        typer.Option(
            "--older-than",
            metavar="AGE",
            help="Delete only tags created longer ago than this (30d, 2w, 12h).",
        ),
    ] = None,
    include: IncludeOpt = None,
    exclude: ExcludeOpt = None,
    untagged: Annotated[
        bool,
        typer.Option(
            "--untagged",
            help="Also delete untagged manifests nothing kept reaches (GHCR's untagged versions; on an "
            "OCI layout, also the blobs nothing references).",
        ),
    ] = False,
    age_from: Annotated[
        str | None,
        typer.Option(
            "--age-from",
            metavar="pushed|created",
            help="Age tags from their push time (GHCR, Docker Hub; the default there) or their "
            "image's created time (the default elsewhere).",
        ),
    ] = None,
    max_delete: Annotated[
        int | None,
        typer.Option(
            "--max-delete",
            metavar="N",
            min=0,
            help="Refuse (exit 8, nothing deleted) when more than N manifests and tags would go.",
        ),
    ] = None,
    yes: Annotated[bool, typer.Option("--yes", help="Delete (without it: a dry run).")] = False,
    jobs: JobsOpt = 8,
    json_output: JsonOpt = False,
    insecure_registry: InsecureOpt = None,
    ca_file: CaFileOpt = None,
) -> None:
    """Apply a retention policy to the tags of a repository. A dry run unless --yes."""
    from splitbuild.cli.maintain_output import prune_report

    async def go(client: Client) -> PruneResult:
        from splitbuild.ops import RetentionPolicy, parse_duration, prune

        policy = RetentionPolicy(
            keep_last=keep_last,
            older_than=parse_duration(older_than) if older_than is not None else None,
            include=include,
            exclude=exclude,
            untagged=untagged,
            age_from=age_from,
        )
        return await prune(client, repository, policy, dry_run=not yes, jobs=jobs, max_delete=max_delete)

    print_result(run_with_client(go, insecure_registry, ca_file), json_output, prune_report)


def verify_command(
    refs: Annotated[
        list[str], typer.Argument(metavar="REF...", help="References that must be multi-platform indexes.")
    ],
    platform: Annotated[
        list[str],
        typer.Option(
            "--platform", metavar="PLATFORMS", help="Platforms each index must hold (comma-separated)."
        ),
    ],
    exact: Annotated[bool, typer.Option("--exact", help="Exactly these platforms, no others.")] = False,
    deep: Annotated[
        bool, typer.Option("--deep", help="Read every child (bytes verified) and check its blobs exist.")
    ] = False,
    require_attestations: Annotated[
        bool,
        typer.Option(
            "--require-attestations",
            help="Every platform image must have an attestation manifest (in the index, or a referrer).",
        ),
    ] = False,
    json_output: JsonOpt = False,
    insecure_registry: InsecureOpt = None,
    ca_file: CaFileOpt = None,
) -> None:
    """Check that every REF is an index holding the platforms; exit 7 listing what is wrong."""
    from splitbuild.cli.maintain_output import verify_report

    async def go(client: Client) -> VerifyResult:
        from splitbuild.ops import verify

        return await verify(
            client,
            refs,
            split_commas(platform),
            exact=exact,
            deep=deep,
            require_attestations=require_attestations,
        )

    result = run_with_client(go, insecure_registry, ca_file)
    print_result(result, json_output, verify_report)
    if not result.ok:
        failed = result.failed
        first = f"{failed[0].reference}: {failed[0].summary()}"
        more = f" (and {len(failed) - 1} more)" if len(failed) > 1 else ""
        fail(f"verification failed for {len(failed)} of {len(result.checks)} references: {first}{more}", 7)
