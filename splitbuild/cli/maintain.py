"""Registry maintenance commands: inspect, ls, copy, tag, delete, prune, verify.

Every command takes registry references and ``oci:PATH`` references and has ``--json``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from splitbuild.cli._common import fail, handle_errors, print_json, run_async

if TYPE_CHECKING:
    from splitbuild.client import Client

JsonOpt = Annotated[bool, typer.Option("--json", help="One JSON document on stdout.")]
InsecureOpt = Annotated[
    list[str] | None, typer.Option("--insecure-registry", help="Allow plain HTTP to this registry host.")
]
CaFileOpt = Annotated[Path | None, typer.Option("--ca-file", help="Extra CA bundle for TLS.")]
JobsOpt = Annotated[int, typer.Option("--jobs", "-j", min=1, help="Operations in flight at once.")]
IncludeOpt = Annotated[
    str | None, typer.Option("--include", help="Only tags matching this regular expression (whole tag).")
]
ExcludeOpt = Annotated[
    str | None, typer.Option("--exclude", help="Leave out tags matching this regular expression (whole tag).")
]
ReferrersOpt = Annotated[
    bool,
    typer.Option(
        "--referrers/--no-referrers",
        help="Include referrers (signatures, SBOMs, attestations with a subject): API or sha256-<hex> tag.",
    ),
]


def register(app: typer.Typer) -> None:
    app.command("inspect", no_args_is_help=True)(inspect_command)
    app.command("ls", no_args_is_help=True)(ls_command)
    app.command("copy", no_args_is_help=True)(copy_command)
    app.command("tag", no_args_is_help=True)(tag_command)
    app.command("delete", no_args_is_help=True)(delete_command)
    app.command("prune", no_args_is_help=True)(prune_command)
    app.command("verify", no_args_is_help=True)(verify_command)


def _client(insecure: list[str] | None, ca_file: Path | None) -> Client:
    from splitbuild.client import Client

    return Client(insecure=insecure or [], ca_file=ca_file)


def _platforms(text: list[str] | None) -> list[str]:
    return [p.strip() for item in text or [] for p in item.split(",") if p.strip()]


def inspect_command(
    ref: Annotated[str, typer.Argument(help="REPO:TAG, REPO@DIGEST or oci:PATH[:TAG].")],
    raw: Annotated[bool, typer.Option("--raw", help="Print the manifest's exact bytes.")] = False,
    platform: Annotated[
        str | None, typer.Option("--platform", help="Show this platform's image from an index.")
    ] = None,
    referrers: ReferrersOpt = True,
    json_output: JsonOpt = False,
    insecure_registry: InsecureOpt = None,
    ca_file: CaFileOpt = None,
) -> None:
    """Show what REF points at: an index's platforms and attestations (with their predicate types),
    an image's layers and labels, and the referrers of either."""
    if raw and json_output:
        fail("--raw and --json cannot be combined", 2)

    async def go() -> Any:
        from splitbuild.ops import inspect

        async with _client(insecure_registry, ca_file) as client:
            return await inspect(client, ref, platform=platform, referrers=referrers and not raw)

    result = run_async(go)
    with handle_errors():
        if raw:
            import sys

            sys.stdout.buffer.write(result.manifest.raw)
            sys.stdout.flush()
        elif json_output:
            print_json(result.to_dict())
        else:
            from splitbuild.cli.maintain_output import inspect_report

            inspect_report(result)


def ls_command(
    repository: Annotated[str, typer.Argument(help="REPO or oci:PATH.")],
    include: IncludeOpt = None,
    exclude: ExcludeOpt = None,
    json_output: JsonOpt = False,
    insecure_registry: InsecureOpt = None,
    ca_file: CaFileOpt = None,
) -> None:
    """List the tags of a repository (every page), one per line."""

    async def go() -> Any:
        from splitbuild.ops import list_tags

        async with _client(insecure_registry, ca_file) as client:
            return await list_tags(client, repository, include=include, exclude=exclude)

    result = run_async(go)
    if json_output:
        print_json(result.to_dict())
    else:
        for tag in result.tags:
            typer.echo(tag)


