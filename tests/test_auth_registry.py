"""Auth against real registries: htpasswd basic auth, and distribution with ``auth: token``
trusting the test token service (``tests/token_server.py``), so scopes are enforced for real."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from splitbuild.auth import AuthSession, Credential, StaticKeychain, default_keychain
from splitbuild.errors import AuthError, RegistryError
from tests.constants import TEST_PASSWORD, TEST_USER
from tests.credential_helper import write_helper
from tests.registry_server import RegistryServer
from tests.token_server import TokenServer, start_token_server

ALICE = ("alice", "alice-pw-secret-0xA1")
READER = ("reader", "reader-pw-secret-0xB2")
REFRESH = "refresh-token-secret-0xC3"
SECRETS = (ALICE[1], READER[1], REFRESH, TEST_PASSWORD)
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


@pytest.fixture(scope="module")
def tokens(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TokenServer]:
    server = start_token_server(
        tmp_path_factory.mktemp("token-service"),
        users=dict([ALICE, READER]),
        refresh_tokens={REFRESH: "alice"},
        grants={
            "alice": {"acme/*": ("pull", "push", "delete"), "public/*": ("pull",)},
            "reader": {"acme/*": ("pull",)},
            None: {"public/*": ("pull",)},
        },
    )
    yield server
    server.stop()


@pytest.fixture
def token_log(tokens: TokenServer) -> TokenServer:
    tokens.reset()
    return tokens


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


class Client:
    """Raw distribution-API calls through one AsyncClient and one AuthSession, counting requests."""

    def __init__(self, server: RegistryServer, session: AuthSession, http: httpx.AsyncClient) -> None:
        self.server = server
        self.session = session
        self.http = http
        self.requests = 0

    async def send(self, method: str, path: str, scopes: tuple[str, ...], **kwargs: Any) -> httpx.Response:
        if "/manifests/" in path and method in ("GET", "HEAD"):
            kwargs.setdefault("headers", {"Accept": OCI_MANIFEST})
        request = self.http.build_request(method, f"{self.server.url}{path}", **kwargs)
        return await self.http.send(request, auth=self.session.auth_for(self.server.host, scopes))

    async def push_blob(self, repo: str, data: bytes, scopes: tuple[str, ...] | None = None) -> str:
        scopes = scopes or (f"repository:{repo}:pull,push",)
        started = await self.send("POST", f"/v2/{repo}/blobs/uploads/", scopes)
        assert started.status_code == 202, started.text
        location = httpx.URL(started.headers["Location"])
        digest = sha256(data)
        done = await self.send(
            "PUT", location.copy_merge_params({"digest": digest}).raw_path.decode(), scopes, content=data
        )
        assert done.status_code == 201, done.text
        return digest

    async def push_manifest(self, repo: str, tag: str) -> str:
        config = json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers"}}).encode()
        layer = f"layer of {repo}:{tag}".encode()
        scopes = (f"repository:{repo}:pull,push",)
        manifest = json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": {
                    "mediaType": "application/vnd.oci.image.config.v1+json",
                    "digest": await self.push_blob(repo, config, scopes),
                    "size": len(config),
                },
                "layers": [
                    {
                        "mediaType": "application/vnd.oci.image.layer.v1.tar",
                        "digest": await self.push_blob(repo, layer, scopes),
                        "size": len(layer),
                    }
                ],
            }
        ).encode()
        put = await self.send(
            "PUT",
            f"/v2/{repo}/manifests/{tag}",
            scopes,
            content=manifest,
            headers={"Content-Type": "application/vnd.oci.image.manifest.v1+json"},
        )
        assert put.status_code == 201, put.text
        return sha256(manifest)


def make_client(server: RegistryServer, credential: Credential | None, **kwargs: Any) -> Client:
    keychain = StaticKeychain({server.host: credential} if credential else {})
    session = AuthSession(keychain, **kwargs)
    client = Client(server, session, httpx.AsyncClient(timeout=10))

    async def count(request: httpx.Request) -> None:
        client.requests += 1

    client.http.event_hooks["request"].append(count)
    return client


def assert_no_secret(*texts: object) -> None:
    for text in texts:
        for secret in SECRETS:
            assert secret not in str(text)


# -- token auth --------------------------------------------------------------------------------
@pytest.mark.anyio
async def test_token_registry_push_and_pull_with_scopes(
    token_registry: RegistryServer, token_log: TokenServer
) -> None:
    alice = make_client(token_registry, Credential(*ALICE))
    async with alice.http:
        digest = await alice.push_manifest("acme/app", "v1")
        first_contact = alice.requests
        # 1 x 401 + 1 token + 3 requests per blob (POST, PUT) x2 + manifest PUT, no other 401
        assert first_contact == 2 + 2 * 2 + 1
        assert [(e.method, e.account, e.scopes) for e in token_log.requests] == [
            ("GET", "alice", ("repository:acme/app:pull,push",))
        ]
        pulled = await alice.send(
            "GET",
            "/v2/acme/app/manifests/v1",
            ("repository:acme/app:pull",),
        )
        assert pulled.status_code == 200
        assert sha256(pulled.content) == digest
        assert alice.requests == first_contact + 2, "another scope set: one token request up front, no 401"

    reader = make_client(token_registry, Credential(*READER))
    async with reader.http:
        got = await reader.send("HEAD", "/v2/acme/app/manifests/v1", ("repository:acme/app:pull",))
        assert got.status_code == 200
        with pytest.raises(AuthError) as info:
            await reader.send("POST", "/v2/acme/app/blobs/uploads/", ("repository:acme/app:pull,push",))
    port = token_registry.port
    assert (
        str(info.value) == f"127.0.0.1:{port} refused push access to repository acme/app (401 UNAUTHORIZED)"
    )
    assert info.value.status == 401
    assert info.value.hint is not None
    assert_no_secret(info.value, repr(info.value), info.value.hint)


@pytest.mark.anyio
async def test_token_registry_anonymous_access(
    token_registry: RegistryServer, token_log: TokenServer
) -> None:
    alice = make_client(token_registry, Credential(*ALICE))
    async with alice.http:
        with pytest.raises(AuthError, match=r"refused push access to repository public/base"):
            await alice.push_manifest("public/base", "v1")

    anonymous = make_client(token_registry, None)
    async with anonymous.http:
        listed = await anonymous.send("GET", "/v2/public/base/tags/list", ("repository:public/base:pull",))
        assert listed.status_code == 404  # allowed to look, nothing there
        with pytest.raises(AuthError) as info:
            await anonymous.send("GET", "/v2/acme/app/tags/list", ("repository:acme/app:pull",))
    assert "refused pull access to repository acme/app (401 UNAUTHORIZED)" in str(info.value)
    assert info.value.hint is not None
    assert f"SPLITBUILD_AUTH_127_0_0_1_{token_registry.port}_USERNAME" in info.value.hint
    assert [(e.account, e.scopes) for e in token_log.requests] == [
        ("alice", ("repository:public/base:pull,push",)),
        (None, ("repository:public/base:pull",)),  # anonymous from here on
        (None, ("repository:acme/app:pull",)),
    ]


@pytest.mark.anyio
async def test_token_registry_wrong_password(token_registry: RegistryServer) -> None:
    wrong = make_client(token_registry, Credential("alice", READER[1], source="test keychain"))
    async with wrong.http:
        with pytest.raises(AuthError) as info:
            await wrong.send("GET", "/v2/acme/app/tags/list", ("repository:acme/app:pull",))
    assert str(info.value).startswith(
        f"127.0.0.1:{token_registry.port}: token service 127.0.0.1 refused the credentials for pull access"
    )
    assert info.value.hint == "credentials from test keychain"
    assert_no_secret(info.value, repr(info.value), info.value.url, info.value.details)


@pytest.mark.anyio
async def test_token_registry_identity_token(token_registry: RegistryServer, tokens: TokenServer) -> None:
    tokens.reset()
    tokens.rotate_refresh_tokens = True
    try:
        client = make_client(token_registry, Credential(identity_token=REFRESH))
        async with client.http:
            await client.push_manifest("acme/identity", "v1")
            got = await client.send(
                "HEAD", "/v2/acme/identity/manifests/v1", ("repository:acme/identity:pull",)
            )
            assert got.status_code == 200
    finally:
        tokens.rotate_refresh_tokens = False
    posts = [e for e in tokens.requests if e.method == "POST"]
    assert [e.account for e in posts] == ["alice", "alice"]
    assert posts[0].params["refresh_token"] == [REFRESH]
    assert posts[1].params["refresh_token"] != [REFRESH], "the rotated refresh token is used next"
    assert posts[0].params["grant_type"] == ["refresh_token"]


@pytest.mark.anyio
async def test_token_registry_cross_repository_mount(
    token_registry: RegistryServer, token_log: TokenServer
) -> None:
    alice = make_client(token_registry, Credential(*ALICE))
    async with alice.http:
        digest = await alice.push_blob("acme/base", b"shared layer bytes")
        both = ("repository:acme/derived:pull,push", "repository:acme/base:pull")
        mounted = await alice.send(
            "POST", f"/v2/acme/derived/blobs/uploads/?mount={digest}&from=acme/base", both
        )
        assert mounted.status_code == 201
        assert mounted.headers["Docker-Content-Digest"] == digest
        assert token_log.requests[-1].scopes == both

        # Asked without the source scope: the registry's challenge names it, the flow adds it
        # (new resource first) and retries once.
        target_only = ("repository:acme/third:pull,push",)
        before = alice.requests
        mounted = await alice.send(
            "POST", f"/v2/acme/third/blobs/uploads/?mount={digest}&from=acme/base", target_only
        )
        assert mounted.status_code == 201
        assert token_log.requests[-1].scopes == (
            "repository:acme/base:pull",
            "repository:acme/third:pull,push",
        )
        assert alice.requests - before == 4  # token, 401, token with both scopes, mount

        # No pull right on the source: the registry refuses, naming the source repository.
        with pytest.raises(AuthError) as info:
            await alice.send(
                "POST",
                f"/v2/acme/fourth/blobs/uploads/?mount={digest}&from=private/x",
                ("repository:acme/fourth:pull,push",),
            )
    assert str(info.value) == (
        f"127.0.0.1:{token_registry.port} refused pull access to repository private/x (401 UNAUTHORIZED)"
    )


@pytest.mark.anyio
async def test_token_registry_expired_token_is_refreshed(
    token_registry: RegistryServer, token_log: TokenServer
) -> None:
    skew = {"seconds": 0.0}
    client = make_client(token_registry, Credential(*ALICE), clock=lambda: time.time() + skew["seconds"])
    scopes = ("repository:acme/app:pull",)
    async with client.http:
        for _ in range(3):
            assert (await client.send("GET", "/v2/acme/app/tags/list", scopes)).status_code in (200, 404)
        assert len(token_log.requests) == 1
        skew["seconds"] += token_log.expires_in + 1
        assert (await client.send("GET", "/v2/acme/app/tags/list", scopes)).status_code in (200, 404)
    assert len(token_log.requests) == 2
    assert client.requests == 2 + 3 + 2


@pytest.mark.anyio
async def test_token_service_unavailable_is_retryable(
    token_registry: RegistryServer, token_log: TokenServer
) -> None:
    token_log.fail_next.append(503)
    client = make_client(token_registry, Credential(*ALICE))
    async with client.http:
        with pytest.raises(RegistryError) as info:
            await client.send("GET", "/v2/acme/app/tags/list", ("repository:acme/app:pull",))
        assert info.value.retryable
        assert info.value.retry_after == 1.0
        assert not isinstance(info.value, AuthError)
        retried = await client.send("GET", "/v2/acme/app/tags/list", ("repository:acme/app:pull",))
        assert retried.status_code in (200, 404)


@pytest.mark.anyio
async def test_token_registry_concurrent_requests_share_one_token(
    token_registry: RegistryServer, token_log: TokenServer
) -> None:
    client = make_client(token_registry, Credential(*ALICE))
    statuses: list[int] = []

    async def head(i: int) -> None:
        response = await client.send(
            "HEAD", f"/v2/acme/app/blobs/sha256:{i:064x}", ("repository:acme/app:pull",)
        )
        statuses.append(response.status_code)

    async with client.http, anyio.create_task_group() as tg:
        for i in range(12):
            tg.start_soon(head, i)
    assert statuses == [404] * 12
    assert len(token_log.requests) == 1
    assert client.requests == 1 + 1 + 12


@pytest.mark.anyio
async def test_default_keychain_sources_against_token_registry(
    token_registry: RegistryServer, token_log: TokenServer, tmp_path: Path
) -> None:
    prefix = f"SPLITBUILD_AUTH_127_0_0_1_{token_registry.port}_"
    env = {"HOME": str(tmp_path / "home"), f"{prefix}USERNAME": ALICE[0], f"{prefix}PASSWORD": ALICE[1]}
    from_env = AuthSession(default_keychain(env))
    async with httpx.AsyncClient() as http:
        client = Client(token_registry, from_env, http)
        await client.push_manifest("acme/from-env", "v1")

    helper_env = write_helper(
        tmp_path,
        {token_registry.host: {"stdout": json.dumps({"Username": ALICE[0], "Secret": ALICE[1]}), "exit": 0}},
    )
    docker_config = tmp_path / "docker"
    docker_config.mkdir()
    (docker_config / "config.json").write_text(json.dumps({"credsStore": "test"}))
    helper_env["DOCKER_CONFIG"] = str(docker_config)
    from_helper = AuthSession(default_keychain(helper_env))
    async with httpx.AsyncClient() as http:
        client = Client(token_registry, from_helper, http)
        await client.push_manifest("acme/from-helper", "v1")
    assert {e.account for e in token_log.requests} == {"alice"}


# -- htpasswd basic auth ------------------------------------------------------------------------
@pytest.mark.anyio
async def test_basic_auth_registry(auth_registry: RegistryServer) -> None:
    client = make_client(auth_registry, Credential(TEST_USER, TEST_PASSWORD))
    async with client.http:
        digest = await client.push_manifest("basic/app", "v1")
        assert client.requests == 1 + 5, "one 401, then basic credentials up front"
        got = await client.send("HEAD", "/v2/basic/app/manifests/v1", ("repository:basic/app:pull",))
        assert got.status_code == 200
        assert got.headers["Docker-Content-Digest"] == digest

    wrong = make_client(auth_registry, Credential(TEST_USER, "not-" + TEST_PASSWORD))
    port = auth_registry.port
    async with wrong.http:
        with pytest.raises(AuthError) as info:
            await wrong.send("GET", "/v2/basic/app/manifests/v1", ("repository:basic/app:pull",))
        assert (
            str(info.value)
            == f"127.0.0.1:{port} refused pull access to repository basic/app (401 UNAUTHORIZED)"
        )
        assert_no_secret(info.value, repr(info.value), info.value.hint)
        with pytest.raises(AuthError) as info:
            await wrong.send("HEAD", "/v2/basic/app/manifests/v1", ("repository:basic/app:pull",))
        assert str(info.value) == f"127.0.0.1:{port} refused pull access to repository basic/app (401)"

    anonymous = make_client(auth_registry, None)
    async with anonymous.http:
        with pytest.raises(AuthError, match="requires credentials"):
            await anonymous.send("HEAD", "/v2/basic/app/manifests/v1", ("repository:basic/app:pull",))


def test_a_sync_client_is_refused_not_sent_without_credentials(auth_registry: RegistryServer) -> None:
    """The auth is async-only: a sync httpx.Client gets a clear error, never an unauthenticated send."""
    session = AuthSession(StaticKeychain({auth_registry.host: Credential(TEST_USER, TEST_PASSWORD)}))
    with httpx.Client() as http, pytest.raises(TypeError, match=r"needs an httpx\.AsyncClient"):
        http.send(
            http.build_request("GET", f"{auth_registry.url}/v2/"),
            auth=session.auth_for(auth_registry.host, ()),
        )


@pytest.mark.anyio
async def test_no_secret_in_debug_logs(
    token_registry: RegistryServer, tokens: TokenServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("DEBUG")
    for credential in (Credential(*ALICE), Credential(identity_token=REFRESH), Credential(*READER)):
        client = make_client(token_registry, credential)
        async with client.http:
            try:
                await client.push_manifest("acme/logged", "v1")
            except AuthError as exc:
                assert_no_secret(exc, exc.hint)
    assert any("token for" in r.getMessage() for r in caplog.records)
    assert_no_secret(caplog.text, *(r.getMessage() for r in caplog.records))


# -- one token for a run that reads, then writes ---------------------------------------------------
PULL_MERGED = ("repository:acme/merged:pull",)
INDEX = {"Accept": "application/vnd.oci.image.index.v1+json"}


async def _merge_as(
    server: RegistryServer,
    account: tuple[str, str],
    tags: list[str],
    digests: list[str],
    *,
    dry_run: bool,
    repository: str = "acme/merged",
) -> None:
    from splitbuild.client import Client as SplitbuildClient
    from splitbuild.merge import merge, merge_options

    keychain = StaticKeychain({server.host: Credential(*account)})
    async with SplitbuildClient(keychain=keychain, env={}) as client:
        options = merge_options([f"{server.host}/{repository}:{t}" for t in tags], digests)
        await merge(client, options, dry_run=dry_run)


@pytest.mark.anyio
async def test_a_merge_reads_and_writes_with_one_token(
    token_registry: RegistryServer, token_log: TokenServer
) -> None:
    from splitbuild.client import Client as SplitbuildClient
    from tests.images import make_image, push_all

    keychain = StaticKeychain({token_registry.host: Credential(*ALICE)})
    images = [make_image(p, seed="one-token") for p in ("linux/amd64", "linux/arm64")]
    async with SplitbuildClient(keychain=keychain, env={}) as client:
        digests = await push_all(client, f"{token_registry.host}/acme/merged", images)

    token_log.reset()
    await _merge_as(token_registry, ALICE, ["v1"], digests, dry_run=True)
    assert [e.scopes for e in token_log.requests] == [("repository:acme/merged:pull",)]  # a dry run reads

    token_log.reset()
    await _merge_as(token_registry, ALICE, ["v1", "latest"], digests, dry_run=False)
    # the sources' reads already carry the push scope the tag PUTs need: no second token fetch
    assert [(e.account, e.scopes) for e in token_log.requests] == [
        ("alice", ("repository:acme/merged:pull,push",))
    ]

    reader = make_client(token_registry, Credential(*READER))
    async with reader.http:
        for tag in ("v1", "latest"):
            got = await reader.send("HEAD", f"/v2/acme/merged/manifests/{tag}", PULL_MERGED, headers=INDEX)
            assert got.status_code == 200

    # a pull-only account is granted pull (the token service grants what it may do): it reads
    # the sources, then its first write is refused and no tag moves
    token_log.reset()
    with pytest.raises(AuthError, match=r"refused push access to repository acme/merged"):
        await _merge_as(token_registry, READER, ["v2"], digests, dry_run=False)
    # the read token, and one fresh token after the cached one was refused for the write
    assert [(e.account, e.scopes) for e in token_log.requests] == [
        ("reader", ("repository:acme/merged:pull,push",))
    ] * 2
    reader = make_client(token_registry, Credential(*READER))
    async with reader.http:
        got = await reader.send("HEAD", "/v2/acme/merged/manifests/v2", PULL_MERGED, headers=INDEX)
    assert got.status_code == 404


@pytest.mark.anyio
async def test_copy_and_tag_ask_their_destination_for_push_from_the_start(
    token_registry: RegistryServer, token_log: TokenServer
) -> None:
    from splitbuild.client import Client as SplitbuildClient
    from splitbuild.ops import add_tags, copy
    from tests.images import make_image, push_all

    host = token_registry.host
    keychain = StaticKeychain({host: Credential(*ALICE)})
    async with SplitbuildClient(keychain=keychain, env={}) as client:
        [digest] = await push_all(client, f"{host}/acme/copy-src", [make_image(seed="copy-scope")])
    async with SplitbuildClient(keychain=keychain, env={}) as client:
        token_log.reset()
        await copy(client, f"{host}/acme/copy-src@{digest}", f"{host}/acme/copy-dst:v1")
        await add_tags(client, f"{host}/acme/copy-dst:v1", ["v1.0"])
    destination = [e.scopes for e in token_log.requests if any("acme/copy-dst" in s for s in e.scopes)]
    assert destination, token_log.requests
    # no token for the destination is ever pull alone: its reads carry the push its writes need
    assert all("repository:acme/copy-dst:pull,push" in scopes for scopes in destination), destination


@pytest.mark.anyio
async def test_a_token_service_refusing_the_push_scope_still_serves_the_reads(
    token_registry: RegistryServer, tokens: TokenServer
) -> None:
    """Some token services refuse a token asking for more than the account may do (instead of
    granting what it may). A pull-only account's copy that turns out to write nothing then still
    succeeds (its reads fall back to pull alone); its merge is refused (exit 6), nothing written."""
    from splitbuild.client import Client as SplitbuildClient
    from splitbuild.ops import copy
    from tests.images import make_image, push_all

    host = token_registry.host
    as_alice = StaticKeychain({host: Credential(*ALICE)})
    async with SplitbuildClient(keychain=as_alice, env={}) as client:
        digests = await push_all(
            client,
            f"{host}/acme/strict",
            [make_image(p, seed="strict") for p in ("linux/amd64", "linux/arm64")],
        )
        await copy(client, f"{host}/acme/strict@{digests[0]}", f"{host}/acme/strict:v1")
    as_reader = StaticKeychain({host: Credential(*READER)})
    tokens.strict = True
    tokens.reset()
    try:
        async with SplitbuildClient(keychain=as_reader, env={}) as client:
            result = await copy(client, f"{host}/acme/strict@{digests[0]}", f"{host}/acme/strict:v1")
        assert result.to_dict()["digest"] == digests[0]
        asked = [(e.account, e.scopes) for e in tokens.requests]
        assert asked[0] == ("reader", ("repository:acme/strict:pull,push",))  # refused: 403
        assert ("reader", ("repository:acme/strict:pull",)) in asked[1:]
        assert all(scopes != ("repository:acme/strict:pull,push",) for _, scopes in asked[1:])
        with pytest.raises(AuthError):
            await _merge_as(token_registry, READER, ["v2"], digests, dry_run=False, repository="acme/strict")
    finally:
        tokens.strict = False
    reader = make_client(token_registry, Credential(*READER))
    async with reader.http:
        got = await reader.send(
            "HEAD", "/v2/acme/strict/manifests/v2", ("repository:acme/strict:pull",), headers=INDEX
        )
    assert got.status_code == 404
