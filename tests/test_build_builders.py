"""Builder selection, the builders' command lines, and the command's errors when no builder can run.

The docker builder is exercised with a stand-in ``docker`` executable on ``PATH`` (no engine runs
on the test machines): it answers ``version``/``buildx`` like a real client and, for ``buildx
build``, writes a prepared OCI archive where ``--output type=oci,dest=...`` says.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import stat
import sys
import tarfile
from pathlib import Path

import anyio
import pytest
from typer.testing import CliRunner

from splitbuild.build.buildah import BuildahBuilder, buildah_build_argv
from splitbuild.build.builders import LegDir
from splitbuild.build.docker import DockerBuilder, buildx_platforms, docker_build_argv
from splitbuild.build.host import detect_host
from splitbuild.build.runner import BuildOptions, run_build
from splitbuild.build.selection import select_builder
from splitbuild.build.spec import BuildSpec
from splitbuild.cli.app import make_app
from splitbuild.client import Client
from splitbuild.errors import BuildError, UsageError
from splitbuild.index import platform_set
from splitbuild.reference import parse_reference
from splitbuild.store.layout import LayoutRepository
from tests.images import make_image, push

SPEC = BuildSpec(
    context=Path("/src/app"),
    dockerfile=Path("/src/app/Dockerfile"),
    target="runtime",
    build_args={"WORK": "10"},
    labels={"org.opencontainers.image.revision": "abc"},
    build_contexts={"assets": "/src/assets"},
    secrets={"token": "NPM_TOKEN"},
)
LEG = LegDir("linux/arm/v7", Path("/tmp/run/linux-arm-v7"))

UNREACHABLE_DOCKER = """#!/bin/sh
echo "Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?" >&2
exit 1
"""
# Answers like a client with a reachable engine; `buildx build` copies $FAKE_OCI/<pair>.tar to dest.
WORKING_DOCKER = """#!/bin/sh
case "$1" in
  version) echo "28.2.2"; exit 0 ;;
esac
case "$2" in
  version) echo "github.com/docker/buildx v0.23.0 28c90ea"; exit 0 ;;
  inspect)
    echo "Name:          default"
    echo "Driver:        docker"
    echo "Platforms: linux/amd64, linux/amd64/v2, linux/386, linux/arm64, linux/arm/v7*"
    exit 0 ;;
  build)
    platform=""; dest=""
    while [ $# -gt 0 ]; do
      case "$1" in
        --platform) platform="$2"; shift ;;
        --output) dest="${2#type=oci,dest=}"; shift ;;
      esac
      shift
    done
    echo "#1 building $platform"
    if [ "$platform" = "linux/arm/v7" ]; then echo "ERROR: failed to solve: exit code: 2" >&2; exit 1; fi
    pair=$(echo "$platform" | tr / -)
    cp "$FAKE_OCI/$pair.tar" "$dest" ;;
