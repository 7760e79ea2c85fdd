"""The auth flow against scripted registries and token services (``httpx.MockTransport``).

Each ``token_flows`` vector of auth-vectors.json is transcribed as a test here (named after it),
plus the edge cases: concurrency, streamed bodies, token-service failures, realm safety, secrets.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import parse_qs

import anyio
import httpx
import pytest

from splitbuild.auth import AuthSession, Credential, StaticKeychain
from splitbuild.auth.credentials import Keychain
from splitbuild.errors import AuthError, RegistryError
from tests.constants import CONFORMANCE

VECTORS: dict[str, Any] = json.loads((CONFORMANCE / "auth" / "auth-vectors.json").read_text())
FLOWS = {v["id"]: v for v in VECTORS["token_flows"]}

REG = "https://registry.example"
REALM = "https://auth.example/token"
BEARER = f'Bearer realm="{REALM}",service="registry.example"'
DIST = f'Bearer realm="{REALM}",service="localhost.localdomain"'


Handler = Callable[[httpx.Request], httpx.Response]


def snapshot(request: httpx.Request) -> httpx.Request:
    """A copy as sent (the flow re-sends the same request object with new headers)."""
    content = request.content if isinstance(request.stream, httpx.ByteStream) else b""
    return httpx.Request(request.method, request.url, headers=request.headers.copy(), content=content)


class Scripted:
    """Routes requests by host to handlers and records a copy of every request as sent."""

    def __init__(self, routes: dict[str, Handler]) -> None:
        self.routes = routes
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(snapshot(request))
        return self.routes[request.url.host](request)

    def to(self, host: str) -> list[httpx.Request]:
        return [r for r in self.requests if r.url.host == host]

    def client(self, **kwargs: Any) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=httpx.MockTransport(self), **kwargs)


def token_service(*bodies: str | tuple[int, str], headers: dict[str, str] | None = None) -> Handler:
    """Answers token requests with ``bodies`` in turn (the last one repeats)."""
    answers = list(bodies)

    def handle(request: httpx.Request) -> httpx.Response:
        answer = answers.pop(0) if len(answers) > 1 else answers[0]
        status, body = answer if isinstance(answer, tuple) else (200, answer)
        return httpx.Response(status, content=body.encode(), headers=headers)

    return handle


def registry(accept: Callable[[str | None], bool], challenge: str = BEARER, ok: int = 202) -> Handler:
    """A registry accepting requests whose Authorization satisfies ``accept``."""

    def handle(request: httpx.Request) -> httpx.Response:
        if accept(request.headers.get("Authorization")):
            return httpx.Response(ok)
        return httpx.Response(
            401,
            headers={"WWW-Authenticate": challenge},
            json={"errors": [{"code": "UNAUTHORIZED", "message": "authentication required"}]},
        )

    return handle


def session(keychain: Keychain | None = None, **kwargs: Any) -> AuthSession:
    return AuthSession(keychain if keychain is not None else StaticKeychain({}), **kwargs)


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


async def send(
    client: httpx.AsyncClient,
    auth_session: AuthSession,
    url: str,
    scopes: tuple[str, ...] = ("repository:some/registry:pull,push",),
    method: str = "GET",
    registry_name: str = "registry.example",
    **kwargs: Any,
) -> httpx.Response:
    request = client.build_request(method, url, **kwargs)
    return await client.send(request, auth=auth_session.auth_for(registry_name, scopes))


# -- distribution session_test.go ------------------------------------------------------------
@pytest.mark.anyio
async def test_dist_endpoint_authorize_token() -> None:
    vector = FLOWS["dist:session_test.go:101 TestEndpointAuthorizeToken"]
    step1, step2 = vector["steps"]
    script = Scripted(
        {
            "registry.example": registry(lambda a: a == "Bearer statictoken", DIST),
            "auth.example": token_service('{"token":"statictoken"}', '{"token":"badtoken"}'),
        }
    )
    auth = session()
    async with script.client() as client:
        response = await send(client, auth, f"{REG}/v2/hello")
        assert response.status_code == step1["result_status"]
        (token_request,) = script.to("auth.example")
        assert str(token_request.url) == step1["token_request"]["url"].replace("<T>", "https://auth.example")
        assert "Authorization" not in token_request.headers
        assert script.requests[-1].headers["Authorization"] == step1["registry_request_authorization"]
        assert len(script.requests) == 3

        script.requests.clear()
        with pytest.raises(AuthError) as info:
            await send(client, auth, f"{REG}/v2/hello", ("repository:other/registry:pull,push",))
        (token_request,) = script.to("auth.example")
        assert str(token_request.url) == step2["token_request"]["url"].replace("<T>", "https://auth.example")
        assert len(script.requests) == 2, "the known challenge gets a token up front: no second 401"
        assert info.value.status == step2["result_status"]
    assert str(info.value) == (
        "registry.example refused pull,push access to repository other/registry (401 UNAUTHORIZED)"
    )
    assert info.value.codes == ("UNAUTHORIZED",)


@pytest.mark.anyio
async def test_dist_endpoint_authorize_refresh_token() -> None:
    vector = FLOWS["dist:session_test.go:211 TestEndpointAuthorizeRefreshToken"]
    steps = vector["steps"]
    refresh = vector["setup"]["credentials"]["refresh_tokens"]["localhost.localdomain"]
    challenge = DIST
    script = Scripted(
        {
            "registry.example": registry(lambda a: a == "Bearer statictoken", challenge),
            "auth.example": token_service(*(step["token_response"]["body"] for step in steps)),
        }
    )
    auth = session(
        StaticKeychain({"registry.example": Credential(identity_token=refresh)}), client_id="registry-client"
    )
    async with script.client() as client:
        assert (await send(client, auth, f"{REG}/v2/hello")).status_code == steps[0]["result_status"]
        assert (
            await send(client, auth, f"{REG}/v2/hello", ("repository:other/registry:pull,push",))
        ).status_code == steps[1]["result_status"]
        other = frozenset({"repository:other/registry:pull,push"})
        auth.tokens.discard(("registry.example", Credential(identity_token=refresh), other))
        with pytest.raises(AuthError):
            await send(
                client, auth, f"{REG}/v2/hello", ("repository:other/registry:pull,push",), method="PUT"
            )
    posts = list(script.to("auth.example"))
    assert [r.method for r in posts] == ["POST", "POST", "POST"]
    assert [r.content.decode() for r in posts] == [step["token_request"]["body"] for step in steps]
    assert all(r.headers["Content-Type"] == "application/x-www-form-urlencoded" for r in posts)
    assert steps[1]["stored_refresh_token"] in posts[2].content.decode()


@pytest.mark.anyio
async def test_dist_endpoint_authorize_v2_refresh_token() -> None:
    vector = FLOWS["dist:session_test.go:369 TestEndpointAuthorizeV2RefreshToken"]
    (step,) = vector["steps"]
    challenge = DIST
    script = Scripted(
        {
            "registry.example": registry(lambda a: a == "Bearer statictoken", challenge),
            "auth.example": token_service(step["token_response"]["body"]),
        }
    )
    auth = session(
        StaticKeychain({"registry.example": Credential(identity_token="0123456790abcdef")}),
        client_id="registry-client",
    )
    async with script.client() as client:
        response = await send(client, auth, f"{REG}/v1/search", tuple(vector["setup"]["scopes"]))
    assert response.status_code == step["result_status"]
    (post,) = script.to("auth.example")
    assert post.content.decode() == step["token_request"]["body"]
    assert script.requests[-1].headers["Authorization"] == step["registry_request_authorization"]


@pytest.mark.anyio
async def test_dist_endpoint_authorize_token_basic() -> None:
    vector = FLOWS["dist:session_test.go:453 TestEndpointAuthorizeTokenBasic"]
    (step,) = vector["steps"]
    creds = vector["setup"]["credentials"]
    challenge = DIST
    script = Scripted(
        {
            "registry.example": registry(lambda a: a == "Bearer statictoken", challenge),
            "auth.example": token_service(step["token_response"]["body"]),
        }
    )
    auth = session(StaticKeychain({"registry.example": Credential(creds["username"], creds["password"])}))
    async with script.client() as client:
        response = await send(client, auth, f"{REG}/v2/hello", ("repository:some/fun/registry:pull,push",))
    assert response.status_code == step["result_status"]
    (token_request,) = script.to("auth.example")
    assert str(token_request.url) == step["token_request"]["url"].replace("<T>", "https://auth.example")
    assert token_request.headers["Authorization"] == step["token_request"]["authorization"]


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("vector_id", "start", "expected"),
    [
        # t = 0, 1000, 2000, 3000 reuse; 4000 > 3001 fetches again.
        (
            "dist:session_test.go:524 TestEndpointAuthorizeTokenBasicWithExpiresIn",
            1_600_000_000.0,
            [1, 1, 1, 1, 2],
        ),
        # T0+1000..3000 reuse (expiry T0+3001 from issued_at); T0+4000 fetches; the second token
        # (issued_at T0+3000) is still valid at T0+5000.
        (
            "dist:session_test.go:678 TestEndpointAuthorizeTokenBasicWithExpiresInAndIssuedAt",
            1_600_001_000.0,
            [1, 1, 1, 2, 2],
        ),
    ],
)
async def test_dist_token_expiry(vector_id: str, start: float, expected: list[int]) -> None:
    vector = FLOWS[vector_id]
    t0 = "2020-09-13T12:26:40Z"  # == 1_600_000_000
    bodies = [
        b.replace("<T0 RFC3339Nano>", t0).replace("<T0+3000s>", "2020-09-13T13:16:40Z")
        for b in vector["token_responses"]
    ]
    clock = Clock(start)
    script = Scripted(
        {
            "registry.example": registry(lambda a: a == "Bearer statictoken"),
            "auth.example": token_service(*bodies),
        }
    )
    auth = session(StaticKeychain({"registry.example": Credential("tokenuser", "pw")}), clock=clock)
    exchanges = []
    async with script.client() as client:
        for _ in range(5):
            assert (await send(client, auth, f"{REG}/v2/hello")).status_code == 202
            exchanges.append(len(script.to("auth.example")))
            clock.now += 1000
    assert exchanges == expected, vector["expect"]


@pytest.mark.anyio
async def test_dist_endpoint_authorize_basic() -> None:
    vector = FLOWS["dist:session_test.go:832 TestEndpointAuthorizeBasic"]
    creds = vector["setup"]["credentials"]
    (step,) = vector["steps"]
    script = Scripted(
        {
            "registry.example": registry(
                lambda a: a == step["registry_request_authorization"], "Basic realm=localhost"
            )
        }
    )
    auth = session(StaticKeychain({"registry.example": Credential(creds["username"], creds["password"])}))
    async with script.client() as client:
        assert (await send(client, auth, f"{REG}/v2/hello")).status_code == step["result_status"]
        assert (await send(client, auth, f"{REG}/v2/again")).status_code == 202
    assert [r.headers.get("Authorization") for r in script.requests] == [
        None,
        step["registry_request_authorization"],
        step["registry_request_authorization"],
    ]


@pytest.mark.anyio
async def test_basic_refused_and_missing_credentials() -> None:
    script = Scripted({"registry.example": registry(lambda a: a == basic("u", "right"), "Basic realm=x")})
    async with script.client() as client:
        wrong = session(StaticKeychain({"registry.example": Credential("u", "wrong-secret")}))
        with pytest.raises(AuthError) as info:
            await send(client, wrong, f"{REG}/v2/acme/app/manifests/latest", ("repository:acme/app:pull",))
        assert (
            str(info.value)
            == "registry.example refused pull access to repository acme/app (401 UNAUTHORIZED)"
        )
        assert "wrong-secret" not in f"{info.value} {info.value.hint} {info.value.url}"
        with pytest.raises(AuthError, match="requires credentials") as info:
            await send(client, session(), f"{REG}/v2/acme/app/manifests/latest")
        assert info.value.hint is not None
        assert "SPLITBUILD_AUTH_REGISTRY_EXAMPLE_USERNAME" in info.value.hint


@pytest.mark.anyio
async def test_dist_cross_repo_mount_scopes() -> None:
    vector = FLOWS["dist:code session.go AuthorizeRequest cross-repo mount"]
    (step,) = vector["steps"]
    script = Scripted(
        {
            "registry.example": registry(lambda a: a == "Bearer t"),
            "auth.example": token_service('{"token":"t"}'),
        }
    )
    scopes = (*vector["setup"]["handler scopes"], "repository:library/ubuntu:pull")
    async with script.client() as client:
        response = await send(
            client,
            session(),
            f"{REG}/v2/myorg/app/blobs/uploads/?mount=sha256:abc&from=library/ubuntu",
            scopes,
            "POST",
        )
    assert response.status_code == 202
    (token_request,) = script.to("auth.example")
    expected = step["token_request"]["url"].replace("<realm>", REALM).replace("<service>", "registry.example")
    assert str(token_request.url) == expected


# -- go-containerregistry bearer_test.go / transport_test.go ---------------------------------
@pytest.mark.anyio
@pytest.mark.parametrize("case", FLOWS["ggcr:bearer_test.go:30 TestBearerRefresh"]["steps"][0]["cases"])
async def test_ggcr_bearer_refresh(case: dict[str, Any]) -> None:
    vector = FLOWS["ggcr:bearer_test.go:30 TestBearerRefresh"]
    setup, step = vector["setup"], vector["steps"][0]
    challenge = f'Bearer realm="{REALM}",service="{setup["service"]}"'
    script = Scripted(
        {
            "registry.example": registry(lambda a: a == "Bearer Sup3rDup3rS3cr3tz", challenge, ok=200),
            "auth.example": token_service(case["token_response"]),
        }
    )
    auth = session(
        StaticKeychain(
            {"registry.example": Credential(setup["basic"]["username"], setup["basic"]["password"])}
        )
    )
    async with script.client() as client:
        if case["ok"]:
            assert (await send(client, auth, f"{REG}/v2/", tuple(setup["scopes"]))).status_code == 200
        else:
            assert case["error"] == "no token in bearer response"
            with pytest.raises(RegistryError, match="token response has no token"):
                await send(client, auth, f"{REG}/v2/", tuple(setup["scopes"]))
    token_request = script.to("auth.example")[0]
    # ggcr's URL, plus the account= that distribution adds when it sends basic credentials.
    expected = step["token_request"]["url"].replace("<realm>?", f"{REALM}?account=foo&")
    assert str(token_request.url) == expected
    assert token_request.headers["Authorization"] == step["token_request"]["authorization"]


@pytest.mark.anyio
async def test_ggcr_bearer_transport_does_not_forward_token_to_other_hosts() -> None:
    assert "another host" in FLOWS["ggcr:bearer_test.go:90 TestBearerTransport"]["expect"]

    def blobs(request: httpx.Request) -> httpx.Response:
        if request.url.path.startswith("/v2/acme/app/blobs/"):
            if request.headers.get("Authorization") != "Bearer t":
                return registry(lambda a: False)(request)
            return httpx.Response(307, headers={"Location": "https://storage.example/blob?sig=1"})
        return httpx.Response(404)

    script = Scripted(
        {
            "registry.example": blobs,
            "auth.example": token_service('{"token":"t"}'),
            "storage.example": lambda r: httpx.Response(200, content=b"blob"),
        }
    )
    async with script.client(follow_redirects=True) as client:
        response = await send(
            client, session(), f"{REG}/v2/acme/app/blobs/sha256:abc", ("repository:acme/app:pull",)
        )
    assert response.content == b"blob"
    (storage,) = script.to("storage.example")
    assert "Authorization" not in storage.headers


@pytest.mark.anyio
async def test_ggcr_bearer_transport_token_refresh() -> None:
    vector = FLOWS["ggcr:bearer_test.go:147 TestBearerTransportTokenRefresh"]
    first, second = vector["steps"]
    current = {"token": "foo"}

    def reg(request: httpx.Request) -> httpx.Response:
        if request.headers.get("Authorization") == f"Bearer {current['token']}":
            return httpx.Response(200)
        if request.headers.get("Authorization", "").startswith("Bearer "):
            return httpx.Response(401, headers={"WWW-Authenticate": "scope=foo"})
        return httpx.Response(401, headers={"WWW-Authenticate": BEARER})

    script = Scripted(
        {"registry.example": reg, "auth.example": token_service('{"token":"foo"}', first["token_response"])}
    )
    auth = session(StaticKeychain({"registry.example": Credential("foo", "bar")}))
    async with script.client() as client:
        assert (await send(client, auth, f"{REG}/v2/a")).status_code == 200
        current["token"] = "bar"  # the registry no longer accepts the cached token
        script.requests.clear()
        assert (await send(client, auth, f"{REG}/v2/b")).status_code == first["result_status"]
    assert [r.url.host for r in script.requests] == ["registry.example", "auth.example", "registry.example"]
    assert script.requests[1].headers["Authorization"] == first["token_request"]["authorization"]
    assert script.requests[2].headers["Authorization"] == first["retry_authorization"]

    # A registry token is used as is: no token request at all.
    script = Scripted({"registry.example": reg})
    auth = session(StaticKeychain({"registry.example": Credential(registry_token="bar")}))
    async with script.client() as client:
        assert (await send(client, auth, f"{REG}/v2/c")).status_code == 200
    assert script.requests[-1].headers["Authorization"] == second["retry_authorization"]


@pytest.mark.anyio
async def test_ggcr_bearer_transport_oauth_refresh() -> None:
    vector = FLOWS["ggcr:bearer_test.go:217 TestBearerTransportOauthRefresh"]
    (step,) = vector["steps"]
    challenge = 'Bearer realm="https://auth.example/token",service="registry.example"'
    script = Scripted(
        {
            "registry.example": registry(lambda a: a == "Bearer bar", challenge),
            "auth.example": token_service(step["token_response"]),
        }
    )
    credential = Credential(identity_token=vector["setup"]["credential"]["identitytoken"])
    auth = session(StaticKeychain({"registry.example": credential}), client_id="go-containerregistry")
    async with script.client() as client:
        await send(client, auth, f"{REG}/v2/x", tuple(vector["setup"]["scopes"]))
        await send(client, auth, f"{REG}/v2/x", ("other",))
    first, later = script.to("auth.example")
    form = {k: v[0] for k, v in parse_qs(first.content.decode()).items()}
    expected = dict(step["token_request"]["form"], service="registry.example")
    assert form == expected
    assert first.headers["Content-Type"] == step["token_request"]["content_type"]
    assert parse_qs(later.content.decode())["refresh_token"] == ["baz"], step["note"]


@pytest.mark.anyio
async def test_ggcr_bearer_transport_oauth_404_fallback() -> None:
    vector = FLOWS["ggcr:bearer_test.go:286 TestBearerTransportOauth404Fallback"]
    post, get = vector["steps"]
    script = Scripted(
        {
            "registry.example": registry(lambda a: a == "Bearer access_token"),
            "auth.example": token_service((404, "not here"), get["token_response"]),
        }
    )
    credential = Credential("basic", "auth", identity_token="identity_token")
    async with script.client() as client:
        response = await send(
            client, session(StaticKeychain({"registry.example": credential})), f"{REG}/v2/x"
        )
    assert response.status_code == 202
    assert [r.method for r in script.to("auth.example")] == [post["token_request"]["method"], "GET"]
    assert script.to("auth.example")[1].headers["Authorization"] == basic("basic", "auth")


@pytest.mark.anyio
async def test_ggcr_insufficient_scope() -> None:
    vector = FLOWS["ggcr:bearer_test.go:498 TestInsufficientScope"]
    (step,) = vector["steps"]
    challenge = f'Bearer realm="{REALM}",service="my-service.io",scope="the-right-scope"'

    def reg(request: httpx.Request) -> httpx.Response:
        if request.headers.get("Authorization") == "Bearer right":
            return httpx.Response(200)
        return httpx.Response(401, headers={"WWW-Authenticate": challenge})

    def tokens(request: httpx.Request) -> httpx.Response:
        scopes = parse_qs(request.url.query.decode()).get("scope", [])
        return httpx.Response(200, json={"token": "right" if "the-right-scope" in scopes else "wrong"})

    script = Scripted({"registry.example": reg, "auth.example": tokens})
    auth = session()
    async with script.client() as client:
        assert (await send(client, auth, f"{REG}/v2/x", ("the-wrong-scope",))).status_code == 200
    last = script.to("auth.example")[-1]
    query = parse_qs(last.url.query.decode())
    assert query["scope"] == step["token_request"]["query_scopes"]
    assert query["service"] == [step["token_request"]["service"]]


@pytest.mark.anyio
@pytest.mark.parametrize("follow", [False, True])
@pytest.mark.parametrize(
    "target", ["https://169.254.169.254/latest", "http://127.0.0.1:8080/x", "https://[::1]/t"]
)
async def test_ggcr_token_server_redirect_ssrf(follow: bool, target: str) -> None:
    assert "refused" in FLOWS["ggcr:bearer_test.go:570 TestTokenServerRedirectSSRF"]["expect"]
    script = Scripted(
        {
            "registry.example": registry(lambda a: False),
            "auth.example": lambda r: httpx.Response(302, headers={"Location": target}),
            "169.254.169.254": lambda r: httpx.Response(200, json={"token": "stolen"}),
            "127.0.0.1": lambda r: httpx.Response(200, json={"token": "stolen"}),
            "::1": lambda r: httpx.Response(200, json={"token": "stolen"}),
        }
    )
    async with script.client(follow_redirects=follow) as client:
        with pytest.raises(AuthError, match="refusing a token service redirect"):
            await send(client, session(), f"{REG}/v2/x")
    if not follow:
        assert not [r for r in script.requests if r.url.host not in ("registry.example", "auth.example")]


@pytest.mark.anyio
async def test_ggcr_token_server_redirect_allowed_within_rules() -> None:
    script = Scripted(
        {
            "registry.example": registry(lambda a: a == "Bearer moved"),
            "auth.example": lambda r: httpx.Response(
                307, headers={"Location": "https://auth2.example/t?x=1"}
            ),
            "auth2.example": token_service('{"token":"moved"}'),
        }
    )
    auth = session(StaticKeychain({"registry.example": Credential("u", "p")}))
    async with script.client() as client:
        assert (await send(client, auth, f"{REG}/v2/x")).status_code == 202
    (moved,) = script.to("auth2.example")
    assert "Authorization" not in moved.headers, "credentials are not sent to another host"


@pytest.mark.anyio
async def test_ggcr_token_reapplied_on_same_host_challenge() -> None:
    assert "retry" in FLOWS["ggcr:bearer_test.go:710 TestBearerTokenReappliedOnSameHostChallenge"]["expect"]
    accepted = {"Bearer one"}
    script = Scripted(
        {
            "registry.example": registry(lambda a: a in accepted),
            "auth.example": token_service('{"token":"one"}', '{"token":"two"}'),
        }
    )
    auth = session()
    async with script.client() as client:
        await send(client, auth, f"{REG}/v2/x")
        accepted.clear()
        accepted.add("Bearer two")
        script.requests.clear()
        assert (await send(client, auth, f"{REG}/v2/x")).status_code == 202
    assert [r.headers.get("Authorization") for r in script.to("registry.example")] == [
        "Bearer one",
        "Bearer two",
    ]


@pytest.mark.anyio
async def test_ggcr_cross_host_challenge_is_not_answered() -> None:
    """A 401 from another host after a redirect never gets the registry's token; splitbuild
    returns it to the caller (ggcr would do an anonymous exchange with that host's realm)."""
    assert "never" in FLOWS["ggcr:bearer_test.go:774/829 cross-host challenge"]["expect"]

    def reg(request: httpx.Request) -> httpx.Response:
        if request.headers.get("Authorization") != "Bearer t":
            return registry(lambda a: False)(request)
        return httpx.Response(307, headers={"Location": "https://mirror.example/blob"})

    other = 'Bearer realm="https://evil.example/token",service="evil"'
    script = Scripted(
        {
            "registry.example": reg,
            "auth.example": token_service('{"token":"t"}'),
            "mirror.example": lambda r: httpx.Response(401, headers={"WWW-Authenticate": other}),
        }
    )
    auth = session(StaticKeychain({"registry.example": Credential("u", "secret-pw")}))
    async with script.client(follow_redirects=True) as client:
        response = await send(
            client, auth, f"{REG}/v2/acme/app/blobs/sha256:abc", ("repository:acme/app:pull",)
        )
    assert response.status_code == 401
    assert "Authorization" not in script.to("mirror.example")[0].headers
    assert not script.to("evil.example")
    assert auth.challenge("https://mirror.example/") is None
    assert len(auth.tokens) == 1


@pytest.mark.anyio
async def test_ggcr_transport_selection_bearer() -> None:
    vector = FLOWS["ggcr:transport_test.go:134 TestTransportSelectionBearer"]
    (step,) = vector["steps"]
    script = Scripted(
        {
            "registry.example": registry(
                lambda a: a == "Bearer dfskdjhfkhsjdhfkjhsdf", 'Bearer realm="http://foo.io"'
            ),
            "foo.io": token_service(step["token_response"]),
        }
    )
    async with script.client() as client:
        response = await send(
            client, session(), "http://registry.example/v2/repo/manifests/x", ("repository:repo:pull",)
        )
    assert response.status_code == 202
    (token_request,) = script.to("foo.io")
    query = parse_qs(token_request.url.query.decode(), keep_blank_values=True)
    assert query["scope"] == [step["token_request"]["form"]["scope"].replace("<repo>", "repo")]
    # ggcr sends service= even when empty; splitbuild follows distribution and omits it.
    assert "service" not in query


@pytest.mark.anyio
async def test_ggcr_transport_selection_basic() -> None:
    assert "Basic" in FLOWS["ggcr:transport_test.go:88 TestTransportSelectionBasic"]["steps"][0]["ping"]
    script = Scripted({"registry.example": registry(lambda a: a == basic("user", "pass"), "Basic")})
    auth = session(StaticKeychain({"registry.example": Credential("user", "pass")}))
    async with script.client() as client:
        assert (await send(client, auth, f"{REG}/v2/")).status_code == 202


@pytest.mark.anyio
async def test_ggcr_transport_selection_bearer_missing_realm() -> None:
    vector = FLOWS["ggcr:transport_test.go:179 TestTransportSelectionBearerMissingRealm"]
    script = Scripted({"registry.example": registry(lambda a: False, 'Bearer service="gcr.io"')})
    async with script.client() as client:
        with pytest.raises(AuthError, match=vector["steps"][0]["error_contains"]):
            await send(client, session(), f"{REG}/v2/")


def test_every_token_flow_vector_has_a_test() -> None:
    names = {
        "TestEndpointAuthorizeToken",
        "TestEndpointAuthorizeRefreshToken",
        "TestEndpointAuthorizeV2RefreshToken",
        "TestEndpointAuthorizeTokenBasic",
        "TestEndpointAuthorizeTokenBasicWithExpiresIn",
        "TestEndpointAuthorizeTokenBasicWithExpiresInAndIssuedAt",
        "TestEndpointAuthorizeBasic",
        "cross-repo mount",
        "TestBearerRefresh",
        "TestBearerTransport",
        "TestBearerTransportTokenRefresh",
        "TestBearerTransportOauthRefresh",
        "TestBearerTransportOauth404Fallback",
        "TestInsufficientScope",
        "TestTokenServerRedirectSSRF",
        "TestBearerTokenReappliedOnSameHostChallenge",
        "cross-host challenge",
        "TestTransportSelectionBearer",
        "TestTransportSelectionBasic",
        "TestTransportSelectionBearerMissingRealm",
    }
    assert len(FLOWS) == len(names)
    for vector_id in FLOWS:
        assert any(vector_id.endswith(name) for name in names), vector_id


# -- edge cases ------------------------------------------------------------------------------
@pytest.mark.anyio
async def test_known_challenge_gives_upfront_tokens_and_cache() -> None:
    script = Scripted(
        {
            "registry.example": registry(lambda a: a is not None and a.startswith("Bearer ")),
            "auth.example": lambda r: httpx.Response(200, json={"token": "t-" + r.url.query.decode()}),
        }
    )
    auth = session()
    async with script.client() as client:
        await send(client, auth, f"{REG}/v2/a/manifests/x", ("repository:a:pull",))
        await send(client, auth, f"{REG}/v2/b/manifests/x", ("repository:b:pull",))
        await send(client, auth, f"{REG}/v2/a/manifests/y", ("repository:a:pull",))
    kinds = [(r.url.host, r.headers.get("Authorization") is not None) for r in script.requests]
    assert kinds == [
        ("registry.example", False),
        ("auth.example", False),
        ("registry.example", True),
        ("auth.example", False),
        ("registry.example", True),
        ("registry.example", True),
    ]


@pytest.mark.anyio
async def test_challenge_scope_is_merged_into_the_requested_scopes() -> None:
    challenge = BEARER + ',scope="repository:acme/app:pull"'
    script = Scripted(
        {
            "registry.example": registry(lambda a: a == "Bearer t", challenge),
            "auth.example": token_service('{"token":"t"}'),
        }
    )
    async with script.client() as client:
        await send(client, session(), f"{REG}/v2/acme/app/manifests/x", ("repository:acme/app:pull,push",))
    (token_request,) = script.to("auth.example")
    assert parse_qs(token_request.url.query.decode())["scope"] == ["repository:acme/app:pull,push"]


@pytest.mark.anyio
async def test_concurrent_first_requests_share_one_challenge_and_one_token() -> None:
    script = Scripted(
        {
            "registry.example": registry(lambda a: a == "Bearer t"),
            "auth.example": token_service('{"token":"t"}'),
        }
    )
    auth = session()
    async with script.client() as client, anyio.create_task_group() as tg:
        for i in range(10):
            tg.start_soon(send, client, auth, f"{REG}/v2/acme/app/blobs/sha256:{i}")
    statuses = [r.headers.get("Authorization") for r in script.to("registry.example")]
    assert statuses.count(None) == 1, "only the first request takes the 401"
    assert len(script.to("auth.example")) == 1
    assert len(script.requests) == 12


@pytest.mark.anyio
async def test_concurrent_requests_with_a_known_challenge_share_one_fetch() -> None:
    fetches = []

    async def slow_tokens(request: httpx.Request) -> httpx.Response:
        fetches.append(request)
        await anyio.sleep(0.05)
        return httpx.Response(200, json={"token": "t"})

    def reg(request: httpx.Request) -> httpx.Response:
        return registry(lambda a: a == "Bearer t")(request)

    async def route(request: httpx.Request) -> httpx.Response:
        return await slow_tokens(request) if request.url.host == "auth.example" else reg(request)

    auth = session()
    async with httpx.AsyncClient(transport=httpx.MockTransport(route)) as client:
        await send(client, auth, f"{REG}/v2/", ())
        async with anyio.create_task_group() as tg:
            for _ in range(8):
                tg.start_soon(
                    send, client, auth, f"{REG}/v2/acme/app/manifests/x", ("repository:acme/app:pull",)
                )
    assert len(fetches) == 2


@pytest.mark.anyio
async def test_streamed_body_to_an_unknown_host_probes_first() -> None:
    bodies: list[bytes] = []

    def reg(request: httpx.Request) -> httpx.Response:
        if request.headers.get("Authorization") != "Bearer t":
            return registry(lambda a: False)(request)
        bodies.append(request.read())
        return httpx.Response(201)

    script = Scripted({"registry.example": reg, "auth.example": token_service('{"token":"t"}')})

    async def chunks() -> Any:
        yield b"part1-"
        yield b"part2"

    async with script.client() as client:
        response = await send(
            client, session(), f"{REG}/v2/acme/app/blobs/uploads/x", method="PUT", content=chunks()
        )
    assert response.status_code == 201
    assert bodies == [b"part1-part2"]
    assert [(r.method, r.url.path) for r in script.to("registry.example")] == [
        ("GET", "/v2/"),
        ("PUT", "/v2/acme/app/blobs/uploads/x"),
    ]


@pytest.mark.anyio
async def test_streamed_body_refused_midway_is_retryable() -> None:
    accepted = {"Bearer one"}
    script = Scripted(
        {
            "registry.example": registry(lambda a: a in accepted),
            "auth.example": token_service('{"token":"one"}', '{"token":"two"}'),
        }
    )
    auth = session()

    async def chunks() -> Any:
        yield b"data"

    async with script.client() as client:
        await send(client, auth, f"{REG}/v2/")
        accepted.clear()
        with pytest.raises(AuthError, match="during a streamed PUT") as info:
            await send(client, auth, f"{REG}/v2/acme/app/blobs/uploads/x", method="PUT", content=chunks())
        assert info.value.retryable
        accepted.add("Bearer two")
        retried = await send(
            client, auth, f"{REG}/v2/acme/app/blobs/uploads/x", method="PUT", content=chunks()
        )
        assert retried.status_code == 202, "the refused token was dropped: the retry fetches a new one"


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("status", "retryable", "error"),
    [
        (429, True, RegistryError),
        (503, True, RegistryError),
        (500, True, RegistryError),
        (400, False, RegistryError),
    ],
)
async def test_token_service_failures(status: int, retryable: bool, error: type[Exception]) -> None:
    script = Scripted(
        {
            "registry.example": registry(lambda a: False),
            "auth.example": token_service((status, "oops"), headers={"Retry-After": "7"}),
        }
    )
    async with script.client() as client:
        with pytest.raises(error) as info:
            await send(client, session(), f"{REG}/v2/")
    assert isinstance(info.value, RegistryError)
    assert not isinstance(info.value, AuthError)
    assert info.value.retryable is retryable
    assert info.value.retry_after == 7.0
    assert info.value.status == status
    assert str(info.value).startswith(f"registry.example: token service auth.example answered {status}")


