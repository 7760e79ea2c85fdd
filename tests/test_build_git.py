"""The local git state as a tag context, the tags and labels of a local build, and the build spec."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from splitbuild.build.gitcontext import GitState, git_context, git_state, public_url
from splitbuild.build.spec import parse_build_args, spec_from_config
from splitbuild.build.tagging import build_labels, default_tags, explicit_tags
from splitbuild.config import parse_config
from splitbuild.errors import ConfigError, InvalidReference, UsageError

DATE = "2026-11-20T10:00:00+00:00"
CONFIG = parse_config(
    """
[image]
names = ["ghcr.io/acme/app"]
platforms = ["linux/amd64", "linux/arm64"]

[tags]
rules = [
  "type=ref,event=branch",
  "type=semver,pattern={{version}}",
  "type=semver,pattern={{major}}.{{minor}}",
  "type=sha",
  "type=edge",
]
"""
)


def _git(repo: Path, *args: str) -> str:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.invalid",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.invalid",
        "GIT_AUTHOR_DATE": DATE,
        "GIT_COMMITTER_DATE": DATE,
    }
    done = subprocess.run(
        ["git", "-C", str(repo), *args], capture_output=True, text=True, env=env, check=True
    )
    return done.stdout.strip()


@pytest.fixture(autouse=True)
def _no_user_git_config(monkeypatch: pytest.MonkeyPatch) -> None:
    """git_state reads the real environment: keep the machine's git settings out of it."""
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", os.devnull)
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "app"
    root.mkdir()
    (root / "Dockerfile").write_text("FROM scratch\n")
    _git(root, "init", "-q", "-b", "trunk")
    _git(root, "add", "-A")
    _git(root, "commit", "-q", "-m", "one")
    return root


def test_branch(repo: Path) -> None:
    _git(repo, "remote", "add", "origin", "https://user:s3cret@git.example.com/acme/app.git")
    (repo / "sub").mkdir()
    state = git_state(repo / "sub")
    sha = _git(repo, "rev-parse", "HEAD")
    assert state == GitState(
        root=repo,
        sha=sha,
        commit_date="2026-11-20T10:00:00+00:00",
        branch="trunk",
        tag=None,
        default_branch=None,
        name="app",
        url="https://git.example.com/acme/app",
    )
    assert state.describe() == f"branch trunk at {sha[:7]}"
    context = git_context(state, env={"DOCKER_METADATA_SHORT_SHA_LENGTH": "10", "HOME": "/x"})
    assert context.event_name == "push"
    assert context.ref == "refs/heads/trunk"
    assert context.env == {"DOCKER_METADATA_SHORT_SHA_LENGTH": "10"}
    assert default_tags(CONFIG, context, state) == ["trunk", f"sha-{sha[:10]}"]
    assert build_labels(state) == {
        "org.opencontainers.image.source": "https://git.example.com/acme/app",
        "org.opencontainers.image.revision": sha,
    }
    assert "s3cret" not in repr(state)


def test_default_branch_from_origin_head_gives_edge(repo: Path, tmp_path: Path) -> None:
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(repo), str(clone)], check=True, capture_output=True)
    state = git_state(clone)
    assert state.default_branch == "trunk"
    assert state.url is None  # a local path is not a browsable URL
    assert state.name == "clone"
    # metadata-action orders tags by rule priority: edge before branch and sha.
    assert default_tags(CONFIG, git_context(state, env={}), state) == [
        "edge",
        "trunk",
        f"sha-{state.sha[:7]}",
    ]


def test_highest_version_tag_wins(repo: Path) -> None:
    _git(repo, "tag", "v1.2.3")
    _git(repo, "tag", "v1.10.0")
    _git(repo, "tag", "v1.9.0")
    state = git_state(repo)
    assert state.tag == "v1.10.0"
    context = git_context(state, env={})
    assert context.ref == "refs/tags/v1.10.0"
    assert default_tags(CONFIG, context, state) == ["1.10.0", "1.10", f"sha-{state.sha[:7]}", "latest"]


def test_detached_head_without_tag(repo: Path) -> None:
    (repo / "two").write_text("2")
    _git(repo, "add", "two")
    _git(repo, "commit", "-q", "-m", "two")
    _git(repo, "checkout", "-q", "--detach", "HEAD~1")
    state = git_state(repo)
    assert state.branch is None
    assert state.describe().startswith("detached HEAD at ")
    context = git_context(state, env={})
    assert (context.event_name, context.ref) == ("workflow_dispatch", "")
    assert default_tags(CONFIG, context, state) == [f"sha-{state.sha[:7]}"]


