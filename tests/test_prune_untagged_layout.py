"""``prune --untagged`` on OCI image layouts (the layout's storage is listed), and the refusal on a
plain registry, which names CNCF distribution's own garbage collector.

The layouts are written by the project's push helpers (tests/images.py), by the library's own
``delete``, and by skopeo (an untagged ``index.json`` entry); skopeo reads every kept tag back."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from pathlib import Path

import anyio
import pytest
from typer.testing import CliRunner

from splitbuild import ops
from splitbuild.cli.app import make_app
from splitbuild.client import Client
from splitbuild.errors import Refused, UsageError
from splitbuild.models import OCI_INDEX, Manifest
from splitbuild.ops import RetentionPolicy, prune
from splitbuild.reference import parse_reference
from splitbuild.store.base import Repository
from tests.images import Image, make_image, make_sbom, make_signature, push
from tests.ops_support import multiarch, resolves_completely, revisions, unique
from tests.registry_server import BINARY, RegistryServer, start_registry

pytestmark = pytest.mark.anyio

UNTAGGED = RetentionPolicy(untagged=True)


def files_of(image: Image) -> set[str]:
    """Every file ``image`` needs in ``blobs/``: its manifest, its blobs, its children's."""
    found = {image.digest, *image.blobs}
    for child in image.children:
        found |= files_of(child)
    return found


def blob_files(path: Path) -> set[str]:
    return {
        f"{alg.name}:{f.name}"
        for alg in (path / "blobs").iterdir()
        for f in alg.iterdir()
        if not f.name.startswith(".")
    }


def snapshot(path: Path) -> dict[str, str]:
    """Every file below ``path`` and a hash of its bytes (links by their target)."""
    out = {}
    for root, _dirs, names in os.walk(path):
        for name in names:
            full = Path(root) / name
            rel = str(full.relative_to(path))
            out[rel] = (
                os.readlink(full) if full.is_symlink() else hashlib.sha256(full.read_bytes()).hexdigest()
            )
    return out


def add_untagged_entry(path: Path, image: Image) -> None:
    """What another tool leaves in a layout: ``image``'s files, and an ``index.json`` entry without a
    ``org.opencontainers.image.ref.name`` (children stay unnamed files)."""
    for digest, data in _contents(image).items():
        (path / "blobs" / "sha256" / digest.split(":")[1]).write_bytes(data)
    doc = json.loads((path / "index.json").read_bytes())
    doc["manifests"].append(image.manifest.descriptor().to_dict())
    (path / "index.json").write_text(json.dumps(doc))


def _contents(image: Image) -> dict[str, bytes]:
    found = {**image.blobs, image.digest: image.manifest.raw}
    for child in image.children:
        found.update(_contents(child))
    return found


def _manifests(image: Image) -> list[Manifest]:
    return [image.manifest, *(m for c in image.children for m in _manifests(c))]


def referrer_index(subject: Image, seed: str) -> Image:
    """An index that is a referrer of ``subject`` (an untagged ``subject`` index, as some signing
    tools push), listing one artifact image of its own."""
    part = make_image(seed=f"refidx-{seed}")
    doc = {
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "artifactType": "application/vnd.example.bundle",
        "manifests": [part.manifest.descriptor().to_dict()],
        "subject": subject.manifest.descriptor().to_dict(),
    }
    return Image(Manifest.from_bytes(json.dumps(doc).encode()), {}, [part])


async def skopeo(*args: str) -> bytes:
    done = await anyio.run_process(["skopeo", *args])
    return done.stdout


async def kept_tags_are_whole(path: Path, repo: Repository, tmp_path: Path) -> None:
    """skopeo reads every tag's manifest raw, copies every index tag with all its images, and the
    library resolves every tag fully, reading back by digest."""
    for tag in await repo.list_tags():
        raw = await skopeo("inspect", "--raw", f"oci:{path}:{tag}")
        manifest = await repo.get_manifest(tag)
        assert raw == manifest.raw, tag
        await resolves_completely(repo, tag)
        if manifest.is_index and not tag.startswith("sha256-"):
            await skopeo("copy", "--all", "-q", f"oci:{path}:{tag}", f"oci:{tmp_path / 'copies'}:{tag}")