def copy_command(
    source: Annotated[str, typer.Argument(help="REPO:TAG, REPO@DIGEST or oci:PATH:TAG.")],
    destination: Annotated[
        str, typer.Argument(help="REPO[:TAG] or oci:PATH[:TAG]; without a tag, the source's.")
    ],
    platform: Annotated[
        list[str] | None,
        typer.Option("--platform", help="Keep only these platforms (comma-separated): writes a new index."),
    ] = None,
    referrers: ReferrersOpt = True,
    jobs: JobsOpt = 8,
    progress: Annotated[
        bool, typer.Option("--progress/--no-progress", help="Progress bar on a terminal (stderr).")
    ] = True,
    json_output: JsonOpt = False,
    insecure_registry: InsecureOpt = None,
    ca_file: CaFileOpt = None,
) -> None:
    """Copy an image or a whole index byte for byte (digests preserved); skips what is there."""
    from splitbuild.cli.maintain_output import copy_progress

    platforms = _platforms(platform)

    async def go() -> Any:
        from splitbuild.ops import copy

        with copy_progress(progress and not json_output) as (on_progress, on_bytes):
            async with _client(insecure_registry, ca_file) as client:
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

    result = run_async(go)
    if json_output:
        print_json(result.to_dict())
    else:
        from splitbuild.cli.maintain_output import copy_report

        copy_report(result)


def tag_command(
    source: Annotated[str, typer.Argument(help="REPO:TAG or REPO@DIGEST (or oci:PATH:TAG).")],
    tags: Annotated[list[str], typer.Argument(help="New tags in the same repository.")],
    json_output: JsonOpt = False,
    insecure_registry: InsecureOpt = None,
    ca_file: CaFileOpt = None,
) -> None:
    """Add tags to what SOURCE points at, without moving data."""

    async def go() -> Any:
        from splitbuild.ops import add_tags

        async with _client(insecure_registry, ca_file) as client:
            return await add_tags(client, source, tags)

    result = run_async(go)
    if json_output:
        print_json(result.to_dict())
    else:
        from splitbuild.cli.maintain_output import tag_report

        tag_report(result)


def delete_command(
    ref: Annotated[str, typer.Argument(help="REPO:TAG or REPO@DIGEST (or oci:PATH:TAG).")],
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

    async def go() -> Any:
        from splitbuild.ops import delete

        async with _client(insecure_registry, ca_file) as client:
            return await delete(client, ref, force=force, tag_only=tag_only, dry_run=dry_run, jobs=jobs)

    result = run_async(go)
    if json_output:
        print_json(result.to_dict())
    else:
        from splitbuild.cli.maintain_output import delete_report

        delete_report(result)


def prune_command(
    repository: Annotated[str, typer.Argument(help="REPO or oci:PATH.")],
    keep_last: Annotated[
        int | None, typer.Option("--keep-last", min=0, help="Keep the N most recently created tags.")
    ] = None,
    older_than: Annotated[
        str | None,
        typer.Option("--older-than", help="Delete only tags created longer ago than this (30d, 2w, 12h)."),
    ] = None,
    include: IncludeOpt = None,
    exclude: ExcludeOpt = None,
    yes: Annotated[bool, typer.Option("--yes", help="Delete (without it: a dry run).")] = False,
    jobs: JobsOpt = 8,
    json_output: JsonOpt = False,
    insecure_registry: InsecureOpt = None,
    ca_file: CaFileOpt = None,
) -> None:
    """Apply a retention policy to the tags of a repository. A dry run unless --yes."""

    async def go() -> Any:
        from splitbuild.ops import RetentionPolicy, parse_duration, prune

        policy = RetentionPolicy(
            keep_last=keep_last,
            older_than=parse_duration(older_than) if older_than is not None else None,
            include=include,
            exclude=exclude,
        )
        async with _client(insecure_registry, ca_file) as client:
            return await prune(client, repository, policy, dry_run=not yes, jobs=jobs)

    result = run_async(go)
    if json_output:
        print_json(result.to_dict())
    else:
        from splitbuild.cli.maintain_output import prune_report

        prune_report(result)


def verify_command(
    refs: Annotated[list[str], typer.Argument(help="References that must be multi-platform indexes.")],
    platform: Annotated[
        list[str], typer.Option("--platform", help="Platforms each index must hold (comma-separated).")
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

    async def go() -> Any:
        from splitbuild.ops import verify

        async with _client(insecure_registry, ca_file) as client:
            return await verify(
                client,
                refs,
                _platforms(platform),
                exact=exact,
                deep=deep,
                require_attestations=require_attestations,
            )

    result = run_async(go)
    if json_output:
        print_json(result.to_dict())
    else:
        from splitbuild.cli.maintain_output import verify_report

        verify_report(result)
    if not result.ok:
        failed = result.failed
        first = f"{failed[0].reference}: {failed[0].summary()}"
        more = f" (and {len(failed) - 1} more)" if len(failed) > 1 else ""
        fail(f"verification failed for {len(failed)} of {len(result.checks)} references: {first}{more}", 7)
