"""What every command shares: error handling, exit codes, JSON and human output, the options
several commands declare alike, and the registry client built from them.

Command modules import only typer (and this module) at the top; the library is imported inside
the command functions so that ``splitbuild --help`` and a single command start fast. This module
likewise imports only typer and the standard library at the top.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Awaitable, Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn, Protocol, TypeVar

import typer

if TYPE_CHECKING:
    from splitbuild.client import Client

T = TypeVar("T")


# Options declared alike by several commands: one declaration each, so their names and --help
# text cannot drift apart.
def _locate_config(ctx: typer.Context, param: typer.CallbackParam, value: Path) -> Path:
    """``--config`` left at its default and no config here: the nearest one above, up to the top of
    the git repository, as git finds its repository. The command then runs from that directory,
    so the config's paths (context, dockerfile, outputs) mean what they mean at the top."""
    source = ctx.get_parameter_source(param.name or "")
    if getattr(source, "name", "") != "DEFAULT" or value.exists():
        return value
    from splitbuild.config import find_config

    found = find_config(Path.cwd(), value.name)
    if found is None:
        return value
    os.chdir(found.parent)
    sys.stderr.write(f"splitbuild: using {found}\n")
    return Path(found.name)


ConfigOpt = Annotated[
    Path,
    typer.Option(
        "--config",
        "-c",
        metavar="FILE",
        help="The config file (default: splitbuild.toml here or in the nearest directory above).",
        dir_okay=False,
        callback=_locate_config,
    ),
]
DEFAULT_CONFIG = Path("splitbuild.toml")
JsonOpt = Annotated[bool, typer.Option("--json", help="One JSON document on stdout.")]
InsecureOpt = Annotated[
    list[str] | None,
    typer.Option("--insecure-registry", metavar="HOST", help="Allow plain HTTP to this registry host."),
]
CaFileOpt = Annotated[Path | None, typer.Option("--ca-file", metavar="FILE", help="Extra CA bundle for TLS.")]
NoCacheOpt = Annotated[
    bool,
    typer.Option(
        "--no-cache",
        help="Neither use nor update the blob location cache (as SPLITBUILD_BLOB_CACHE=0): "
        "mount no blob from what it remembers.",
    ),
]
JobsOpt = Annotated[
    int, typer.Option("--jobs", "-j", metavar="N", min=1, help="Operations in flight at once.")
]
ReferrersOpt = Annotated[
    bool,
    typer.Option(
        "--referrers/--no-referrers",
        help="Include referrers (signatures, SBOMs, attestations with a subject): API or sha256-<hex> tag.",
    ),
]
AllowShrinkOpt = Annotated[
    bool, typer.Option("--allow-shrink", help="Allow a tag to move to an index with fewer platforms.")
]
AllowRollbackOpt = Annotated[
    bool,
    typer.Option("--allow-rollback", help="Move a tag even off an index annotated newer (created)."),
]
DeleteDisplacedOpt = Annotated[
    bool,
    typer.Option(
        "--delete-displaced", help="Then delete the indexes the tags left, where nothing else uses them."
    ),
]

DEBUG_ENV = "SPLITBUILD_DEBUG"


PARAMETER_OPTIONS = {
    "allow_shrink": "--allow-shrink",
    "build_args": "--build-arg",
    "builder": "--builder",
    "annotation_levels": "--annotation-levels",
    "ca_file": "--ca-file",
    "Context.from_file": "--context FILE",
    "digests_dir": "--digests-dir",
    "exclude": "--exclude",
    "force": "--force",
    "image": "--image",
    "images": "--images",
    "include": "--include",
    "insecure": "--insecure-registry HOST",
    "jobs": "--jobs",
    "keep_last": "--keep-last",
    "older_than": "--older-than",
    "optional_platforms": "--optional-platform",
    "output_path": "--output",
    "outputs": "--output",
    "platform": "--platform",
    "platforms": "--platform",
    "sources": "SOURCE arguments or --digests-dir",
    "tag_only": "--tag-only",
    "tags": "--tag",
    "targets": "-t/--tag",
}
"""The option that sets each library parameter an error message names (in backticks)."""


def as_options(text: str) -> str:
    """A library message as the CLI says it: the parameters it names become their options."""
    from splitbuild.errors import spell_parameters

    return spell_parameters(text, PARAMETER_OPTIONS.get)


def fail(message: str, code: int, hint: str | None = None) -> NoReturn:
    """Print a one-line error (plus an optional hint line) on stderr and exit with ``code``.

    Scrubbed (:func:`splitbuild.scrub.scrub`): no secret, no control character, one line each."""
    from splitbuild.scrub import scrub

    sys.stderr.write(f"splitbuild: error: {scrub(message)}\n")
    if hint:
        sys.stderr.write(f"hint: {scrub(hint)}\n")
    raise typer.Exit(code)


def internal_error(exc: BaseException) -> str:
    """The one line for an exception splitbuild did not expect (a bug): its type and the first line
    of its message, shortened. With ``SPLITBUILD_DEBUG=1`` the traceback is printed first."""
    _debug_traceback(exc)
    first = next(iter(str(exc).splitlines()), "")[:200]
    return f"internal error: {type(exc).__name__}" + (f": {first}" if first else "")


INTERNAL_HINT = "this is a bug in splitbuild: please report it (SPLITBUILD_DEBUG=1 shows the traceback)"


