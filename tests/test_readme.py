"""README.md and docs/: the README stays short, its quickstart runs as written, every relative link resolves.

The quickstart's shell blocks (each right after a ``<!-- quickstart -->`` line) run in order, with bash
(``-euo pipefail``), in a fresh git repository that has an ``origin`` remote on GitHub
(``https://github.com/acme/app.git``) and a Dockerfile, with ``splitbuild`` on ``PATH`` as a small wrapper
that runs ``python -m splitbuild`` from this checkout. Every line runs exactly as written except one: the
install line (``pipx install ~/src/splitbuild``, installing from a clone) cannot run offline, so it is
replaced by ``:``; installing the built wheel is proven by the packaging tests. Nothing reaches the network:
``git push`` is not part of the quickstart's commands, and no command contacts the remote.
"""

from __future__ import annotations

import os
import re
import site
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from splitbuild._version import __version__
from splitbuild.config import CiConfig, load_config, parse_config

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
DOCS = ROOT / "docs"
MAX_README_LINES = 250
QUICKSTART_MARK = "<!-- quickstart -->"
CONFIG_MARK = "<!-- quickstart-config -->"
INSTALL_LINE = re.compile(r"^pipx install \S+$")
FENCE = re.compile(r"^(`{3,}|~{3,})")


def _blocks_after(text: str, mark: str) -> list[tuple[str, str]]:
    """The fenced blocks that directly follow a ``mark`` line: (info string, body) each."""
    lines = text.splitlines()
    blocks: list[tuple[str, str]] = []
    for i, line in enumerate(lines):
        if line.strip() != mark:
            continue
        fence = FENCE.match(lines[i + 1]) if i + 1 < len(lines) else None
        assert fence, f"README.md line {i + 1}: {mark} must be followed by a fenced code block"
        body: list[str] = []
        for inner in lines[i + 2 :]:
            if inner.startswith(fence.group(1)):
                break
            body.append(inner)
        else:
            raise AssertionError(f"README.md line {i + 1}: unterminated code block after {mark}")
        blocks.append((lines[i + 1][len(fence.group(1)) :].strip(), "\n".join(body)))
    return blocks


def _quickstart_script() -> tuple[str, list[str]]:
    """The quickstart's shell lines as one script (install line replaced), and the lines as written."""
    blocks = _blocks_after(README.read_text(encoding="utf-8"), QUICKSTART_MARK)
    assert blocks, f"README.md has no {QUICKSTART_MARK} block"
    lines: list[str] = []
    for info, body in blocks:
        assert info == "sh", f"quickstart blocks are shell (```sh), not {info!r}"
        lines += [line for line in body.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    installs = [line for line in lines if INSTALL_LINE.match(line.strip())]
    assert len(installs) == 1, f"expected exactly one install line in the quickstart, found {installs}"
    script = ["set -euo pipefail"] + [":" if line in installs else line for line in lines]
    return "\n".join(script) + "\n", lines


def _wrapper(bin_dir: Path) -> None:
    bin_dir.mkdir()
    wrapper = bin_dir / "splitbuild"
    wrapper.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m splitbuild "$@"\n', encoding="utf-8")
    wrapper.chmod(0o755)


def _environment(tmp_path: Path) -> dict[str, str]:
    bin_dir = tmp_path / "bin"
    _wrapper(bin_dir)
    home = tmp_path / "home"
    home.mkdir()
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("GIT_", "SPLITBUILD_", "GITHUB_", "GITLAB"))
    }
    env.pop("CI", None)
    env.update(
        PATH=f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
        PYTHONPATH=str(ROOT),
        HOME=str(home),
        PYTHONUSERBASE=os.environ.get("PYTHONUSERBASE", site.getuserbase()),  # HOME moves, packages stay
        GIT_CONFIG_NOSYSTEM="1",
        GIT_AUTHOR_NAME="Quick Start",
        GIT_AUTHOR_EMAIL="quickstart@example.com",
        GIT_COMMITTER_NAME="Quick Start",
        GIT_COMMITTER_EMAIL="quickstart@example.com",
    )
    return env


