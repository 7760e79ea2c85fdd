"""The scripts in examples/maintenance/ run against a real registry and do what they say."""

from __future__ import annotations

import subprocess
import sys

import anyio
import pytest

from splitbuild.client import Client
from splitbuild.reference import parse_reference
from splitbuild.retry import FAST_RETRY
from tests.images import Image, make_image, push
from tests.ops_support import examples_dir, multiarch, unique
from tests.proxy import LatencyProxy
from tests.registry_server import RegistryServer


def run(script: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(examples_dir() / script), *args], capture_output=True, text=True, timeout=120
    )


def seed(name: str, tagged: dict[str, Image]) -> None:
    async def go() -> None:
        async with Client(retry=FAST_RETRY, env={}) as client:
            repo = client.repository(parse_reference(name))
            for tag, image in tagged.items():
                await push(repo, image, tag)

    anyio.run(go)


def tags(name: str) -> list[str]:
    async def go() -> list[str]:
        async with Client(retry=FAST_RETRY, env={}) as client:
            return sorted(await client.repository(parse_reference(name)).list_tags())

    return anyio.run(go)


@pytest.fixture(scope="module")
def release_repo(registry: RegistryServer) -> tuple[str, dict[str, Image]]:
    name = f"{registry.host}/{unique('examples')}"
    images = {
        "v1.0.0": multiarch(seed="v100", created="2026-01-01T00:00:00Z"),
        "v1.1.0": multiarch(seed="v110", created="2026-01-10T00:00:00Z"),
        "v1.2.0": make_image("linux/amd64", seed="v120"),  # a release that lost its arm64 build
        **{
            f"sha-{i:07x}": multiarch(seed=f"ci{i}", created=f"2026-01-{i + 1:02d}T00:00:00Z")
            for i in range(6)
        },
    }
    seed(name, images)
    return name, images


def test_verify_platforms_flags_the_single_arch_release(release_repo: tuple[str, dict[str, Image]]) -> None:
    name, _ = release_repo
    result = run("verify_platforms.py", name, "--platform", "linux/amd64,linux/arm64")
    assert result.returncode == 1, result.stderr
    assert f"FAIL {name}:v1.2.0: a single image, not an index" in result.stdout
    assert f"ok   {name}:v1.0.0: ok" in result.stdout
    assert "1 of 3 release tags fail" in result.stdout
    good = run("verify_platforms.py", name, "--platform", "linux/amd64", "--include", r"v1\.[01]\.0")
    assert good.returncode == 0, good.stdout + good.stderr


def test_mirror_copies_every_matching_tag_then_nothing(
    release_repo: tuple[str, dict[str, Image]], registry2: RegistryServer
) -> None:
    name, images = release_repo
    mirror = f"{registry2.host}/{unique('mirror')}"
    first = run("mirror.py", name, mirror, "--include", r"v1\.[01]\.0")
    assert first.returncode == 0, first.stderr
    assert f"copied v1.0.0 {images['v1.0.0'].digest}" in first.stdout
    assert tags(mirror) == ["v1.0.0", "v1.1.0"]
    second = run("mirror.py", name, mirror, "--include", r"v1\.[01]\.0")
    assert f"unchanged v1.1.0 {images['v1.1.0'].digest}" in second.stdout
    raw = subprocess.run(
        ["skopeo", "inspect", "--raw", "--tls-verify=false", f"docker://{mirror}:v1.0.0"],
        capture_output=True,
        check=True,
    ).stdout
    assert raw == images["v1.0.0"].manifest.raw
    filtered = run("mirror.py", name, f"{mirror}-amd64", "--include", "v1.1.0", "--platform", "linux/amd64")
    assert "(new index: platforms filtered)" in filtered.stdout


def test_mirror_lists_the_source_once_and_takes_cosign_tags_along(
    registry: RegistryServer, registry2: RegistryServer
) -> None:
    proxy = LatencyProxy(registry.port, delay=0.0).start()
    try:
        name = unique("mirror-src")
        images = {f"r{i}": multiarch(seed=f"mirror-once-{i}") for i in range(4)}
        signature = make_image(seed="mirror-once-sig")
        sig_tag = f"sha256-{images['r1'].digest.split(':')[1]}.sig"
        seed(f"{registry.host}/{name}", {**images, sig_tag: signature})
        mirror = f"{registry2.host}/{unique('mirror-dst')}"
        done = run("mirror.py", f"{proxy.host}/{name}", mirror, "--include", "r.*")
        assert done.returncode == 0, done.stderr
        assert "4 tags" in done.stdout
        listings = [line for line in proxy.request_lines if line.startswith(f"GET /v2/{name}/tags/list")]
        assert len(listings) == 1, proxy.request_lines
        assert tags(mirror) == sorted([*images, sig_tag])  # r1's cosign signature came along
    finally:
        proxy.stop()


def test_prune_old_tags_plans_then_deletes(release_repo: tuple[str, dict[str, Image]]) -> None:
    name, _ = release_repo
    plan = run("prune_old_tags.py", name, "--keep-last", "2", "--older-than", "1d")
    assert plan.returncode == 0, plan.stderr
    assert "would delete sha-0000000: created 2026-01-01 00:00" in plan.stdout
    assert "kept v1.0.0: not selected by --include/--exclude" in plan.stdout
    assert len(tags(name)) == 9
    done = run("prune_old_tags.py", name, "--keep-last", "2", "--older-than", "1d", "--yes")
    assert done.returncode == 0, done.stderr
    assert tags(name) == ["sha-0000004", "sha-0000005", "v1.0.0", "v1.1.0", "v1.2.0"]
