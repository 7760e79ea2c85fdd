"""prune: retention decisions, the deletion plan (pure), and a real run that never breaks a kept tag."""

from __future__ import annotations

import datetime as dt
import json

import anyio
import pytest
from typer.testing import CliRunner

from splitbuild.cli.app import make_app
from splitbuild.client import Client
from splitbuild.errors import InvalidInput, Refused, UsageError
from splitbuild.models import (
    ATTESTATION_MANIFEST,
    OCI_INDEX,
    REFERENCE_DIGEST,
    REFERENCE_TYPE,
    Descriptor,
)
from splitbuild.ops import DeletionIncomplete, RetentionPolicy, parse_duration, prune
from splitbuild.ops._common import bounded
from splitbuild.ops._prune import decide, format_duration
from splitbuild.ops.deletion import plan_deletion
from splitbuild.ops.graph import Graph, Node, referrers_subject
from splitbuild.reference import parse_reference
from splitbuild.retry import FAST_RETRY
from tests.images import make_image, push
from tests.ops_support import (
    NOW,
    POLICY,
    Refusing,
    deny_digest_delete,
    multiarch,
    resolves_completely,
    revisions,
    seed_repository,
    unique,
)
from tests.registry_server import RegistryServer

pytestmark = pytest.mark.anyio

# -- pure parts ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30d", 30 * 86400), ("2w", 14 * 86400), ("12h", 43200), ("1d12h", 129600), ("90m", 5400), ("45s", 45)],
)
def test_parse_duration(text: str, seconds: int) -> None:
    assert parse_duration(text) == dt.timedelta(seconds=seconds)


@pytest.mark.parametrize("text", ["", "30", "d", "1y", "-3d", "3d x", "1.5d"])
def test_parse_duration_rejects(text: str) -> None:
    with pytest.raises(InvalidInput, match="invalid duration"):
        parse_duration(text)


@pytest.mark.parametrize("text", ["999999999999999d", "36501d", "5215w", "876001h", "9" * 40 + "s"])
def test_parse_duration_caps_at_100_years(text: str) -> None:
    with pytest.raises(InvalidInput, match="is over the limit of 36500d"):
        parse_duration(text)


def test_parse_duration_accepts_the_cap_and_shortens_what_it_echoes() -> None:
    assert parse_duration("36500d") == dt.timedelta(days=36500)
    with pytest.raises(InvalidInput, match="invalid duration") as caught:
        parse_duration("1d" * 50_000 + "x")  # would overflow int() digit limits or echo 100 kB
    assert len(caught.value.message) < 300


def test_prune_cli_refuses_an_overflowing_duration_in_one_line() -> None:
    result = CliRunner().invoke(make_app(), ["prune", "--older-than", "999999999999999d", "oci:/nonexistent"])
    assert result.exit_code == 3, result.output
    assert "duration '999999999999999d' is over the limit of 36500d (100 years)" in result.output
    assert "internal error" not in result.output


def test_format_duration() -> None:
    assert format_duration(dt.timedelta(days=30)) == "30d"
    assert format_duration(dt.timedelta(hours=36)) == "1d12h"


def test_policy_needs_a_rule() -> None:
    with pytest.raises(UsageError, match="`keep_last`"):
        RetentionPolicy(include="sha-.*")
    with pytest.raises(UsageError):
        RetentionPolicy(keep_last=-1)
    with pytest.raises(InvalidInput):
        RetentionPolicy(keep_last=1, include="(")


def _day(n: int) -> dt.datetime:
    return dt.datetime(2026, 1, n, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("keep_last", "older_than", "removed"),
    [
        (2, None, ["a", "b", "c"]),
        (None, "58d", ["a", "b"]),  # 2026-01-01 and -02 are 58 days or more before March 1st
        (2, "58d", ["a", "b"]),  # both rules must agree to delete
        (4, "58d", ["a"]),
        (0, None, ["a", "b", "c", "d", "e"]),
    ],
)
def test_decide(keep_last: int | None, older_than: str | None, removed: list[str]) -> None:
    created = {t: _day(i + 1) for i, t in enumerate("abcde")}
    created["undated"] = None
    policy = RetentionPolicy(
        keep_last=keep_last, older_than=parse_duration(older_than) if older_than else None
    )
    remove, keep = decide([*created], created, policy, NOW)
    assert sorted(remove) == removed
    assert "undated" in keep
    assert keep["undated"].startswith("no creation time")
    assert set(remove) | set(keep) == set(created)


