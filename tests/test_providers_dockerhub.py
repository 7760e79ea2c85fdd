"""Docker Hub provider: tags deleted through the Hub API, manifests by digest through the registry
API (a fake following Docker's published references, tests/hub_api_server.py), images in a real
registry behind it."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import time
from collections.abc import Iterator

import pytest

from splitbuild import ops
from splitbuild.client import Client
from splitbuild.errors import AuthError, Refused, UsageError
from splitbuild.models import Manifest
from splitbuild.ops import DeletionIncomplete, RetentionPolicy, parse_duration, prune
from splitbuild.providers.dockerhub import DockerHubProvider
from splitbuild.reference import Reference, parse_reference
from splitbuild.retry import FAST_RETRY, RetryPolicy
from tests.hub_api_server import FakeHub
from tests.images import Image, make_image, push
from tests.ops_support import NOW, POLICY, multiarch, resolves_completely, revisions, seed_repository, unique
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
    # v1's index and everything under it went too: its tag through the Hub API, then by digest
    gone = {images["v1"].digest, *(c.digest for c in images["v1"].children)}
    assert set(result.outcome.deleted) == gone
    assert not revisions(registry, name) & gone
    left = await client.repository(parse_reference(front)).list_tags()
    assert sorted(left) == ["stable", "v2", "v3"]
    for tag in left:
        await resolves_completely(client.repository(parse_reference(front)), tag)
    deletes = sorted(path for method, path, status in hub.log if method == "DELETE" and status == 204)
    assert deletes == [f"/v2/repositories/{name}/tags/v0/", f"/v2/repositories/{name}/tags/v1/"]
    by_digest = [path for method, path, status in hub.log if method == "DELETE" and status == 202]
    assert by_digest[0] == f"/v2/{name}/manifests/{images['v1'].digest}"  # the index before its children
    assert sorted(by_digest) == sorted(f"/v2/{name}/manifests/{d}" for d in gone)
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


async def test_a_429_waits_for_retry_after(hub: FakeHub, registry: RegistryServer, client: Client) -> None:
    """The current reference: ``Retry-After`` in seconds; older ones: ``X-Retry-After``, a Unix time."""
    name = unique("hub")
    await push(client.repository(parse_reference(f"{registry.host}/{name}")), make_image(seed="hub429"), "a")
    patient = RetryPolicy(attempts=3, initial=0.01, max_delay=3.0, total=10.0)
    for name_of_header in ("Retry-After", "X-Retry-After"):
        at = "1" if name_of_header == "Retry-After" else str(int(time.time()) + 2)
        header = {name_of_header: at}
        hub.fail_next = [(429, header)]
        async with provider(hub, name, retry=patient) as hub_provider:
            started = time.monotonic()
            versions = await hub_provider.versions()
        assert [v.id for v in versions] == ["a"]
        assert time.monotonic() - started >= 0.5, header
    # a limit past the retry budget: a clear error at once, nothing deleted
    hub.fail_next = [(429, {"Retry-After": "3600"})]
    stored = revisions(registry, name)
    async with provider(hub, name, retry=patient) as hub_provider:
        started = time.monotonic()
        with pytest.raises(DeletionIncomplete, match="rate limited for 3600 s") as caught:
            await ops.delete(client, f"{hub.host}/{name}:a", provider=hub_provider)
    assert time.monotonic() - started < 5
    assert "nothing was deleted" in caught.value.message
    assert revisions(registry, name) == stored


# -- manifests by digest: Docker's registry API reference for Hub ----------------------------------


async def test_prune_on_hub_deletes_exactly_what_nothing_kept_reaches(
    hub: FakeHub, registry: RegistryServer, client: Client
) -> None:
    """The GHCR acceptance scenario on Hub: indexes, attestations, referrers tags, a shared image."""
    name = unique("hub")
    backend = client.repository(parse_reference(f"{registry.host}/{name}"))
    images = await seed_repository(backend)
    sha1_referrers = await backend.get_manifest("sha256-" + images["sha-1"].digest.split(":")[1])
    stored = revisions(registry, name)
    front = f"{hub.host}/{name}"
    policy = dataclasses.replace(POLICY, age_from="created")  # the seed dates are creation times
    # The registry API alone cannot: a tag DELETE is 405, a tagged manifest 403; nothing is lost
    with pytest.raises(DeletionIncomplete):
        await prune(client, front, policy, dry_run=False, now=NOW, provider="registry")
    assert revisions(registry, name) == stored
    # the registry API's tag DELETE is outside Hub's reference (digests only): expected here, once
    assert [v for v in hub.registry_api.violations if "'sha-3' does not match" in v] == [
        "delete-manifest path parameter reference: 'sha-3' does not match '^sha256:[0-9a-f]{64}$'"
    ]
    hub.registry_api.violations.clear()
    async with provider(hub, name) as hub_provider:
        done = await prune(client, front, policy, dry_run=False, now=NOW, provider=hub_provider)
    assert done.provider == "dockerhub"
    assert done.outcome is not None
    deleted = set(done.outcome.deleted)
    expected = {images[t].digest for t in ("sha-1", "sha-2", "sha-4")}
    expected |= {c.digest for t in ("sha-1", "sha-4") for c in images[t].children}
    expected |= {c.digest for c in images["sha-2"].children} - {images["sha-2"].children[1].digest}
    expected |= {sha1_referrers.digest, *(c.digest for c in sha1_referrers.children())}
    assert deleted == expected
    assert stored - revisions(registry, name) == deleted
    assert done.outcome.untagged == {"sha-3": "tag"}  # v1.0 still points at it
    repo = client.repository(parse_reference(front))
    left = sorted(await repo.list_tags())
    assert left == sorted(["sha-5", "sha-6", "sha-nodate", "v1.0", "sha256-" + images["sha-3"].digest[7:]])
    for tag in left:
        await resolves_completely(repo, tag)
        await repo.get_manifest((await repo.get_manifest(tag)).digest)  # by digest too


async def test_delete_on_hub_takes_referrers_before_their_subject(
    hub: FakeHub, registry: RegistryServer, client: Client
) -> None:
    """Hub refuses (403) to delete a manifest a referrer's ``subject`` still names: signatures first."""
    name = unique("hub")
    backend = client.repository(parse_reference(f"{registry.host}/{name}"))
    gone, kept = multiarch(seed="hubsub-gone"), multiarch(seed="hubsub-kept")
    await push(backend, gone, "gone")
    await push(backend, kept, "kept")
    signature = make_image(seed="hubsub-sig")
    doc = json.loads(signature.manifest.raw)
    doc["subject"] = gone.manifest.descriptor().to_dict()
    signed = Manifest.from_bytes(json.dumps(doc).encode())
    await push(backend, Image(signed, signature.blobs))  # the store keeps the sha256-<hex> tag index
    referrers_tag = "sha256-" + gone.digest.split(":")[1]
    assert referrers_tag in await backend.list_tags()
    async with provider(hub, name) as hub_provider:
        result = await ops.delete(client, f"{hub.host}/{name}:gone", provider=hub_provider)
    assert result.outcome is not None
    order = [path.rsplit("/", 1)[1] for m, path, status in hub.log if m == "DELETE" and status == 202]
    assert order.index(signed.digest) < order.index(gone.digest)
    assert set(order) == {gone.digest, *(c.digest for c in gone.children), signed.digest} | {
        d for d in result.outcome.deleted if d not in (gone.digest, signed.digest)
    }
    assert not revisions(registry, name) & set(result.outcome.deleted)
    assert sorted(await client.repository(parse_reference(f"{hub.host}/{name}")).list_tags()) == ["kept"]
    await resolves_completely(client.repository(parse_reference(f"{hub.host}/{name}")), "kept")