def _app_repository(tmp_path: Path, env: dict[str, str]) -> Path:
    repo = tmp_path / "app"
    repo.mkdir()
    (repo / "Dockerfile").write_text("FROM scratch\nCOPY hello /hello\n", encoding="utf-8")
    for argv in (
        ["git", "init", "-q", "-b", "main"],
        ["git", "remote", "add", "origin", "https://github.com/acme/app.git"],
        ["git", "add", "Dockerfile"],
        ["git", "commit", "-q", "-m", "The app"],
    ):
        subprocess.run(argv, cwd=repo, env=env, check=True, capture_output=True)
    return repo


def _run(argv: list[str], repo: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, cwd=repo, env=env, capture_output=True, text=True, timeout=120)


def test_readme_is_short() -> None:
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) <= MAX_README_LINES, f"README.md has {len(lines)} lines (at most {MAX_README_LINES})"


def test_quickstart_runs_as_written(tmp_path: Path) -> None:
    script, lines = _quickstart_script()
    # The quickstart walks the whole adoption: init, plan, generate, the drift check, the commit.
    for step in ("splitbuild init", "splitbuild plan", "splitbuild generate", "splitbuild generate --check"):
        assert step in lines, f"the quickstart lacks `{step}`"
    env = _environment(tmp_path)
    repo = _app_repository(tmp_path, env)
    (tmp_path / "quickstart.sh").write_text(script, encoding="utf-8")

    done = _run(["bash", str(tmp_path / "quickstart.sh")], repo, env)
    assert done.returncode == 0, f"quickstart failed ({done.returncode}):\n{done.stdout}\n{done.stderr}"

    # init wrote the config: image name from the remote, the Dockerfile found.
    config = load_config(repo / "splitbuild.toml")
    assert config.image.names == ["ghcr.io/acme/app"]
    assert (repo / config.image.context / (config.image.dockerfile or "Dockerfile")).is_file()
    assert config.image.platforms == ["linux/amd64", "linux/arm64"]
    # plan printed one native line per platform.
    assert re.search(r"^linux/amd64\s+ubuntu-24\.04\s+native\b", done.stdout, re.M), done.stdout
    assert re.search(r"^linux/arm64\s+ubuntu-24\.04-arm\s+native\b", done.stdout, re.M), done.stdout
    # generate wrote the workflow, and the commit holds both files.
    workflow = repo / ".github" / "workflows" / "splitbuild.yml"
    assert workflow.read_text(encoding="utf-8").startswith("# Generated by splitbuild")
    tracked = _run(["git", "ls-files"], repo, env).stdout.split()
    assert {"splitbuild.toml", ".github/workflows/splitbuild.yml"} <= set(tracked)
    assert _run(["git", "status", "--porcelain"], repo, env).stdout.strip() == ""

    # The drift check passes on what the quickstart committed, and is not vacuous.
    assert _run(["splitbuild", "generate", "--check"], repo, env).returncode == 0
    edited = (repo / "splitbuild.toml").read_text(encoding="utf-8").replace('"linux/arm64"', '"linux/arm/v7"')
    (repo / "splitbuild.toml").write_text(edited, encoding="utf-8")
    drift = _run(["splitbuild", "generate", "--check"], repo, env)
    assert drift.returncode == 10, drift.stdout + drift.stderr
    assert "linux/arm/v7" in drift.stdout + drift.stderr


def _quickstart_config() -> str:
    blocks = _blocks_after(README.read_text(encoding="utf-8"), CONFIG_MARK)
    assert len(blocks) == 1, f"expected one {CONFIG_MARK} block"
    info, body = blocks[0]
    assert info == "toml"
    return body


def test_quickstart_config_is_valid_and_overrides_install() -> None:
    """The edited config the README shows is a valid config, and sets `[ci] install` (the default pin
    is not on the package index before the first release)."""
    assert CiConfig().install == f"splitbuild=={__version__}"
    assert "`splitbuild==<this version>`" in README.read_text(encoding="utf-8")
    config = parse_config(_quickstart_config(), "README.md")
    assert config.ci.install != CiConfig().install
    assert config.ci.install.startswith("splitbuild @ "), config.ci.install


