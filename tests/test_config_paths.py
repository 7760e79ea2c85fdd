"""The config's paths (``context``, ``dockerfile``, ``[scan] allow-list``) name files inside the
repository: absolute paths and paths that lead out of it with ``..`` are config errors (exit 3)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from splitbuild.config import parse_config
from splitbuild.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]
BASE = '[image]\nnames = ["ghcr.io/acme/app"]\nplatforms = ["linux/amd64"]\n'
INSIDE = "must be a relative path inside the repository"


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("context", ".."),
        ("context", "../.."),
        ("context", "../other"),
        ("context", "app/../../other"),
        ("context", "./.."),
        ("context", "..\\\\outside"),
        ("dockerfile", "../../etc/Dockerfile"),
        ("dockerfile", "docker/../../Dockerfile"),
        ("dockerfile", "/etc/Dockerfile"),
    ],
)
def test_a_path_out_of_the_repository_is_refused(key: str, value: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(BASE + f'{key} = "{value}"\n')
    message = caught.value.message
    assert f"image.{key}: {key} {value.replace(chr(92) * 2, chr(92))!r} {INSIDE}" in message
    assert "\n" not in message
    assert caught.value.exit_code == 3


def test_scan_allow_list_out_of_the_repository_is_refused() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(BASE + '[scan]\nallow-list = "../.trivyignore"\n')
    assert f"allow-list '../.trivyignore' {INSIDE}" in caught.value.message


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("context", "."),
        ("context", "app"),
        ("context", "app/.."),
        ("context", "./app/../svc"),
        ("context", "..app"),
        ("dockerfile", "docker/../Dockerfile"),
        ("dockerfile", "docker/..Dockerfile"),
    ],
)
def test_a_path_inside_the_repository_is_accepted(key: str, value: str) -> None:
    image = parse_config(BASE + f'{key} = "{value}"\n').image
    assert getattr(image, key) == value


def test_the_cli_says_so_in_one_line_with_exit_3(tmp_path: Path) -> None:
    (tmp_path / "splitbuild.toml").write_text(BASE + 'context = "../.."\n')
    env = {k: v for k, v in os.environ.items() if k not in ("GITHUB_ACTIONS", "GITLAB_CI")}
    result = subprocess.run(
        [sys.executable, "-m", "splitbuild", "generate"],
        cwd=tmp_path,
        env={**env, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 3
    assert result.stderr.splitlines() == [
        "splitbuild: error: splitbuild.toml: image.context: context '../..' must be a relative path "
        "inside the repository (it leads out with '..')"
    ]
    assert not (tmp_path / ".github").exists()