esac
"""


def _executable(directory: Path, name: str, text: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def test_buildah_argv() -> None:
    argv = buildah_build_argv("/usr/bin/buildah", SPEC, LEG)
    assert argv == [
        "/usr/bin/buildah",
        "--root",
        "/tmp/run/linux-arm-v7/storage/root",
        "--runroot",
        "/tmp/run/linux-arm-v7/storage/run",
        "--storage-driver",
        "vfs",
        "build",
        "--isolation",
        "chroot",
        "--platform",
        "linux/arm/v7",
        "--file",
        "/src/app/Dockerfile",
        "--target",
        "runtime",
        "--build-arg",
        "WORK=10",
        "--label",
        "org.opencontainers.image.revision=abc",
        "--build-context",
        "assets=/src/assets",
        "--secret",
        "id=token,env=NPM_TOKEN",
        "--tag",
        "localhost/splitbuild-leg:linux-arm-v7",
        "/src/app",
    ]


def test_docker_argv() -> None:
    argv = docker_build_argv("/usr/bin/docker", SPEC, LEG)
    assert argv[:6] == ["/usr/bin/docker", "buildx", "build", "--platform", "linux/arm/v7", "--file"]
    assert "--provenance=false" in argv
    assert "--sbom=false" in argv
    assert argv[-3:] == ["--output", "type=oci,dest=/tmp/run/linux-arm-v7/image.tar", "/src/app"]
    assert argv[argv.index("--secret") + 1] == "id=token,env=NPM_TOKEN"


def test_buildx_platforms() -> None:
    text = "Name: x\nPlatforms: linux/amd64, linux/amd64/v2, linux/arm64*, linux/arm/v7, bogus/x/y/z\n"
    assert buildx_platforms(text) == {"linux/amd64", "linux/amd64/v2", "linux/arm64", "linux/arm/v7"}


@pytest.mark.anyio
async def test_select_builder(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(BuildError, match=r"^buildah is not installed$") as caught:
        await select_builder("buildah", path=str(empty))
    assert caught.value.hint == "apt-get install buildah (or `builder` docker where a docker engine runs)"
    with pytest.raises(BuildError) as caught:
        await select_builder("auto", path=str(empty))
    assert caught.value.message == "no builder: buildah is not installed and the docker CLI is not installed"
    with pytest.raises(UsageError, match="unknown builder 'podman'"):
        await select_builder("podman", path=str(empty))

    unreachable = tmp_path / "unreachable"
    _executable(unreachable, "docker", UNREACHABLE_DOCKER)
    with pytest.raises(BuildError) as caught:
        await select_builder("docker", path=str(unreachable))
    assert caught.value.message == (
        "`builder` docker: no docker engine is reachable (Cannot connect to the Docker daemon at "
        "unix:///var/run/docker.sock. Is the docker daemon running?)"
    )
    buildah = shutil.which("buildah")
    assert buildah is not None, "buildah is not installed (apt-get install buildah)"
    shutil.copy(buildah, unreachable / "buildah")
    chosen = await select_builder("auto", path=str(unreachable))
    assert isinstance(chosen, BuildahBuilder)
    assert chosen.describe().startswith("buildah 1.")

    working = tmp_path / "working"
    _executable(working, "docker", WORKING_DOCKER)
    docker = await select_builder("auto", path=str(working))
    assert isinstance(docker, DockerBuilder)
    assert (
        docker.describe()
        == "docker github.com/docker/buildx v0.23.0 28c90ea (QEMU through the engine's binfmt_misc)"
    )
    await docker.check_platforms(["linux/arm64", "linux/arm/v7"])
    with pytest.raises(BuildError, match=r"cannot run linux/s390x \(its platforms: linux/386, ") as caught:
        await docker.check_platforms(["linux/s390x"])
    assert (
        caught.value.hint == "register QEMU: docker run --privileged --rm tonistiigi/binfmt --install s390x"
    )


async def _oci_archive(directory: Path, platform: str) -> None:
    """What ``buildx build --output type=oci`` writes: an OCI layout as a tar archive."""
    layout = directory / platform.replace("/", "-")
    await push(LayoutRepository(layout), make_image(platform, seed="docker"), "latest")
    with tarfile.open(directory / f"{platform.replace('/', '-')}.tar", "w") as tar:
        for entry in sorted(layout.iterdir()):
            tar.add(entry, arcname=entry.name)


@pytest.mark.anyio
async def test_docker_builder_builds_each_platform_into_a_layout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fakes = tmp_path / "fake-oci"
    for platform in ("linux/amd64", "linux/arm64"):
        await _oci_archive(fakes, platform)
    monkeypatch.setenv("FAKE_OCI", str(fakes))
    bin_dir = tmp_path / "bin"
    _executable(bin_dir, "docker", WORKING_DOCKER)
    builder = await select_builder("docker", path=str(bin_dir))
    output = parse_reference(f"oci:{tmp_path / 'out'}")
    options = BuildOptions(
        spec=BuildSpec(context=tmp_path, dockerfile=tmp_path / "Dockerfile"),
        platforms=["linux/amd64", "linux/arm64"],
        outputs=[output],
        tags=["v1"],
        host=detect_host("x86_64"),
        workdir=tmp_path / "work",
    )
    async with Client() as client:
        result = await run_build(client, builder, options)
        index = await client.repository(output).get_manifest("v1")
    assert platform_set(index) == {"linux/amd64", "linux/arm64"}
    assert [leg.mode for leg in result.legs] == ["native", "emulated"]
    expected = make_image("linux/arm64", seed="docker").digest
    assert result.legs[1].digest == expected


def _project(tmp_path: Path) -> Path:
    tmp_path.mkdir(parents=True, exist_ok=True)
    (tmp_path / "Dockerfile").write_text("FROM scratch\nCOPY Dockerfile /\n")
    (tmp_path / "splitbuild.toml").write_text(
        '[image]\nnames = ["ghcr.io/acme/app"]\nplatforms = ["linux/amd64", "linux/arm64"]\n'
    )
    return tmp_path


def _run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, path: Path, *args: str) -> tuple[int, str, str]:
    monkeypatch.chdir(_project(tmp_path))
    result = CliRunner().invoke(make_app(), ["build", *args], env={"PATH": str(path)})
    return result.exit_code, result.stdout, result.stderr


def test_cli_without_any_builder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    empty = tmp_path / "bin"
    empty.mkdir()
    code, out, err = _run(tmp_path, monkeypatch, empty, "--tag", "dev", "--output", "oci:out")
    assert code == 9
    assert out == ""
    assert err == (
        "splitbuild: error: no builder: buildah is not installed and the docker CLI is not installed\n"
        "hint: apt-get install buildah qemu-user-static binfmt-support (or start a docker engine)\n"
    )
    assert not (tmp_path / "out").exists()


def test_cli_docker_without_engine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bin_dir = tmp_path / "bin"
    _executable(bin_dir, "docker", UNREACHABLE_DOCKER)
    code, _, err = _run(
        tmp_path, monkeypatch, bin_dir, "--builder", "docker", "--tag", "dev", "-o", "oci:out"
    )
    assert code == 9
    assert err.startswith(
        "splitbuild: error: --builder docker: no docker engine is reachable (Cannot connect"
    )
    assert "hint: start a docker engine, or use --builder buildah" in err
    assert not (tmp_path / "out").exists()


def test_cli_usage_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    empty = tmp_path / "bin"
    empty.mkdir()
    code, _, err = _run(tmp_path, monkeypatch, empty, "--platform", "linux/s390x", "--tag", "dev")
    assert code == 3
    assert "platform 'linux/s390x' is not in the plan (linux/amd64, linux/arm64)" in err
    code, _, err = _run(tmp_path, monkeypatch, empty, "--output", "oci:out:latest", "--tag", "dev")
    assert code == 2
    assert "give a repository without tag or digest" in err
    code, _, err = _run(tmp_path, monkeypatch, empty, "--tag", "a/b")
    assert code == 2
    assert "--tag 'a/b': give a tag name only" in err
    # Outside a git work tree, with no --tag, the tag rules give nothing.
    code, _, err = _run(tmp_path, monkeypatch, empty)
    assert code == 2
    assert "the tag rules give no tag for this checkout (not a git work tree)" in err


def test_cli_json_report_on_failure_lists_each_platform(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--builder docker with the stand-in: arm/v7 fails, so nothing is merged; --json says so."""
    fakes = tmp_path / "fake-oci"
    monkeypatch.setenv("FAKE_OCI", str(fakes))
    project = _project(tmp_path / "project")
    (project / "splitbuild.toml").write_text(
        '[image]\nnames = ["ghcr.io/acme/app"]\nplatforms = ["linux/amd64", "linux/arm/v7"]\n'
    )
    anyio.run(_oci_archive, fakes, "linux/amd64")
    bin_dir = tmp_path / "bin"
    _executable(bin_dir, "docker", WORKING_DOCKER)
    monkeypatch.chdir(project)
    result = CliRunner().invoke(
        make_app(),
        ["build", "--builder", "docker", "--tag", "dev", "--json", "-o", "oci:out"],
        env={"PATH": f"{bin_dir}:/usr/bin:/bin", "FAKE_OCI": str(fakes)},
    )
    assert result.exit_code == 9
    report = json.loads(result.stdout)
    assert [(p["platform"], p["status"]) for p in report["platforms"]] == [
        ("linux/amd64", "ok"),
        ("linux/arm/v7", "failed"),
    ]
    assert report["index"] is None
    assert "[linux/arm/v7] ERROR: failed to solve: exit code: 2" in result.stderr
    assert "linux/arm/v7: build failed (exit status 1): ERROR: failed to solve: exit code: 2" in result.stderr
    assert "no index written" in result.stderr
    # The platform that succeeded was pushed by digest into the output; nothing is tagged.
    amd64 = report["platforms"][0]["digest"]
    assert (project / "out" / "blobs" / "sha256" / amd64.removeprefix("sha256:")).is_file()
    assert anyio.run(LayoutRepository(project / "out").list_tags) == []


