"""merge against the real registry: attestations, media types, repositories, registries, layouts, safety."""

from __future__ import annotations

import json
import subprocess
import uuid
from collections.abc import Callable
from pathlib import Path

import anyio
import pytest
from typer.testing import CliRunner

from splitbuild.cli.app import make_app
from splitbuild.client import Client
from splitbuild.errors import InvalidInput, NotFound, Refused, RegistryError, VerificationError
from splitbuild.index import Annotations, parse_annotation
from splitbuild.merge import MergeOptions, execute, merge, parse_sources, parse_targets, plan_merge
from splitbuild.models import DOCKER_LIST, OCI_INDEX
from splitbuild.reference import Reference
from splitbuild.retry import FAST_RETRY
from tests.images import make_buildx_index, make_image, push_all, push_all_sync
from tests.registry_server import RegistryServer

pytestmark = pytest.mark.anyio

PLATFORMS = ["linux/amd64", "linux/arm64"]


def name(prefix: str = "merge") -> str:
    return f"{prefix}/{uuid.uuid4().hex[:10]}"


def options(targets: list[str], sources: list[str], **kw: object) -> MergeOptions:
    refs = parse_targets(targets)
    return MergeOptions(targets=refs, sources=parse_sources(sources, refs[0]), **kw)  # type: ignore[arg-type]


async def test_plain_oci_sources_by_bare_digest(registry: RegistryServer, client: Client) -> None:
    repo = f"{registry.host}/{name()}"
    digests = await push_all(client, repo, [make_image(p, seed="plain") for p in PLATFORMS])
    result = await merge(client, options([f"{repo}:v1", f"{repo}:latest"], digests, platforms=PLATFORMS))
    assert result.pushed == [f"{repo}:v1", f"{repo}:latest"]
    index = await client.repository(Reference.parse(repo)).get_manifest("latest")
    assert index.digest == result.plan.index.digest
    assert index.media_type == OCI_INDEX
    assert [(c.platform.key if c.platform else None, c.digest) for c in index.children()] == list(
        zip(PLATFORMS, digests, strict=True)
    )
    # sources in the target repository: 2 manifest GETs, then 2 config GETs beside 2 tag GETs
    # (those are the re-check: nothing is copied), then per tag the PUT (the index goes in with
    # it: no PUT by digest) and a HEAD (read back)
    assert result.requests == 2 + 2 + 2 + 2 * 2


async def test_rerun_is_idempotent_and_skips_tags_already_there(
    registry: RegistryServer, client: Client
) -> None:
    repo = f"{registry.host}/{name()}"
    digests = await push_all(client, repo, [make_image(p, seed="rerun") for p in PLATFORMS])
    first = await merge(client, options([f"{repo}:v1"], digests))
    async with Client(retry=FAST_RETRY, env={}) as again:
        second = await merge(again, options([f"{repo}:v1", f"{repo}:v2"], digests))
    assert second.plan.index.digest == first.plan.index.digest
    assert second.unchanged == [f"{repo}:v1"]
    assert second.pushed == [f"{repo}:v2"]


async def test_attested_buildx_sources_are_flattened(registry: RegistryServer, client: Client) -> None:
    repo = f"{registry.host}/{name('attested')}"
    indexes = [make_buildx_index(make_image(p, seed="att"), p, seed="att") for p in PLATFORMS]
    digests = await push_all(client, repo, indexes)
    result = await merge(client, options([f"{repo}:v1"], digests, platforms=PLATFORMS))
    doc = json.loads(result.plan.index.raw)
    kinds = [
        (m["platform"]["architecture"], m.get("annotations", {}).get("vnd.docker.reference.type"))
        for m in doc["manifests"]
    ]
    assert kinds == [
        ("amd64", None),
        ("arm64", None),
        ("unknown", "attestation-manifest"),
        ("unknown", "attestation-manifest"),
    ]
    images = {m["digest"] for m in doc["manifests"][:2]}
    assert {m["annotations"]["vnd.docker.reference.digest"] for m in doc["manifests"][2:]} == images
    # platforms came from the source index descriptors: no config reads, no child GETs;
    # the tag: GET (plan, and the re-check), PUT, HEAD (read back)
    assert result.requests == 2 + 1 + 1 + 1


