"""Assembles the root typer app from the command modules. The only place typer is configured."""

from __future__ import annotations

import sys

import typer

from splitbuild._version import __version__


def _version_callback(value: bool) -> None:
    if value:
        typer.echo(f"splitbuild {__version__}")
        raise typer.Exit()


def _enable_logging() -> None:
    import logging

    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(name)s: %(message)s"))
    for name in ("splitbuild", "httpx"):
        logger = logging.getLogger(name)
        logger.setLevel(logging.DEBUG)
        logger.addHandler(handler)


def make_app() -> typer.Typer:
    app = typer.Typer(
        name="splitbuild",
        help="Split multi-platform container builds: plan, generate CI, build, merge, maintain.",
        no_args_is_help=True,
        pretty_exceptions_enable=False,
        rich_markup_mode=None,
        context_settings={"help_option_names": ["-h", "--help"]},
        add_completion=False,
    )

    @app.callback()
    def root(
        version: bool = typer.Option(
            False, "--version", callback=_version_callback, is_eager=True, help="Print the version and exit."
        ),
        verbose: bool = typer.Option(
            False, "-v", "--verbose", help="Log every HTTP request and auth decision on stderr (no secrets)."
        ),
    ) -> None:
        """splitbuild: fast multi-platform container images."""
        if verbose:
            _enable_logging()

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
    """
    for name in ("trio", "httpx._main"):
        sys.modules.setdefault(name, None)  # type: ignore[arg-type]


def main() -> None:
    _skip_unused_imports()
    app = make_app()
    app()