SLOW_DOCKER = """#!/bin/sh
case "$1" in
  version) echo "28.2.2"; exit 0 ;;
esac
case "$2" in
  version) echo "github.com/docker/buildx v0.23.0 28c90ea"; exit 0 ;;
  build) echo $$ > "$PID_FILE"; exec sleep 60 ;;
esac
"""


@pytest.mark.anyio
async def test_sigterm_stops_the_builders_and_cleans_up(tmp_path: Path) -> None:
    """A cancelled CI job (SIGTERM) or Ctrl-C stops every builder process and removes the build
    directories; nothing is merged and the exit status is 130."""
    project = _project(tmp_path / "project")
    bin_dir = tmp_path / "bin"
    _executable(bin_dir, "docker", SLOW_DOCKER)
    work = tmp_path / "tmp"
    work.mkdir()
    pid_file = tmp_path / "builder.pid"
    env = {
        **os.environ,
        "PATH": f"{bin_dir}:/usr/bin:/bin",
        "TMPDIR": str(work),
        "PID_FILE": str(pid_file),
    }
    argv = [sys.executable, "-m", "splitbuild", "build", "--builder", "docker", "--platform", "linux/amd64"]
    async with await anyio.open_process(
        [*argv, "--tag", "dev", "-o", "oci:out"], cwd=project, env=env
    ) as proc:
        for _ in range(600):  # the stand-in builder writes its pid when the build starts
            if pid_file.exists() and pid_file.read_text().strip():
                break
            await anyio.sleep(0.05)
        builder_pid = int(pid_file.read_text())
        assert any(work.iterdir())  # the platform's build directory exists while it builds
        proc.send_signal(signal.SIGTERM)
        with anyio.fail_after(30):
            code = await proc.wait()
        assert proc.stderr is not None
        stderr = b"".join([chunk async for chunk in proc.stderr]).decode()
    assert code == 130
    assert "splitbuild: error: interrupted" in stderr
    with pytest.raises(ProcessLookupError):
        os.kill(builder_pid, 0)
    assert list(work.iterdir()) == []
    assert not (project / "out").exists()
