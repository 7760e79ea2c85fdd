"""Two merges onto the same tags at once: a gate in front of the real registry decides the order.

Merge A publishes 2 platforms, merge B 3 (a superset), onto the same tags. Every tag request
(by tag: the plan's reads, the re-checks, the PUTs, the read-backs) waits at a gate; a scheduler
lets one through at a time, the registry answers it, then the next, chosen by a seeded random
walk or a script. Requests by digest and blob requests pass freely. After each trial:

* every tag points at a complete index with at least the platforms it had before;
* the tags are split between the two indexes only when a merge said so (exit 8, naming tags);
* with a registry honouring conditional requests (the gate answers ``If-None-Match`` /
  ``If-Match`` with 412 like one), no write ever made a tag lose a platform.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import anyio
import pytest

from splitbuild.client import Client
from splitbuild.errors import SplitbuildError
from splitbuild.index import platform_set
from splitbuild.merge import MergeOptions, merge, parse_sources, parse_targets
from splitbuild.reference import Reference
from splitbuild.retry import NO_RETRY
from splitbuild.store.base import Precondition, TagChanged
from splitbuild.store.layout import LayoutRepository
from tests.faults import GateProxy, Held, TagWrite
from tests.images import make_image, push
from tests.registry_server import RegistryServer

A_PLATFORMS = ["linux/amd64", "linux/arm64"]
B_PLATFORMS = ["linux/amd64", "linux/arm64", "linux/s390x"]
SETTLE = 0.015
"""How long every merge must have stood at its gate, idle, before the next request is chosen."""

Chooser = Callable[[list[str], int], str]


@dataclass
class Seeded:
    repo: str
    """``race/<id>``: the repository, without the registry host."""
    digests: dict[str, str]
    """Platform to image digest."""
    initial: str
    """An index of linux/amd64 alone, to start tags from."""
    elsewhere: str
    """``race/<id>-src``: the same images in another repository (a merge from there copies them)."""


@pytest.fixture(scope="module")
def seeded(registry: RegistryServer) -> Seeded:
    repo = f"race/{uuid.uuid4().hex[:8]}"

    async def run() -> Seeded:
        async with Client(retry=NO_RETRY, env={}) as client:
            target = client.repository(Reference.parse(f"{registry.host}/{repo}"))
            images = {p: make_image(p, seed="race") for p in B_PLATFORMS}
            other = client.repository(Reference.parse(f"{registry.host}/{repo}-src"))
            for image in images.values():
                await push(target, image)
                await push(other, image)
            digests = {p: i.digest for p, i in images.items()}
            first = Reference.parse(f"{registry.host}/{repo}:race-initial")
            result = await merge(
                client, MergeOptions(targets=[first], sources=parse_sources([digests["linux/amd64"]], first))
            )
            return Seeded(repo, digests, result.plan.index.digest, f"{repo}-src")

    return anyio.run(run)


@dataclass
class Outcome:
    codes: dict[str, int] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    final: dict[str, str | None] = field(default_factory=dict)
    platforms: dict[str, set[str]] = field(default_factory=dict)
    """Digest to platform set, for every index seen (final tags and writes)."""
    writes: list[TagWrite] = field(default_factory=list)
    order: list[str] = field(default_factory=list)
    """The requests in the order the registry saw them: ``A HEAD tag``..."""


def seeded_walk(seed: int) -> Chooser:
    rng = random.Random(seed)
    return lambda live, step: rng.choice(sorted(live))


def script(text: str) -> Chooser:
    """``text[step]`` names the merge to move (the other one when that one has nothing waiting)."""

    def choose(live: list[str], step: int) -> str:
        wanted = text[step] if step < len(text) else text[-1]
        return wanted if wanted in live else sorted(live)[0]

    return choose


async def _settled(gates: dict[str, GateProxy], finished: dict[str, int]) -> bool:
    """Wait until every merge is finished or idle at its gate; False when all are finished."""
    since: float | None = None
    last: tuple[int, ...] = ()
    while True:
        if len(finished) == len(gates):
            return False
        shape = tuple(len(g.held()) for g in gates.values())
        ready = all(n in finished or (g.held() and g.idle()) for n, g in gates.items())
        now = anyio.current_time()
        if ready and shape == last and since is not None:
            if now - since >= SETTLE:
                return True
        else:
            since = now if ready else None
        last = shape
        await anyio.sleep(0.002)


def _first(held: list[Held]) -> Held:
    return sorted(held, key=lambda h: (h.target, h.method))[0]


async def _drive(
    gates: dict[str, GateProxy], finished: dict[str, int], choose: Chooser, out: Outcome
) -> None:
    step = 0
    while await _settled(gates, finished):
        live = [n for n, g in gates.items() if g.held()]
        name = choose(live, step)
        held = _first(gates[name].held())
        out.order.append(f"{name} {held.method} {held.target.rsplit('/', 1)[-1]}")
        await anyio.to_thread.run_sync(gates[name].release, held)
        step += 1


def race(
    registry: RegistryServer,
    seeded: Seeded,
    choose: Chooser,
    *,
    tags: int = 3,
    conditional: bool = False,
    start_on_initial: bool = False,
    copies: str = "",
) -> tuple[Outcome, list[str]]:
    """One trial: A and B merge onto the same fresh tags; returns the outcome and the tags.
    The merges named in ``copies`` take their sources from another repository, so they copy
    children between the plan's tag reads and the writes."""
    prefix = uuid.uuid4().hex[:6]
    names = [f"{prefix}-{i}" for i in range(tags)]
    out = Outcome()
    gates = {n: GateProxy(registry.port, n, conditional=conditional, record=out.writes).start() for n in "AB"}
    repo_at = f"{registry.host}/{seeded.repo}"

    async def seed_tags() -> None:
        async with Client(retry=NO_RETRY, env={}) as client:
            repo = client.repository(Reference.parse(repo_at))
            initial = await repo.get_manifest(seeded.initial)
            for tag in names:
                await repo.put_manifest(initial, tag)

    async def run_merge(name: str, platforms: list[str]) -> None:
        targets = parse_targets([f"{gates[name].host}/{seeded.repo}:{t}" for t in names])
        at = f"{gates[name].host}/{seeded.elsewhere}@" if name in copies else ""
        sources = parse_sources([at + seeded.digests[p] for p in platforms], targets[0])
        async with Client(retry=NO_RETRY, env={}, timeout=30.0) as client:
            try:
                await merge(client, MergeOptions(targets=targets, sources=sources))
            except SplitbuildError as exc:
                out.codes[name], out.errors[name] = exc.exit_code, exc.message
            else:
                out.codes[name] = 0

    async def trial() -> None:
        if start_on_initial:
            await seed_tags()
        with anyio.fail_after(120):
            await both()

    async def both() -> None:
        async with anyio.create_task_group() as tg:
            tg.start_soon(run_merge, "A", A_PLATFORMS)
            tg.start_soon(run_merge, "B", B_PLATFORMS)
            tg.start_soon(_drive, gates, out.codes, choose, out)
        async with Client(retry=NO_RETRY, env={}) as client:
            repo = client.repository(Reference.parse(repo_at))
            for tag in names:
                desc = await repo.head_manifest(tag)
                out.final[tag] = desc.digest if desc is not None else None
            seen = {d for d in out.final.values() if d} | {
                d for w in out.writes for d in (w.before, w.after) if d
            }
            for digest in seen:
                index = await repo.get_manifest(digest)
                for child in index.children():  # complete: every child is there
                    assert await repo.head_manifest(child.digest) is not None, child.digest
                out.platforms[digest] = platform_set(index)

    try:
        anyio.run(trial)
    finally:
        for gate in gates.values():
            gate.stop()
    return out, names


