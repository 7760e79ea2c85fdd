"""verify: platform sets (at least / exact), missing children, single images, exit code 7."""

from __future__ import annotations

import json

import anyio
import httpx
import pytest
from typer.testing import CliRunner

from splitbuild.cli.app import make_app
from splitbuild.client import Client
from splitbuild.errors import UsageError
from splitbuild.ops import verify
from splitbuild.reference import parse_reference
from splitbuild.retry import FAST_RETRY
from tests.images import make_attestation, make_image, make_signature, push
from tests.ops_support import multiarch, unique
from tests.registry_server import RegistryServer

pytestmark = pytest.mark.anyio

THREE = ["linux/amd64", "linux/arm64", "linux/arm/v7"]


async def test_platform_sets(registry: RegistryServer, client: Client) -> None:
    name = f"{registry.host}/{unique('verify')}"
    index = multiarch(THREE, seed="sets")
    await push(client.repository(parse_reference(name)), index, "v1")
    ok = await verify(client, [f"{name}:v1"], ["linux/amd64", "linux/arm64/v8"])
    assert ok.ok
    assert ok.checks[0].platforms == THREE
    assert ok.requests == 1 + 6  # the index, then a HEAD per child
    exact = await verify(client, [f"{name}:v1"], ["linux/amd64", "linux/arm64"], exact=True)
    assert not exact.ok
    assert exact.checks[0].unexpected == ["linux/arm/v7"]
    missing = await verify(client, [f"{name}:v1", f"{name}@{index.digest}"], [*THREE, "linux/s390x"])
    assert [c.missing for c in missing.checks] == [["linux/s390x"], ["linux/s390x"]]
    assert missing.checks[0].summary() == "missing linux/s390x"
    with pytest.raises(UsageError):
        await verify(client, [f"{name}:v1"], [])


async def test_missing_child_single_image_and_absent_tag(registry: RegistryServer, client: Client) -> None:
    name = f"{registry.host}/{unique('verify')}"
    repo = client.repository(parse_reference(name))
    index = multiarch(seed="broken")
    await push(repo, index, "v1")
    await push(repo, make_image(seed="single"), "single")
    await repo.delete_manifest(index.children[1].digest)  # the arm64 image
    result = await verify(client, [f"{name}:v1", f"{name}:single", f"{name}:absent"], ["linux/amd64"])
    broken, single, absent = result.checks
    assert broken.missing == []
    assert broken.problems == [f"child {index.children[1].digest[:19]} (linux/arm64): missing"]
    assert single.problems == ["a single image, not an index"]
    assert absent.problems == ["not found"]
    assert [c.reference for c in result.failed] == [f"{name}:v1", f"{name}:single", f"{name}:absent"]
    deep = await verify(client, [f"{name}:v1"], ["linux/amd64"], deep=True)
    assert deep.checks[0].problems == broken.problems


async def test_deep_finds_a_missing_blob(registry: RegistryServer, client: Client) -> None:
    path = unique("verify")
    name = f"{registry.host}/{path}"
    index = multiarch(seed="blob")
    await push(client.repository(parse_reference(name)), index, "v1")
    intact = await verify(client, [f"{name}:v1"], ["linux/amd64", "linux/arm64"], deep=True)
    assert intact.ok
    assert intact.requests == 1 + 4 + 8  # the index, a GET per child, a HEAD per blob
    layer = index.children[0].manifest.image().layers[0].digest
    async with httpx.AsyncClient() as http:
        response = await http.delete(f"{registry.url}/v2/{path}/blobs/{layer}")
    assert response.status_code == 202
    shallow = await verify(client, [f"{name}:v1"], ["linux/amd64", "linux/arm64"])
    assert shallow.ok  # a HEAD per child does not look at blobs
    deep = await verify(client, [f"{name}:v1"], ["linux/amd64", "linux/arm64"], deep=True)
    child = index.children[0].digest
    assert deep.checks[0].problems == [f"child {child[:19]} (linux/amd64): blob {layer[:19]} missing"]


