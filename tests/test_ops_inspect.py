"""inspect: indexes with attestations, images, platform pick, layouts, --raw bytes against skopeo."""

from __future__ import annotations

import json
from pathlib import Path

import anyio
import pytest
from typer.testing import CliRunner

from splitbuild.cli.app import make_app
from splitbuild.client import Client
from splitbuild.errors import InvalidManifest, NotFound
from splitbuild.ops import inspect
from splitbuild.reference import parse_reference
from splitbuild.retry import FAST_RETRY
from tests.images import COSIGN_SIGN, SLSA_V02, make_attestation, make_image, make_sbom, make_signature, push
from tests.ops_support import multiarch, unique
from tests.registry_server import RegistryServer

pytestmark = pytest.mark.anyio

SLSA_V1 = "https://slsa.dev/provenance/v1"


async def seed(client: Client, ref: str, image: object, tag: str) -> None:
    await push(client.repository(parse_reference(ref)), image, tag)  # type: ignore[arg-type]


async def test_index_children_classified_with_their_predicate_types(
    registry: RegistryServer, client: Client
) -> None:
    name = f"{registry.host}/{unique('inspect')}"
    index = multiarch(annotations={"org.opencontainers.image.revision": "abc"})
    await seed(client, name, index, "v1")
    result = await inspect(client, f"{name}:v1", referrers=False)
    assert result.requests == 1 + 2  # the index, then each attestation manifest for its predicates
    assert result.digest == index.digest
    kinds = [(c.kind, c.platform, c.attests_platform, c.predicate_types) for c in result.children]
    slsa = ("https://slsa.dev/provenance/v0.2",)
    assert kinds == [
        ("image", "linux/amd64", None, ()),
        ("image", "linux/arm64", None, ()),
        ("attestation", None, "linux/amd64", slsa),
        ("attestation", None, "linux/arm64", slsa),
    ]
    data = result.to_dict()
    assert data["annotations"] == {"org.opencontainers.image.revision": "abc"}
    assert data["manifests"][2]["attests"] == index.children[0].digest
    assert data["manifests"][2]["predicateTypes"] == list(slsa)
    assert all(m["platform"] != "unknown/unknown" for m in data["manifests"])
    assert "referrers" not in data
    # referrers (the default): the index and each image looked up, and none found; distribution
    # has no referrers API, which the first lookup learns (a 404) as it reads the tag schema
    async with Client(retry=FAST_RETRY, env={}) as fresh:
        full = await inspect(fresh, f"{name}:v1")
    assert full.referrers == []
    assert full.to_dict()["referrers"] == []
    assert full.requests == 3 + 1 + 3


async def test_image_platform_layers_labels(registry: RegistryServer, client: Client) -> None:
    name = f"{registry.host}/{unique('inspect')}"
    image = make_image("linux/arm/v7", layers=2, labels={"org.opencontainers.image.title": "demo"})
    await seed(client, name, image, "arm")
    result = await inspect(client, f"{name}:arm", referrers=False)
    assert result.requests == 2  # manifest + config
    data = result.to_dict()
    assert data["platform"] == "linux/arm/v7"
    assert data["labels"] == {"org.opencontainers.image.title": "demo"}
    assert [layer["digest"] for layer in data["layers"]] == [d.digest for d in image.manifest.image().layers]


async def test_platform_picks_the_child(registry: RegistryServer, client: Client) -> None:
    name = f"{registry.host}/{unique('inspect')}"
    index = multiarch()
    await seed(client, name, index, "v1")
    result = await inspect(client, f"{name}:v1", platform="linux/arm64/v8")
    assert result.digest == index.children[1].digest
    assert result.parent is not None
    assert result.parent.digest == index.digest
    assert str(result.platform) == "linux/arm64"
    with pytest.raises(NotFound, match="no linux/s390x image"):
        await inspect(client, f"{name}:v1", platform="linux/s390x")
    await seed(client, name, make_image(seed="single"), "single")
    with pytest.raises(InvalidManifest, match="single image"):
        await inspect(client, f"{name}:single", platform="linux/amd64")


async def test_layout_reference(tmp_path: Path, client: Client) -> None:
    index = multiarch(seed="layout")
    await seed(client, f"oci:{tmp_path / 'oci'}", index, "v1")
    result = await inspect(client, f"oci:{tmp_path / 'oci'}:v1")
    assert result.digest == index.digest
    assert result.requests == 0
    assert {c.kind for c in result.children} == {"image", "attestation"}


