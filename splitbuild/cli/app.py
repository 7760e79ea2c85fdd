"""Assembles the root typer app from the command modules. The only place typer is configured."""

from __future__ import annotations

import sys
from typing import Any

import typer

from splitbuild._version import __version__


def _version_callback(value: bool) -> None:
    if value:
        typer.echo(f"splitbuild {__version__}")
        raise typer.Exit()


# Not httpx's own logger: it prints full URLs, query strings (pre-signed storage URLs) included.
# splitbuild.http logs each request with its URL redacted.
_LOGGERS = ("splitbuild",)


def _configure_logging(verbose: bool) -> None:
    """Log requests and auth decisions on stderr for this invocation only (``-v``).

    Idempotent: one handler per logger, writing to whatever ``sys.stderr`` is when a record is
    emitted, so that in-process invocations (tests, scripts calling the app) neither pile up
    handlers nor write to a stream an earlier invocation closed; removed when the command ends.
    """
    import logging

    class StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
        splitbuild_verbose = True

        def format(self, record: logging.LogRecord) -> str:
            from splitbuild.scrub import scrub

            return scrub(super().format(record))

        def emit(self, record: logging.LogRecord) -> None:
            self.stream = sys.stderr
            super().emit(record)

    for name in _LOGGERS:
        logger = logging.getLogger(name)
        for old in [h for h in logger.handlers if getattr(h, "splitbuild_verbose", False)]:
            logger.removeHandler(old)
        if verbose:
            handler = StderrHandler(sys.stderr)
            handler.setFormatter(logging.Formatter("%(name)s: %(message)s"))
            logger.addHandler(handler)
        logger.setLevel(logging.DEBUG if verbose else logging.NOTSET)


# Options of the root command that may also be written after the subcommand (``splitbuild merge -v``),
# as git and docker accept them; a subcommand that declares the same flag itself keeps it.
GLOBAL_FLAGS = ("-v", "--verbose")


def hoist_global_flags(args: list[str], value_options: set[str], own_flags: set[str]) -> list[str]:
    """``args`` (after the root options) with the global flags written after the subcommand moved in
    front of it. ``value_options`` are the subcommand's options that take a value (a flag right after
    one of them is that value); ``own_flags`` the flags the subcommand declares itself. Nothing after
    ``--`` moves."""
    hoisted: list[str] = []
    rest: list[str] = []
    previous = ""
    for index, arg in enumerate(args):
        if arg == "--":
            rest.extend(args[index:])
            break
        if index > 0 and arg in GLOBAL_FLAGS and arg not in own_flags and previous not in value_options:
            hoisted.append(arg)
        else:
            rest.append(arg)
        previous = arg
    return hoisted + rest


def _group_class() -> type:
    from typer.core import TyperGroup, TyperOption

    class SplitbuildGroup(TyperGroup):
        """The root command: global flags are accepted after the subcommand too, and every option
        that takes a value shows a name for it in help (its own metavar, else its name in capitals:
        ``--image IMAGE``), never a Python type."""

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            for command in self.commands.values():
                for param in command.params:
                    if isinstance(param, TyperOption) and not param.is_flag and param.metavar is None:
                        param.metavar = (param.name or "value").upper()

        def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
            start = next((i for i, arg in enumerate(args) if not arg.startswith("-")), None)
            command = self.get_command(ctx, args[start]) if start is not None else None
            if start is not None and command is not None:
                value_options: set[str] = set()
                own_flags: set[str] = set()
                for param in command.params:
                    if isinstance(param, TyperOption):
                        names = {*param.opts, *param.secondary_opts}
                        own_flags |= names
                        if not param.is_flag and not param.count:
                            value_options |= names
                args = args[:start] + hoist_global_flags(args[start:], value_options, own_flags)
            return super().parse_args(ctx, args)

    return SplitbuildGroup