async def test_docker_schema2_sources_make_a_docker_list(registry: RegistryServer, client: Client) -> None:
    repo = f"{registry.host}/{name('docker')}"
    digests = await push_all(client, repo, [make_image(p, docker=True, seed="d") for p in PLATFORMS])
    result = await merge(client, options([f"{repo}:v1"], digests))
    assert result.plan.index.media_type == DOCKER_LIST
    ann = Annotations()
    parse_annotation("index:org.opencontainers.image.version=1.0", ann)
    with_ann = await merge(client, options([f"{repo}:v2"], digests, annotations=ann))
    assert with_ann.plan.index.media_type == OCI_INDEX
    got = await client.repository(Reference.parse(repo)).get_manifest("v2")
    assert json.loads(got.raw)["annotations"] == {"org.opencontainers.image.version": "1.0"}


async def test_cross_repository_sources_are_mounted(registry: RegistryServer, client: Client) -> None:
    src = f"{registry.host}/{name('src')}"
    dst = f"{registry.host}/{name('dst')}"
    digests = await push_all(client, src, [make_image(p, seed="xrepo", layers=2) for p in PLATFORMS])
    result = await merge(client, options([f"{dst}:v1"], [f"{src}@{d}" for d in digests]))
    target = client.repository(Reference.parse(dst))
    index = await target.get_manifest("v1")
    for child in index.children():
        manifest = await target.get_manifest(child.digest)
        for blob in manifest.blobs():
            assert await target.has_blob(blob.digest)
    assert result.pushed == [f"{dst}:v1"]


async def test_two_registries_and_a_layout_as_targets(
    registry: RegistryServer, registry2: RegistryServer, client: Client, tmp_path: Path
) -> None:
    repo = f"{registry.host}/{name('multi')}"
    other = f"{registry2.host}/{name('multi')}"
    layout = tmp_path / "oci"
    indexes = [make_buildx_index(make_image(p, seed="two"), p, seed="two") for p in PLATFORMS]
    digests = await push_all(client, repo, indexes)
    targets = [f"{repo}:v1", f"{other}:v1", f"{other}:latest", f"oci:{layout}:v1"]
    result = await merge(client, options(targets, digests))
    assert result.pushed == targets
    raw = result.plan.index.raw
    for text in (f"{other}:latest",):
        got = await client.repository(Reference.parse(text.rsplit(":", 1)[0])).get_manifest("latest")
        assert got.raw == raw
    skopeo = await anyio.run_process(["skopeo", "inspect", "--raw", f"oci:{layout}:v1"])
    assert skopeo.stdout == raw
    # every child (images and attestations) and their blobs reached the second registry and the layout
    copied = await anyio.run_process(
        [
            "skopeo",
            "copy",
            "--all",
            "--src-tls-verify=false",
            f"docker://{other}:v1",
            f"dir:{tmp_path / 'dir'}",
        ],
    )
    assert copied.returncode == 0, copied.stderr


async def test_duplicate_platform_pushes_nothing(registry: RegistryServer, client: Client) -> None:
    repo = f"{registry.host}/{name('dup')}"
    digests = await push_all(client, repo, [make_image("linux/amd64", seed=s) for s in ("a", "b")])
    before = client.requests
    with pytest.raises(InvalidInput, match="duplicate platform linux/amd64"):
        await merge(client, options([f"{repo}:v1"], digests))
    assert await client.repository(Reference.parse(repo)).head_manifest("v1") is None
    assert client.requests - before >= 4


async def test_platform_set_mismatch(registry: RegistryServer, client: Client) -> None:
    repo = f"{registry.host}/{name('set')}"
    digests = await push_all(client, repo, [make_image(p, seed="set") for p in PLATFORMS])
    with pytest.raises(VerificationError, match="missing linux/arm/v7"):
        await merge(client, options([f"{repo}:v1"], digests, platforms=[*PLATFORMS, "linux/arm/v7"]))
    assert await client.repository(Reference.parse(repo)).head_manifest("v1") is None


