"""Hostile configs and paths cannot inject anything into the generated files (issue 14, items 6-8).

Every config value and path that reaches a generated file is either refused at load (it holds a
line break, of any Unicode kind, or another character a YAML line cannot carry), or written through
the YAML library's quoting. The generated files are parsed back: the same shape (keys, jobs, list
lengths, value types) as from a plain config, the hostile text carried as data, and every comment
line still a comment line.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from splitbuild.cli.app import make_app
from splitbuild.config import parse_config
from splitbuild.errors import ConfigError, InvalidInput
from splitbuild.planner import plan
from splitbuild.textline import LINE_BREAKS, line_fault, shown
from splitbuild.workflow.github import render_workflow
from splitbuild.workflow.header import comment_block, regenerate_command
from splitbuild.workflow.yaml_dump import Commented, dump_yaml

PROVIDERS = ("github", "gitlab", "forgejo")
PLAIN = "plain-value"
# One line each, but YAML-significant: mapping and comment indicators, quotes, flow collections,
# anchors and tags, document markers, words YAML 1.1 reads as booleans or null, and non-ASCII.
HOSTILE = (
    "x: y # z",
    "evil\tenv: {BASH_ENV: evil.sh} #",
    "' \" & * ! | > % @ ` {a: b} [c] ,",
    "- item",
    "--- ...",
    "#comment",
    "&anchor *alias !!python/object/apply:os.system ['id']",
    "yes",
    "null",
    "~",
    "0o17",
    "é ✓ 𝄞 \u00a0nbsp",
    "inner  double  spaces",  # (a value ending in white space is refused for GitHub: the action trims it)
)
# Every Unicode line break, then other characters a YAML line cannot carry.
REFUSED = (*LINE_BREAKS, "\x00", "\x07", "\x1b", "\x7f", "\x9b", "\u202e", "\u2066", "\ufeff", "\uffff")


def toml_str(text: str) -> str:
    """``text`` as a TOML basic string (escapes for everything outside printable ASCII)."""
    out = []
    for char in text:
        if char in '"\\':
            out.append("\\" + char)
        elif " " <= char <= "~":
            out.append(char)
        else:
            out.append(f"\\U{ord(char):08X}")
    return '"' + "".join(out) + '"'


def config_text(value: str) -> str:
    """A config carrying ``value`` in every key that takes free text and reaches a generated file."""
    v = toml_str(value)
    return f"""
[image]
names = ["docker.io/acme/app"]
platforms = ["linux/amd64", "linux/arm64"]
build-args = {{ VERSION = {v} }}
build-contexts = {{ base = {v} }}
labels = {{ "org.example.note" = {v} }}
annotations = [{toml_str("org.example.note=" + value)}]
[runners]
"linux/arm64" = [{v}]
[ci]
name = {v}
branches = ["main"]
merge-runner = {v}
install = {v}
[ci.logins."quay.io"]
username = {v}
password-secret = "QUAY_TOKEN"
"""


# (the key, TOML that sets it to VALUE) for the refusal tests: each names its key in the error.
KEYS = (
    ("image.build-args.VERSION", "[image.build-args]\nVERSION = VALUE\n"),
    ("image.build-contexts.base", "[image.build-contexts]\nbase = VALUE\n"),
    ('image.labels."org.example.note"', '[image.labels]\n"org.example.note" = VALUE\n'),
    ("image.annotations[0]", "[image]\nannotations = [VALUE]\n"),
    ("image.context", "[image]\ncontext = VALUE\n"),
    ("image.dockerfile", "[image]\ndockerfile = VALUE\n"),
    ('runners."linux/arm64"', '[runners]\n"linux/arm64" = VALUE\n'),
    ('runners."linux/arm64".labels[0]', '[runners."linux/arm64"]\nlabels = [VALUE]\n'),
    ("ci.name", "[ci]\nname = VALUE\n"),
    ("ci.branches[0]", "[ci]\nbranches = [VALUE]\n"),
    ("ci.schedule[0]", "[ci]\nschedule = [VALUE]\n"),
    ("ci.merge-runner", "[ci]\nmerge-runner = VALUE\n"),
    ("ci.install", "[ci]\ninstall = VALUE\n"),
    ("ci.gitlab.docker-image", "[ci.gitlab]\ndocker-image = VALUE\n"),
    ("tags.rules[0]", "[tags]\nrules = [VALUE]\n"),
    ('ci.logins."quay.io".username', '[ci.logins."quay.io"]\nusername = VALUE\npassword-secret = "Q"\n'),
)
BASE = '[image]\nnames = ["docker.io/acme/app"]\nplatforms = ["linux/amd64", "linux/arm64"]\n'


def merged(extra: str) -> str:
    """``BASE`` with ``extra``: an ``[image]`` table in ``extra`` continues ``BASE``'s."""
    if extra.startswith("[image]\n"):
        return BASE + extra.removeprefix("[image]\n")
    return BASE + extra


