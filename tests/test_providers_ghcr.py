"""GHCR provider: delete and prune through the GitHub Packages API (a fake that follows the published
description, tests/github_api_server.py), with the images in a real registry behind a 405 front."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections.abc import Iterator

import pytest

from splitbuild import ops
from splitbuild.client import Client
from splitbuild.errors import AuthError, NotFound, Refused, RegistryError, UsageError
from splitbuild.models import Manifest
from splitbuild.ops import DeletionIncomplete, RetentionPolicy, parse_duration, prune
from splitbuild.providers import open_provider, provider_name
from splitbuild.providers.ghcr import GhcrProvider
from splitbuild.reference import Reference, parse_reference
from splitbuild.retry import FAST_RETRY, RetryPolicy
from splitbuild.store.base import Repository
from tests.github_api_server import FakeGitHub
from tests.images import Image, make_image, push
from tests.ops_support import NOW, POLICY, multiarch, resolves_completely, revisions, seed_repository
from tests.registry_server import RegistryServer

pytestmark = pytest.mark.anyio

FULL = "ghp_full-token-not-for-output"
READ_ONLY = "ghp_read-only-token"


@pytest.fixture
def github(registry: RegistryServer) -> Iterator[FakeGitHub]:
    fake = FakeGitHub(
        registry,
        owners={"acme": "orgs", "solo": "users"},
        tokens={FULL: {"read:packages", "delete:packages"}, READ_ONLY: {"read:packages"}},
    ).start()
    yield fake
    fake.stop()
    assert fake.violations == [], "requests or responses outside the published description"


counter = iter(range(10**6))


def package(owner: str = "acme") -> str:
    return f"{owner}/app{next(counter)}-{dt.datetime.now().strftime('%H%M%S%f')}"


def ghcr(fake: FakeGitHub, name: str, token: str = FULL, retry: RetryPolicy = FAST_RETRY) -> GhcrProvider:
    ref = parse_reference(f"{fake.host}/{name}")
    assert isinstance(ref, Reference)
    return GhcrProvider(ref, token, retry=retry, api_url=fake.url, mutation_interval=0)


def backend_repo(client: Client, registry: RegistryServer, name: str) -> Repository:
    return client.repository(parse_reference(f"{registry.host}/{name}"))


# -- selection ------------------------------------------------------------------------------------


def test_provider_chosen_from_the_host() -> None:
    def name(text: str, env: dict[str, str] | None = None, override: str | None = None) -> str:
        ref = parse_reference(text)
        assert isinstance(ref, Reference)
        return provider_name(ref, env or {}, override)

    assert name("ghcr.io/acme/app") == "ghcr"
    for hub in ("ubuntu", "docker.io/library/ubuntu", "index.docker.io/acme/app", "acme/app"):
        assert name(hub) == "dockerhub"
    assert name("registry.example.com/app") == "registry"
    assert name("127.0.0.1:5000/acme/app", {"SPLITBUILD_PROVIDERS": "127.0.0.1:5000=ghcr"}) == "ghcr"
    assert name("ghcr.io/acme/app", override="registry") == "registry"
    with pytest.raises(UsageError, match="HOST=NAME"):
        name("ghcr.io/acme/app", {"SPLITBUILD_PROVIDERS": "ghcr.io"})
    with pytest.raises(UsageError, match="unknown provider"):
        name("ghcr.io/acme/app", override="quay")


async def test_open_provider_takes_the_registry_credential(client: Client) -> None:
    from splitbuild.auth.credentials import Credential, StaticKeychain

    async with Client(keychain=StaticKeychain({"ghcr.io": Credential("me", FULL)}), env={}) as c:
        ref = parse_reference("ghcr.io/acme/app")
        assert isinstance(ref, Reference)
        provider = open_provider(c, ref, env={})
        assert isinstance(provider, GhcrProvider)
        assert provider._token == FULL
        assert FULL not in repr(provider.__dict__.get("ref"))
        await provider.aclose()
        assert open_provider(c, ref, name="registry", env={}) is None


# -- the acceptance scenario -----------------------------------------------------------------------


async def test_prune_on_ghcr_deletes_exactly_what_nothing_kept_reaches(
    github: FakeGitHub, registry: RegistryServer, client: Client
) -> None:
    name = package()
    images = await seed_repository(backend_repo(client, registry, name))
    stored = revisions(registry, name)
    sha1_referrers = await backend_repo(client, registry, name).get_manifest(
        "sha256-" + images["sha-1"].digest.split(":")[1]
    )
    front = f"{github.host}/{name}"
    # Without the provider the front refuses, as GHCR does
    with pytest.raises(DeletionIncomplete, match="405"):
        await prune(client, front, POLICY, dry_run=False, now=NOW, provider="registry")
    assert revisions(registry, name) == stored

    policy = dataclasses.replace(POLICY, age_from="created")  # the seed dates are creation times
    async with ghcr(github, name) as provider:
        done = await prune(client, front, policy, dry_run=False, now=NOW, provider=provider)
    assert done.provider == "ghcr"
    assert done.age_from == "created"
    assert done.outcome is not None
    deleted = set(done.outcome.deleted)
    expected = {images[t].digest for t in ("sha-1", "sha-2", "sha-4")}
    expected |= {c.digest for t in ("sha-1", "sha-4") for c in images[t].children}
    expected |= {c.digest for c in images["sha-2"].children} - {images["sha-2"].children[1].digest}
    ref1 = images["sha-1"].digest.split(":")[1]
    expected |= {sha1_referrers.digest, *(c.digest for c in sha1_referrers.children())}
    reused = images["sha-2"].children[1].digest
    assert reused not in deleted
    assert deleted == expected  # exactly what nothing kept reaches
    assert done.outcome.untagged == {"sha-3": "placeholder"}
    assert stored - revisions(registry, name) == deleted  # gone from storage, the placeholder too
    repo = client.repository(parse_reference(front))
    left = sorted(await repo.list_tags())
    assert f"sha256-{ref1}" not in left
    assert "sha-3" not in left
    for tag in left:
        await resolves_completely(repo, tag)
        manifest = await repo.get_manifest(tag)
        await repo.get_manifest(manifest.digest)  # by digest too
    deletes = [entry for entry in github.log if entry[0] == "DELETE"]
    assert len(deletes) == len(deleted) + 1  # one per manifest, one for sha-3's placeholder


async def test_delete_a_tag_on_ghcr_keeps_the_children_of_other_indexes(
    github: FakeGitHub, registry: RegistryServer, client: Client
) -> None:
    name = package("solo")  # user-owned: the org endpoint answers 404 first
    repo = backend_repo(client, registry, name)
    old = multiarch(seed="del-old")
    shared = multiarch(images=[old.children[0], make_image("linux/arm64", seed="del-new")], seed="del-new")
    await push(repo, old, "old")
    await push(repo, shared, "new")
    async with ghcr(github, name) as provider:
        result = await ops.delete(client, f"{github.host}/{name}:old", provider=provider)
    assert result.outcome is not None
    assert old.children[0].digest not in result.outcome.deleted
    assert old.digest in result.outcome.deleted
    assert old.children[0].digest in revisions(registry, name)
    await resolves_completely(client.repository(parse_reference(f"{github.host}/{name}")), "new")
    assert ("GET", f"/orgs/{name.replace('/', '/packages/container/', 1)}/versions", 404) in github.log


# -- age from push time, untagged versions, the deletion limit -----------------------------------


async def test_age_from_pushed_uses_the_version_times(
    github: FakeGitHub, registry: RegistryServer, client: Client
) -> None:
    name = package()
    repo = backend_repo(client, registry, name)
    # reproducible builds: every image "created" at the epoch
    images = {f"b{i}": multiarch(seed=f"age{i}", created="1970-01-01T00:00:00Z") for i in range(3)}
    for tag, image in images.items():
        await push(repo, image, tag)
        pushed = NOW - dt.timedelta(days=10 * (3 - int(tag[1])))
        github.times[image.digest] = (pushed, pushed)
    front = f"{github.host}/{name}"
    policy = RetentionPolicy(older_than=parse_duration("15d"))
    async with ghcr(github, name) as provider:
        by_push = await prune(client, front, policy, now=NOW, provider=provider)
        by_created = await prune(
            client,
            front,
            RetentionPolicy(older_than=parse_duration("15d"), age_from="created"),
            now=NOW,
            provider=provider,
        )
    assert by_push.age_from == "pushed"
    assert sorted(by_push.plan.remove) == ["b0", "b1"]  # pushed 30 and 20 days ago
    assert by_push.plan.remove["b0"].startswith("pushed 2026-01-30")
    assert "b2" in by_push.plan.keep
    assert by_created.age_from == "created"
    assert sorted(by_created.plan.remove) == ["b0", "b1", "b2"]
    assert by_push.to_dict()["ageFrom"] == "pushed"
    with pytest.raises(UsageError, match="no push time"):
        await prune(client, front, RetentionPolicy(keep_last=1, age_from="pushed"), provider="registry")


async def test_untagged_versions_nothing_kept_reaches_are_deleted(
    github: FakeGitHub, registry: RegistryServer, client: Client
) -> None:
    name = package()
    repo = backend_repo(client, registry, name)
    kept = multiarch(seed="ut-kept")
    ghost = multiarch(seed="ut-ghost")  # a split build's index pushed by digest and never tagged
    await push(repo, kept, "main")
    await push(repo, ghost)
    loose = make_image(seed="ut-loose")
    await push(repo, loose)
    # an untagged referrer of the kept image (no referrers tag): stays with its subject
    signature = make_image(seed="ut-sig")
    doc = json.loads(signature.manifest.raw)
    doc["subject"] = kept.manifest.descriptor().to_dict()
    signed = Manifest.from_bytes(json.dumps(doc).encode())
    await push(repo, Image(signed, signature.blobs))
    referrers_tag = "sha256-" + kept.digest.split(":")[1]
    # distribution 2.8 has no referrers API: the store put the signature in the referrers tag index;
    # untag that index, so that it is an untagged version listing the signature
    old_index = await repo.head_manifest(referrers_tag)
    assert old_index is not None
    await ops.delete(client, f"{registry.host}/{name}:{referrers_tag}", tag_only=True)
    front = f"{github.host}/{name}"
    policy = RetentionPolicy(untagged=True)
    async with ghcr(github, name) as provider:
        dry = await prune(client, front, policy, provider=provider)
        assert dry.outcome is None
        ghosts = {ghost.digest, *(c.digest for c in ghost.children), loose.digest, old_index.digest}
        assert {d.digest for d in dry.plan.manifests} == ghosts
        assert set(dry.untagged) == ghosts  # every one an untagged version (the children too)
        with pytest.raises(Refused, match="more than the limit of"):
            await prune(client, front, policy, dry_run=False, provider=provider, max_delete=len(ghosts) - 1)
        assert ghost.digest in revisions(registry, name)  # nothing deleted
        done = await prune(client, front, policy, dry_run=False, provider=provider, max_delete=len(ghosts))
    assert done.outcome is not None
    assert set(done.outcome.deleted) == ghosts
    left = revisions(registry, name)
    assert not left & ghosts
    assert signed.digest in left
    assert kept.digest in left
    await resolves_completely(client.repository(parse_reference(front)), "main")
    with pytest.raises(UsageError, match="untagged"):
        await prune(client, front, policy, provider="registry")


# -- errors that must lose nothing ------------------------------------------------------------------


async def test_a_missing_scope_is_named(github: FakeGitHub, registry: RegistryServer, client: Client) -> None:
    name = package()
    await push(backend_repo(client, registry, name), make_image(seed="scope"), "old")
    async with ghcr(github, name, READ_ONLY) as provider:
        with pytest.raises(DeletionIncomplete) as caught:
            await ops.delete(client, f"{github.host}/{name}:old", provider=provider)
    assert isinstance(caught.value.cause, AuthError)
    assert "delete:packages" in caught.value.message
    assert "the token has: read:packages" in caught.value.message
    assert READ_ONLY not in caught.value.message
    assert caught.value.exit_code == 6
    async with ghcr(github, name, "ghp_unknown") as provider:
        with pytest.raises(AuthError, match="was refused"):
            await provider.versions()
    # no token at all: a dry run still plans, from the images' own dates; deleting says what is missing
    async with ghcr(github, name, "") as provider:
        dry = await prune(client, f"{github.host}/{name}", RetentionPolicy(keep_last=0), provider=provider)
        assert dry.age_from == "created"
        assert list(dry.plan.remove) == ["old"]
        with pytest.raises(DeletionIncomplete, match="no GitHub token"):
            await prune(
                client,
                f"{github.host}/{name}",
                RetentionPolicy(keep_last=0),
                dry_run=False,
                provider=provider,
            )


async def test_more_than_5000_downloads_is_a_clear_refusal(
    github: FakeGitHub, registry: RegistryServer, client: Client
) -> None:
    name = package()
    repo = backend_repo(client, registry, name)
    popular = multiarch(seed="popular")
    await push(repo, popular, "popular")
    await push(repo, make_image(seed="keep5000"), "keep")
    github.public = True
    github.downloads[popular.digest] = 12_000
    stored = revisions(registry, name)
    async with ghcr(github, name) as provider:
        with pytest.raises(DeletionIncomplete) as caught:
            await ops.delete(client, f"{github.host}/{name}:popular", provider=provider)
    assert isinstance(caught.value.cause, Refused)
    assert "more than 5,000 downloads" in caught.value.message
    assert "nothing was deleted" in caught.value.message
    assert caught.value.exit_code == 8
    assert revisions(registry, name) == stored  # the index, its children, everything
    await resolves_completely(client.repository(parse_reference(f"{github.host}/{name}")), "popular")


async def test_rate_limits_are_waited_for_within_bounds(
    github: FakeGitHub, registry: RegistryServer, client: Client
) -> None:
    name = package()
    repo = backend_repo(client, registry, name)
    await push(repo, make_image(seed="rl-a"), "a")
    # a secondary limit with Retry-After: waited for, then it goes through
    github.fail_next = [(403, {"Retry-After": "1"}, "You have exceeded a secondary rate limit.")]
    patient = RetryPolicy(attempts=3, initial=0.01, max_delay=2.0, total=10.0)
    async with ghcr(github, name, retry=patient) as provider:
        started = dt.datetime.now()
        await provider.versions()
        assert (dt.datetime.now() - started).total_seconds() >= 1.0
    # the primary limit resetting in an hour: past the budget, a clear error at once
    github.primary_remaining = 0
    stored = revisions(registry, name)
    async with ghcr(github, name, retry=patient) as provider:
        with pytest.raises(DeletionIncomplete, match=r"rate limit \(x-ratelimit-remaining: 0\)") as caught:
            await ops.delete(client, f"{github.host}/{name}:a", provider=provider)
    assert isinstance(caught.value.cause, RegistryError)
    assert "resets in 3600 s" in caught.value.message or "resets in 3599 s" in caught.value.message
    assert "nothing was deleted" in caught.value.message
    assert revisions(registry, name) == stored


async def test_a_rate_limit_mid_run_loses_nothing_and_a_re_run_finishes(
    github: FakeGitHub, registry: RegistryServer, client: Client
) -> None:
    """The primary limit runs out after the index and one child went: the run stops with a clear error
    saying so, the rest is untouched, every kept tag resolves, and ``prune --untagged`` finishes."""
    name = package()
    repo = backend_repo(client, registry, name)
    old, kept = multiarch(seed="rl-mid-old"), multiarch(seed="rl-mid-kept")
    await push(repo, old, "old")
    await push(repo, kept, "kept")
    stored = revisions(registry, name)
    github.primary_remaining = 3  # the listing, the index's DELETE, one child's DELETE
    front = f"{github.host}/{name}"
    async with ghcr(github, name) as provider:
        with pytest.raises(DeletionIncomplete, match="2 deletions done before it") as caught:
            await ops.delete(client, f"{front}:old", provider=provider)
    assert isinstance(caught.value.cause, RegistryError)
    assert "rate limit (x-ratelimit-remaining: 0)" in caught.value.message
    gone = stored - revisions(registry, name)
    assert len(gone) == 2
    assert old.digest in gone  # parents first: no index ever points at a deleted child
    assert gone <= {old.digest, *(c.digest for c in old.children)}
    await resolves_completely(client.repository(parse_reference(front)), "kept")
    github.primary_remaining = 5000  # the limit reset
    async with ghcr(github, name) as provider:
        done = await prune(client, front, RetentionPolicy(untagged=True), dry_run=False, provider=provider)
    assert done.outcome is not None
    assert set(done.outcome.deleted) == {c.digest for c in old.children} - gone
    assert revisions(registry, name) == stored - {old.digest, *(c.digest for c in old.children)}
    await resolves_completely(client.repository(parse_reference(front)), "kept")


async def test_an_unknown_package_is_not_found(github: FakeGitHub) -> None:
    async with ghcr(github, "acme/never-pushed") as provider:
        with pytest.raises(NotFound, match="no container package 'never-pushed' owned by 'acme'"):
            await provider.versions()


# -- the command line -----------------------------------------------------------------------------


def test_cli_prune_on_ghcr(github: FakeGitHub, registry: RegistryServer) -> None:
    import anyio
    from typer.testing import CliRunner

    from splitbuild.cli.app import make_app

    name = package()

    async def prepare() -> None:
        async with Client(retry=FAST_RETRY, env={}) as c:
            for i in range(3):
                await push(backend_repo(c, registry, name), make_image(seed=f"cli-{name}-{i}"), f"t{i}")

    anyio.run(prepare)
    stored = revisions(registry, name)
    env = {
        "SPLITBUILD_PROVIDERS": f"{github.host}=ghcr",
        "GITHUB_API_URL": github.url,
        "GITHUB_TOKEN": FULL,
        "SPLITBUILD_RETRY_TOTAL": "5",
    }
    runner = CliRunner()
    app = make_app()
    front = f"{github.host}/{name}"
    dry = runner.invoke(app, ["prune", front, "--keep-last", "1", "--untagged"], env=env)
    assert dry.exit_code == 0, dry.output
    assert "ages from push time, deleting through the ghcr API" in dry.stdout
    refused = runner.invoke(app, ["prune", front, "--keep-last", "1", "--max-delete", "1", "--yes"], env=env)
    assert refused.exit_code == 8, refused.output
    assert "more than the limit of 1: nothing deleted" in refused.output
    assert revisions(registry, name) == stored
    bad = runner.invoke(app, ["prune", front, "--keep-last", "1", "--age-from", "built"], env=env)
    assert bad.exit_code == 2, bad.output
    done = runner.invoke(app, ["prune", front, "--keep-last", "1", "--max-delete", "2", "--yes"], env=env)
    assert done.exit_code == 0, done.output
    assert len(revisions(registry, name)) == 1
    assert FULL not in done.output + dry.output + refused.output


async def test_delete_takes_cosign_tags_along(
    github: FakeGitHub, registry: RegistryServer, client: Client
) -> None:
    """cosign's older tag scheme (``sha256-<hex>.sig``, ``.att``, ``.sbom``) follows its subject."""
    name = package()
    repo = backend_repo(client, registry, name)
    gone, kept = multiarch(seed="cosign-gone"), multiarch(seed="cosign-kept")
    await push(repo, gone, "gone")
    await push(repo, kept, "kept")
    artifacts = {}
    for image, subject in ((gone, "gone"), (kept, "kept")):
        for suffix in ("sig", "att", "sbom"):
            artifact = make_image(seed=f"cosign-{subject}-{suffix}")
            tag = f"sha256-{image.digest.split(':')[1]}.{suffix}"
            await push(repo, artifact, tag)
            artifacts[tag] = artifact.digest
    async with ghcr(github, name) as provider:
        result = await ops.delete(client, f"{github.host}/{name}:gone", provider=provider)
    assert result.plan is not None
    hexed = gone.digest.split(":")[1]
    assert sorted(result.plan.remove) == sorted(
        ["gone", *(f"sha256-{hexed}.{s}" for s in ("sig", "att", "sbom"))]
    )
    left = sorted(await client.repository(parse_reference(f"{github.host}/{name}")).list_tags())
    kept_hex = kept.digest.split(":")[1]
    assert left == sorted(["kept", *(f"sha256-{kept_hex}.{s}" for s in ("sig", "att", "sbom"))])
    stored = revisions(registry, name)
    for tag, digest in artifacts.items():
        assert (digest in stored) == tag.startswith(f"sha256-{kept_hex}")