async def test_untagged_leftovers_of_a_layout_go_and_every_kept_tag_stays_whole(
    tmp_path: Path, client: Client
) -> None:
    path = tmp_path / "oci"
    layout = f"oci:{path}"
    repo = client.repository(parse_reference(layout))
    kept = multiarch(seed="lk")
    await push(repo, kept, "v1")
    # a split build that moved `latest`: the old index stays as unnamed files, one image shared with v1
    fresh = multiarch(seed="lold")
    old = multiarch(images=[fresh.children[0], kept.children[1]], seed="lold")
    await push(repo, old, "latest")
    new = multiarch(seed="lnew")
    await push(repo, new, "latest")
    new_signature = make_signature(new, seed="lnew")
    await push(repo, new_signature)  # the layout lists it in the referrers tag of `new`
    ghost = multiarch(seed="lghost")  # pushed by digest, never tagged
    await push(repo, ghost)
    gone = make_image(seed="lgone")
    await push(repo, gone, "gone")
    await ops.delete(client, f"{layout}:gone")  # removes the manifest file, leaves its config and layer
    assert not (path / "blobs/sha256" / gone.digest.split(":")[1]).exists()
    # another tool's untagged entries: referrers of v1 (an SBOM, a signature on that SBOM, an index
    # with a child of its own) stay with their subject; a signature on the ghost goes with it
    sbom = make_sbom(kept, seed="lk")
    sbom_signature = make_signature(sbom, seed="lk-sbom")
    bundle = referrer_index(kept, "lk")
    ghost_signature = make_signature(ghost, seed="lghost")
    for image in (sbom, sbom_signature, bundle, ghost_signature):
        add_untagged_entry(path, image)
    # skopeo copies an image in without a tag: an untagged index.json entry
    source = tmp_path / "src"
    stray = make_image(seed="lstray", layers=2)
    await push(client.repository(parse_reference(f"oci:{source}")), stray, "x")
    await skopeo("copy", "-q", f"oci:{source}:x", layout)
    entries = json.loads((path / "index.json").read_bytes())["manifests"]
    known = {sbom.digest, sbom_signature.digest, bundle.digest, ghost_signature.digest}
    skopeo_entries = [e["digest"] for e in entries if "annotations" not in e and e["digest"] not in known]
    assert len(skopeo_entries) == 1  # skopeo wrote the entry untagged (its own manifest bytes)
    copied = await repo.get_manifest(skopeo_entries[0])
    stray_files = {copied.digest, *(b.digest for b in copied.blobs())}
    assert len(stray_files) == 4  # manifest, config, two layers

    staying = (
        files_of(kept)
        | files_of(new)
        | files_of(new_signature)
        | files_of(sbom)
        | files_of(sbom_signature)
        | files_of(bundle)
    )
    doomed = {old.digest, fresh.children[0].digest, *(c.digest for c in old.children[2:])}
    doomed |= {ghost.digest, *(c.digest for c in ghost.children), ghost_signature.digest, copied.digest}
    gone_files = (files_of(old) | files_of(ghost) | files_of(ghost_signature) | stray_files) - staying
    gone_files |= set(gone.blobs) - staying
    before = snapshot(path)
    stored = blob_files(path)
    assert gone_files <= stored

    dry = await prune(client, layout, UNTAGGED)
    assert dry.outcome is None
    assert {d.digest for d in dry.plan.manifests} == doomed
    assert set(dry.untagged) == doomed  # every one untagged (unnamed files or untagged entries)
    assert dry.sweep is not None
    assert dry.sweep.skipped is None
    assert set(dry.sweep.blobs) == gone_files - doomed  # configs and layers only they (or `gone`) used
    data = dry.to_dict()
    assert data["blobs"]["bytes"] == sum(len(gone.blobs[d]) for d in gone.blobs) + sum(
        size for d, size in dry.sweep.blobs.items() if d not in gone.blobs
    )
    assert snapshot(path) == before  # a dry run touches nothing

    with pytest.raises(Refused, match=f"deletes {len(doomed)} manifests and tags, more than the limit of"):
        await prune(client, layout, UNTAGGED, dry_run=False, max_delete=len(doomed) - 1)
    assert snapshot(path) == before

    done = await prune(client, layout, UNTAGGED, dry_run=False, max_delete=len(doomed))
    assert done.outcome is not None
    assert set(done.outcome.deleted) == doomed
    assert set(done.outcome.blobs) == gone_files - doomed
    assert blob_files(path) == stored - gone_files
    assert staying <= blob_files(path)
    left = {e["digest"] for e in json.loads((path / "index.json").read_bytes())["manifests"]}
    assert {sbom.digest, sbom_signature.digest, bundle.digest} <= left
    assert not left & doomed
    assert await repo.list_tags() == sorted(["v1", "latest", "sha256-" + new.digest.split(":")[1]])
    await kept_tags_are_whole(path, repo, tmp_path)
    referrers = {d.digest for d in await repo.list_referrers(kept.digest)}
    assert referrers == {sbom.digest, bundle.digest}
    for untagged in (sbom, sbom_signature, bundle):
        await resolves_completely(repo, untagged.digest)
    await resolves_completely(repo, bundle.children[0].digest)

    again = await prune(client, layout, UNTAGGED, dry_run=False)
    assert again.plan.empty
    assert again.untagged == []
    assert again.sweep is not None
    assert again.sweep.blobs == {}