def _debug_traceback(exc: BaseException) -> None:
    if os.environ.get(DEBUG_ENV) == "1":
        import traceback

        traceback.print_exception(exc)


@contextmanager
def handle_errors() -> Iterator[None]:
    """Map library errors to one line on stderr and their exit code; never a traceback.

    A traceback is shown only when ``SPLITBUILD_DEBUG=1`` (and even then the error message itself
    is produced by the library, which never puts credentials in it). Anything else escaping is a
    bug: one line naming it, exit 1.
    """
    from splitbuild.errors import SplitbuildError

    try:
        yield
    except (typer.Exit, typer.Abort, typer.BadParameter):  # typer/click show these themselves
        raise
    except SplitbuildError as exc:
        _debug_traceback(exc)
        fail(as_options(exc.message), exc.exit_code, as_options(exc.hint) if exc.hint else None)
    except KeyboardInterrupt as exc:
        fail(f"interrupted by {exc.name}" if isinstance(exc, Signalled) else "interrupted", 130)
    except OSError as exc:
        _debug_traceback(exc)
        name = f": {exc.filename}" if exc.filename else ""
        fail(f"{exc.strerror or exc}{name}", 3 if isinstance(exc, FileNotFoundError) else 1)
    except Exception as exc:
        fail(internal_error(exc), 1, INTERNAL_HINT)


class Signalled(KeyboardInterrupt):
    """A command stopped by SIGINT, SIGTERM or SIGHUP after its cleanup ran (exit 130)."""

    def __init__(self, signum: int) -> None:
        import signal

        super().__init__(signum)
        self.name = signal.Signals(signum).name


STOP_SIGNALS = ("SIGINT", "SIGTERM", "SIGHUP")
"""Ctrl-C, a cancelled CI job (runners send SIGINT or SIGTERM), a closed terminal."""


async def until_signalled(fn: Callable[[], Awaitable[T]]) -> T:
    """Run ``fn``; the first of :data:`STOP_SIGNALS` cancels it, so that what a multi-step write
    does on cancellation (the delete ladder puts its tag back, merge finishes the tags it is
    writing, a build removes its directories) runs whichever signal came, then
    :class:`Signalled` is raised; when ``fn`` still completed, its result is returned. Later
    signals do not interrupt that cleanup (it is bounded by the request timeouts). Outside the
    main thread, and on Windows (no event-loop signal handlers there), ``fn`` just runs."""
    import signal
    import threading

    import anyio
    from anyio.abc import TaskStatus

    from splitbuild._tasks import task_group

    if sys.platform == "win32" or threading.current_thread() is not threading.main_thread():
        return await fn()
    signals = [getattr(signal, name) for name in STOP_SIGNALS if hasattr(signal, name)]
    received: list[int] = []
    result: list[T] = []
    work = anyio.CancelScope()

    async def watch(*, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        with anyio.open_signal_receiver(*signals) as incoming:
            task_status.started()
            async for signum in incoming:
                if not received:
                    received.append(signum)
                    work.cancel()

    async with task_group() as tg:
        await tg.start(watch)
        with work:
            result.append(await fn())
        tg.cancel_scope.cancel()
    if not result:
        raise Signalled(received[0] if received else signal.SIGINT)
    return result[0]


def run_async(fn: Callable[[], Awaitable[T]]) -> T:
    """Run an async library call from a command, with the standard error handling; SIGINT,
    SIGTERM and SIGHUP cancel it the same way (see :func:`until_signalled`), exit 130."""
    import anyio

    async def runner() -> T:
        return await until_signalled(fn)

    with handle_errors():
        return anyio.run(runner)
    raise AssertionError("unreachable")  # pragma: no cover


def print_json(data: Any) -> None:
    """One JSON document (control characters escaped by JSON itself, registered secrets masked)."""
    from splitbuild.scrub import scrub_secrets

    sys.stdout.write(scrub_secrets(json.dumps(data, indent=2, sort_keys=False)) + "\n")


class _Result(Protocol):
    def to_dict(self) -> Mapping[str, object]: ...


R = TypeVar("R", bound=_Result)


def print_result(result: R, json_output: bool, report: Callable[[R], object]) -> None:
    """With ``--json`` the result's ``to_dict()`` as one JSON document, else its human ``report``."""
    if json_output:
        print_json(result.to_dict())
    else:
        report(result)


def split_commas(values: str | list[str] | None) -> list[str]:
    """The items of a comma-separated option (given once or repeated), stripped, empty ones dropped."""
    texts = [values] if isinstance(values, str) else values or []
    return [item.strip() for text in texts for item in text.split(",") if item.strip()]


def make_client(
    insecure_registry: list[str] | None, ca_file: Path | None, *, blob_cache: bool = True
) -> Client:
    """The library client for the registry options (``--insecure-registry``, ``--ca-file``;
    ``blob_cache`` off with ``--no-cache``)."""
    from splitbuild.client import Client

    return Client(insecure=insecure_registry or [], ca_file=ca_file, blob_cache=blob_cache)


def run_with_client(
    fn: Callable[[Client], Awaitable[T]],
    insecure_registry: list[str] | None,
    ca_file: Path | None,
    *,
    blob_cache: bool = True,
) -> T:
    """``run_async`` of ``fn(client)`` on a client for the registry options, closed afterwards."""

    async def with_client() -> T:
        async with make_client(insecure_registry, ca_file, blob_cache=blob_cache) as client:
            return await fn(client)

    return run_async(with_client)
