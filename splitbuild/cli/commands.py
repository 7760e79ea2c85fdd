"""The command modules, in help order. Each module defines ``register(app: typer.Typer) -> None``
and imports only typer (and ``splitbuild.cli._common``) at module level."""

from __future__ import annotations

MODULES: list[str] = [
    "splitbuild.cli.merge",
    "splitbuild.cli.generate",
    "splitbuild.cli.tags",
    "splitbuild.cli.maintain",
    "splitbuild.cli.build",
]
