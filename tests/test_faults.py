"""merge through a fault-injecting proxy: every run succeeds or fails cleanly, tags stay consistent."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import anyio
import pytest

from splitbuild.client import Client
from splitbuild.errors import SplitbuildError
from splitbuild.merge import MergeOptions, merge, parse_sources, parse_targets
from splitbuild.reference import Reference
from splitbuild.retry import FAST_RETRY, RetryPolicy
from tests.faults import FaultProxy, Schedule
from tests.images import make_buildx_index, make_image, push
from tests.registry_server import RegistryServer

PLATFORMS = ["linux/amd64", "linux/arm64", "linux/arm/v7"]
FAULT_RETRY = RetryPolicy(attempts=8, initial=0.01, max_delay=0.05, total=20.0)
HARSH_RETRY = RetryPolicy(attempts=2, initial=0.01, max_delay=0.02, total=5.0)


@pytest.fixture(scope="module")
def fault_proxy(registry: RegistryServer) -> Iterator[FaultProxy]:
    proxy = FaultProxy(registry.port, Schedule(seed=0, rate=0.0), stall=0.5).start()
    yield proxy
    proxy.stop()


def options(targets: list[str], sources: list[str]) -> MergeOptions:
    refs = parse_targets(targets)
    return MergeOptions(targets=refs, sources=parse_sources(sources, refs[0]), platforms=PLATFORMS)


async def _seed(direct: str, repo: str, seed: str, attested: bool) -> list[str]:
    async with Client(retry=FAST_RETRY, env={}) as client:
        target = client.repository(Reference.parse(f"{direct}/{repo}"))
        digests = []
        for p in PLATFORMS:
            image = make_image(p, seed=seed, layers=2)
            if attested:
                image = make_buildx_index(image, p, seed=seed)
            await push(target, image)
            digests.append(image.digest)
        return digests


async def _tag_digest(direct: str, repo: str, tag: str) -> str | None:
    async with Client(retry=FAST_RETRY, env={}) as client:
        desc = await client.repository(Reference.parse(f"{direct}/{repo}")).head_manifest(tag)
        return desc.digest if desc else None


async def _complete(direct: str, repo: str, digest: str) -> bool:
    async with Client(retry=FAST_RETRY, env={}) as client:
        target = client.repository(Reference.parse(f"{direct}/{repo}"))
        index = await target.get_manifest(digest)
        for child in index.children():
            manifest = await target.get_manifest(child.digest)
            for blob in manifest.blobs():
                if not await target.has_blob(blob.digest):
                    return False
        return True


@pytest.mark.parametrize(
    ("seed", "rate"),
    # 50 seeded runs at a 20% fault rate on every request (the retry policy rides them out), and
    # 8 with half the writes failing and few attempts, so runs stop part-way through publishing:
    # the invariants must hold either way.
    [(seed, 0.2) for seed in range(50)] + [(seed, 0.5) for seed in range(100, 108)],
)
def test_merge_under_faults(
    registry: RegistryServer, fault_proxy: FaultProxy, seed: int, rate: float
) -> None:
    direct, via = registry.host, fault_proxy.host
    source_repo = f"faults/src-{uuid.uuid4().hex[:8]}"
    # odd seeds publish into another repository (blob mounts and child pushes), even ones in place
    target_repo = source_repo if seed % 2 == 0 else f"faults/dst-{uuid.uuid4().hex[:8]}"
    old = anyio.run(_seed, direct, target_repo, f"old-{seed}", False)
    new = anyio.run(_seed, direct, source_repo, f"new-{seed}", seed % 3 == 0)

    async def publish(host: str, repo: str, digests: list[str], faults: bool) -> str:
        retry = FAULT_RETRY if rate < 0.5 else HARSH_RETRY
        fault_proxy.enabled = faults
        sources = [f"{host}/{repo}@{d}" for d in digests]
        async with Client(retry=retry, timeout=0.25, env={}) as client:
            result = await merge(
                client, options([f"{host}/{target_repo}:v1", f"{host}/{target_repo}:v2"], sources)
            )
        return result.plan.index.digest

    old_index = anyio.run(publish, direct, target_repo, old, False)
    writes_only = ("PUT", "POST", "PATCH") if rate >= 0.5 else None
    fault_proxy.schedule = Schedule(seed=seed, rate=rate, methods=writes_only)
    failure: SplitbuildError | None = None
    try:
        anyio.run(publish, via, source_repo, new, True)
    except SplitbuildError as exc:
        failure = exc
    if failure is not None:  # a clean failure: one line, naming the registry at fault
        assert "\n" not in failure.message
        assert via in failure.message
    # every tag is at its previous value or at the complete new index (one index for all tags)
    seen = set()
    for tag in ("v1", "v2"):
        current = anyio.run(_tag_digest, direct, target_repo, tag)
        assert current is not None
        if current != old_index:
            assert anyio.run(_complete, direct, target_repo, current)
            seen.add(current)
    assert len(seen) <= 1
    # a re-run without faults completes, and both tags then name the same complete index
    new_index = anyio.run(publish, via, source_repo, new, False)
    assert seen <= {new_index}
    assert anyio.run(_tag_digest, direct, target_repo, "v1") == new_index
    assert anyio.run(_tag_digest, direct, target_repo, "v2") == new_index
    assert anyio.run(_complete, direct, target_repo, new_index)