def test_cli_raw_json_and_plain(registry: RegistryServer) -> None:
    name = f"{registry.host}/{unique('inspect')}"
    index = multiarch(seed="cli")

    async def prepare() -> None:
        async with Client(retry=FAST_RETRY, env={}) as c:
            await seed(c, name, index, "v1")

    anyio.run(prepare)
    runner = CliRunner()
    app = make_app()
    raw = runner.invoke(app, ["inspect", "--raw", f"{name}:v1"])
    assert raw.exit_code == 0, raw.output
    assert raw.stdout_bytes == index.manifest.raw
    skopeo = anyio.run(
        anyio.run_process,
        ["skopeo", "inspect", "--raw", "--tls-verify=false", f"docker://{name}:v1"],
    )
    assert skopeo.stdout == raw.stdout_bytes
    as_json = runner.invoke(app, ["inspect", "--json", f"{name}:v1"])
    assert json.loads(as_json.stdout)["digest"] == index.digest
    plain = runner.invoke(app, ["inspect", f"{name}:v1"])
    assert "attestation for linux/amd64" in plain.stdout
    assert "unknown/unknown" not in plain.stdout
    assert plain.stdout.splitlines()[1].split() == ["digest", index.digest]
    both = runner.invoke(app, ["inspect", "--raw", "--json", f"{name}:v1"])
    assert both.exit_code == 2
    missing = runner.invoke(app, ["inspect", f"{name}:absent"])
    assert missing.exit_code == 4
    assert "absent" in missing.stderr


async def test_referrers_shown_as_what_they_are(registry: RegistryServer, client: Client) -> None:
    name = f"{registry.host}/{unique('inspect')}"
    repo = client.repository(parse_reference(name))
    index = multiarch(seed="referrers")
    await push(repo, index, "v1")
    amd64, arm64 = index.children[:2]
    signature = make_signature(index)
    sbom = make_sbom(amd64)
    provenance = make_attestation(arm64, seed="ref", oci_artifact=True, predicate_types=(SLSA_V1,))
    for artifact in (signature, sbom, provenance):
        await push(repo, artifact)
    result = await inspect(client, f"{name}:v1")
    assert result.referrers is not None
    found = {(r.kind, r.subject_platform, r.predicate_types, r.digest) for r in result.referrers}
    assert found == {
        ("signature", None, (COSIGN_SIGN,), signature.digest),
        ("sbom", "linux/amd64", (), sbom.digest),
        ("attestation", "linux/arm64", (SLSA_V1,), provenance.digest),
    }
    data = {r["digest"]: r for r in result.to_dict()["referrers"]}
    assert data[provenance.digest]["subject"] == arm64.digest
    assert data[provenance.digest]["artifactType"] == "application/vnd.docker.attestation.manifest.v1+json"
    picked = await inspect(client, f"{name}:v1", platform="linux/arm64")
    assert [(r.kind, r.subject) for r in picked.referrers or []] == [("attestation", arm64.digest)]


def test_cli_shows_referrers_unless_told_not_to(registry: RegistryServer) -> None:
    name = f"{registry.host}/{unique('inspect')}"
    index = multiarch(seed="cli-referrers")
    provenance = make_attestation(
        index.children[1], seed="cli", oci_artifact=True, predicate_types=(SLSA_V1,)
    )

    async def prepare() -> None:
        async with Client(retry=FAST_RETRY, env={}) as c:
            repo = c.repository(parse_reference(name))
            await seed(c, name, index, "v1")
            await push(repo, make_signature(index))
            await push(repo, provenance)

    anyio.run(prepare)
    runner = CliRunner()
    plain = runner.invoke(make_app(), ["inspect", f"{name}:v1"])
    assert plain.exit_code == 0, plain.output
    lines = plain.stdout.splitlines()
    assert any(line.split()[:3] == ["signature", "for", "this"] for line in lines)
    assert any(
        line.split()[:3] == ["attestation", "for", "linux/arm64"] and SLSA_V1 in line for line in lines
    )
    assert any("attestation for linux/amd64" in line and SLSA_V02 in line for line in lines)
    assert "unknown/unknown" not in plain.stdout
    assert "referrers:" in lines
    off = runner.invoke(make_app(), ["inspect", "--no-referrers", f"{name}:v1"])
    assert "referrers:" not in off.stdout
    assert "referrers" not in json.loads(
        runner.invoke(make_app(), ["inspect", "--json", "--no-referrers", f"{name}:v1"]).stdout
    )
