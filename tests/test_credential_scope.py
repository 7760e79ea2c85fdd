"""Credentials and tokens go to the registry's own origin only, whatever its answers point at."""

from __future__ import annotations

import json

import anyio
import pytest

from splitbuild.auth.environment import registry_env_prefix
from splitbuild.client import Client
from splitbuild.errors import SplitbuildError
from splitbuild.reference import Reference
from splitbuild.retry import NO_RETRY
from tests.faults import Reply, ScriptedServer

USER, PASSWORD = "alice", "S3CRET-PASSWORD"
REFRESH = "REFRESH-SECRET-123"


def authorization_headers(server: ScriptedServer) -> list[str]:
    return [v for seen in server.requests for k, v in seen.headers.items() if k.lower() == "authorization"]


def list_tags(registry: ScriptedServer, env: dict[str, str]) -> tuple[list[str] | None, str]:
    async def run() -> list[str]:
        async with Client(retry=NO_RETRY, env=env) as client:
            return await client.repository(Reference.parse(f"{registry.host}/app")).list_tags()

    try:
        return anyio.run(run), ""
    except SplitbuildError as exc:
        return None, exc.message


def test_a_link_to_another_host_gets_no_credentials() -> None:
    with ScriptedServer() as registry, ScriptedServer() as other:
        challenge = {"WWW-Authenticate": 'Basic realm="registry"'}
        other.add(r"/v2/app/tags/list", Reply(401, b"{}", challenge))
        registry.add(
            r"/v2/app/tags/list",
            Reply(401, b"{}", challenge),
            Reply(
                200,
                json.dumps({"tags": ["a"]}).encode(),
                {"Link": f'<http://{other.host}/v2/app/tags/list?p=2>; rel="next"'},
            ),
        )
        prefix = registry_env_prefix(registry.host)
        tags, error = list_tags(registry, {f"{prefix}USERNAME": USER, f"{prefix}PASSWORD": PASSWORD})
        assert tags is None
        assert other.host in error
        assert authorization_headers(registry), "the registry itself did get the credentials"
        assert other.requests, "the Link was followed"
        assert authorization_headers(other) == []


def test_a_redirected_refresh_token_post_is_not_followed() -> None:
    with ScriptedServer() as registry, ScriptedServer() as tokens, ScriptedServer() as thief:
        registry.add(
            r"/v2/app/tags/list",
            Reply(
                401, b"{}", {"WWW-Authenticate": f'Bearer realm="http://{tokens.host}/token",service="reg"'}
            ),
        )
        tokens.add(r"/token", Reply(307, b"", {"Location": f"http://{thief.host}/steal"}))
        prefix = registry_env_prefix(registry.host)
        tags, error = list_tags(registry, {f"{prefix}IDENTITY_TOKEN": REFRESH})
        assert tags is None
        assert "307" in error
        assert [seen.method for seen in tokens.requests] == ["POST"]
        assert thief.requests == []
        assert REFRESH not in error


@pytest.mark.parametrize("status", [301, 302, 307])
def test_blob_redirects_are_followed_without_credentials(status: int) -> None:
    data = b"layer bytes"
    import hashlib

    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    with ScriptedServer() as registry, ScriptedServer() as storage:
        challenge = {"WWW-Authenticate": 'Basic realm="registry"'}
        registry.add(
            r"/v2/app/blobs/",
            Reply(401, b"{}", challenge),
            Reply(status, b"", {"Location": f"http://{storage.host}/bucket/blob?X-Amz-Signature=abc"}),
        )
        storage.add(r"/bucket/blob", Reply(200, data, {"Content-Type": "application/octet-stream"}))
        prefix = registry_env_prefix(registry.host)
        env = {f"{prefix}USERNAME": USER, f"{prefix}PASSWORD": PASSWORD}

        async def run() -> bytes:
            from splitbuild.models import Descriptor

            async with Client(retry=NO_RETRY, env=env) as client:
                repo = client.repository(Reference.parse(f"{registry.host}/app"))
                return await repo.read_blob(
                    Descriptor(mediaType="application/octet-stream", digest=digest, size=len(data))
                )

        assert anyio.run(run) == data
        assert authorization_headers(registry)
        assert authorization_headers(storage) == []
