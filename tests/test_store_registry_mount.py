"""Cross-repository mounts are self-contained: one ``mount_blob`` call mounts or uploads, and leaves
nothing behind for the next call (issue 16), without a request more than before."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from splitbuild.client import Client
from splitbuild.digest import compute
from splitbuild.models import Descriptor
from splitbuild.reference import Reference
from splitbuild.retry import FAST_RETRY
from splitbuild.store.base import Mounter, Repository
from splitbuild.store.layout import LayoutRepository
from splitbuild.store.registry import RegistryRepository

pytestmark = pytest.mark.anyio

DATA = b"layer bytes"
BLOB = Descriptor.model_validate(
    {"mediaType": "application/octet-stream", "digest": compute(DATA), "size": len(DATA)}
)
HOST = "registry.example.com"


class Scripted:
    """A registry whose mounts answer ``mount_status`` (202 opens the session ``mounted``)."""

    def __init__(self, mount_status: int) -> None:
        self.mount_status = mount_status
        self.calls: list[str] = []
        self.sessions = 0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        query = request.url.params
        call = f"{request.method} {request.url.path}"
        self.calls.append(f"{call}?from={query['from']}" if "mount" in query else call)
        if request.method == "POST" and "mount" in query:
            if self.mount_status == 202:
                return httpx.Response(202, headers={"Location": "/v2/acme/dst/blobs/uploads/mounted"})
            return httpx.Response(self.mount_status)
        if request.method == "POST":
            self.sessions += 1
            return httpx.Response(202, headers={"Location": f"/v2/acme/dst/blobs/uploads/new{self.sessions}"})
        if request.method == "PUT" and query.get("digest") == BLOB.digest:
            return httpx.Response(201)
        return httpx.Response(404)


async def _mount(
    script: Scripted, lenders: list[str], *, then_put: bool = False
) -> tuple[Repository | None, list[Repository]]:
    async with Client(retry=FAST_RETRY, env={}, transport=httpx.MockTransport(script)) as client:
        target = client.repository(Reference.parse(f"{HOST}/acme/dst"))
        assert isinstance(target, Mounter)
        repos = [client.repository(Reference.parse(name)) for name in lenders]
        found = await target.mount_blob(BLOB, repos, DATA)
        if then_put:
            await target.put_blob(BLOB, DATA)
    return found, repos


async def test_a_mount_returns_the_lender_in_one_request() -> None:
    script = Scripted(201)
    found, repos = await _mount(script, [f"{HOST}/acme/src"])
    assert found is repos[0]
    assert script.calls == ["POST /v2/acme/dst/blobs/uploads/?from=acme/src"]


async def test_a_refused_mount_uploads_into_the_session_it_opened_and_leaves_nothing_behind() -> None:
    script = Scripted(202)
    found, _ = await _mount(script, [f"{HOST}/acme/src"], then_put=True)
    assert found is None
    assert script.calls == [
        "POST /v2/acme/dst/blobs/uploads/?from=acme/src",
        "PUT /v2/acme/dst/blobs/uploads/mounted",  # no POST: the mount's session is used
        "POST /v2/acme/dst/blobs/uploads/",  # a later put_blob opens its own session
        "PUT /v2/acme/dst/blobs/uploads/new1",
    ]


async def test_a_denied_mount_tries_the_next_lender_then_uploads() -> None:
    script = Scripted(403)
    found, _ = await _mount(script, [f"{HOST}/acme/a", f"{HOST}/acme/b"])
    assert found is None
    assert script.calls == [
        "POST /v2/acme/dst/blobs/uploads/?from=acme/a",
        "POST /v2/acme/dst/blobs/uploads/?from=acme/b",
        "POST /v2/acme/dst/blobs/uploads/",
        "PUT /v2/acme/dst/blobs/uploads/new1",
    ]


async def test_lenders_it_cannot_mount_from_cost_no_request(tmp_path: Path) -> None:
    script = Scripted(201)
    async with Client(retry=FAST_RETRY, env={}, transport=httpx.MockTransport(script)) as client:
        target = client.repository(Reference.parse(f"{HOST}/acme/dst"))
        assert isinstance(target, RegistryRepository)
        elsewhere = client.repository(Reference.parse("other.example.com/acme/src"))
        layout = LayoutRepository(tmp_path / "oci")
        assert await target.mount_blob(BLOB, [elsewhere, layout], DATA) is None
    assert script.calls == ["POST /v2/acme/dst/blobs/uploads/", "PUT /v2/acme/dst/blobs/uploads/new1"]