async def test_an_untagged_index_still_listing_a_child_is_a_clear_refusal(
    hub: FakeHub, registry: RegistryServer, client: Client
) -> None:
    """Hub lists no untagged images, so splitbuild cannot see a ghost index; Hub's 403 says so."""
    name = unique("hub")
    backend = client.repository(parse_reference(f"{registry.host}/{name}"))
    old = multiarch(seed="hubghost")
    ghost = multiarch(images=[old.children[0], make_image("linux/arm64", seed="hubghost-b")], seed="g")
    await push(backend, old, "old")
    await push(backend, ghost)  # pushed by digest, never tagged
    async with provider(hub, name) as hub_provider:
        with pytest.raises(DeletionIncomplete) as caught:
            await ops.delete(client, f"{hub.host}/{name}:old", provider=hub_provider)
    assert isinstance(caught.value.cause, Refused)
    assert caught.value.exit_code == 8
    refused = f"{old.children[0].digest}: Docker Hub refused to delete the manifest (403)"
    assert refused in caught.value.message
    assert "\n" not in caught.value.message
    assert caught.value.hint is not None
    assert "Read, Write & Delete" in caught.value.hint
    assert old.children[0].digest in revisions(registry, name)
    await resolves_completely(backend, ghost.digest)  # the ghost index is whole