def test_no_git_work_tree_needs_explicit_tags(tmp_path: Path) -> None:
    state = git_state(tmp_path)
    assert state == GitState()
    assert state.describe() == "not a git work tree"
    assert build_labels(state) == {}
    with pytest.raises(UsageError, match=r"give no tag for this checkout \(not a git work tree\)") as caught:
        default_tags(CONFIG, git_context(state, env={}), state)
    assert caught.value.hint == "name the tags with `tags` (e.g. dev)"
    assert git_state(tmp_path, git=str(tmp_path / "no-such-git")) == GitState()


def test_repository_without_commits(tmp_path: Path) -> None:
    _git(tmp_path, "init", "-q", "-b", "main")
    state = git_state(tmp_path)
    assert state.root == tmp_path
    assert state.sha == ""
    assert state.describe() == "git work tree without commits"


@pytest.mark.parametrize(
    ("remote", "url"),
    [
        ("https://github.com/acme/app.git", "https://github.com/acme/app"),
        ("https://x-access-token:ghs_abc@github.com/acme/app", "https://github.com/acme/app"),
        ("git@github.com:acme/app.git", "https://github.com/acme/app"),
        ("ssh://git@gitlab.example.com:2222/group/sub/app.git", "https://gitlab.example.com/group/sub/app"),
        ("http://localhost:3000/acme/app/", "https://localhost:3000/acme/app"),
        ("/srv/git/app.git", None),
        ("file:///srv/git/app.git", None),
    ],
)
def test_public_url(remote: str, url: str | None) -> None:
    assert public_url(remote) == url


def test_explicit_tags() -> None:
    assert explicit_tags(["dev", "v1.2", "dev"]) == ["dev", "v1.2"]
    with pytest.raises(UsageError, match="give a tag name only"):
        explicit_tags(["ghcr.io/acme/app:dev"])
    with pytest.raises(InvalidReference):
        explicit_tags(["-bad"])


def test_spec_resolves_paths_against_the_repository_root(tmp_path: Path) -> None:
    app = tmp_path / "services" / "app"
    app.mkdir(parents=True)
    (app / "Containerfile").write_text("FROM scratch\n")
    config = parse_config(
        """
[image]
names = ["ghcr.io/acme/app"]
platforms = ["linux/amd64"]
context = "services/app"
dockerfile = "services/app/Containerfile"
target = "runtime"
build-args = { VERSION = "1", MODE = "ci" }
build-contexts = { assets = "shared/assets", base = "docker-image://alpine:3" }
secrets = { token = "NPM_TOKEN" }
labels = { "org.opencontainers.image.title" = "app" }
"""
    )
    spec = spec_from_config(
        config,
        tmp_path,
        labels={"org.opencontainers.image.title": "ignored", "org.opencontainers.image.revision": "abc"},
        build_args={"MODE": "local"},
        env={"NPM_TOKEN": "not-read-by-splitbuild"},
    )
    assert spec.context == app
    assert spec.dockerfile == app / "Containerfile"
    assert spec.target == "runtime"
    assert spec.build_args == {"VERSION": "1", "MODE": "local"}
    assert spec.labels == {
        "org.opencontainers.image.title": "app",
        "org.opencontainers.image.revision": "abc",
    }
    assert spec.build_contexts == {
        "assets": str(tmp_path / "shared" / "assets"),
        "base": "docker-image://alpine:3",
    }
    assert spec.secrets == {"token": "NPM_TOKEN"}
    with pytest.raises(ConfigError, match="set the environment variable NPM_TOKEN for a local build"):
        spec_from_config(config, tmp_path, env={})


def test_spec_errors(tmp_path: Path) -> None:
    config = parse_config(
        '[image]\nnames = ["ghcr.io/acme/app"]\nplatforms = ["linux/amd64"]\ncontext = "app"\n'
    )
    with pytest.raises(ConfigError, match=r"image.context 'app': .* is not a directory"):
        spec_from_config(config, tmp_path)
    (tmp_path / "app").mkdir()
    with pytest.raises(ConfigError, match=r"Dockerfile: .*app/Dockerfile does not exist"):
        spec_from_config(config, tmp_path)


def test_build_args() -> None:
    assert parse_build_args(["A=1", "B=x=y", "A=2", "EMPTY="]) == {"A": "2", "B": "x=y", "EMPTY": ""}
    with pytest.raises(UsageError, match="expected KEY=VALUE"):
        parse_build_args(["NOVALUE"])
    with pytest.raises(UsageError, match="expected KEY=VALUE"):
        parse_build_args(["1BAD=x"])