def check(out: Outcome, tags: list[str], *, had: set[str], strong: bool = False) -> None:
    """The guarantees; ``had``: the platforms every tag had before the trial."""
    story = f"order: {out.order}; codes {out.codes}; errors {out.errors}"
    assert set(out.codes.values()) <= {0, 8}, story
    for tag, digest in out.final.items():
        assert digest is not None, f"{tag} lost; {story}"
        assert out.platforms[digest] >= had, f"{tag} shrank; {story}"
    split = len(set(out.final.values())) > 1
    assert not split or 8 in out.codes.values(), f"tags split and no merge said so; {story}"
    for name, message in out.errors.items():
        assert any(f":{t}" in message for t in tags), f"{name}'s error names no tag: {message}"
    if strong:  # no write ever made a tag lose a platform
        for w in out.writes:
            if w.before is not None and w.after != w.before:
                assert w.after is not None, f"{w} removed the tag; {story}"
                assert out.platforms[w.after] >= out.platforms[w.before], f"{w} shrank the tag; {story}"


def test_scenario_a_plans_then_b_publishes_then_a_writes(registry: RegistryServer, seeded: Seeded) -> None:
    """Issue 14, item 1: A sees ``latest`` absent and copies its children, B publishes 3 platforms,
    A's write comes after: A's re-check sees B's index."""
    out, tags = race(registry, seeded, script("A" + "B" * 60 + "A"), tags=1, copies="A")
    assert out.order[0].startswith("A GET"), out.order
    a_requests = [r for r in out.order if r.startswith("A ") and r.endswith(f" {tags[0]}")]
    assert a_requests == [f"A GET {tags[0]}", f"A HEAD {tags[0]}"], out.order  # the re-check; no PUT
    assert out.codes["B"] == 0, out.errors
    assert out.codes["A"] == 8, f"A overwrote B's index: {out.order}"
    assert "another writer moved tags" in out.errors["A"]
    assert f":{tags[0]}" in out.errors["A"]
    assert out.platforms[out.final[tags[0]] or ""] == set(B_PLATFORMS)
    check(out, tags, had=set())