async def test_untagged_with_a_tag_policy_sweeps_what_the_removed_tags_used(
    tmp_path: Path, client: Client
) -> None:
    """Tags removed by the policy and untagged leftovers go in one run, their blobs with them."""
    path = tmp_path / "oci"
    layout = f"oci:{path}"
    repo = client.repository(parse_reference(layout))
    images = {f"pr-{i}": multiarch(["linux/amd64"], seed=f"pol{i}") for i in range(3)}
    for tag, image in images.items():
        await push(repo, image, tag)
    ghost = make_image(seed="pol-ghost")
    await push(repo, ghost)
    policy = RetentionPolicy(keep_last=0, include="pr-[01]", untagged=True)
    done = await prune(client, layout, policy, dry_run=False)
    assert sorted(done.plan.remove) == ["pr-0", "pr-1"]
    assert done.untagged == [ghost.digest]
    removed = files_of(images["pr-0"]) | files_of(images["pr-1"]) | files_of(ghost)
    assert blob_files(path) == files_of(images["pr-2"])
    assert done.outcome is not None
    assert set(done.outcome.blobs) | set(done.outcome.deleted) == removed
    assert await repo.list_tags() == ["pr-2"]
    await kept_tags_are_whole(path, repo, tmp_path)


async def test_a_kept_manifest_that_cannot_be_read_stops_the_blob_sweep(
    tmp_path: Path, client: Client
) -> None:
    """What an unreadable kept image references is unknown: untagged manifests still go, no blob."""
    path = tmp_path / "oci"
    layout = f"oci:{path}"
    repo = client.repository(parse_reference(layout))
    kept = multiarch(["linux/amd64"], seed="broken")
    await push(repo, kept, "v1")
    ghost = make_image(seed="broken-ghost")
    await push(repo, ghost)
    image_file = path / "blobs/sha256" / kept.children[0].digest.split(":")[1]
    image_file.write_bytes(b"{ not a manifest")
    before = blob_files(path)
    done = await prune(client, layout, UNTAGGED, dry_run=False)
    assert done.sweep is not None
    assert done.sweep.blobs == {}
    assert done.sweep.skipped is not None
    assert f"kept manifest {kept.children[0].digest[:19]} cannot be read" in done.sweep.skipped
    assert done.to_dict()["blobs"]["skipped"] == done.sweep.skipped
    assert done.outcome is not None
    assert done.outcome.deleted == [ghost.digest]
    assert blob_files(path) == before - {ghost.digest}  # the ghost's config and layer stay
    assert image_file.read_bytes() == b"{ not a manifest"


async def test_links_and_files_in_progress_in_blobs_are_left_alone(tmp_path: Path, client: Client) -> None:
    path = tmp_path / "oci"
    layout = f"oci:{path}"
    repo = client.repository(parse_reference(layout))
    await push(repo, make_image(seed="links"), "v1")
    outside = tmp_path / "outside"
    outside.write_bytes(b"{}")
    blobs = path / "blobs/sha256"
    link = blobs / hashlib.sha256(b"{}").hexdigest()
    link.symlink_to(outside)
    partial = blobs / ".tmp-0123456789abcdef"
    partial.write_bytes(b"half a layer")
    odd = blobs / "not-a-digest"
    odd.write_bytes(b"{}")
    done = await prune(client, layout, UNTAGGED, dry_run=False)
    assert done.plan.empty
    assert done.sweep is not None
    assert done.sweep.blobs == {}
    assert link.is_symlink()
    assert outside.read_bytes() == b"{}"
    assert partial.read_bytes() == b"half a layer"
    assert odd.exists()