def test_cli_verify_exit_codes(registry: RegistryServer) -> None:
    name = f"{registry.host}/{unique('verifycli')}"

    async def prepare() -> None:
        async with Client(retry=FAST_RETRY, env={}) as c:
            await push(c.repository(parse_reference(name)), multiarch(seed="cli"), "v1")

    anyio.run(prepare)
    runner = CliRunner()
    app = make_app()
    ok = runner.invoke(app, ["verify", f"{name}:v1", "--platform", "linux/amd64,linux/arm64", "--exact"])
    assert ok.exit_code == 0, ok.output
    assert ok.stdout.startswith("ok  ")
    bad = runner.invoke(
        app, ["verify", f"{name}:v1", "--platform", "linux/amd64", "--platform", "linux/ppc64le"]
    )
    assert bad.exit_code == 7
    assert "FAIL" in bad.stdout
    assert "missing linux/ppc64le" in bad.stderr
    as_json = runner.invoke(app, ["verify", f"{name}:v1", "--platform", "linux/s390x", "--json"])
    assert as_json.exit_code == 7
    data = json.loads(as_json.stdout)
    assert data["ok"] is False
    assert data["references"][0]["missing"] == ["linux/s390x"]
    bad_platform = runner.invoke(app, ["verify", f"{name}:v1", "--platform", "linux"])
    assert bad_platform.exit_code == 3


async def test_require_attestations_in_the_index_or_among_referrers(
    registry: RegistryServer, client: Client
) -> None:
    name = f"{registry.host}/{unique('verify')}"
    repo = client.repository(parse_reference(name))
    two = ["linux/amd64", "linux/arm64"]
    await push(repo, multiarch(two, seed="attested"), "attested")
    attested = await verify(client, [f"{name}:attested"], two, require_attestations=True)
    assert attested.ok
    assert attested.requests == 1 + 4  # every image attested in the index: no referrers lookup
    plain = multiarch(two, seed="plain", attest=False)
    await push(repo, plain, "plain")
    assert (await verify(client, [f"{name}:plain"], two)).ok
    bare = await verify(client, [f"{name}:plain"], two, require_attestations=True)
    assert bare.checks[0].unattested == two
    assert bare.checks[0].summary() == "no attestation for linux/amd64, linux/arm64"
    assert bare.to_dict()["requireAttestations"] is True
    # an attestation pushed with a subject (BuildKit's oci-artifact=true, outside any index)
    # counts for its image; a signature does not
    await push(repo, make_attestation(plain.children[1], seed="referrer", oci_artifact=True))
    await push(repo, make_signature(plain.children[0]))
    half = await verify(client, [f"{name}:plain"], two, require_attestations=True)
    assert half.checks[0].unattested == ["linux/amd64"]
    assert half.to_dict()["references"][0]["unattested"] == ["linux/amd64"]


def test_cli_require_attestations(registry: RegistryServer) -> None:
    name = f"{registry.host}/{unique('verifycli')}"

    async def prepare() -> None:
        async with Client(retry=FAST_RETRY, env={}) as c:
            repo = c.repository(parse_reference(name))
            await push(repo, multiarch(seed="cli-att"), "attested")
            await push(repo, multiarch(seed="cli-plain", attest=False), "plain")

    anyio.run(prepare)
    runner = CliRunner()
    app = make_app()
    args = ["--platform", "linux/amd64,linux/arm64", "--require-attestations"]
    ok = runner.invoke(app, ["verify", f"{name}:attested", *args])
    assert ok.exit_code == 0, ok.output
    assert ok.stdout.rstrip().endswith("linux/amd64, linux/arm64 (attested)")
    bad = runner.invoke(app, ["verify", f"{name}:plain", *args])
    assert bad.exit_code == 7
    assert "no attestation for linux/amd64, linux/arm64" in bad.stderr