def test_writes_crossing_on_three_tags_are_reported_by_both(registry: RegistryServer, seeded: Seeded) -> None:
    """Both read the three tags (absent: nothing to copy, so that is the re-check), then their
    PUTs cross: A, B, B, A, A, B. The tags end split, and each merge's read-back sees the other's
    index: both exit 8, naming the tags."""
    out, tags = race(registry, seeded, script("A" * 3 + "B" * 3 + "ABBAAB" + "AB" * 30))
    check(out, tags, had=set())
    assert [w.gate for w in out.writes] == list("ABBAAB"), out.order
    assert out.codes == {"A": 8, "B": 8}, (out.order, out.errors)
    index_b, index_a = out.final[tags[0]], out.final[tags[1]]
    assert out.final[tags[2]] == index_b
    assert index_a != index_b
    assert out.platforms[index_a or ""] == set(A_PLATFORMS)
    moved, _, on = out.errors["A"].partition("; index ")
    assert f":{tags[0]} (now" in moved
    assert f":{tags[2]} (now" in moved
    assert f":{tags[1]}" not in moved
    assert on.endswith(f":{tags[1]}"), out.errors["A"]
    assert f":{tags[1]} (now" in out.errors["B"]


@pytest.mark.parametrize("start_on_initial", [False, True], ids=["new-tags", "tags-on-an-older-index"])
def test_random_interleavings_never_split_silently(
    registry: RegistryServer, seeded: Seeded, start_on_initial: bool
) -> None:
    """Item 2: 12 seeded interleavings of two merges onto the same 3 tags."""
    had = {"linux/amd64"} if start_on_initial else set()
    outcomes = []
    for seed in range(12):
        out, tags = race(registry, seeded, seeded_walk(seed), start_on_initial=start_on_initial)
        check(out, tags, had=had)
        outcomes.append(out)
    # the walks did interleave: some trials had both merges writing tags
    assert any({w.gate for w in out.writes} == {"A", "B"} for out in outcomes)