def test_cli_prune_untagged_on_a_layout(tmp_path: Path) -> None:
    path = tmp_path / "oci"
    layout = f"oci:{path}"
    old, new = multiarch(seed="cli-old"), multiarch(seed="cli-new")

    async def prepare() -> None:
        async with Client(env={}) as c:
            repo = c.repository(parse_reference(layout))
            await push(repo, old, "latest")
            await push(repo, new, "latest")

    anyio.run(prepare)
    runner, app = CliRunner(), make_app()
    before = snapshot(path)
    dry = runner.invoke(app, ["prune", layout, "--untagged"])
    assert dry.exit_code == 0, dry.output
    assert "5 untagged manifests nothing kept reaches" in dry.stdout
    assert "delete blobs (nothing left references them)" in dry.stdout
    assert "5 manifests, 0 more tags and 8 blobs (" in dry.stdout
    assert snapshot(path) == before
    plan = json.loads(runner.invoke(app, ["prune", layout, "--untagged", "--json"]).stdout)
    assert set(plan) == {
        "repository",
        "policy",
        "dryRun",
        "provider",
        "ageFrom",
        "untaggedRoots",
        "blobs",
        "created",
        "plan",
        "result",
        "requests",
    }
    assert plan["provider"] == "layout"  # an OCI layout, not the registry API
    assert set(plan["untaggedRoots"]) == files_of(old) & {m.digest for m in _manifests(old)}
    assert len(plan["blobs"]["delete"]) == 8
    assert plan["result"] is None
    refused = runner.invoke(app, ["prune", layout, "--untagged", "--max-delete", "4", "--yes"])
    assert refused.exit_code == 8, refused.output
    assert "more than the limit of 4: nothing deleted" in refused.output
    assert snapshot(path) == before
    done = runner.invoke(app, ["prune", layout, "--untagged", "--yes", "--json"])
    assert done.exit_code == 0, done.output
    result = json.loads(done.stdout)["result"]
    assert set(result["deleted"]) == {m.digest for m in _manifests(old)}
    assert len(result["blobs"]) == 8
    assert blob_files(path) == files_of(new)


# -- plain registries: no listing of untagged manifests -----------------------------------------------


async def test_untagged_on_a_plain_registry_names_distributions_garbage_collector(
    registry: RegistryServer, client: Client
) -> None:
    name = f"{registry.host}/{unique('untagged')}"
    await push(client.repository(parse_reference(name)), make_image(seed="plain"), "v1")
    start = client.requests
    with pytest.raises(UsageError) as caught:
        await prune(client, name, UNTAGGED)
    assert client.requests == start  # refused before any request
    assert caught.value.exit_code == 2
    assert caught.value.message == (
        f"{name}: cannot prune untagged manifests: the registry API lists tags, not untagged manifests"
    )
    hint = caught.value.hint or ""
    assert hint.startswith("prune the tags instead: what only they reach")
    assert "on CNCF distribution 3 or later, its own 'registry garbage-collect --delete-untagged'" in hint
    assert "the images of every multi-arch index" in hint


def test_distributions_own_collector_is_what_the_hint_warns_about(tmp_path: Path) -> None:
    """The hint's warning, shown on the distribution here: before 3.0, ``garbage-collect
    --delete-untagged`` deletes the untagged images of a tagged multi-arch index with the ghosts."""
    version = subprocess.run([BINARY, "--version"], capture_output=True, text=True, check=True).stdout
    major = int(version.split()[-1].lstrip("v").split(".")[0])
    server = start_registry(tmp_path / "gc")
    kept, ghost = multiarch(seed="gc-kept"), multiarch(seed="gc-ghost")
    try:

        async def seed() -> None:
            async with Client(env={}) as c:
                repo = c.repository(parse_reference(f"{server.host}/gc/app"))
                await push(repo, kept, "v1")
                await push(repo, ghost)

        anyio.run(seed)
    finally:
        server.stop()
    collect = [BINARY, "garbage-collect", "--delete-untagged", str(server.root / "config.yml")]
    subprocess.run(collect, capture_output=True, check=True)
    left = revisions(server, "gc/app")
    assert kept.digest in left
    assert not left & {ghost.digest, *(c.digest for c in ghost.children)}
    children = {c.digest for c in kept.children}
    assert (children <= left) if major >= 3 else not (children & left), version


def test_cli_untagged_on_a_plain_registry(registry: RegistryServer) -> None:
    name = f"{registry.host}/{unique('untagged')}"
    result = CliRunner().invoke(make_app(), ["prune", name, "--untagged", "--keep-last", "1"])
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 2, result.output  # the error and its hint
    assert "cannot prune untagged manifests: the registry API lists tags" in lines[0]
    assert "registry garbage-collect --delete-untagged" in lines[1]
    assert "prune the tags" in lines[1]
    assert "Traceback" not in result.output
