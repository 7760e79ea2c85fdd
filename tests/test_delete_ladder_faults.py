"""The tag-delete ladder through failures: a lost answer is not a failure, a cancellation restores."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import anyio
import pytest

from splitbuild.client import Client
from splitbuild.reference import Reference
from splitbuild.retry import FAST_RETRY, NO_RETRY
from splitbuild.store.registry import RegistryRepository
from tests.faults import FaultProxy, GateProxy, Schedule
from tests.images import make_image, push
from tests.registry_server import RegistryServer


class FirstDelete(Schedule):
    """``fault`` for the first DELETE by digest, then everything passes."""

    def __init__(self, fault: str) -> None:
        super().__init__(seed=0, rate=0.0)
        self.fault = fault
        self.used = False

    def pick(self, method: str, target: str) -> str:
        if method == "DELETE" and "/manifests/sha256:" in target and not self.used:
            self.used = True
            return self.fault
        return "ok"


@pytest.fixture
def proxy(registry: RegistryServer) -> Iterator[FaultProxy]:
    server = FaultProxy(registry.port, Schedule(rate=0.0), stall=3.0).start()
    yield server
    server.stop()


def seed(host: str, repo: str) -> str:
    async def run() -> str:
        async with Client(retry=FAST_RETRY, env={}) as client:
            image = make_image(seed=repo)
            target = client.repository(Reference.parse(f"{host}/{repo}"))
            await push(target, image, "gone")
            await target.put_manifest(image.manifest, "keep")
            return image.digest

    return anyio.run(run)


async def tags_and_gone(host: str, repo: str) -> tuple[list[str], str | None]:
    async with Client(retry=FAST_RETRY, env={}) as client:
        target = client.repository(Reference.parse(f"{host}/{repo}"))
        desc = await target.head_manifest("gone")
        return sorted(await target.list_tags()), desc.digest if desc else None


def test_a_lost_answer_to_the_placeholder_delete_is_not_a_failure(
    registry: RegistryServer, proxy: FaultProxy
) -> None:
    repo = f"ladder/{uuid.uuid4().hex[:8]}"
    seed(registry.host, repo)
    proxy.schedule = FirstDelete("reset-after")

    async def run() -> str:
        async with Client(retry=FAST_RETRY, env={}) as client:
            target = client.repository(Reference.parse(f"{proxy.host}/{repo}"))
            assert isinstance(target, RegistryRepository)
            return await target.delete_tag("gone")

    assert anyio.run(run) == "placeholder"
    assert anyio.run(tags_and_gone, registry.host, repo) == (["keep"], None)


def test_a_cancelled_ladder_puts_the_tag_back(registry: RegistryServer, proxy: FaultProxy) -> None:
    repo = f"ladder/{uuid.uuid4().hex[:8]}"
    digest = seed(registry.host, repo)
    proxy.schedule = FirstDelete("stall")

    async def run() -> None:
        async with Client(retry=NO_RETRY, env={}, timeout=10.0) as client:
            target = client.repository(Reference.parse(f"{proxy.host}/{repo}"))
            assert isinstance(target, RegistryRepository)
            with anyio.move_on_after(1.0):  # a cancelled CI job, in the middle of the DELETE
                await target.delete_tag("gone")

    anyio.run(run)
    assert anyio.run(tags_and_gone, registry.host, repo) == (["gone", "keep"], digest)


def test_a_ladder_cancelled_while_the_placeholder_put_is_answered_puts_the_tag_back(
    registry: RegistryServer,
) -> None:
    """The registry applied the placeholder PUT and its answer is held: a cancellation then finds
    the tag on the placeholder, and puts it back."""
    repo = f"ladder/{uuid.uuid4().hex[:8]}"
    digest = seed(registry.host, repo)
    first: list[str] = []

    def placeholder_put(method: str, target: str) -> bool:
        if first or method != "PUT" or not target.endswith("/manifests/gone"):
            return False
        first.append(target)
        return True

    gate = GateProxy(registry.port, "ladder", hold=placeholder_put, answered=True).start()

    async def run() -> None:
        async with Client(retry=NO_RETRY, env={}, timeout=10.0) as client:
            target = client.repository(Reference.parse(f"{gate.host}/{repo}"))
            assert isinstance(target, RegistryRepository)
            with anyio.move_on_after(1.0):  # a cancelled CI job, the PUT's answer not yet in
                await target.delete_tag("gone")

    try:
        anyio.run(run)
    finally:
        gate.stop()
    assert first, "the placeholder PUT was never held"
    assert anyio.run(tags_and_gone, registry.host, repo) == (["gone", "keep"], digest)