def shape(data: Any, value: str = PLAIN) -> Any:
    """``data`` with every string replaced by ``str``: keys (``value`` in them read as ``PLAIN``:
    GitLab job names hold ``[ci] name``), list lengths and value types kept."""
    if isinstance(data, dict):
        return {
            key.replace(value, PLAIN) if isinstance(key, str) else key: shape(item, value)
            for key, item in data.items()
        }
    if isinstance(data, list):
        return [shape(item, value) for item in data]
    return str if isinstance(data, str) else data


def leaves(data: Any) -> list[str]:
    if isinstance(data, dict):
        return [text for value in data.values() for text in leaves(value)]
    if isinstance(data, list):
        return [text for value in data for text in leaves(value)]
    return [data] if isinstance(data, str) else []


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


def generate(repo: Path, value: str, provider: str, *args: str) -> dict[str, str]:
    """Run ``generate`` on the config for ``value``; every file it wrote, by name, with its text."""
    config = repo / "splitbuild.toml"
    config.write_text(config_text(value), encoding="utf-8")
    result = CliRunner().invoke(make_app(), ["generate", "--ci", provider, "--output", "out.yml", *args])
    assert result.exit_code == 0, result.stderr
    written = {path.name: path.read_text("utf-8") for path in repo.rglob("*.y*ml")}
    for path in repo.rglob("*.y*ml"):
        path.unlink()
    return written


def comments(text: str, value: str = PLAIN) -> list[str]:
    """The comment lines (``#`` in column 1: never inside a block scalar), ``value`` read as ``PLAIN``."""
    return [line.replace(value, PLAIN) for line in text.splitlines() if line.startswith("#")]


_PLAIN: dict[str, dict[str, str]] = {}  # generate's files for PLAIN, by provider


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("value", HOSTILE)
def test_hostile_values_stay_data(repo: Path, provider: str, value: str) -> None:
    if provider not in _PLAIN:
        _PLAIN[provider] = generate(repo, PLAIN, provider)
    plain = _PLAIN[provider]
    hostile = generate(repo, value, provider)
    assert set(hostile) == set(plain)
    for name, text in hostile.items():
        # PyYAML reads YAML 1.1 (U+0085, U+2028 and U+2029 are line breaks there): the strictest reader.
        data = yaml.safe_load(text)
        assert shape(data, value) == shape(yaml.safe_load(plain[name])), name
        assert comments(text, value) == comments(plain[name]), name
    workflow = hostile["out.yml"]
    assert value in leaves(yaml.safe_load(workflow))  # the runner label, carried as a value
    plan_line = next(line for line in workflow.splitlines() if "linux/arm64" in line and " on " in line)
    assert plan_line.startswith("#")
    assert plan_line.endswith(value)


@pytest.mark.parametrize("char", REFUSED, ids=[f"U+{ord(c):04X}" for c in REFUSED])
@pytest.mark.parametrize(("key", "snippet"), KEYS, ids=[key for key, _ in KEYS])
def test_line_breaks_refused_at_load_naming_the_key(key: str, snippet: str, char: str) -> None:
    text = merged(snippet.replace("VALUE", toml_str(f"ubuntu-24.04{char}env: {{BASH_ENV: evil.sh}}")))
    with pytest.raises(ConfigError) as info:
        parse_config(text, "splitbuild.toml")
    message = str(info.value)
    assert line_fault(message) is None, message
    assert message.startswith(f"splitbuild.toml: {key}: "), message
    assert f"U+{ord(char):04X}" in message


@pytest.mark.parametrize("char", ["\n", "\u0085", "\u2028"])
def test_line_breaks_in_keys_refused(char: str) -> None:
    for table in ("image.build-args", "image.labels", "ci.logins"):
        text = merged(f"[{table}]\n{toml_str('A' + char)} = 'x'\n")
        with pytest.raises(ConfigError) as info:
            parse_config(text)
        assert line_fault(str(info.value)) is None
        assert f'{table}."{shown("A" + char)}"' in str(info.value)