@pytest.mark.anyio
@pytest.mark.parametrize("status", [401, 403])
async def test_token_service_refusing_credentials(status: int) -> None:
    script = Scripted(
        {
            "registry.example": registry(lambda a: False),
            "auth.example": token_service((status, '{"errors":[{"code":"DENIED","message":"no"}]}')),
        }
    )
    credential = Credential("user", "hunter2-secret", source="$SPLITBUILD_AUTH_REGISTRY_EXAMPLE_*")
    async with script.client() as client:
        with pytest.raises(AuthError) as info:
            await send(client, session(StaticKeychain({"registry.example": credential})), f"{REG}/v2/")
    assert str(info.value) == (
        f"registry.example: token service auth.example refused the credentials for "
        f"pull,push access to repository some/registry ({status})"
    )
    assert info.value.hint == "credentials from $SPLITBUILD_AUTH_REGISTRY_EXAMPLE_*"
    assert not info.value.retryable
    assert "hunter2" not in f"{info.value!r} {info.value.url} {info.value.details}"


@pytest.mark.anyio
async def test_token_service_connection_failure_surfaces_as_transport_error() -> None:
    def down(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    script = Scripted({"registry.example": registry(lambda a: False), "auth.example": down})
    async with script.client() as client:
        with pytest.raises(httpx.ConnectError) as info:
            await send(client, session(), f"{REG}/v2/")
    assert info.value.request.url.host == "auth.example"


@pytest.mark.anyio
@pytest.mark.parametrize("body", ["IAmNotJson", '{"token":""}', '{"token":"a","expires_in":"300"}'])
async def test_unusable_token_responses(body: str) -> None:
    script = Scripted({"registry.example": registry(lambda a: False), "auth.example": token_service(body)})
    async with script.client() as client:
        with pytest.raises(
            RegistryError, match=r"registry\.example: token service auth\.example: token response"
        ):
            await send(client, session(), f"{REG}/v2/")


@pytest.mark.anyio
async def test_403_is_an_auth_error_naming_the_scope() -> None:
    def reg(request: httpx.Request) -> httpx.Response:
        if request.headers.get("Authorization") != "Bearer t":
            return registry(lambda a: False)(request)
        return httpx.Response(
            403, json={"errors": [{"code": "DENIED", "message": "requested access denied"}]}
        )

    script = Scripted({"registry.example": reg, "auth.example": token_service('{"token":"t"}')})
    async with script.client() as client:
        with pytest.raises(AuthError) as info:
            await send(
                client,
                session(),
                f"{REG}/v2/acme/app/manifests/v1",
                ("repository:acme/app:pull,push",),
                "DELETE",
            )
    assert str(info.value) == "registry.example denied delete access to repository acme/app (403 DENIED)"
    assert info.value.status == 403
    assert info.value.method == "DELETE"
    assert info.value.url == f"{REG}/v2/acme/app/manifests/v1"


@pytest.mark.anyio
async def test_refused_scope_is_narrowed_with_the_granted_access_claim() -> None:
    claims = {"access": [{"type": "repository", "name": "acme/app", "actions": ["pull"]}]}
    payload = base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("=")
    jwt = f"eyJhbGciOiJub25lIn0.{payload}.sig"
    challenge = BEARER + ',scope="repository:acme/app:pull,push",error="insufficient_scope"'
    script = Scripted(
        {
            "registry.example": lambda r: httpx.Response(401, headers={"WWW-Authenticate": challenge}),
            "auth.example": token_service(json.dumps({"token": jwt})),
        }
    )
    async with script.client() as client:
        with pytest.raises(AuthError) as info:
            await send(
                client,
                session(),
                f"{REG}/v2/acme/app/blobs/uploads/",
                ("repository:acme/app:pull,push",),
                "POST",
            )
    assert (
        str(info.value)
        == "registry.example refused push access to repository acme/app (401 insufficient_scope)"
    )
    assert len(script.to("auth.example")) == 1


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("realm", "registry_url"),
    [
        ("http://auth.example/token", REG),
        ("https://169.254.169.254/token", REG),
        ("https://10.0.0.5/token", REG),
        ("not a url", REG),
    ],
)
async def test_unsafe_realms_are_refused(realm: str, registry_url: str) -> None:
    script = Scripted({"registry.example": registry(lambda a: False, f'Bearer realm="{realm}",service="s"')})
    auth = session(StaticKeychain({"registry.example": Credential("u", "secret-password")}))
    async with script.client() as client:
        with pytest.raises(AuthError, match="refusing the token service") as info:
            await send(client, auth, f"{registry_url}/v2/")
    assert len(script.requests) == 1
    assert "secret-password" not in str(info.value)