async def test_a_500_on_a_manifest_delete_is_finished_by_hub(
    hub: FakeHub, registry: RegistryServer, client: Client
) -> None:
    name = unique("hub")
    backend = client.repository(parse_reference(f"{registry.host}/{name}"))
    image = make_image(seed="hub500")
    await push(backend, image, "gone")
    await push(backend, make_image(seed="hub500-kept"), "kept")
    hub.fail_registry_next = [500]
    async with provider(hub, name) as hub_provider:
        result = await ops.delete(client, f"{hub.host}/{name}:gone", provider=hub_provider)
    assert result.outcome is not None
    assert result.outcome.deleted == [image.digest]
    assert image.digest not in revisions(registry, name)
    assert (await backend.list_tags()) == ["kept"]


async def test_delete_an_untagged_manifest_by_digest(
    hub: FakeHub, registry: RegistryServer, client: Client
) -> None:
    name = unique("hub")
    backend = client.repository(parse_reference(f"{registry.host}/{name}"))
    loose = make_image(seed="hub-loose")
    await push(backend, loose)
    await push(backend, make_image(seed="hub-loose-kept"), "kept")
    async with provider(hub, name) as hub_provider:
        result = await ops.delete(client, f"{hub.host}/{name}@{loose.digest}", provider=hub_provider)
    assert result.outcome is not None
    assert result.outcome.deleted == [loose.digest]
    assert loose.digest not in revisions(registry, name)
    assert not [entry for entry in hub.log if "/tags/" in entry[1] and entry[0] == "DELETE"]


# -- untagged images: not listed by Hub's published APIs ---------------------------------------------


async def test_untagged_on_hub_is_a_clear_usage_error(hub: FakeHub, client: Client) -> None:
    name = unique("hub")
    async with provider(hub, name) as hub_provider:
        with pytest.raises(UsageError) as caught:
            await prune(client, f"{hub.host}/{name}", RetentionPolicy(untagged=True), provider=hub_provider)
    assert "Docker Hub's published APIs list tags, not untagged images" in caught.value.message
    assert caught.value.exit_code == 2
    assert caught.value.hint is not None
    assert "prune the tags instead" in caught.value.hint
    assert hub.log == []  # refused before any request


def test_cli_untagged_on_hub(hub: FakeHub) -> None:
    from typer.testing import CliRunner

    from splitbuild.cli.app import make_app

    env = {"SPLITBUILD_PROVIDERS": f"{hub.host}=dockerhub", "SPLITBUILD_HUB_API_URL": hub.url}
    result = CliRunner().invoke(make_app(), ["prune", f"{hub.host}/{unique('hub')}", "--untagged"], env=env)
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 2, result.output  # the error and its hint
    assert "cannot prune untagged manifests: Docker Hub's published APIs list tags" in lines[0]
    assert "prune the tags instead" in lines[1]
    assert "Traceback" not in result.output
