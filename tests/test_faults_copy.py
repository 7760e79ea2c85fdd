"""copy through fault-injecting proxies: every run succeeds or fails cleanly, the destination tag is
absent, at its previous value, or at the complete copy; what was copied verifies by digest.

Each registry has its own proxy (``tests/faults.py``), both driven by the run's seed. Even seeds
copy across repositories of one registry (blobs are mounted), odd seeds across registries (blobs
are streamed through). The source is a buildx-style index: two images and their attestations.
Afterwards everything is read back from the registries directly (not through the proxies).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import anyio
import pytest

from splitbuild.client import Client
from splitbuild.errors import RegistryError, SplitbuildError
from splitbuild.models import Descriptor
from splitbuild.ops import copy
from splitbuild.reference import Reference
from splitbuild.retry import FAST_RETRY, RetryPolicy
from tests.faults import FaultProxy, Schedule
from tests.images import Image, make_image, push
from tests.ops_support import multiarch
from tests.registry_server import RegistryServer

PLATFORMS = ["linux/amd64", "linux/arm64"]
FAULT_RETRY = RetryPolicy(attempts=8, initial=0.01, max_delay=0.05, total=20.0)
HARSH_RETRY = RetryPolicy(attempts=2, initial=0.01, max_delay=0.02, total=5.0)
WRITES = ("PUT", "POST", "PATCH")


@pytest.fixture(scope="module")
def proxies(registry: RegistryServer, registry2: RegistryServer) -> Iterator[tuple[FaultProxy, FaultProxy]]:
    """One fault proxy in front of each registry (faults off until a test schedules them)."""
    first = FaultProxy(registry.port, Schedule(seed=0, rate=0.0), stall=0.5).start()
    second = FaultProxy(registry2.port, Schedule(seed=0, rate=0.0), stall=0.5).start()
    yield first, second
    first.stop()
    second.stop()


async def _push(host: str, repo: str, image: Image, tag: str | None) -> None:
    async with Client(retry=FAST_RETRY, env={}) as client:
        await push(client.repository(Reference.parse(f"{host}/{repo}")), image, tag)


async def _tag_digest(host: str, repo: str, tag: str) -> str | None:
    async with Client(retry=FAST_RETRY, env={}) as client:
        desc = await client.repository(Reference.parse(f"{host}/{repo}")).head_manifest(tag)
        return desc.digest if desc else None


async def _assert_copied(host: str, repo: str, image: Image) -> None:
    """Every manifest of ``image``'s tree is in ``host/repo`` with its exact bytes (read by digest,
    which verifies them), and every blob reads back whole, verified against its digest and size."""
    async with Client(retry=FAST_RETRY, env={}) as client:
        target = client.repository(Reference.parse(f"{host}/{repo}"))

        async def check(node: Image) -> None:
            manifest = await target.get_manifest(node.digest)
            assert manifest.raw == node.manifest.raw
            for blob in manifest.blobs():
                data = await target.read_blob(blob)
                assert data == node.blobs[blob.digest]
            for child in node.children:
                await check(child)

        await check(image)


def _copy(source: str, destination: str, retry: RetryPolicy) -> None:
    async def run() -> None:
        async with Client(retry=retry, timeout=0.25, env={}) as client:
            result = await copy(client, source, destination)
            assert result.digest == result.source_digest

    anyio.run(run)


def _prepare(seed: int, src: RegistryServer, dst: RegistryServer) -> tuple[str, str, Image, str | None]:
    """Source repo holding the index as ``v1``; destination repo; the index; the digest the
    destination's ``v1`` had before (None: no such tag)."""
    src_repo = f"faults-copy/src-{uuid.uuid4().hex[:8]}"
    dst_repo = f"faults-copy/dst-{uuid.uuid4().hex[:8]}"
    index = multiarch(PLATFORMS, seed=f"copy-{seed}")
    anyio.run(_push, src.host, src_repo, index, "v1")
    previous = None
    if seed % 4 >= 2:  # half the runs overwrite an older image under the tag
        old = make_image("linux/amd64", seed=f"old-{seed}")
        anyio.run(_push, dst.host, dst_repo, old, "v1")
        previous = old.digest
    return src_repo, dst_repo, index, previous


