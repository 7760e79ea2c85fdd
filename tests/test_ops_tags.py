"""ls (pagination past 1,000 tags, filters) and tag (no data moved, tags already there skipped)."""

from __future__ import annotations

import json

import anyio
import pytest
from typer.testing import CliRunner

from splitbuild.cli.app import make_app
from splitbuild.client import Client
from splitbuild.errors import InvalidInput, UsageError
from splitbuild.ops import add_tags, list_tags, tag_filter
from splitbuild.ops._common import bounded
from splitbuild.reference import Reference
from splitbuild.retry import FAST_RETRY
from tests.images import make_image, push
from tests.ops_support import Paginating, multiarch, unique
from tests.registry_server import RegistryServer

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize(
    ("include", "exclude", "expected"),
    [
        (None, None, ["v1", "v1.2", "sha-abc", "latest", "sha256-x"]),
        ("sha-.*", None, ["sha-abc"]),
        ("v1", None, ["v1"]),  # whole tag: v1.2 does not match "v1"
        (None, "v1.*|latest", ["sha-abc", "sha256-x"]),
        ("sha.*", "sha256-.*", ["sha-abc"]),
    ],
)
def test_tag_filter_matches_whole_tags(include: str | None, exclude: str | None, expected: list[str]) -> None:
    tags = ["v1", "v1.2", "sha-abc", "latest", "sha256-x"]
    selected = tag_filter(include, exclude)
    assert [t for t in tags if selected(t)] == expected


def test_tag_filter_rejects_bad_pattern() -> None:
    with pytest.raises(InvalidInput, match="`include`"):
        tag_filter("v(")


async def test_ls_follows_pagination_past_1000(registry: RegistryServer, client: Client) -> None:
    name = f"{registry.host}/{unique('ls')}"
    repo = client.repository(Reference.parse(name))
    image = make_image(seed="many")
    await push(repo, image)
    tags = [f"t{i:04d}" for i in range(1205)]

    async def put(tag: str) -> None:
        await repo.put_manifest(image.manifest, tag)

    await bounded(tags, put, 16)
    # distribution 2.8 ignores n= and answers with every tag at once
    result = await list_tags(client, name)
    assert sorted(result.tags) == tags
    assert result.total == 1205
    # a registry that pages (n=1000, Link: rel="next") is followed to the end, in order
    paging = Paginating()
    async with Client(retry=FAST_RETRY, env={}, transport=paging) as paged_client:
        paged = await list_tags(paged_client, name)
    assert paged.tags == tags
    assert (paged.requests, paging.pages) == (2, 2)
    filtered = await list_tags(client, name, include=r"t1\d{3}", exclude="t11.*")
    assert sorted(filtered.tags) == [t for t in tags if t.startswith("t1") and not t.startswith("t11")]
    skopeo = await anyio.run_process(["skopeo", "list-tags", "--tls-verify=false", f"docker://{name}"])
    assert sorted(json.loads(skopeo.stdout)["Tags"]) == tags


async def test_tag_adds_without_moving_data(registry: RegistryServer, client: Client) -> None:
    name = f"{registry.host}/{unique('tag')}"
    index = multiarch(seed="tag")
    await push(client.repository(Reference.parse(name)), index, "v1")
    result = await add_tags(client, f"{name}:v1", ["v1.2", "latest"])
    assert result.added == ["v1.2", "latest"]
    assert result.requests == 5  # GET source, 2 HEAD, 2 PUT: no blob request
    again = await add_tags(client, f"{name}@{index.digest}", ["latest", "v1.2.3"])
    assert (again.added, again.unchanged) == (["v1.2.3"], ["latest"])
    repo = client.repository(Reference.parse(name))
    for tag in ("v1", "v1.2", "latest", "v1.2.3"):
        assert (await repo.get_manifest(tag)).raw == index.manifest.raw
    with pytest.raises(UsageError, match="bare tag"):
        await add_tags(client, f"{name}:v1", ["other/repo:v1"])
    with pytest.raises(InvalidInput):
        await add_tags(client, f"{name}:v1", ["-bad"])


def test_cli_ls_and_tag(registry: RegistryServer) -> None:
    name = f"{registry.host}/{unique('tagcli')}"

    async def prepare() -> None:
        async with Client(retry=FAST_RETRY, env={}) as c:
            await push(c.repository(Reference.parse(name)), make_image(seed="cli"), "v1")

    anyio.run(prepare)
    runner = CliRunner()
    app = make_app()
    tagged = runner.invoke(app, ["tag", f"{name}:v1", "v2", "sha-1", "--json"])
    assert tagged.exit_code == 0, tagged.output
    assert json.loads(tagged.stdout)["added"] == ["v2", "sha-1"]
    listed = runner.invoke(app, ["ls", name, "--exclude", "sha-.*"])
    assert sorted(listed.stdout.split()) == ["v1", "v2"]
    listed_json = runner.invoke(app, ["ls", name, "--json", "--include", "sha-.*"])
    assert json.loads(listed_json.stdout)["tags"] == ["sha-1"]
    bad = runner.invoke(app, ["ls", name, "--include", "("])
    assert bad.exit_code == 3
    assert "invalid --include pattern" in bad.stderr