def _desc(digest: str, **extra: object) -> Descriptor:
    return Descriptor.model_validate(
        {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": digest, "size": 1, **extra}
    )


def _d(c: str) -> str:
    return "sha256:" + c * 64


def test_plan_orders_parents_first_and_keeps_shared_children() -> None:
    graph = Graph("r")
    index_type = {"mediaType": OCI_INDEX}
    img_a, img_b, att_a = (
        _desc(_d("a"), platform={"os": "linux", "architecture": "amd64"}),
        _desc(_d("b"), platform={"os": "linux", "architecture": "arm64"}),
        _desc(
            _d("c"),
            platform={"os": "unknown", "architecture": "unknown"},
            annotations={REFERENCE_TYPE: ATTESTATION_MANIFEST, REFERENCE_DIGEST: _d("a")},
        ),
    )
    old, new, nested = _d("1"), _d("2"), _d("3")
    graph.nodes[old] = Node(_desc(old, **index_type), (img_a, att_a, _desc(nested, **index_type)))
    graph.nodes[nested] = Node(_desc(nested, **index_type), (img_b,))
    graph.nodes[new] = Node(_desc(new, **index_type), (img_b,))
    for child in (img_a, img_b, att_a):
        graph.nodes[child.digest] = Node(child)
    referrers = "sha256-" + "1" * 64
    graph.nodes[_d("4")] = Node(_desc(_d("4"), **index_type), (_desc(_d("5")),))
    graph.nodes[_d("5")] = Node(_desc(_d("5")))
    graph.tags = {"old": old, "new": new, "also-old": old, referrers: _d("4")}
    assert referrers_subject(referrers) == old
    plan = plan_deletion(graph, {"old": "policy", "also-old": "policy"})
    levels = [[d.digest for d in level] for level in plan.levels]
    # parents first, referrers before their subject; in a level, the children of one index together
    assert levels == [[_d("4")], [_d("5")], [old], [nested, _d("a"), _d("c")]]
    assert plan.protected == {_d("b"): "linux/arm64 image of new"}
    assert plan.remove[referrers].startswith("referrers of deleted")
    assert plan.untag == []
    kinds = {d.digest: d.kind for d in plan.manifests}
    assert kinds[_d("a")] == "image linux/amd64"
    assert kinds[_d("c")] == "attestation"
    assert kinds[nested] == "index"
    assert [d.tags for d in plan.levels[2] if d.digest == old] == [("old", "also-old")]
    # keeping "also-old" turns "old" into an untag, and protects the whole tree
    keep_one = plan_deletion(graph, {"old": "policy"})
    assert keep_one.untag == ["old"]
    assert keep_one.levels == []
    assert keep_one.keep[referrers].startswith("referrers of kept")


async def test_bounded_never_exceeds_jobs() -> None:
    running = peak = 0

    async def work(i: int) -> int:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await anyio.sleep(0.001)
        running -= 1
        return i * 2

    assert await bounded(range(40), work, 3) == [i * 2 for i in range(40)]
    assert peak == 3


# -- against the registry --------------------------------------------------------------------------


async def test_prune_dry_run_then_delete_keeps_every_kept_tag_whole(
    registry: RegistryServer, client: Client
) -> None:
    path = unique("prune")
    name = f"{registry.host}/{path}"
    repo = client.repository(parse_reference(name))
    images = await seed_repository(repo)
    stored = revisions(registry, path)
    tags_before = sorted(await repo.list_tags())

    dry = await prune(client, name, POLICY, now=NOW)
    assert dry.outcome is None
    assert revisions(registry, path) == stored
    plan = dry.plan
    ref1 = "sha256-" + images["sha-1"].digest.split(":")[1]
    ref3 = "sha256-" + images["sha-3"].digest.split(":")[1]
    assert sorted(plan.remove) == sorted(["sha-1", "sha-2", "sha-3", "sha-4", ref1])
    assert plan.keep["sha-6"].startswith("one of the 2 most recent")
    assert plan.keep["sha-5"].startswith("one of the 2 most recent")
    assert plan.keep["v1.0"] == "not selected by --include/--exclude"
    assert plan.keep["sha-nodate"].startswith("no creation time")
    assert plan.keep[ref3].startswith("referrers of kept")
    assert plan.remove["sha-4"] == ("created 2026-01-04 10:00, not among the 2 most recent, older than 30d")
    assert plan.untag == ["sha-3"]  # v1.0 still points at it
    reused = images["sha-2"].children[1].digest
    assert plan.protected[reused] == "linux/arm64 image of sha-6"
    assert dry.created["sha-1"] == "2026-01-01T10:00:00+00:00"  # from the index annotation
    # reads: the tag list, a GET per selected tag, a HEAD per other tag, a GET per other index,
    # and per dated index without the annotation its first image and that image's config
    assert dry.requests <= 1 + 7 + 3 + 3 + 2 * 5 + 2

    done = await prune(client, name, POLICY, dry_run=False, now=NOW)
    assert done.outcome is not None
    deleted = set(done.outcome.deleted)
    expected = {images[t].digest for t in ("sha-1", "sha-2", "sha-4")}
    expected |= {c.digest for t in ("sha-1", "sha-4") for c in images[t].children}
    expected |= {images["sha-2"].children[0].digest, images["sha-2"].children[2].digest}
    assert deleted >= expected
    assert reused not in deleted
    assert done.outcome.untagged == {"sha-3": "placeholder"}
    left = sorted(await repo.list_tags())
    assert left == sorted(set(tags_before) - {"sha-1", "sha-2", "sha-3", "sha-4", ref1})
    skopeo = await anyio.run_process(["skopeo", "list-tags", "--tls-verify=false", f"docker://{name}"])
    assert sorted(json.loads(skopeo.stdout)["Tags"]) == left
    for tag in left:
        await resolves_completely(repo, tag)
    # no placeholder left in storage, and every deleted manifest gone from it
    assert revisions(registry, path) == stored - deleted
    again = await prune(client, name, POLICY, dry_run=False, now=NOW)
    assert again.plan.empty


async def test_max_delete_on_a_real_registry_refuses_before_deleting(
    registry: RegistryServer, client: Client
) -> None:
    name = f"{registry.host}/{unique('maxdel')}"
    repo = client.repository(parse_reference(name))
    await seed_repository(repo)
    stored = revisions(registry, name.split("/", 1)[1])
    dry = await prune(client, name, POLICY, now=NOW)
    planned = len(dry.plan.manifests) + len(dry.plan.untag)
    assert planned > 1
    with pytest.raises(Refused, match=f"deletes {planned} manifests and tags, more than the limit of"):
        await prune(client, name, POLICY, dry_run=False, now=NOW, max_delete=planned - 1)
    assert revisions(registry, name.split("/", 1)[1]) == stored
    done = await prune(client, name, POLICY, dry_run=False, now=NOW, max_delete=planned)
    assert done.outcome is not None
    assert len(done.outcome.deleted) + len(done.outcome.untagged) == planned
    with pytest.raises(UsageError, match="no push time"):
        await prune(client, name, RetentionPolicy(keep_last=1, age_from="pushed"))
    with pytest.raises(UsageError, match="cannot prune untagged manifests: the registry API lists tags"):
        await prune(client, name, RetentionPolicy(untagged=True))


async def test_prune_keep_last_zero_needs_no_dates(registry: RegistryServer, client: Client) -> None:
    name = f"{registry.host}/{unique('prune')}"
    repo = client.repository(parse_reference(name))
    images = [make_image(seed=f"pr-{i}") for i in range(5)]
    for i, image in enumerate(images):
        await push(repo, image, f"pr-{i}")
    await push(repo, make_image(seed="main"), "main")
    result = await prune(client, name, RetentionPolicy(keep_last=0, include="pr-.*"), dry_run=False)
    assert result.created == {}
    assert sorted(result.plan.remove) == [f"pr-{i}" for i in range(5)]
    assert await repo.list_tags() == ["main"]
    # list, 6 HEADs, 5 DELETEs, the final tag list
    assert result.requests == 1 + 6 + 5 + 1


async def test_prune_stops_cleanly_when_the_registry_refuses(registry: RegistryServer) -> None:
    path = unique("prune")
    name = f"{registry.host}/{path}"
    async with Client(retry=FAST_RETRY, env={}) as seeding:
        repo = seeding.repository(parse_reference(name))
        images = await seed_repository(repo)
    before = revisions(registry, path)
    transport = Refusing(deny_digest_delete)
    async with Client(retry=FAST_RETRY, env={}, transport=transport) as refusing:
        with pytest.raises(DeletionIncomplete) as info:
            await prune(refusing, name, POLICY, dry_run=False, now=NOW)
        assert info.value.exit_code == 5
        assert "nothing was deleted" in info.value.message
        assert "REGISTRY_STORAGE_DELETE_ENABLED" in (info.value.hint or "")
        repo = refusing.repository(parse_reference(name))
        for tag, image in images.items():
            assert (await repo.head_manifest(tag)) is not None, tag
            assert (await repo.get_manifest(tag)).digest == image.digest
    # the placeholder for sha-3 could not be deleted; everything else is as it was
    assert before <= revisions(registry, path)
    assert len(revisions(registry, path) - before) == 1


def test_cli_prune(registry: RegistryServer) -> None:
    name = f"{registry.host}/{unique('prunecli')}"

    async def prepare() -> None:
        async with Client(retry=FAST_RETRY, env={}) as c:
            repo = c.repository(parse_reference(name))
            for i in range(4):
                await push(repo, multiarch(seed=f"cli{i}", created=f"2026-01-0{i + 1}T00:00:00Z"), f"sha-{i}")

    anyio.run(prepare)
    runner = CliRunner()
    app = make_app()
    dry = runner.invoke(app, ["prune", name, "--keep-last", "1"])
    assert dry.exit_code == 0, dry.output
    assert "3 tags to delete, 1 kept" in dry.stdout
    assert "dry run: nothing deleted" in dry.stdout
    assert "Add --yes to delete." in dry.stdout
    as_json = runner.invoke(app, ["prune", name, "--keep-last", "1", "--json"])
    data = json.loads(as_json.stdout)
    plan = data["plan"]  # the same shape as delete --json's plan
    assert [r["tag"] for r in plan["remove"]] == ["sha-0", "sha-1", "sha-2"]  # sorted
    assert [k["tag"] for k in plan["keep"]] == sorted(k["tag"] for k in plan["keep"])
    assert data["dryRun"] is True
    assert len(plan["manifests"]) == 3 * 5
    no_rule = runner.invoke(app, ["prune", name])
    assert no_rule.exit_code == 2
    done = runner.invoke(app, ["prune", name, "--keep-last", "1", "--yes"])
    assert done.exit_code == 0, done.output
    listed = runner.invoke(app, ["ls", name])
    assert listed.stdout.split() == ["sha-3"]


async def test_a_damaged_tag_is_kept_and_does_not_stop_the_prune(registry: RegistryServer) -> None:
    from splitbuild import ops
    from splitbuild.reference import parse_reference
    from tests.images import push
    from tests.ops_support import multiarch, unique

    name = f"{registry.host}/{unique('damaged')}"
    async with Client(retry=FAST_RETRY, env={}) as client:
        repo = client.repository(parse_reference(name))
        broken = multiarch(["linux/amd64"], seed="broken", created=None)
        old = multiarch(["linux/amd64"], seed="old", created="2020-01-01T00:00:00Z")
        await push(repo, broken, "broken")
        await push(repo, old, "old")
        await repo.delete_manifest(broken.children[0].digest)  # as `delete --force` would leave it
        result = await ops.prune(client, name, ops.RetentionPolicy(older_than=ops.parse_duration("30d")))
    assert set(result.plan.remove) == {"old"}
    assert "broken" in result.plan.keep