@pytest.mark.parametrize(
    ("seed", "rate"),
    # 50 seeded runs at a 20% fault rate on every request; 8 with half the writes failing and
    # only two attempts each, so that runs stop part-way: the invariants hold either way.
    [(seed, 0.2) for seed in range(50)] + [(seed, 0.5) for seed in range(100, 108)],
)
def test_copy_under_faults(
    registry: RegistryServer,
    registry2: RegistryServer,
    proxies: tuple[FaultProxy, FaultProxy],
    seed: int,
    rate: float,
) -> None:
    cross_registry = seed % 2 == 1
    dst = registry2 if cross_registry else registry
    src_proxy, dst_proxy = proxies[0], proxies[1] if cross_registry else proxies[0]
    src_repo, dst_repo, index, previous = _prepare(seed, registry, dst)
    source, destination = f"{src_proxy.host}/{src_repo}:v1", f"{dst_proxy.host}/{dst_repo}:v1"

    methods = WRITES if rate >= 0.5 else None
    for i, proxy in enumerate(proxies):
        proxy.schedule = Schedule(seed=seed * 2 + i, rate=rate, methods=methods)
        proxy.enabled = True
    failure: SplitbuildError | None = None
    try:
        _copy(source, destination, FAULT_RETRY if rate < 0.5 else HARSH_RETRY)
    except SplitbuildError as exc:
        failure = exc
    finally:
        for proxy in proxies:
            proxy.enabled = False
    if failure is not None:  # a clean failure: one line, naming the registry at fault
        assert "\n" not in failure.message
        assert src_proxy.host in failure.message or dst_proxy.host in failure.message

    current = anyio.run(_tag_digest, dst.host, dst_repo, "v1")
    assert current in {previous, index.digest}
    if current == index.digest:
        anyio.run(_assert_copied, dst.host, dst_repo, index)

    # a re-run without faults completes, and the tag then names the complete copy
    _copy(source, destination, FAST_RETRY)
    assert anyio.run(_tag_digest, dst.host, dst_repo, "v1") == index.digest
    anyio.run(_assert_copied, dst.host, dst_repo, index)


def test_a_copy_that_cannot_write_manifests_leaves_the_tag(
    registry: RegistryServer, registry2: RegistryServer, proxies: tuple[FaultProxy, FaultProxy]
) -> None:
    """Every manifest PUT fails (blobs go through): the copy fails cleanly, the tag stays."""
    src_repo, dst_repo, index, previous = _prepare(2, registry, registry2)
    assert previous is not None
    dst_proxy = proxies[1]

    class ManifestPuts(Schedule):
        def pick(self, method: str, target: str) -> str:
            return "503" if method == "PUT" and "/manifests/" in target else "ok"

    dst_proxy.schedule = ManifestPuts()
    dst_proxy.enabled = True
    try:
        with pytest.raises(RegistryError) as info:
            _copy(f"{registry.host}/{src_repo}:v1", f"{dst_proxy.host}/{dst_repo}:v1", HARSH_RETRY)
    finally:
        dst_proxy.enabled = False
    assert info.value.status == 503
    assert info.value.message.startswith(f"{dst_proxy.host}/{dst_repo}@sha256:")
    assert "gave up after 2 attempts" in info.value.message
    assert anyio.run(_tag_digest, registry2.host, dst_repo, "v1") == previous
    # the blobs that did arrive are whole
    for child in index.children:
        for digest, data in child.blobs.items():
            desc = Descriptor.model_validate(
                {"mediaType": "application/octet-stream", "digest": digest, "size": len(data)}
            )
            anyio.run(_read_if_present, registry2.host, dst_repo, desc, data)
    _copy(f"{registry.host}/{src_repo}:v1", f"{dst_proxy.host}/{dst_repo}:v1", FAST_RETRY)
    anyio.run(_assert_copied, registry2.host, dst_repo, index)


async def _read_if_present(host: str, repo: str, desc: Descriptor, expected: bytes) -> None:
    async with Client(retry=FAST_RETRY, env={}) as client:
        target = client.repository(Reference.parse(f"{host}/{repo}"))
        if await target.has_blob(desc.digest):
            assert await target.read_blob(desc) == expected
