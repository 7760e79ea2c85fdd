"""Command-line conventions a user of git, docker and crane expects, on the real ``splitbuild`` process:
global flags after the subcommand, one-line usage errors, exit 3 for an invalid option value, help
that names its values and is not cut, and the config found upward from a subdirectory."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import anyio
import pytest

from splitbuild.cli.app import hoist_global_flags
from splitbuild.client import Client
from splitbuild.reference import Reference
from tests.images import make_image, push
from tests.registry_server import RegistryServer

ROOT = Path(__file__).resolve().parent.parent


def splitbuild(*args: str, cwd: Path | None = None, columns: int = 80) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": str(columns)}
    return subprocess.run(
        [sys.executable, "-m", "splitbuild", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=env,
        cwd=cwd or ROOT,
    )


# -- global flags after the subcommand --------------------------------------------------------------


def test_verbose_after_the_subcommand_is_the_global_flag(tmp_path: Path) -> None:
    result = splitbuild("inspect", f"oci:{tmp_path}/none:v1", "-v")
    assert "No such option" not in result.stderr
    assert result.returncode == 4, result.stderr  # the command ran: the layout does not exist


def test_hoisting_leaves_option_values_and_the_commands_own_flags_alone() -> None:
    values = {"--annotation", "-t"}
    assert hoist_global_flags(["merge", "-t", "r:1", "-v"], values, set()) == ["-v", "merge", "-t", "r:1"]
    assert hoist_global_flags(["merge", "--annotation", "-v"], values, set()) == [
        "merge",
        "--annotation",
        "-v",
    ]
    assert hoist_global_flags(["build", "-v"], set(), {"-v", "--verbose"}) == ["build", "-v"]
    assert hoist_global_flags(["merge", "--", "-v"], values, set()) == ["merge", "--", "-v"]


def test_build_keeps_its_own_verbose_flag() -> None:
    result = splitbuild("build", "--help")
    assert "-v, --verbose" in result.stdout or "--verbose, -v" in result.stdout
    assert "builders' output" in result.stdout


# -- usage errors -----------------------------------------------------------------------------------


@pytest.mark.parametrize("command", ["merge", "inspect", "ls", "copy", "tag", "delete", "prune", "verify"])
def test_a_command_without_arguments_is_a_one_line_usage_error(command: str) -> None:
    result = splitbuild(command)
    lines = result.stderr.splitlines()
    assert result.returncode == 2, result.stderr
    assert lines[0].startswith("splitbuild: error: "), result.stderr
    assert len(lines) <= 2, result.stderr
    assert result.stdout == ""


@pytest.mark.parametrize(
    "args",
    [
        ("prune", "127.0.0.1:1/x", "--keep-last", "ten"),
        ("prune", "127.0.0.1:1/x", "--older-than", "30days"),
        ("copy", "127.0.0.1:1/x:v1", "127.0.0.1:1/y", "--jobs", "0"),
    ],
)
def test_an_invalid_option_value_is_exit_3_like_every_invalid_input(args: tuple[str, ...]) -> None:
    result = splitbuild(*args)
    assert result.returncode == 3, result.stderr
    assert result.stderr.startswith("splitbuild: error: "), result.stderr
    assert "Traceback" not in result.stderr


# -- help -------------------------------------------------------------------------------------------

COMMANDS = [
    "merge", "init", "plan", "generate", "pins", "tags", "inspect",
    "ls", "copy", "tag", "delete", "prune", "verify", "build",
]  # fmt: skip


def test_the_command_list_is_not_cut_at_80_columns() -> None:
    result = splitbuild("--help")
    listing = result.stdout.split("Commands:", 1)[1].splitlines()
    rows = [line for line in listing if line.strip()]
    assert [row.split()[0] for row in rows] == COMMANDS  # one line each: nothing wrapped
    assert not any(row.rstrip().endswith("...") for row in rows), result.stdout
    assert all(len(row) <= 80 for row in rows)


@pytest.mark.parametrize("command", COMMANDS)
def test_help_names_values_not_python_types(command: str) -> None:
    result = splitbuild(command, "--help")
    assert result.returncode == 0
    assert result.stdout.startswith(f"Usage: splitbuild {command} ")
    options = result.stdout.split("Options:", 1)[1]
    assert not re.search(r"<(list\[|int range|str>|path>|int>)", options), options


def test_help_uses_the_readable_metavars() -> None:
    prune = splitbuild("prune", "--help").stdout
    assert "--keep-last N" in prune
    assert "--older-than AGE" in prune
    assert "--jobs N" in prune
    assert "--platform PLATFORMS" in splitbuild("verify", "--help").stdout


# -- the config found upward ------------------------------------------------------------------------

CONFIG = """\
[image]
names = ["ghcr.io/acme/app"]
platforms = ["linux/amd64", "linux/arm64"]
"""


def test_plan_in_a_subdirectory_finds_the_config_at_the_top(tmp_path: Path) -> None:
    (tmp_path / ".git").mkdir()
    (tmp_path / "splitbuild.toml").write_text(CONFIG)
    sub = tmp_path / "src" / "deep"
    sub.mkdir(parents=True)
    result = splitbuild("plan", cwd=sub)
    assert result.returncode == 0, result.stderr
    assert "linux/arm64" in result.stdout
    assert str(tmp_path / "splitbuild.toml") in result.stderr


def test_the_search_stops_at_the_top_of_the_repository(tmp_path: Path) -> None:
    (tmp_path / "splitbuild.toml").write_text(CONFIG)  # above the repository: not this project's
    repo = tmp_path / "repo"
    (repo / ".git").mkdir(parents=True)
    sub = repo / "src"
    sub.mkdir()
    result = splitbuild("plan", cwd=sub)
    assert result.returncode == 3, result.stderr
    assert "config file not found" in result.stderr


def test_an_explicit_config_is_never_searched_for(tmp_path: Path) -> None:
    (tmp_path / ".git").mkdir()
    (tmp_path / "splitbuild.toml").write_text(CONFIG)
    sub = tmp_path / "src"
    sub.mkdir()
    result = splitbuild("plan", "-c", "splitbuild.toml", cwd=sub)
    assert result.returncode == 3, result.stderr
    assert "config file not found" in result.stderr


# -- no silent defaults for ls and tag ----------------------------------------------------------------


def push_sync(name: str, seed: str, tags: list[str]) -> None:
    async def go() -> None:
        async with Client(env={}) as client:
            repo = client.repository(Reference.parse(name))
            for tag in tags:
                await push(repo, make_image(seed=seed), tag)

    anyio.run(go)


def test_ls_of_a_tag_is_refused_and_the_json_counts_what_it_lists(registry: RegistryServer) -> None:
    name = f"{registry.host}/conventions-ls"
    push_sync(name, "conventions-ls", ["v1", "v2", "latest"])
    refused = splitbuild("ls", f"{name}:v1")
    assert refused.returncode == 2, refused.stderr
    assert "names one tag or digest" in refused.stderr
    listed = splitbuild("ls", name, "--include", "v.*", "--json")
    assert listed.returncode == 0, listed.stderr
    data = json.loads(listed.stdout)
    assert data["tags"] == ["v1", "v2"]
    assert data["count"] == 2
    assert data["inRepository"] == 3


def test_tag_without_a_source_tag_is_refused_not_latest(registry: RegistryServer) -> None:
    name = f"{registry.host}/conventions-tag"
    push_sync(name, "conventions-tag", ["latest"])
    refused = splitbuild("tag", name, "v2")
    assert refused.returncode == 2, refused.stderr
    assert "names no tag or digest" in refused.stderr
    assert splitbuild("ls", name).stdout.split() == ["latest"]  # nothing written
    assert splitbuild("tag", f"{name}:latest", "v2").returncode == 0


# -- tables that fit the terminal -------------------------------------------------------------------


def _layout_with_an_index(path: Path) -> str:
    from splitbuild.store.layout import LayoutRepository
    from tests.ops_support import multiarch

    index = multiarch(["linux/amd64", "linux/arm64", "linux/arm/v7"], seed="narrow", attest=False)
    anyio.run(push, LayoutRepository(path), index, "v1")
    return index.digest


def test_inspect_fits_80_columns_on_a_terminal_and_drops_empty_columns(tmp_path: Path) -> None:
    _layout_with_an_index(tmp_path / "oci")
    command = f"{sys.executable} -m splitbuild inspect oci:{tmp_path / 'oci'}:v1"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "80", "LINES": "40", "TERM": "xterm"}
    shown = subprocess.run(
        ["script", "-qec", command, "/dev/null"], capture_output=True, text=True, env=env, timeout=60
    )
    assert shown.returncode == 0, shown.stdout
    lines = re.sub(r"\x1b\[[0-9;]*m", "", shown.stdout).replace("\r", "").splitlines()
    table = [line for line in lines if "linux/" in line]
    assert len(table) == 3, shown.stdout
    assert all(len(line) <= 80 for line in lines[1:]), shown.stdout  # [0]: the reference as given
    assert all(re.search(r"sha256:[0-9a-f]{12}\b", line) for line in table), shown.stdout
    assert not re.search(r"sha256:[0-9a-f]{64}", "\n".join(table))
    assert "PREDICATE" not in shown.stdout  # no attestations: no empty column


def test_plain_output_keeps_full_digests_for_scripts(tmp_path: Path) -> None:
    digest = _layout_with_an_index(tmp_path / "oci")
    result = splitbuild("inspect", f"oci:{tmp_path / 'oci'}:v1")
    assert result.returncode == 0, result.stderr
    assert f"digest     {digest}" in result.stdout or digest in result.stdout
    assert len(re.findall(r"sha256:[0-9a-f]{64}", result.stdout)) >= 4  # the index and 3 children


# -- one platform grammar for every --platform --------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ("verify", "127.0.0.1:1/acme/app:v1", "--platform", "linux/amd64,linux/ar64"),
        ("merge", "-t", "127.0.0.1:1/acme/app:v1", "--platform", "linux/ar64", "sha256:" + "a" * 64),
        ("copy", "127.0.0.1:1/acme/app:v1", "127.0.0.1:1/acme/copy", "--platform", "linux/ar64"),
        ("inspect", "127.0.0.1:1/acme/app:v1", "--platform", "linux/ar64"),
    ],
    ids=["verify", "merge", "copy", "inspect"],
)
def test_a_mistyped_platform_is_refused_before_any_request(args: tuple[str, ...]) -> None:
    result = splitbuild(*args)
    assert result.returncode == 3, result.stderr
    assert "unknown architecture 'ar64'" in result.stderr
    assert "did you mean 'arm64'?" in result.stderr
    assert "127.0.0.1:1" not in result.stderr  # refused before reaching for the registry