async def test_shrink_is_refused_unless_allowed(registry: RegistryServer, client: Client) -> None:
    repo = f"{registry.host}/{name('shrink')}"
    digests = await push_all(
        client, repo, [make_image(p, seed="shrink") for p in [*PLATFORMS, "linux/arm/v7"]]
    )
    full = await merge(client, options([f"{repo}:v1", f"{repo}:stable"], digests))
    with pytest.raises(Refused, match="lacks linux/arm/v7"):
        await merge(client, options([f"{repo}:v1", f"{repo}:v2"], digests[:2]))
    target = client.repository(Reference.parse(repo))
    assert (await target.head_manifest("v1")).digest == full.plan.index.digest  # type: ignore[union-attr]
    assert await target.head_manifest("v2") is None
    smaller = await merge(client, options([f"{repo}:v1"], digests[:2], allow_shrink=True))
    assert (await target.head_manifest("v1")).digest == smaller.plan.index.digest  # type: ignore[union-attr]
    assert (await target.head_manifest("stable")).digest == full.plan.index.digest  # type: ignore[union-attr]


async def test_missing_source_names_it(registry: RegistryServer, client: Client) -> None:
    repo = f"{registry.host}/{name('missing')}"
    absent = "sha256:" + "1" * 64
    with pytest.raises(NotFound, match=f"source {absent}"):
        await merge(client, options([f"{repo}:v1"], [absent]))


async def test_dry_run_writes_nothing(registry: RegistryServer, client: Client) -> None:
    repo = f"{registry.host}/{name('dry')}"
    digests = await push_all(client, repo, [make_image(p, seed="dry") for p in PLATFORMS])
    result = await merge(client, options([f"{repo}:v1"], digests), dry_run=True)
    assert result.dry_run
    assert result.plan.planned_writes() == [f"PUT {repo}:v1"]
    assert await client.repository(Reference.parse(repo)).head_manifest("v1") is None


# -- the command line ----------------------------------------------------------------------------

runner = CliRunner()


def cli(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    result = runner.invoke(make_app(), list(args), env=env)
    return result.exit_code, result.stdout, result.stderr


def test_cli_digests_dir_json_and_github_outputs(registry: RegistryServer, tmp_path: Path) -> None:
    repo = f"{registry.host}/{name('cli')}"
    digests = push_all_sync(repo, [make_image(p, seed="cli") for p in PLATFORMS])
    ddir = tmp_path / "digests"
    ddir.mkdir()
    (ddir / digests[0].split(":")[1]).write_text("")  # docker's recipe: empty file named by hex
    (ddir / "arm64.txt").write_text(digests[1] + "\n")
    summary, output = tmp_path / "summary.md", tmp_path / "output"
    env = {"GITHUB_ACTIONS": "true", "GITHUB_STEP_SUMMARY": str(summary), "GITHUB_OUTPUT": str(output)}
    code, out, err = cli(
        "merge",
        "-t",
        f"{repo}:1.0",
        "-t",
        f"{repo}:latest",
        "--digests-dir",
        str(ddir),
        "--platform",
        "linux/amd64,linux/arm64",
        "--json",
        env=env,
    )
    assert code == 0, err
    data = json.loads(out)
    assert data["tags"] == [f"{repo}:1.0", f"{repo}:latest"]
    assert sorted(p["digest"] for p in data["platforms"]) == sorted(digests)
    assert data["requests"] == 10  # as in test_plain_oci_sources_by_bare_digest
    assert output.read_text() == f"digest={data['digest']}\n"
    assert data["digest"] in summary.read_text()
    assert "linux/arm64" in summary.read_text()
    inspect = subprocess.run(
        ["docker", "manifest", "inspect", "--insecure", f"{repo}:latest"], capture_output=True, text=True
    )
    assert inspect.returncode == 0, inspect.stderr
    assert {m["platform"]["architecture"] for m in json.loads(inspect.stdout)["manifests"]} == {
        "amd64",
        "arm64",
    }


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["merge", "sha256:abc"], 2, "no target"),
        (["merge", "-t", "Bad/Name:v1", "sha256:" + "a" * 64], 3, "invalid reference"),
        (["merge", "-t", "127.0.0.1:1/x/y", "sha256:" + "a" * 64], 2, "must name a tag"),
        (["merge", "-t", "127.0.0.1:1/x/y:v1", "sha256:xyz"], 3, "invalid digest"),
        (["merge", "-t", "127.0.0.1:1/x/y:v1", "--digests-dir", "/nonexistent"], 3, "not a directory"),
        (
            ["merge", "-t", "127.0.0.1:1/x/y:v1", "sha256:" + "a" * 64, "--annotation", "manifest:k=v"],
            2,
            "cannot be applied",
        ),
        (
            ["merge", "-t", "127.0.0.1:1/x/y:v1", "sha256:" + "a" * 64, "--platform", "linux"],
            3,
            "malformed platform",
        ),
    ],
)
def test_cli_bad_input_gives_one_line_and_exit_code(args: list[str], code: int, message: str) -> None:
    got, out, err = cli(*args)
    assert got == code, (out, err)
    assert message in err
    assert "Traceback" not in err + out
    assert err.count("\n") <= 2


