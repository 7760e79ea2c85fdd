"""End to end: ``splitbuild build`` of examples/hello with buildah, natively and under QEMU.

The example is copied into a temporary git repository (so the tags come from its git state), its
per-architecture busybox is prepared once for the module by ``examples/hello/prepare.py``, and
QEMU's binfmt_misc handler for arm64 is registered if it is not (as root, like CI). Only
linux/amd64 and linux/arm64 are built, to keep the suite fast.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any

import anyio
import pytest

from splitbuild.client import Client
from splitbuild.errors import NotFound
from splitbuild.index import platform_set
from splitbuild.models import ConfigFile, Manifest
from splitbuild.reference import parse_reference
from splitbuild.store.base import Repository
from splitbuild.store.layout import LayoutRepository
from tests.hello_repo import PLATFORMS, git, make_repo, prepare_rootfs
from tests.registry_server import RegistryServer


@pytest.fixture(scope="module")
def rootfs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return prepare_rootfs(tmp_path_factory.mktemp("rootfs"))


@pytest.fixture(scope="module")
def hello_repo(tmp_path_factory: pytest.TempPathFactory, rootfs: Path) -> Path:
    return make_repo(tmp_path_factory.mktemp("hello-repo"), rootfs)


@pytest.fixture(scope="module")
def failing_repo(tmp_path_factory: pytest.TempPathFactory, rootfs: Path) -> Path:
    """The example with one more RUN step, which fails on aarch64 only."""
    step = '\nRUN if [ "$(uname -m)" = aarch64 ]; then echo "refusing to build on aarch64" >&2; exit 3; fi\n'
    return make_repo(tmp_path_factory.mktemp("failing-repo"), rootfs, extra_dockerfile=step)


async def _splitbuild(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The real command line, run in ``repo`` (as a user would, from the repository root)."""
    argv = [sys.executable, "-m", "splitbuild", "build", "--config", "examples/hello/splitbuild.toml", *args]
    # The machine's git settings (init.defaultBranch...) must not change the tags.
    env = {**os.environ, "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"}
    done = await anyio.run_process(argv, cwd=repo, check=False, env=env)
    return subprocess.CompletedProcess(
        argv, done.returncode, done.stdout.decode(errors="replace"), done.stderr.decode(errors="replace")
    )


async def _read_file(repo: Repository, manifest: Manifest, path: str) -> bytes:
    """A file of the image's file system, read from its layer tarballs through the library."""
    found: bytes | None = None
    for layer in manifest.image().layers:
        with tarfile.open(fileobj=io.BytesIO(await repo.read_blob(layer))) as tar:
            for member in tar.getmembers():
                if member.name.lstrip("./") == path and member.isfile():
                    extracted = tar.extractfile(member)
                    assert extracted is not None
                    found = extracted.read()
    assert found is not None, f"{path} not in any layer"
    return found


async def _check_image(repo: Repository, tag: str, index_digest: str) -> dict[str, tuple[str, str]]:
    """Checks the index under ``tag``; returns platform -> (the architecture its config names,
    what the RUN step recorded with ``uname -m``)."""
    index = await repo.get_manifest(tag)
    assert index.is_index
    assert index.digest == index_digest
    assert platform_set(index) == {"linux/amd64", "linux/arm64"}
    arches: dict[str, tuple[str, str]] = {}
    for child in index.children():
        assert child.platform is not None
        manifest = await repo.get_manifest(child.digest)
        config = ConfigFile.model_validate_json(await repo.read_blob(manifest.image().config))
        assert config.os == "linux"
        assert config.architecture is not None
        build_arch = await _read_file(repo, manifest, "etc/hello/build-arch")
        arches[child.platform.key] = (config.architecture, build_arch.decode().strip())
    return arches


