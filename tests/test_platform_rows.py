"""The four platform spellings that two parsers once disagreed on (issue 16) give one answer through
every command that takes a platform: ``plan`` (the config), ``merge --platform`` and
``verify --platform``, against the real registry. The answer is the CI grammar's normalisation."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import anyio
import pytest
from typer.testing import CliRunner

from splitbuild.cli.app import make_app
from splitbuild.client import Client
from splitbuild.reference import Reference
from tests.images import make_image, push
from tests.registry_server import RegistryServer

ROWS = [
    ("linux/armel", "linux/arm/v6"),
    ("linux/arm64/v9.0", "linux/arm64/v9"),
    ("Linux/ARM64", "linux/arm64"),
    ("linux/i686", "linux/386"),
]


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(make_app(), list(args), env={"SPLITBUILD_BLOB_CACHE": "0"})
    return result.exit_code, result.stdout, result.stderr


@pytest.mark.parametrize(("text", "normalized"), ROWS)
def test_plan_reads_the_config_spelling_as_the_normalised_platform(
    tmp_path: Path, text: str, normalized: str
) -> None:
    config = tmp_path / "splitbuild.toml"
    config.write_text(f'[image]\nnames = ["ghcr.io/acme/app"]\nplatforms = ["{text}", "linux/amd64"]\n')
    code, out, err = run("plan", "--config", str(config), "--json")
    assert code == 0, err
    legs = [leg["platform"] for leg in json.loads(out)["legs"]]
    assert legs == [normalized, "linux/amd64"]


@pytest.mark.parametrize(("text", "normalized"), ROWS)
def test_merge_and_verify_take_the_spelling_for_the_normalised_platform(
    registry: RegistryServer, text: str, normalized: str
) -> None:
    repo = f"{registry.host}/rows/{uuid.uuid4().hex[:10]}"
    images = [make_image(normalized, seed=text), make_image("linux/amd64", seed=text)]

    async def seed() -> None:
        async with Client(env={}) as client:
            for image in images:
                await push(client.repository(Reference.parse(repo)), image)

    anyio.run(seed)
    sources = [f"{repo}@{image.digest}" for image in images]

    code, out, err = run("merge", "-t", f"{repo}:v1", "--platform", f"{text},linux/amd64", "--json", *sources)
    assert code == 0, err
    assert sorted(p["platform"] for p in json.loads(out)["platforms"]) == sorted([normalized, "linux/amd64"])

    code, out, err = run("verify", f"{repo}:v1", "--platform", f"{text},linux/amd64", "--exact", "--json")
    assert code == 0, out + err
    # and a spelling of another platform is missing, not matched loosely
    other = "linux/arm/v7" if normalized != "linux/arm/v7" else "linux/s390x"
    code, out, err = run("verify", f"{repo}:v1", "--platform", other, "--json")
    assert code == 7, out + err
