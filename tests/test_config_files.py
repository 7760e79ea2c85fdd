"""Config and context files: only regular files are read, and only up to their cap (issue 14,
items 23 and 24): devices, pipes, directories, ``/proc/self/mem`` and oversized files are a
one-line invalid-input error (exit 3), found without blocking or reading them whole.

The commands run in a subprocess with a 1 GiB address-space limit and a timeout, so a regression
ends as a failed test instead of taking the machine's memory or hanging.
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest

from splitbuild.config import CONFIG_MAX_BYTES, load_config
from splitbuild.errors import ConfigError
from splitbuild.inputfile import read_text_file

ROOT = Path(__file__).resolve().parents[1]
CONFIG = '[image]\nnames = ["ghcr.io/acme/app"]\nplatforms = ["linux/amd64"]\n'


def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))


def run(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if k not in ("GITHUB_ACTIONS", "GITLAB_CI")}
    full_env.update({"PYTHONPATH": str(ROOT), **(env or {})})
    return subprocess.run(
        [sys.executable, "-m", "splitbuild", *args],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=30,
        preexec_fn=_limit_memory,
        check=False,
    )


@pytest.fixture
def special(tmp_path: Path) -> dict[str, Path]:
    """Files that are not what a config or context file should be."""
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    sparse = tmp_path / "sparse.toml"
    with sparse.open("wb") as handle:
        handle.truncate(2 << 30)  # 2 GiB of holes: costs no disk, reads as zeros
    link = tmp_path / "link.toml"
    link.symlink_to("/dev/zero")
    return {
        "/dev/zero": Path("/dev/zero"),
        "/proc/self/mem": Path("/proc/self/mem"),
        "fifo": fifo,
        "directory": tmp_path,
        "sparse": sparse,
        "symlink to /dev/zero": link,
    }


CASES = ("/dev/zero", "/proc/self/mem", "fifo", "directory", "sparse", "symlink to /dev/zero")
WHY = {
    "/dev/zero": "a character device, not a regular file",
    "/proc/self/mem": "cannot be read (Input/output error)",
    "fifo": "a named pipe, not a regular file",
    "directory": "a directory, not a regular file",
    "sparse": "larger than 1 MiB (2147483648 bytes)",
    "symlink to /dev/zero": "a character device, not a regular file",
}


@pytest.mark.parametrize("case", CASES)
def test_plan_config_special_files(tmp_path: Path, special: dict[str, Path], case: str) -> None:
    if case == "directory":
        # typer refuses a directory for --config itself (a usage error); the library says why.
        with pytest.raises(ConfigError, match=f"{special[case]}: {WHY[case]}"):
            load_config(special[case])
        return
    result = run("plan", "-c", str(special[case]), cwd=tmp_path)
    assert result.returncode == 3, result.stderr
    assert result.stderr == f"splitbuild: error: {special[case]}: {WHY[case]}\n"


@pytest.mark.parametrize("case", CASES)
def test_tags_context_special_files(tmp_path: Path, special: dict[str, Path], case: str) -> None:
    result = run("tags", "--tags", "type=raw,value=x", "--context", str(special[case]), cwd=tmp_path)
    assert result.returncode == 3, result.stderr
    why = WHY[case].replace("1 MiB", "16 MiB")
    assert result.stderr == f"splitbuild: error: context file '{special[case]}': {why}\n"


def test_event_payload_special_file(tmp_path: Path) -> None:
    env = {"GITHUB_ACTIONS": "true", "GITHUB_EVENT_NAME": "push", "GITHUB_SHA": "a" * 40}
    result = run("tags", "--tags", "type=sha", cwd=tmp_path, env={**env, "GITHUB_EVENT_PATH": "/dev/zero"})
    assert result.returncode == 3, result.stderr
    assert result.stderr == (
        "splitbuild: error: GITHUB_EVENT_PATH '/dev/zero': a character device, not a regular file\n"
    )


def test_size_checked_while_reading(tmp_path: Path) -> None:
    """``/proc`` files report size 0: the cap holds while reading too."""
    status = Path("/proc/self/status")
    assert status.stat().st_size == 0
    with pytest.raises(ConfigError, match=r"^/proc/self/status: larger than 64 bytes$"):
        read_text_file(status, limit=64)
    assert "Name:" in read_text_file(status, limit=1 << 20)


def test_config_cap(tmp_path: Path) -> None:
    path = tmp_path / "big.toml"
    path.write_text(CONFIG + "#" * (CONFIG_MAX_BYTES - len(CONFIG) - 1) + "\n")
    assert load_config(path).image.names == ["ghcr.io/acme/app"]
    path.write_text(CONFIG + "#" * (CONFIG_MAX_BYTES - len(CONFIG)) + "\n")
    with pytest.raises(ConfigError, match="larger than 1 MiB"):
        load_config(path)


def test_missing_and_odd_paths_are_one_line(tmp_path: Path) -> None:
    result = run("plan", "-c", "no\nsuch\u2028file.toml", cwd=tmp_path)
    assert result.returncode == 3
    assert result.stderr.splitlines() == [
        "splitbuild: error: no\\nsuch\\u2028file.toml: config file not found",
        "hint: run `splitbuild init` to write a starter config",
    ]


def test_regular_files_still_read(tmp_path: Path) -> None:
    (tmp_path / "splitbuild.toml").write_text(CONFIG)
    result = run("plan", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "linux/amd64" in result.stdout
    context = tmp_path / "context.json"
    context.write_text('{"eventName": "push", "ref": "refs/tags/v1.2.3", "sha": "' + "a" * 40 + '"}')
    tags = run("tags", "--tags", "type=semver,pattern={{version}}", "--context", str(context), cwd=tmp_path)
    assert tags.returncode == 0, tags.stderr
    assert tags.stdout == "1.2.3\nlatest\n"


def test_deeply_nested_context_is_invalid_input(tmp_path: Path) -> None:
    context = tmp_path / "deep.json"
    context.write_text("[" * 200_000)
    result = run("tags", "--tags", "type=sha", "--context", str(context), cwd=tmp_path)
    assert result.returncode == 3, result.stderr
    assert result.stderr.startswith(f"splitbuild: error: context file '{context}' is not JSON: ")
    assert result.stderr.count("\n") == 1


def test_deeply_nested_config_is_invalid_input(tmp_path: Path) -> None:
    (tmp_path / "splitbuild.toml").write_text("a = " + "[" * 100_000 + "]" * 100_000 + "\n")
    result = run("plan", cwd=tmp_path)
    assert result.returncode == 3, result.stderr
    assert result.stderr == (
        "splitbuild: error: splitbuild.toml: invalid TOML: arrays or tables nested too deeply\n"
    )


@pytest.mark.parametrize("target", ["/dev/zero", "/proc/self/mem", "fifo"])
def test_generate_output_that_is_not_a_regular_file_is_refused(tmp_path: Path, target: str) -> None:
    """``generate --output`` reads the file it replaces: never a device, a FIFO or /proc/self/mem."""
    config = tmp_path / "splitbuild.toml"
    config.write_text('[image]\nnames = ["ghcr.io/acme/app"]\nplatforms = ["linux/amd64"]\n')
    if target == "fifo":
        target = str(tmp_path / "fifo")
        os.mkfifo(target)
    result = subprocess.run(
        [sys.executable, "-m", "splitbuild", "generate", "-c", str(config), "--output", target],
        capture_output=True, text=True, timeout=30, check=False,
        env={**os.environ, "PYTHONPATH": str(ROOT)}, preexec_fn=_limit_memory,
    )  # fmt: skip
    assert result.returncode == 3, result.stderr
    assert result.stderr.startswith("splitbuild: error: "), result.stderr
    assert "Traceback" not in result.stderr