def test_cli_unreachable_registry_is_a_registry_error() -> None:
    got, _, err = cli(
        "merge", "-t", "127.0.0.1:9/x/y:v1", "sha256:" + "a" * 64, env={"SPLITBUILD_RETRY_ATTEMPTS": "1"}
    )
    assert got == 5, err
    assert "127.0.0.1:9" in err


def test_cli_shrink_exit_code(registry: RegistryServer) -> None:
    repo = f"{registry.host}/{name('cli-shrink')}"
    digests = push_all_sync(repo, [make_image(p, seed="cs") for p in PLATFORMS])
    assert cli("merge", "-t", f"{repo}:v1", *digests)[0] == 0
    code, _, err = cli("merge", "-t", f"{repo}:v1", digests[0])
    assert code == 8
    assert "--allow-shrink" in err


async def test_failure_before_tags_changes_no_tag(
    registry: RegistryServer, registry_factory: Callable[..., RegistryServer]
) -> None:
    doomed = registry_factory()
    repo = f"{registry.host}/{name('atomic')}"
    other = f"{doomed.host}/{name('atomic')}"
    async with Client(retry=FAST_RETRY, env={}) as client:
        digests = await push_all(client, repo, [make_image(p, seed="atomic") for p in PLATFORMS])
        old = await merge(client, options([f"{repo}:v1"], digests, platforms=PLATFORMS))
        new_sources = [make_image(p, seed="atomic-2") for p in PLATFORMS]
        new_digests = await push_all(client, repo, new_sources)
        plan = await plan_merge(client, options([f"{repo}:v1", f"{other}:v1"], new_digests))
        doomed.stop()  # the second registry goes away after planning, before any write
        with pytest.raises(RegistryError, match=doomed.host):
            await execute(client, plan)
        # the first registry's tag still points at the old index: tags move only after every
        # target repository holds the children and the index
        current = await client.repository(Reference.parse(repo)).head_manifest("v1")
        assert current is not None
        assert current.digest == old.plan.index.digest


def test_cli_unwritable_github_summary_is_a_warning(registry: RegistryServer, tmp_path: Path) -> None:
    repo = f"{registry.host}/{name('gh-warn')}"
    digests = push_all_sync(repo, [make_image(p, seed="ghw") for p in PLATFORMS])
    env = {"GITHUB_ACTIONS": "true", "GITHUB_STEP_SUMMARY": str(tmp_path / "missing" / "summary.md")}
    code, out, err = cli("merge", "-t", f"{repo}:v1", "--json", *digests, env=env)
    assert code == 0, err
    assert json.loads(out)["tags"] == [f"{repo}:v1"]
    assert err.startswith("splitbuild: warning: could not write $GITHUB_STEP_SUMMARY")
