"""``splitbuild build``: the split build on this machine (native where it can, QEMU elsewhere)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from splitbuild.cli._common import (
    DEFAULT_CONFIG,
    AllowRollbackOpt,
    AllowShrinkOpt,
    CaFileOpt,
    ConfigOpt,
    DeleteDisplacedOpt,
    InsecureOpt,
    JsonOpt,
    handle_errors,
    make_client,
    print_result,
    run_async,
    split_commas,
)

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from splitbuild.build import BuildOptions, BuildResult

DEFAULT_OUTPUT = "oci:./build/oci"


def register(app: typer.Typer) -> None:
    app.command("build", short_help="Build every platform locally, push by digest, merge.")(build_command)


def build_command(
    config: ConfigOpt = DEFAULT_CONFIG,
    platform: Annotated[
        str | None,
        typer.Option(
            "--platform",
            metavar="PLATFORMS",
            help="Comma-separated subset of the config's platforms (default: all).",
        ),
    ] = None,
    output: Annotated[
        list[str] | None,
        typer.Option(
            "--output",
            "-o",
            metavar="DEST",
            help=f"oci:PATH or a registry repository, without tag; repeatable (default {DEFAULT_OUTPUT}).",
        ),
    ] = None,
    tag: Annotated[
        list[str] | None,
        typer.Option(
            "--tag",
            "-t",
            metavar="TAG",
            help="Tag name; repeatable (default: the config's tag rules on git state).",
        ),
    ] = None,
    build_arg: Annotated[
        list[str] | None,
        typer.Option(
            "--build-arg",
            metavar="KEY=VALUE",
            help="KEY=VALUE, overriding the config's build-args; repeatable.",
        ),
    ] = None,
    builder: Annotated[
        str,
        typer.Option(
            "--builder",
            metavar="NAME",
            help="auto (docker if an engine is reachable, else buildah), buildah, docker.",
        ),
    ] = "auto",
    jobs: Annotated[
        int | None,
        typer.Option(
            "--jobs", "-j", metavar="N", help="Platforms built at once (default: the number of cores)."
        ),
    ] = None,
    json_output: JsonOpt = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Show the builders' output.")] = False,
    scan: Annotated[
        bool,
        typer.Option(
            "--scan",
            help="Scan each platform's image with the [scan] scanner (trivy by default) before pushing it.",
        ),
    ] = False,
    allow_shrink: AllowShrinkOpt = False,
    allow_rollback: AllowRollbackOpt = False,
    delete_displaced: DeleteDisplacedOpt = False,
    insecure_registry: InsecureOpt = None,
    ca_file: CaFileOpt = None,
) -> None:
    """Build every platform (native or under QEMU), push each by digest, then merge the index."""
    with handle_errors():
        from splitbuild.build.options import options_from_config

        options = options_from_config(
            config,
            platforms=split_commas(platform),
            outputs=output or [DEFAULT_OUTPUT],
            tags=tag or [],
            build_args=build_arg or [],
            jobs=jobs,
            allow_shrink=allow_shrink,
            allow_rollback=allow_rollback or None,
            delete_displaced=delete_displaced or None,
            scan=scan,
            on_progress=lambda p, message: _say(f"{p}: {message}"),
            on_output=(lambda p, line: _say(f"[{p}] {line}")) if verbose else None,
        )
        result = run_async(lambda: _run(options, builder, insecure_registry, ca_file, json_output))
        print_result(result, json_output, _print_table)


def _print_table(result: BuildResult) -> None:
    from splitbuild.build import render_table

    sys.stdout.write(render_table(result))


def _say(text: str) -> None:
    sys.stderr.write(text + "\n")
    sys.stderr.flush()


async def _run(
    options: BuildOptions,
    builder_name: str,
    insecure_registry: list[str] | None,
    ca_file: Path | None,
    json_output: bool,
) -> BuildResult:
    from splitbuild.build import BuildFailed, ScanRefused, run_build, select_builder

    builder = await select_builder(builder_name)
    host = options.host
    _say(f"host {host.platform}; builder {builder.describe()}")
    for p in options.platforms:
        mode = "native" if host.is_native(p) else "emulated"
        _say(f"  {p:<14} {mode:<9} {host.why(p)}")
    _say(f"tags {', '.join(options.tags)} in {', '.join(ref.name for ref in options.outputs)}")
    async with make_client(insecure_registry, ca_file) as client:
        try:
            return await _until_signalled(lambda: run_build(client, builder, options))
        except (BuildFailed, ScanRefused) as failed:
            for leg in failed.result.failed:
                if leg.log_tail:
                    _say(f"--- last lines of the {leg.platform} {leg.failed_step or 'build'} ---")
                    for line in leg.log_tail:
                        _say(f"[{leg.platform}] {line}")
            print_result(failed.result, json_output, _print_table)
            raise


async def _until_signalled(fn: Callable[[], Awaitable[BuildResult]]) -> BuildResult:
    """Run ``fn``; on SIGINT or SIGTERM (Ctrl-C, a cancelled CI job) cancel it, which stops the
    builder processes and removes their directories, then exit as interrupted."""
    import signal

    import anyio

    from splitbuild._tasks import task_group

    result: list[BuildResult] = []
    received: list[int] = []
    async with task_group() as tg:

        async def watch() -> None:
            with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
                async for signum in signals:
                    received.append(signum)
                    tg.cancel_scope.cancel()
                    return

        async def work() -> None:
            result.append(await fn())
            tg.cancel_scope.cancel()

        tg.start_soon(watch)
        tg.start_soon(work)
    if received or not result:
        raise KeyboardInterrupt
    return result[0]