def test_the_reported_attack_is_refused(repo: Path) -> None:
    """Issue 14, item 6: a runner label breaking out of the ``# Plan:`` comment."""
    (repo / "splitbuild.toml").write_text(
        merged('[runners]\n"linux/arm64" = "ubuntu-24.04-arm\\nenv: {BASH_ENV: evil.sh}\\n#"\n')
    )
    for provider in PROVIDERS:
        result = CliRunner().invoke(make_app(), ["generate", "--ci", provider])
        assert result.exit_code == 3, result.stderr
        assert result.stderr.count("\n") == 1, result.stderr
        assert 'runners."linux/arm64": holds a line break (U+000A)' in result.stderr
    assert not list(repo.rglob("*.y*ml"))


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("char", ["\n", "\r", "\u0085", "\u2028", "\u2029"])
@pytest.mark.parametrize("option", ["--output", "--config"])
def test_paths_with_line_breaks_refused(repo: Path, provider: str, char: str, option: str) -> None:
    """Issue 14, item 7: a path named in the header cannot break out of it."""
    (repo / "splitbuild.toml").write_text(BASE)
    path = f"ci{char}env: {{BASH_ENV: evil.sh}}.yml"
    if option == "--config":
        (repo / path).write_text(BASE)
    result = CliRunner().invoke(make_app(), ["generate", "--ci", provider, option, path])
    assert result.exit_code == 3, result.stderr
    assert result.stderr.count("\n") == 1, result.stderr
    assert f"holds a line break (U+{ord(char):04X})" in result.stderr
    assert {p.name for p in repo.rglob("*.y*ml")} == ({path} if option == "--config" else set())
    assert not (repo / ".github").exists()
    assert not (repo / ".gitlab-ci.yml").exists()


@pytest.mark.parametrize("provider", PROVIDERS)
def test_hostile_paths_on_one_line_stay_comments(repo: Path, provider: str) -> None:
    texts = []
    for config, output in (("plain.toml", "plain.yml"), ("conf: x #{a} 'b'.toml", "out: y # [z] -.yml")):
        (repo / config).write_text(config_text(PLAIN))
        args = ["generate", "--ci", provider, "--config", config, "--output", output]
        result = CliRunner().invoke(make_app(), args)
        assert result.exit_code == 0, result.stderr
        assert CliRunner().invoke(make_app(), [*args, "--check"]).exit_code == 0
        text = (repo / output).read_text("utf-8")
        lines = text.splitlines()
        assert config in lines[0]
        assert output in lines[1]
        texts.append(text)
    plain, hostile = texts
    assert shape(yaml.safe_load(hostile)) == shape(yaml.safe_load(plain))
    assert len(comments(hostile)) == len(comments(plain))
    assert hostile.count("\n") == plain.count("\n")


def test_header_and_command_refuse_what_a_comment_cannot_hold() -> None:
    with pytest.raises(InvalidInput, match=r"output path 'a\\u2028b.yml' holds a line break \(U\+2028\)"):
        regenerate_command("splitbuild.toml", "a\u2028b.yml")
    with pytest.raises(InvalidInput, match=r"config path 'c\\x85.toml'"):
        regenerate_command("c\x85.toml", ".github/workflows/splitbuild.yml")
    with pytest.raises(InvalidInput, match="as a comment line"):
        comment_block(["fine", "note\u2029env: x"])
    assert comment_block(["a: b", "tab\there"]) == "# a: b\n# tab\there\n"


def test_render_refuses_a_path_the_header_cannot_hold() -> None:
    config = parse_config(BASE)
    with pytest.raises(InvalidInput):
        render_workflow(config, plan(config), config_path="x\ny.toml", output_path="out.yml")


@pytest.mark.parametrize(
    "text", ["a\u2028b", "a\x85b", "a\u2029b", "a\nb\u2028c", "a\rb", "a\x1cb", "l1\nl2\n"]
)
def test_dumped_strings_read_back_the_same(text: str) -> None:
    """U+0085/U+2028/U+2029 are escaped in double quotes: YAML 1.1 and 1.2 readers agree."""
    dumped = dump_yaml({"k": text})
    assert yaml.safe_load(dumped) == {"k": text}
    assert not any(char in dumped for char in "\x85\u2028\u2029\r\x1c")


def test_comments_of_commented_values_are_single_lines() -> None:
    for bad in ("v1\u2028evil: x", "v1\x85", "v1\n"):
        with pytest.raises(ValueError, match="single lines"):
            dump_yaml({"uses": Commented("owner/action@sha", bad)})


def test_actionlint_config_header_is_one_comment_line() -> None:
    from splitbuild.workflow.actionlint import render_actionlint_config

    text = render_actionlint_config(("x: y # z",), "ci.yml")
    assert text.splitlines()[0].startswith("# Generated by splitbuild")
    assert yaml.safe_load(text) == {"self-hosted-runner": {"labels": ["x: y # z"]}}
    with pytest.raises(InvalidInput, match=r"U\+2028"):
        render_actionlint_config(("x",), "ci\u2028evil: 1.yml")
