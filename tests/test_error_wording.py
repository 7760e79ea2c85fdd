"""The library's errors name parameters, never command-line options (issue 16): a script never
passed ``--keep-last``. The CLI shows the option for each parameter an error names."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from splitbuild.cli._common import PARAMETER_OPTIONS, as_options
from splitbuild.cli.app import make_app
from splitbuild.errors import UsageError, spell_parameters
from splitbuild.ops import RetentionPolicy

PACKAGE = Path(__file__).resolve().parent.parent / "splitbuild"
OPTION = re.compile(r"(?<![\w-])--[a-z][a-z0-9-]+")
PARAMETER = re.compile(r"`([A-Za-z_][A-Za-z0-9_.]*)`")
ERROR_NAMES = re.compile(r"(Error|Refused|NotFound|Input|Mismatch|Reference|Digest|Manifest|Failed)$")


def _cli_options() -> set[str]:
    commands = typer.main.get_command(make_app()).commands  # type: ignore[attr-defined]
    assert "prune" in commands
    names: set[str] = set()
    for sub in commands.values():
        for param in sub.params:
            names.update(o for o in param.opts if o.startswith("--"))
    return names - {"--help", "--version"}  # also the options of other tools' commands in hints


def _error_texts() -> list[tuple[str, int, str]]:
    """Every string constant in the message or hint of an error constructed outside the CLI."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE).as_posix()
        if rel.startswith("cli/"):
            continue
        for node in ast.walk(ast.parse(path.read_text("utf-8"))):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)):
                continue
            if not ERROR_NAMES.search(node.func.id):
                continue
            parts = [*node.args, *(k.value for k in node.keywords if k.arg == "hint")]
            for part in parts:
                for const in ast.walk(part):
                    if isinstance(const, ast.Constant) and isinstance(const.value, str):
                        found.append((rel, node.lineno, const.value))
    return found


def test_the_scan_sees_the_library_errors() -> None:
    texts = [text for _, _, text in _error_texts()]
    assert len(texts) > 200
    assert any("must be 0 or more" in text for text in texts)


def test_no_library_error_names_a_cli_option() -> None:
    options = _cli_options()
    assert {"--keep-last", "--tag", "--allow-shrink", "--ca-file"} <= options
    offenders = [
        f"{rel}:{line}: {text!r}"
        for rel, line, text in _error_texts()
        if "splitbuild " not in text  # a whole command line: "splitbuild generate --ci gitlab"
        for option in OPTION.findall(text)
        if option in options
    ]
    assert offenders == []


def test_every_parameter_an_error_names_has_its_option() -> None:
    named = {name for _, _, text in _error_texts() for name in PARAMETER.findall(text)}
    assert "keep_last" in named
    assert sorted(named - set(PARAMETER_OPTIONS)) == []


def test_the_cli_spells_parameters_as_options() -> None:
    with pytest.raises(UsageError) as caught:
        RetentionPolicy(keep_last=-1)
    assert str(caught.value) == "`keep_last` must be 0 or more (got -1)"
    assert as_options(caught.value.message) == "--keep-last must be 0 or more (got -1)"
    # only names the CLI knows are replaced; other backticked words stay as they are
    assert spell_parameters("`keep_last` and `unknown_thing`", {"keep_last": "--keep-last"}.get) == (
        "--keep-last and `unknown_thing`"
    )


def test_a_cli_error_names_the_option() -> None:
    result = CliRunner().invoke(make_app(), ["prune", "127.0.0.1:9/acme/app", "--include", "("])
    assert result.exit_code == 2, result.output
    assert "a retention policy needs --keep-last and/or --older-than" in result.stderr