def make_app() -> typer.Typer:
    app = typer.Typer(
        name="splitbuild",
        cls=_group_class(),
        help="Split multi-platform container builds: plan, generate CI, build, merge, maintain.",
        no_args_is_help=True,
        pretty_exceptions_enable=False,
        rich_markup_mode=None,
        context_settings={"help_option_names": ["-h", "--help"]},
        add_completion=False,
    )

    @app.callback()
    def root(
        ctx: typer.Context,
        version: bool = typer.Option(
            False, "--version", callback=_version_callback, is_eager=True, help="Print the version and exit."
        ),
        verbose: bool = typer.Option(
            False, "-v", "--verbose", help="Log every HTTP request and auth decision on stderr (no secrets)."
        ),
    ) -> None:
        """splitbuild: fast multi-platform container images."""
        _configure_logging(verbose)
        if verbose:
            ctx.call_on_close(lambda: _configure_logging(False))

    # Each command module exposes register(app); keep imports light (typer only at module top).
    import importlib

    from splitbuild.cli.commands import MODULES

    for name in MODULES:
        importlib.import_module(name).register(app)
    return app


def _skip_unused_imports() -> None:
    """Start-up time is part of the merge job's speed: keep optional imports of our dependencies out.

    httpcore imports trio when it is installed, and httpx imports its own command line (click,
    rich, pygments); the splitbuild CLI runs on asyncio and never uses either. Marking them absent
    makes those optional imports fail fast (about 70 ms on a 2-core runner).

    pydantic looks for plugins by scanning the entry points of every installed distribution the
    first time it builds a model (importlib.metadata and a walk of site-packages); the command line
    uses none, so it turns that off unless the user set ``PYDANTIC_DISABLE_PLUGINS`` themselves.
    """
    import os

    for name in ("trio", "httpx._main"):
        sys.modules.setdefault(name, None)  # type: ignore[arg-type]
    os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")


def _usage_error(exc: Exception) -> int:
    """A click usage error as one line (plus a hint), instead of click's four-line block.

    Exit 2 for a command line of the wrong shape (missing argument, unknown option); exit 3 for a
    value that is not what its option takes (``--keep-last ten``), as for every other invalid input.
    """
    if type(exc).__name__ == "NoArgsIsHelpError":  # bare ``splitbuild``: its help is the answer
        exc.show()  # type: ignore[attr-defined]
        return int(getattr(exc, "exit_code", 2))
    message = exc.format_message()  # type: ignore[attr-defined]
    ctx = getattr(exc, "ctx", None)
    command = ctx.command_path if ctx is not None else "splitbuild"
    sys.stderr.write(f"splitbuild: error: {message}\nhint: see '{command} --help'\n")
    if isinstance(exc, typer.BadParameter) and type(exc).__name__ != "MissingParameter":
        return 3
    return int(getattr(exc, "exit_code", 2))


def main() -> None:
    try:
        _main()
    finally:
        _skip_exit_collection()


def _skip_exit_collection() -> None:
    """Shutting the interpreter down runs the cyclic garbage collector over every object the run
    made (the modules of the stack included): 20-60 ms of each command, after its work is done.
    Everything that must reach disk or the terminal is written and closed by then (files and
    connections are closed by their ``with`` blocks, stdout and stderr are flushed at exit), so
    the objects are frozen instead: freed by reference counting as usual, never walked by a
    collection."""
    import gc

    gc.freeze()


def _main() -> None:
    _skip_unused_imports()
    if not {"-h", "--help", "--version"} & set(sys.argv[1:]):
        from splitbuild._tls import prepare

        prepare()  # the CA bundle loads beside the imports below (OpenSSL works without the GIL)
    app = make_app()
    try:
        code = app(prog_name="splitbuild", standalone_mode=False)
    except Exception as exc:
        if hasattr(exc, "format_message") and hasattr(exc, "exit_code"):  # click's ClickException
            sys.exit(_usage_error(exc))
        # outside the commands' error handling: still one line, never a traceback
        from splitbuild.cli._common import INTERNAL_HINT, internal_error

        sys.stderr.write(f"splitbuild: error: {internal_error(exc)}\nhint: {INTERNAL_HINT}\n")
        sys.exit(1)
    sys.exit(code if isinstance(code, int) else 0)