@pytest.mark.anyio
async def test_build_hello_into_layout_and_registry(
    hello_repo: Path, registry: RegistryServer, tmp_path: Path
) -> None:
    layout = tmp_path / "oci"
    remote = f"{registry.host}/build/hello"
    done = await _splitbuild(
        hello_repo, "--platform", PLATFORMS, "--output", f"oci:{layout}", "--output", remote, "--json"
    )
    assert done.returncode == 0, done.stderr
    report: dict[str, Any] = json.loads(done.stdout)
    sha = git(hello_repo, "rev-parse", "HEAD")
    # The config's tag rules on the repository's state: branch main, the default branch.
    expected_tags = ["main", "latest", f"sha-{sha[:7]}"]
    assert report["tags"] == [f"oci:{layout}:{t}" for t in expected_tags] + [
        f"{remote}:{t}" for t in expected_tags
    ]
    legs = {leg["platform"]: leg for leg in report["platforms"]}
    assert legs["linux/amd64"]["mode"] == "native"
    assert legs["linux/arm64"]["mode"] == "emulated"
    assert all(leg["status"] == "ok" and leg["buildSeconds"] > 0 for leg in legs.values())
    assert report["emulationRatio"] == pytest.approx(
        legs["linux/arm64"]["buildSeconds"] / legs["linux/amd64"]["buildSeconds"], rel=0.01
    )
    assert "linux/arm64" in done.stderr
    assert "emulated" in done.stderr

    async with Client() as client:
        for repo in (LayoutRepository(layout), client.repository(parse_reference(remote))):
            arches = await _check_image(repo, "main", report["index"])
            assert arches == {"linux/amd64": ("amd64", "x86_64"), "linux/arm64": ("arm64", "aarch64")}
            assert sorted(await repo.list_tags()) == sorted(expected_tags)
            for leg in legs.values():
                assert await repo.head_manifest(leg["digest"]) is not None

    # The index is byte for byte what skopeo reads from the registry.
    inspected = await anyio.run_process(
        ["skopeo", "inspect", "--raw", "--tls-verify=false", f"docker://{remote}:main"]
    )
    raw = inspected.stdout
    assert "sha256:" + hashlib.sha256(raw).hexdigest() == report["index"]
    assert json.loads(raw)["manifests"][1]["platform"] == {"architecture": "arm64", "os": "linux"}


@pytest.mark.anyio
async def test_failing_run_step_on_one_platform_writes_no_index(
    failing_repo: Path, registry: RegistryServer, tmp_path: Path
) -> None:
    layout = tmp_path / "oci"
    remote = f"{registry.host}/build/failing"
    done = await _splitbuild(
        failing_repo,
        "--platform",
        PLATFORMS,
        "--output",
        f"oci:{layout}",
        "--output",
        remote,
        "--tag",
        "broken",
        "--json",
    )
    assert done.returncode == 9, done.stderr
    error = done.stderr.strip().splitlines()
    message = next(line for line in error if line.startswith("splitbuild: error: "))
    assert "linux/arm64: build failed (exit status" in message
    assert "succeeded: linux/amd64 (sha256:" in message
    assert message.endswith("no index written")
    assert any("refusing to build on aarch64" in line for line in error)
    report = json.loads(done.stdout)
    assert report["index"] is None
    assert report["tags"] == []
    legs = {leg["platform"]: leg for leg in report["platforms"]}
    assert legs["linux/arm64"]["status"] == "failed"
    assert legs["linux/arm64"]["digest"] is None
    assert legs["linux/amd64"]["status"] == "ok"
    amd64 = legs["linux/amd64"]["digest"]
    assert amd64 in message

    async with Client() as client:
        registry_repo = client.repository(parse_reference(remote))
        for repo in (LayoutRepository(layout), registry_repo):
            # The platform that succeeded was pushed by digest; no index and no tag exist.
            assert await repo.head_manifest(amd64) is not None
            assert await repo.head_manifest("broken") is None
        assert await LayoutRepository(layout).list_tags() == []
        try:
            registry_tags = await registry_repo.list_tags()
        except NotFound:  # distribution: a repository without tags is unknown to the tag list
            registry_tags = []
        assert registry_tags == []