def test_a_registry_honouring_conditional_requests_closes_the_window(
    registry: RegistryServer, seeded: Seeded
) -> None:
    """A reads ``latest`` (absent) and is held before its PUT while B publishes: the PUT's
    ``If-None-Match: *`` is refused with 412, and A reports the tag."""
    out, tags = race(registry, seeded, script("A" + "B" * 60 + "A"), tags=1, conditional=True)
    assert out.order[:2] == [f"A GET {tags[0]}", f"B GET {tags[0]}"], out.order
    assert out.codes == {"A": 8, "B": 0}, out
    assert out.platforms[out.final[tags[0]] or ""] == set(B_PLATFORMS)
    assert [w.gate for w in out.writes] == ["B"]
    check(out, tags, had=set(), strong=True)


def test_without_conditional_requests_that_window_remains(registry: RegistryServer, seeded: Seeded) -> None:
    """The documented residual window: distribution 2.x ignores ``If-None-Match``, so A's write
    held between its re-check (the plan's read: nothing to copy) and the registry lands over B's,
    and neither can see it."""
    out, tags = race(registry, seeded, script("A" + "B" * 60 + "A"), tags=1)
    assert out.codes == {"A": 0, "B": 0}, out
    assert [w.gate for w in out.writes] == ["B", "A"]
    assert out.platforms[out.final[tags[0]] or ""] == set(A_PLATFORMS)
    check(out, tags, had=set())


def test_random_interleavings_with_conditional_requests_never_shrink(
    registry: RegistryServer, seeded: Seeded
) -> None:
    for seed in range(10):
        out, tags = race(registry, seeded, seeded_walk(100 + seed), conditional=True)
        check(out, tags, had=set(), strong=True)


def test_a_layout_checks_the_precondition_under_its_lock(tmp_path: Path) -> None:
    async def run() -> None:
        layout = LayoutRepository(f"{tmp_path}/oci")
        first, second = make_image("linux/amd64", seed="l1"), make_image("linux/arm64", seed="l2")
        for image in (first, second):
            await push(layout, image)
        await layout.put_manifest(first.manifest, "v1", precondition=Precondition(None))
        with pytest.raises(TagChanged, match="v1: the tag changed"):
            await layout.put_manifest(second.manifest, "v1", precondition=Precondition(None))
        with pytest.raises(TagChanged):
            await layout.put_manifest(second.manifest, "v1", precondition=Precondition(second.digest))
        await layout.put_manifest(second.manifest, "v1", precondition=Precondition(first.digest))
        desc = await layout.head_manifest("v1")
        assert desc is not None
        assert desc.digest == second.digest

    anyio.run(run)


def test_a_412_while_the_tag_did_not_move_is_not_a_conflict(registry: RegistryServer, seeded: Seeded) -> None:
    """A registry answering 412 to conditions it cannot judge (another representation's ETag):
    the tag is still where the re-check saw it, so it is written as without a condition."""
    gate = GateProxy(registry.port, "solo", hold=lambda method, target: False, spurious_412=2).start()
    tags = [f"{uuid.uuid4().hex[:6]}-{i}" for i in range(2)]

    async def run() -> str:
        targets = parse_targets([f"{gate.host}/{seeded.repo}:{t}" for t in tags])
        sources = parse_sources([seeded.digests[p] for p in A_PLATFORMS], targets[0])
        async with Client(retry=NO_RETRY, env={}) as client:
            result = await merge(client, MergeOptions(targets=targets, sources=sources))
            assert result.pushed == [str(t) for t in targets]
            for tag in tags:
                desc = await client.repository(targets[0]).head_manifest(tag)
                assert desc is not None
                assert desc.digest == result.plan.index.digest
            return result.plan.index.digest

    try:
        anyio.run(run)
    finally:
        gate.stop()
    assert gate.spurious_412 == 0  # both conditional PUTs were refused