@pytest.mark.anyio
async def test_local_registry_may_use_a_local_token_service() -> None:
    script = Scripted(
        {
            "127.0.0.1": lambda r: (
                token_service('{"token":"t"}')(r)
                if r.url.port == 9999
                else registry(lambda a: a == "Bearer t", 'Bearer realm="http://127.0.0.1:9999/token"')(r)
            )
        }
    )
    async with script.client() as client:
        response = await send(
            client, session(), "http://127.0.0.1:5000/v2/", (), registry_name="127.0.0.1:5000"
        )
    assert response.status_code == 202


@pytest.mark.anyio
async def test_unsupported_scheme_is_reported() -> None:
    script = Scripted({"registry.example": registry(lambda a: False, "Negotiate")})
    async with script.client() as client:
        with pytest.raises(AuthError, match=r"asks for unsupported authentication \(negotiate\)"):
            await send(client, session(), f"{REG}/v2/")


@pytest.mark.anyio
async def test_anonymous_host_then_push_needs_auth() -> None:
    def reg(request: httpx.Request) -> httpx.Response:
        if request.method == "GET" or request.headers.get("Authorization") == "Bearer t":
            return httpx.Response(200)
        return registry(lambda a: False)(request)

    script = Scripted({"registry.example": reg, "auth.example": token_service('{"token":"t"}')})
    auth = session()
    async with script.client() as client:
        assert (await send(client, auth, f"{REG}/v2/a/manifests/x")).status_code == 200
        assert auth.challenge(REG) is None
        assert (
            await send(client, auth, f"{REG}/v2/a/manifests/x", method="PUT", content=b"{}")
        ).status_code == 200
        challenge = auth.challenge(f"{REG}:443/v2/")
        assert challenge is not None
        assert (challenge.scheme, challenge.realm, challenge.service) == ("bearer", REALM, "registry.example")


