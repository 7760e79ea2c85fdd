"""``splitbuild build`` with ``[test]`` and ``--scan``: each platform's smoke test runs in its
image (linux/arm64 under QEMU) and the scan reads it, both before anything of it is pushed; a
failing test or a finding at the threshold stops that platform and publishes nothing, against the
real test registry.

trivy and its vulnerability database cannot be downloaded here: ``tests/stand_ins/trivy`` keeps
trivy's command line (``image --input --exit-code --severity --format sarif --output
--ignore-unfixed --ignorefile``) and reads a small database (``tests/stand_ins/vulndb.json``) of
files that make an image "vulnerable".
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import anyio
import pytest

from splitbuild.build.report import render_table
from splitbuild.build.runner import BuildResult, LegResult
from splitbuild.client import Client
from splitbuild.errors import NotFound
from splitbuild.reference import parse_reference
from splitbuild.store.layout import LayoutRepository
from tests.hello_repo import PLATFORMS, git, make_repo, prepare_rootfs
from tests.registry_server import RegistryServer


@pytest.fixture(scope="module")
def rootfs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return prepare_rootfs(tmp_path_factory.mktemp("rootfs"))


STAND_INS = Path(__file__).resolve().parent / "stand_ins"
CONFIG = "examples/hello/splitbuild.toml"
# aarch64 only: the file the stand-in's database knows as CVE-2099-0001 (HIGH, fixed) and
# CVE-2099-0002 (MEDIUM, unfixed).
VULNERABLE_ON_ARM64 = '\nRUN if [ "$(uname -m)" = aarch64 ]; then touch /etc/hello/vulnerable; fi\n'


def _with_config(repo: Path, text: str) -> Path:
    config = repo / CONFIG
    config.write_text(config.read_text() + text)
    git(repo, "commit", "-q", "-am", "checks")
    return repo


async def _build(repo: Path, *args: str, path: str | None = None) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "splitbuild", "build", "--config", CONFIG, "--platform", PLATFORMS]
    argv += ["--build-arg", "WORK=1000", "--jobs", "2", "--json", *args]
    env = {**os.environ, "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"}
    env["PATH"] = path if path is not None else f"{STAND_INS}{os.pathsep}{os.environ['PATH']}"
    done = await anyio.run_process(argv, cwd=repo, check=False, env=env)
    return subprocess.CompletedProcess(
        argv, done.returncode, done.stdout.decode(errors="replace"), done.stderr.decode(errors="replace")
    )


def _error(done: subprocess.CompletedProcess[str]) -> str:
    return next(line for line in done.stderr.splitlines() if line.startswith("splitbuild: error: "))


async def _published(remote: str, layout: Path) -> tuple[list[str], list[str]]:
    async with Client() as client:
        try:
            registry_tags = await client.repository(parse_reference(remote)).list_tags()
        except NotFound:  # distribution: a repository without tags is unknown to the tag list
            registry_tags = []
    return registry_tags, await LayoutRepository(layout).list_tags()


async def _legs(done: subprocess.CompletedProcess[str]) -> dict[str, dict[str, Any]]:
    report = json.loads(done.stdout)
    return {leg["platform"]: leg for leg in report["platforms"]}


@pytest.mark.anyio
async def test_smoke_tests_and_a_clean_scan_gate_then_publish(
    tmp_path: Path, rootfs: Path, registry: RegistryServer
) -> None:
    repo = _with_config(
        make_repo(tmp_path / "repo", rootfs),
        '\n[test]\ncommand = "hello | grep -q \\"hello from $(uname -m)\\""\n'
        '[test.platforms]\n"linux/arm64" = ["/bin/sh", "-c", "[ \\"$(uname -m)\\" = aarch64 ] && hello"]\n'
        '[scan]\nseverity = "critical"\n',
    )
    layout, remote = tmp_path / "oci", f"{registry.host}/checks/clean"
    done = await _build(repo, "--output", f"oci:{layout}", "--output", remote, "--tag", "v1", "--scan")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    legs = await _legs(done)
    for leg in legs.values():
        assert leg["status"] == "ok"
        assert leg["testSeconds"] > 0
        assert leg["findings"] == 0  # nothing at or above critical (arm64 has no vulnerable file)
        assert leg["scanSeconds"] is not None
    assert "linux/arm64: smoke test: /bin/sh -c" in done.stderr
    assert "scanning with trivy" in done.stderr
    assert report["index"] is not None
    assert await _published(remote, layout) == (["v1"], ["v1"])


@pytest.mark.anyio
async def test_a_failing_smoke_test_publishes_nothing(
    tmp_path: Path, rootfs: Path, registry: RegistryServer
) -> None:
    # The test passes on the native amd64 image and fails in the emulated arm64 one.
    repo = _with_config(
        make_repo(tmp_path / "repo", rootfs),
        '\n[test]\ncommand = "echo testing on $(uname -m); [ $(uname -m) = x86_64 ]"\n',
    )
    layout, remote = tmp_path / "oci", f"{registry.host}/checks/test-fails"
    done = await _build(repo, "--output", f"oci:{layout}", "--output", remote, "--tag", "v1")
    assert done.returncode == 9, done.stderr
    message = _error(done)
    assert "linux/arm64: smoke test failed (exit status 1)" in message
    assert message.endswith("no index written")
    assert "[linux/arm64] testing on aarch64" in done.stderr  # the test's own output, as the last lines
    legs = await _legs(done)
    assert legs["linux/arm64"]["failedStep"] == "test"
    assert legs["linux/arm64"]["digest"] is None
    assert legs["linux/amd64"]["status"] == "ok"
    assert json.loads(done.stdout)["index"] is None
    assert await _published(remote, layout) == ([], [])


@pytest.mark.anyio
async def test_a_scan_finding_at_the_threshold_publishes_nothing(
    tmp_path: Path, rootfs: Path, registry: RegistryServer
) -> None:
    repo = _with_config(
        make_repo(tmp_path / "repo", rootfs, extra_dockerfile=VULNERABLE_ON_ARM64),
        '\n[scan]\nseverity = "high"\n',
    )
    layout, remote = tmp_path / "oci", f"{registry.host}/checks/scan-finds"
    done = await _build(repo, "--output", f"oci:{layout}", "--output", remote, "--tag", "v1", "--scan")
    assert done.returncode == 8, done.stderr  # Refused: every failure is a scan finding
    message = _error(done)
    assert "linux/arm64: the scan found 1 vulnerability at or above high" in message
    assert "succeeded: linux/amd64 (sha256:" in message
    assert "hint: update the affected packages" in done.stderr
    legs = await _legs(done)
    assert legs["linux/arm64"] | {"findings": 1, "failedStep": "scan", "digest": None} == legs["linux/arm64"]
    assert legs["linux/amd64"]["findings"] == 0
    assert await _published(remote, layout) == ([], [])

    # The same image with the finding on the allow-list, and with the threshold above it, passes.
    (repo / ".trivyignore").write_text("# accepted until the fix ships\nCVE-2099-0001\n")
    config = repo / CONFIG
    config.write_text(
        config.read_text().replace(
            'severity = "high"', 'severity = "medium"\nallow-list = ".trivyignore"\nignore-unfixed = true'
        )
    )
    done = await _build(repo, "--output", remote, "--tag", "v2", "--scan")
    assert done.returncode == 0, done.stderr
    assert (await _legs(done))["linux/arm64"]["findings"] == 0  # CVE-2099-0002 is unfixed


@pytest.mark.anyio
async def test_scan_without_the_scanner_installed_says_so_before_building(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    (repo / "examples" / "hello").mkdir(parents=True)
    (repo / "examples" / "hello" / "Dockerfile").write_text("FROM scratch\n")
    (repo / CONFIG).write_text(
        '[image]\nnames = ["ghcr.io/acme/hello"]\nplatforms = ["linux/amd64", "linux/arm64"]\n'
        'context = "examples/hello"\n[scan]\nscanner = "grype"\n'
    )
    done = await _build(
        repo, "--output", f"oci:{tmp_path / 'oci'}", "--tag", "v1", "--scan", path="/nonexistent"
    )
    assert done.returncode == 9, done.stderr
    assert _error(done) == (
        "splitbuild: error: the scan needs grype, which is not installed (not found on PATH): "
        "nothing was built"
    )
    assert not (tmp_path / "oci").exists()


def test_the_table_shows_the_checks_when_the_run_had_them() -> None:
    legs = [
        LegResult("linux/amd64", "native", "ok", "sha256:" + "a" * 64, 1.0, 0.1, 0.2, 0.5, 0.3, 0),
        LegResult("linux/arm64", "emulated", "failed", None, 6.0, 0.1, None, None, 0.4, 2, "scan"),
    ]
    table = render_table(
        BuildResult(builder="b", host="linux/amd64", legs=legs, outputs=["oci:x"])
    ).splitlines()
    assert table[0].split() == [
        "PLATFORM",
        "MODE",
        "BUILD",
        "s",
        "EXPORT",
        "s",
        "PUSH",
        "s",
        "TEST",
        "s",
        "FINDINGS",
        "DIGEST",
    ]
    assert table[1].split()[-3:] == ["0.50", "0", "sha256:" + "a" * 64]
    assert table[2].split()[-4:] == ["-", "2", "FAILED", "(scan)"]
    plain = [LegResult("linux/amd64", "native", "ok", "sha256:" + "a" * 64, 1.0, 0.1, 0.2)]
    assert "FINDINGS" not in render_table(BuildResult(builder="b", host="h", legs=plain, outputs=["oci:x"]))


def test_the_smoke_test_reads_a_layout_under_any_path_through_a_valid_image_name(tmp_path: Path) -> None:
    """buildah names the image it reads after the layout's path; a temporary directory such as
    ``splitbuild-build-1bx4t1c_`` is no valid name (a component may not end in ``_``), which once
    failed the smoke test at random. The layout is read through a link with a valid name."""
    import re

    from splitbuild.build.smoke import _named_link

    layout = tmp_path / "splitbuild-build-1bx4t1c_" / "linux-amd64" / "oci"
    layout.mkdir(parents=True)
    link = _named_link(layout)
    try:
        assert re.fullmatch(r"/tmp/splitbuild-test-[0-9a-f]{16}", str(link))
        assert link.resolve() == layout.resolve()
    finally:
        link.unlink()