async def test_untagged_referrers_of_an_untagged_referrer_that_stays_stay_too(
    github: FakeGitHub, registry: RegistryServer, client: Client
) -> None:
    """A signature on an SBOM of a kept image: both untagged versions (their referrers tag indexes
    untagged too), both stay; the old tag indexes, which list them, go."""
    from tests.images import make_sbom, make_signature

    name = package()
    repo = backend_repo(client, registry, name)
    kept = multiarch(["linux/amd64"], seed="chain")
    await push(repo, kept, "main")
    sbom = make_sbom(kept, seed="chain")
    await push(repo, sbom)  # distribution 2.8: listed in the referrers tag index of `main`
    signature = make_signature(sbom, seed="chain")
    await push(repo, signature)  # listed in the referrers tag index of the SBOM
    tag_indexes = set()
    for subject in (kept, sbom):
        tag = "sha256-" + subject.digest.split(":")[1]
        desc = await repo.head_manifest(tag)
        assert desc is not None
        tag_indexes.add(desc.digest)
        await ops.delete(client, f"{registry.host}/{name}:{tag}", tag_only=True)
    assert await repo.list_tags() == ["main"]
    front = f"{github.host}/{name}"
    async with ghcr(github, name) as provider:
        done = await prune(client, front, RetentionPolicy(untagged=True), dry_run=False, provider=provider)
    assert done.outcome is not None
    assert set(done.outcome.deleted) == tag_indexes
    left = revisions(registry, name)
    assert {sbom.digest, signature.digest, kept.digest} <= left
    assert not left & tag_indexes