@pytest.mark.anyio
async def test_credentials_are_resolved_once_per_registry() -> None:
    class Counting(StaticKeychain):
        calls = 0

        def resolve(self, registry: str, repository: str | None = None) -> Credential | None:
            Counting.calls += 1
            return super().resolve(registry, repository)

    script = Scripted({"registry.example": registry(lambda a: a == basic("u", "p"), "Basic")})
    auth = session(Counting({"registry.example": Credential("u", "p")}))
    async with script.client() as client, anyio.create_task_group() as tg:
        for _ in range(5):
            tg.start_soon(send, client, auth, f"{REG}/v2/acme/app/manifests/x", ("repository:acme/app:pull",))
    assert Counting.calls == 1


def _all_texts(exc: BaseException) -> Iterator[str]:
    yield str(exc)
    yield repr(exc)
    for name in ("hint", "url", "message"):
        value = getattr(exc, name, None)
        if value:
            yield str(value)


@pytest.mark.anyio
@pytest.mark.parametrize("scenario", ["token-401", "registry-401", "basic-401", "token-503", "403"])
async def test_no_secret_in_any_error(scenario: str) -> None:
    secrets = ("s3cret-password", "1dentity-token", "t0ken-value")
    routes: dict[str, Handler] = {
        "registry.example": registry(lambda a: False),
        "auth.example": token_service(json.dumps({"token": secrets[2]})),
    }
    credential = Credential("user", secrets[0])
    if scenario == "token-401":
        routes["auth.example"] = token_service((401, "{}"))
        credential = Credential("user", secrets[0], identity_token=secrets[1])
    elif scenario == "basic-401":
        routes["registry.example"] = registry(lambda a: False, "Basic realm=x")
    elif scenario == "token-503":
        routes["auth.example"] = token_service((503, secrets[0]))
    elif scenario == "403":
        routes["registry.example"] = lambda r: (
            httpx.Response(403, text=secrets[2])
            if r.headers.get("Authorization")
            else registry(lambda a: False)(r)
        )
    script = Scripted(routes)
    async with script.client() as client:
        with pytest.raises(RegistryError) as info:
            await send(
                client,
                session(StaticKeychain({"registry.example": credential})),
                f"{REG}/v2/x/manifests/y?token={secrets[2]}",
            )
    for text in _all_texts(info.value):
        for secret in secrets:
            assert secret not in text