def test_readme_names_every_secret_and_variable_the_workflow_needs(tmp_path: Path) -> None:
    """Generate the workflow for the README's example config: each `secrets.X` / `vars.X` it reads
    is named in the README's table of what to create (GITHUB_TOKEN is GitHub's own)."""
    (tmp_path / "splitbuild.toml").write_text(_quickstart_config(), encoding="utf-8")
    out = tmp_path / "splitbuild.yml"
    done = subprocess.run(
        [sys.executable, "-m", "splitbuild", "generate", "--output", str(out)],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    used = set(
        re.findall(r"\$\{\{\s*(?:secrets|vars)\.([A-Za-z0-9_]+)\s*\}\}", out.read_text(encoding="utf-8"))
    )
    assert {"GITHUB_TOKEN", "DOCKERHUB_USERNAME", "DOCKERHUB_TOKEN"} <= used
    readme = README.read_text(encoding="utf-8")
    missing = sorted(name for name in used if f"`{name}`" not in readme)
    assert not missing, f"README.md does not name {missing}"


def test_commands_table_lists_every_command() -> None:
    import typer.main

    from splitbuild.cli.app import make_app

    # typer may vendor its own click: read the group's commands by attribute, not by class.
    registered: dict[str, Any] = getattr(typer.main.get_command(make_app()), "commands", {})
    commands = sorted(name for name, command in registered.items() if not command.hidden)
    assert len(commands) >= 10, commands
    readme = README.read_text(encoding="utf-8")
    missing = [c for c in commands if not re.search(rf"^\| \[`splitbuild {c}`\]\(docs/", readme, re.M)]
    assert not missing, f"the README's commands table has no linked row for {missing}"


# --- links ------------------------------------------------------------------------------------------

LINK = re.compile(r"\]\(([^()\s]+)\)")
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")


def _prose(text: str) -> list[str]:
    """The lines outside fenced code blocks."""
    out: list[str] = []
    fence: str | None = None
    for line in text.splitlines():
        match = FENCE.match(line.lstrip())
        if fence is None and match:
            fence = match.group(1)[0] * 3
        elif fence is not None and line.lstrip().startswith(fence):
            fence = None
        elif fence is None:
            out.append(line)
    return out


def _slug(heading: str) -> str:
    """GitHub's heading anchor: lower case, punctuation dropped (``-`` and ``_`` kept), spaces to ``-``."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link keeps its text
    text = re.sub(r"[^\w\- ]", "", text.strip().lower())
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    seen: dict[str, int] = {}
    out: set[str] = set()
    for line in _prose(path.read_text(encoding="utf-8")):
        match = HEADING.match(line)
        if not match:
            continue
        slug = _slug(match.group(2))
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        out.add(slug if count == 0 else f"{slug}-{count}")
    return out


def test_slug_matches_github() -> None:
    assert _slug("5. Create the secrets and variables") == "5-create-the-secrets-and-variables"
    assert _slug("`copy SRC DST [--platform LIST] [--no-referrers] [-j N]`") == (
        "copy-src-dst---platform-list---no-referrers--j-n"
    )
    assert _slug('`[ci.logins."HOST"]`') == "ciloginshost"
    assert _slug("The example: `examples/hello`") == "the-example-exampleshello"


def _markdown_files() -> list[Path]:
    return [README, *sorted(DOCS.glob("*.md"))]


@pytest.mark.parametrize("page", _markdown_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve(page: Path) -> None:
    broken: list[str] = []
    for line in _prose(page.read_text(encoding="utf-8")):
        line = re.sub(r"``[^`]*``|`[^`]*`", "x", line)  # no links inside code spans
        for target in LINK.findall(line):
            if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # https:, mailto:
                continue
            path_part, _, anchor = target.partition("#")
            file = page if not path_part else (page.parent / path_part).resolve()
            if not file.exists():
                broken.append(f"{target}: no such file")
            elif anchor and (file.suffix != ".md" or anchor not in anchors(file)):
                broken.append(f"{target}: no heading #{anchor} in {file.relative_to(ROOT)}")
    assert not broken, f"{page.relative_to(ROOT)}: " + "; ".join(broken)


def test_docs_index_lists_every_page() -> None:
    index = (DOCS / "README.md").read_text(encoding="utf-8")
    pages = [p.name for p in sorted(DOCS.glob("*.md")) if p.name != "README.md"]
    missing = [name for name in pages if f"]({name})" not in index]
    assert not missing, f"docs/README.md does not link {missing}"
    assert "](docs/README.md)" in README.read_text(encoding="utf-8")
