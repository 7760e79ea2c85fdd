"""Docker Hub provider: tags deleted through the Hub API (a fake following Docker's published
reference, tests/hub_api_server.py), images in a real registry behind a 405 front."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator

import pytest

from splitbuild import ops
from splitbuild.client import Client
from splitbuild.errors import AuthError
from splitbuild.ops import RetentionPolicy, parse_duration, prune
from splitbuild.providers.dockerhub import DockerHubProvider
from splitbuild.reference import Reference, parse_reference
from splitbuild.retry import FAST_RETRY, RetryPolicy
from tests.hub_api_server import FakeHub
from tests.images import make_image, push
from tests.ops_support import NOW, multiarch, resolves_completely, unique
from tests.registry_server import RegistryServer

pytestmark = pytest.mark.anyio

USER = "hubuser"
PAT = "dckr_pat_not-for-output"


@pytest.fixture
def hub(registry: RegistryServer) -> Iterator[FakeHub]:
    fake = FakeHub(registry, users={USER: PAT}).start()
    yield fake
    fake.stop()
    assert fake.violations == [], "requests or responses outside the published description"


def provider(
    fake: FakeHub, name: str, secret: str = PAT, retry: RetryPolicy = FAST_RETRY
) -> DockerHubProvider:
    ref = parse_reference(f"{fake.host}/{name}")
    assert isinstance(ref, Reference)
    return DockerHubProvider(ref, USER, secret, retry=retry, api_url=fake.url, page_size=2)


async def test_prune_on_hub_deletes_tags_through_the_hub_api(
    hub: FakeHub, registry: RegistryServer, client: Client
) -> None:
    name = unique("hub")
    repo = client.repository(parse_reference(f"{registry.host}/{name}"))
    images = {f"v{i}": multiarch(seed=f"hub{i}", created="1970-01-01T00:00:00Z") for i in range(4)}
    for i, (tag, image) in enumerate(images.items()):
        await push(repo, image, tag)
        hub.pushed[tag] = NOW - dt.timedelta(days=40 - 10 * i)
    await repo.put_manifest(images["v0"].manifest, "stable")
    hub.pushed["stable"] = NOW
    front = f"{hub.host}/{name}"
    policy = RetentionPolicy(older_than=parse_duration("25d"))
    async with provider(hub, name) as hub_provider:
        result = await prune(client, front, policy, dry_run=False, now=NOW, provider=hub_provider)
    assert result.age_from == "pushed"  # Hub records tag_last_pushed; the images say 1970
    assert sorted(result.plan.remove) == ["v0", "v1"]
    assert result.plan.untag == ["v0"]  # "stable" still points at it
    assert result.outcome is not None
    assert result.outcome.untagged == {"v0": "tag"}
    left = await client.repository(parse_reference(front)).list_tags()
    assert sorted(left) == ["stable", "v2", "v3"]
    for tag in left:
        await resolves_completely(client.repository(parse_reference(front)), tag)
    deletes = sorted(path for method, path, status in hub.log if method == "DELETE" and status == 204)
    assert deletes == [f"/v2/repositories/{name}/tags/v0/", f"/v2/repositories/{name}/tags/v1/"]
    assert sum(1 for m, p, _ in hub.log if m == "GET") == 3  # 5 tags, 2 a page
    assert sum(1 for m, p, _ in hub.log if m == "POST") == 1  # one login


async def test_delete_a_tag_and_a_refused_login(
    hub: FakeHub, registry: RegistryServer, client: Client
) -> None:
    name = unique("hub")
    repo = client.repository(parse_reference(f"{registry.host}/{name}"))
    await push(repo, make_image(seed="hubdel"), "gone")
    await push(repo, make_image(seed="hubkeep"), "kept")
    async with provider(hub, name) as hub_provider:
        result = await ops.delete(client, f"{hub.host}/{name}:gone", tag_only=True, provider=hub_provider)
    assert result.tag_method == "tag"
    assert await repo.list_tags() == ["kept"]
    async with provider(hub, name, secret="wrong-secret-not-for-output") as bad:
        with pytest.raises(AuthError) as caught:
            await ops.delete(client, f"{hub.host}/{name}:kept", tag_only=True, provider=bad)
    assert "wrong-secret" not in caught.value.message
    assert caught.value.exit_code == 6
    assert await repo.list_tags() == ["kept"]


async def test_a_429_waits_for_x_retry_after(hub: FakeHub, registry: RegistryServer, client: Client) -> None:
    name = unique("hub")
    await push(client.repository(parse_reference(f"{registry.host}/{name}")), make_image(seed="hub429"), "a")
    hub.fail_next = [(429, {"X-Retry-After": str(int(time.time()) + 2)})]
    patient = RetryPolicy(attempts=3, initial=0.01, max_delay=3.0, total=10.0)
    async with provider(hub, name, retry=patient) as hub_provider:
        started = time.monotonic()
        versions = await hub_provider.versions()
    assert [v.id for v in versions] == ["a"]
    assert time.monotonic() - started >= 0.5
