"""splitbuild.build.options: a config file to the options of a local build, without the CLI."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from splitbuild.build import options_from_config, select_platforms
from splitbuild.config import parse_config
from splitbuild.errors import ConfigError, UsageError
from splitbuild.reference import LayoutReference

CONFIG = """[image]
names = ["ghcr.io/acme/app"]
platforms = ["linux/amd64", "linux/arm64", "linux/arm/v7"]
build-args = { A = "1", B = "2" }
annotations = ["org.opencontainers.image.vendor=Acme"]

[tags]
rules = ["type=ref,event=branch"]
"""


def _project(tmp_path: Path) -> Path:
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    path = tmp_path / "splitbuild.toml"
    path.write_text(CONFIG)
    return path


def _git(cwd: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
        cwd=cwd,
        check=True,
        capture_output=True,
    )


def test_select_platforms_normalises_and_checks_against_the_config() -> None:
    config = parse_config(CONFIG)
    assert select_platforms(config) == ["linux/amd64", "linux/arm64", "linux/arm/v7"]
    assert select_platforms(config, ["linux/aarch64", "linux/arm64/v8", "linux/arm"]) == [
        "linux/arm64",
        "linux/arm/v7",
    ]
    with pytest.raises(
        ConfigError, match=re.escape("platform 'linux/s390x' is not in the plan (linux/amd64,")
    ):
        select_platforms(config, ["linux/s390x"])


def test_options_from_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Outside git the paths are relative to the current directory (docs/build.md)."""
    path = _project(tmp_path)
    monkeypatch.chdir(tmp_path)
    seen: list[str] = []
    options = options_from_config(
        path,
        outputs=[f"oci:{tmp_path / 'out'}"],
        platforms=["linux/aarch64"],
        tags=["dev", "dev"],
        build_args=["B=3", "C=4"],
        jobs=2,
        on_progress=lambda platform, message: seen.append(f"{platform}: {message}"),
    )
    assert options.platforms == ["linux/arm64"]
    assert options.tags == ["dev"]
    assert options.jobs == 2
    assert isinstance(options.outputs[0], LayoutReference)
    assert dict(options.spec.build_args) == {"A": "1", "B": "3", "C": "4"}
    assert (
        options.spec.dockerfile == (tmp_path / "Dockerfile").resolve()
        or options.spec.dockerfile.name == "Dockerfile"
    )
    assert options.annotations.index == {"org.opencontainers.image.vendor": "Acme"}
    assert options.on_output is None
    assert options.on_progress is not None
    options.on_progress("linux/arm64", "built")
    assert seen == ["linux/arm64: built"]


def test_options_from_config_tags_from_the_rules_on_the_git_branch(tmp_path: Path) -> None:
    path = _project(tmp_path)
    _git(tmp_path, "init", "-q", "-b", "feature-x")
    _git(tmp_path, "add", ".")
    _git(tmp_path, "commit", "-q", "-m", "init")
    options = options_from_config(path, outputs=["oci:out"])
    assert options.tags == ["feature-x"]
    assert options.platforms == ["linux/amd64", "linux/arm64", "linux/arm/v7"]
    head = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=tmp_path, check=True, capture_output=True, text=True
    ).stdout.strip()
    assert options.spec.labels["org.opencontainers.image.revision"] == head


def test_options_from_config_refuses_an_output_with_a_tag(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(UsageError, match="give a repository without tag or digest"):
        options_from_config(_project(tmp_path), outputs=["oci:out:latest"], tags=["dev"])


def test_the_index_is_dated_by_the_commit_and_the_config_keys_apply(tmp_path: Path) -> None:
    """``created`` orders the published indexes (splitbuild.merge): the commit's date, in UTC."""
    path = _project(tmp_path)
    _git(tmp_path, "init", "-q", "-b", "main")
    _git(tmp_path, "add", ".")
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-q", "-m", "init"],
        cwd=tmp_path,
        check=True,
        env={**os.environ, "GIT_COMMITTER_DATE": "2026-11-20T10:00:00+01:00"},
    )
    options = options_from_config(path, outputs=["oci:out"])
    assert options.annotations.index == {
        "org.opencontainers.image.vendor": "Acme",
        "org.opencontainers.image.created": "2026-11-20T09:00:00Z",
    }
    assert (options.allow_rollback, options.delete_displaced) == (False, False)
    path.write_text(
        CONFIG.replace(
            'annotations = ["org.opencontainers.image.vendor=Acme"]',
            'annotations = ["index:org.opencontainers.image.created=2020-01-01T00:00:00Z"]\n'
            "allow-rollback = true\ndelete-displaced = true",
        )
    )
    options = options_from_config(path, outputs=["oci:out"], delete_displaced=False)
    assert options.annotations.index == {"org.opencontainers.image.created": "2020-01-01T00:00:00Z"}
    assert (options.allow_rollback, options.delete_displaced) == (True, False)
