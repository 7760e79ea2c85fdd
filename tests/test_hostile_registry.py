"""A hostile registry (tests/hostile_server.py) against the real process and the library (issue 14).

Secrets a registry echoes back are masked (4), so are those a failing credential helper printed
(5); registry text cannot move the cursor or forge a line (22); every body read is capped while
streaming (9, 10, 11) and every request has an overall deadline (12); listings have page and
entry caps (13); ``Retry-After`` is read by its RFC, an oversized tags page is a registry fault,
a realm host name is checked after resolution (25); an unreachable registry fails at once.
Memory is checked with generous bounds (the RSS of the command, tracemalloc in-process); time only
against generous deadlines.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import threading
import time
import tracemalloc
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import anyio
import pytest

from splitbuild.auth import StaticKeychain
from splitbuild.auth.credentials import Credential
from splitbuild.auth.environment import registry_env_prefix
from splitbuild.auth.helper import helper_get
from splitbuild.client import Client
from splitbuild.errors import AuthError, ConfigError, RegistryError
from splitbuild.reference import Reference
from splitbuild.retry import NO_RETRY
from splitbuild.store.registry import RegistryRepository
from tests.hostile import peak_rss_file, probe_command, read_peak_kib
from tests.hostile_server import ENDLESS, Attack, HostileServer, Request, echo_authorization
from tests.images import make_image

ROOT = Path(__file__).resolve().parent.parent
USER = "mallory-victim"
PASSWORD = "pw-0xC0FFEE-secret"
BEARER = "bearer-0xBADF00D-token"
UNAUTHORIZED = b'{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}'
MIB = 1024 * 1024
RSS_BOUND_MIB = 200
T = TypeVar("T")


def secret_forms() -> list[str]:
    pair = f"{USER}:{PASSWORD}"
    return [PASSWORD, pair, base64.b64encode(pair.encode()).decode(), BEARER]


@dataclass
class Outcome:
    code: int
    stdout: str
    stderr: str
    rss_mib: float
    seconds: float


def splitbuild(*args: str, home: Path, env: dict[str, str] | None = None, timeout: float = 60) -> Outcome:
    """Run the CLI; its exit code, output, peak RSS (MiB, the child's own VmHWM) and duration."""
    base = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(home),
        "DOCKER_CONFIG": str(home),
        "PYTHONPATH": str(ROOT),
        "SPLITBUILD_RETRY_ATTEMPTS": "1",
    }
    start = time.monotonic()
    with peak_rss_file() as peak:
        proc = subprocess.Popen(
            probe_command("splitbuild", *args),
            env={**base, "RSS_PROBE_FILE": str(peak), **(env or {})},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=home,
        )
        out: dict[str, bytes] = {}

        def drain(name: str, stream: Any) -> None:
            out[name] = stream.read()

        readers = [
            threading.Thread(target=drain, args=(n, s)) for n, s in (("o", proc.stdout), ("e", proc.stderr))
        ]
        for reader in readers:
            reader.start()
        killer = threading.Timer(timeout, proc.kill)
        killer.start()
        try:
            proc.wait()
        finally:
            killer.cancel()
        for reader in readers:
            reader.join()
        peak_mib = read_peak_kib(peak) / 1024
    seconds = time.monotonic() - start
    if seconds >= timeout:
        pytest.fail(f"splitbuild {' '.join(args)} was still running after {timeout:g} s")
    return Outcome(proc.returncode, out["o"].decode(), out["e"].decode(), peak_mib, seconds)


def credentials_env(server: HostileServer) -> dict[str, str]:
    prefix = registry_env_prefix(server.host)
    return {f"{prefix}USERNAME": USER, f"{prefix}PASSWORD": PASSWORD}


def run_api(fn: Callable[[RegistryRepository], Awaitable[T]], server: HostileServer, **options: Any) -> T:
    async def main() -> T:
        keychain = StaticKeychain({server.host: Credential(username=USER, password=PASSWORD)})
        settings: dict[str, Any] = {"retry": NO_RETRY, "env": {}, "keychain": keychain, **options}
        async with Client(**settings) as client:
            repo = client.repository(Reference.parse(f"{server.host}/app"))
            assert isinstance(repo, RegistryRepository)
            return await fn(repo)

    return anyio.run(main)


def peak_mib(fn: Callable[[], object]) -> tuple[float, BaseException | None]:
    """Peak traced memory (MiB) while ``fn`` runs, and what it raised."""
    tracemalloc.start()
    error: BaseException | None = None
    try:
        fn()
    except Exception as exc:
        error = exc
    finally:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    return peak / MIB, error


@pytest.fixture
def server() -> Iterator[HostileServer]:
    with HostileServer() as hostile:
        yield hostile


def basic_then(attack: Callable[[Request], Attack]) -> Callable[[Request], Attack]:
    """Ask for basic auth; a request carrying it gets ``attack``."""

    def route(request: Request) -> Attack:
        if not request.authorization:
            return Attack(401, {"WWW-Authenticate": 'Basic realm="hostile"'}, UNAUTHORIZED)
        return attack(request)

    return route


def bearer_then(server: HostileServer, attack: Callable[[Request], Attack]) -> Callable[[Request], Attack]:
    """Ask for a bearer token from the server's own /token; a request carrying one gets ``attack``."""

    def route(request: Request) -> Attack:
        if not request.authorization.startswith("Bearer "):
            challenge = f'Bearer realm="http://{server.host}/token",service="hostile"'
            return Attack(401, {"WWW-Authenticate": challenge}, UNAUTHORIZED)
        return attack(request)

    return route


def token_route(request: Request) -> Attack:
    if not request.authorization.startswith("Basic "):
        return Attack(401, {}, UNAUTHORIZED)
    return Attack(200, {}, json.dumps({"token": BEARER, "expires_in": 300}).encode())


# -- 4: secrets echoed by the registry ---------------------------------------------------------
ECHO_COMMANDS = [
    ("inspect", "{host}/app:v1"),
    ("inspect", "--json", "{host}/app:v1"),
    ("ls", "{host}/app"),
    ("ls", "--json", "{host}/app"),
    ("tag", "{host}/app:v1", "v2"),
    ("-v", "inspect", "{host}/app:v1"),
]


@pytest.mark.parametrize("scheme", ["basic", "bearer"])
def test_secrets_echoed_by_the_registry_are_masked(
    server: HostileServer, tmp_path: Path, scheme: str
) -> None:
    if scheme == "basic":
        server.add(r"^\w+ /v2/", basic_then(echo_authorization))
    else:
        server.add(r"^GET /token", token_route)
        server.add(r"^\w+ /v2/", bearer_then(server, echo_authorization))
    for command in ECHO_COMMANDS:
        args = [part.format(host=server.host) for part in command]
        outcome = splitbuild(*args, home=tmp_path, env=credentials_env(server))
        shown = outcome.stdout + outcome.stderr
        assert outcome.code == 5, (args, shown)
        assert "DENIED" in shown, (args, shown)
        for secret in secret_forms():
            assert secret not in shown, (args, secret, shown)
    echoed = [r for r in server.requests if r.authorization and "/v2/app" in r.target]
    assert echoed, "the registry never received the credentials it echoes"


# -- 22: control and bidirectional characters ---------------------------------------------------
FORGED = "\x1b]0;pwned\x07\x1b[2J\x1b[31m\u202egnp.exe\u2066\r\nsplitbuild: ok: everything fine\u2028done"


@pytest.mark.parametrize("command", [("inspect", "{host}/app:v1"), ("ls", "--json", "{host}/app")])
def test_registry_text_cannot_forge_output(
    server: HostileServer, tmp_path: Path, command: tuple[str, ...]
) -> None:
    body = json.dumps({"errors": [{"code": "DENIED\x1b[0m", "message": FORGED}]}).encode()
    server.add(r"^\w+ /v2/", Attack(400, {}, body))
    outcome = splitbuild(*[p.format(host=server.host) for p in command], home=tmp_path)
    assert outcome.code == 5, outcome.stderr
    shown = outcome.stdout + outcome.stderr
    for char in ("\x1b", "\x07", "\r", "\u202e", "\u2066", "\u2028"):
        assert char not in shown, (repr(char), shown)
    assert not any(line.startswith("splitbuild: ok") for line in shown.splitlines())
    assert outcome.stderr.startswith("splitbuild: error: ")
    assert "pwned" in outcome.stderr  # shown, as inert text


# -- 5: a failing credential helper ------------------------------------------------------------
HELPER = """#!{python}
import json, sys
sys.stdin.read()
print(json.dumps({{"ServerURL": "x", "Username": "{user}", "Secret": "{secret}"}}))
sys.stderr.write({stderr!r})
sys.exit(1)
"""


@pytest.mark.parametrize(
    "stderr",
    ["keychain backend failed\n", f"could not store {PASSWORD} for {USER}\n"],
    ids=["json", "stderr"],
)
def test_a_failing_credential_helper_never_shows_the_secret(
    server: HostileServer, tmp_path: Path, stderr: str
) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    helper = bin_dir / "docker-credential-evil"
    helper.write_text(HELPER.format(python=sys.executable, user=USER, secret=PASSWORD, stderr=stderr))
    helper.chmod(0o755)
    env = {"PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}
    with pytest.raises(ConfigError) as caught:
        helper_get("evil", server.host, configured_in="config.json", env=env)
    message = str(caught.value)
    assert "exit 1" in message
    assert PASSWORD not in message, message
    assert "Secret" not in message

    (tmp_path / "config.json").write_text(json.dumps({"credHelpers": {server.host: "evil"}}))
    server.add(r"^\w+ /v2/", basic_then(echo_authorization))
    outcome = splitbuild("inspect", f"{server.host}/app:v1", home=tmp_path, env=env)
    assert outcome.code == 3, outcome.stderr
    assert "docker-credential-evil" in outcome.stderr
    assert PASSWORD not in outcome.stdout + outcome.stderr, outcome.stderr


# -- 9, 10, 11: bodies read whole --------------------------------------------------------------
def test_an_endless_token_response_is_not_read_whole(server: HostileServer) -> None:
    server.add(r"^GET /token", Attack(200, {}, b'{"token": "', endless=ENDLESS))
    server.add(r"^\w+ /v2/", bearer_then(server, lambda r: Attack(200, {}, b"{}")))
    peak, error = peak_mib(lambda: run_api(lambda repo: repo.get_manifest("v1"), server))
    assert isinstance(error, RegistryError), error
    assert "64 KiB" in str(error)
    assert peak < 50, f"{peak:.0f} MiB"


def test_a_huge_declared_token_response_is_refused_unread(server: HostileServer) -> None:
    server.add(r"^GET /token", Attack(200, {}, b"", declared=200 * MIB, endless=ENDLESS))
    server.add(r"^\w+ /v2/", bearer_then(server, lambda r: Attack(200, {}, b"{}")))
    peak, error = peak_mib(lambda: run_api(lambda repo: repo.get_manifest("v1"), server))
    assert isinstance(error, RegistryError), error
    assert "64 KiB" in str(error)
    assert peak < 50, f"{peak:.0f} MiB"


def test_an_endless_401_body_is_not_read_whole(server: HostileServer) -> None:
    endless_401 = Attack(401, {"WWW-Authenticate": 'Basic realm="x"'}, UNAUTHORIZED, endless=ENDLESS)
    server.add(r"^\w+ /v2/", endless_401)
    peak, error = peak_mib(lambda: run_api(lambda repo: repo.get_manifest("v1"), server))
    assert isinstance(error, AuthError), error
    assert peak < 50, f"{peak:.0f} MiB"
    assert server.sent < 100 * MIB


def test_endless_answers_to_put_and_post_are_not_read_whole(server: HostileServer) -> None:
    image = make_image("linux/amd64", seed="hostile")
    server.add(r"^PUT /v2/app/manifests/", Attack(201, {}, b"", endless=ENDLESS))
    peak, error = peak_mib(lambda: run_api(lambda repo: repo.put_manifest(image.manifest), server))
    assert error is None, error
    assert peak < 50, f"manifest PUT: {peak:.0f} MiB"

    location = {"Location": "/v2/app/blobs/uploads/session-1"}
    server.add(r"^POST /v2/app/blobs/uploads/", Attack(202, location, b"", endless=ENDLESS))
    server.add(r"^PUT /v2/app/blobs/uploads/session-1", Attack(201, {}, b"", endless=ENDLESS))
    layer = image.manifest.image().layers[0]
    data = image.blobs[layer.digest]
    peak, error = peak_mib(lambda: run_api(lambda repo: repo.put_blob(layer, data), server))
    assert error is None, error
    assert peak < 50, f"upload POST: {peak:.0f} MiB"


@pytest.mark.parametrize("command", ["inspect", "ls"])
def test_commands_stay_small_on_endless_bodies(server: HostileServer, tmp_path: Path, command: str) -> None:
    server.add(r"^\w+ /v2/", Attack(500, {}, b'{"errors":[{"code":"UNKNOWN","message":"', endless=ENDLESS))
    ref = f"{server.host}/app:v1" if command == "inspect" else f"{server.host}/app"
    outcome = splitbuild(command, ref, home=tmp_path)
    assert outcome.code == 5, outcome.stderr
    assert outcome.rss_mib < RSS_BOUND_MIB, f"{outcome.rss_mib:.0f} MiB"


# -- 12: trickling servers ---------------------------------------------------------------------
DEADLINE = 2.0
SLOW = 0.3
"""One byte every 0.3 s: every read is far inside the 30 s phase timeout."""


@pytest.mark.parametrize("where", ["headers", "manifest body", "blob body"])
def test_a_trickling_server_meets_the_request_deadline(
    server: HostileServer, tmp_path: Path, where: str
) -> None:
    image = make_image("linux/amd64", seed="trickle")
    manifest = image.manifest
    headers = {"Content-Type": manifest.media_type, "Docker-Content-Digest": manifest.digest}
    if where == "headers":
        server.add(r"^\w+ /v2/", Attack(200, headers, manifest.raw, trickle=SLOW))
        args = ["inspect", f"{server.host}/app:v1"]
    elif where == "manifest body":
        server.add(r"^\w+ /v2/app/manifests/", Attack(200, headers, manifest.raw, trickle_body=SLOW))
        args = ["inspect", f"{server.host}/app:v1"]
    else:
        layer = manifest.image().layers[0]
        data = image.blobs[layer.digest]
        server.add(r"^\w+ /v2/app/manifests/", Attack(200, headers, manifest.raw))
        server.add(r"^\w+ /v2/app/blobs/", Attack(200, {}, data, trickle_body=SLOW))
        args = ["copy", f"{server.host}/app:v1", f"oci:{tmp_path / 'out'}:v1"]
    outcome = splitbuild(*args, home=tmp_path, env={"SPLITBUILD_REQUEST_DEADLINE": str(DEADLINE)}, timeout=60)
    assert outcome.code == 5, outcome.stderr
    assert "request deadline" in outcome.stderr, outcome.stderr
    assert outcome.seconds < 30  # the 2 s deadline (plus a second per 256 KiB of blob), generously


# -- 13: endless listings ----------------------------------------------------------------------
def endless_pages(entries: int, kind: str) -> Callable[[Request], Attack]:
    """Every page links to a new URL (page=N+1) and lists ``entries`` new entries."""

    def route(request: Request) -> Attack:
        number = int(request.target.rsplit("page=", 1)[1]) if "page=" in request.target else 0
        link = {"Link": f'<{request.target.split("?")[0]}?page={number + 1}>; rel="next"'}
        body: dict[str, object]
        if kind == "tags":
            body = {"name": "app", "tags": [f"t{number}-{i}" for i in range(entries)]}
            return Attack(200, link, json.dumps(body).encode())
        manifests = [
            {
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "size": 2,
                "digest": "sha256:" + f"{number:032x}{i:032x}",
                "artifactType": "application/x-test",
            }
            for i in range(entries)
        ]
        body = {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": manifests,
        }
        return Attack(
            200,
            {**link, "Content-Type": "application/vnd.oci.image.index.v1+json"},
            json.dumps(body).encode(),
        )

    return route


@pytest.mark.parametrize("cap", ["pages", "entries"])
def test_an_endless_tag_listing_ends_at_its_cap(server: HostileServer, cap: str) -> None:
    server.add(r"^GET /v2/app/tags/list", endless_pages(10 if cap == "pages" else 100, "tags"))
    options = {"max_pages": 20} if cap == "pages" else {"max_entries": 500}
    with pytest.raises(
        RegistryError, match="kept sending pages" if cap == "pages" else "more than 500 entries"
    ):
        run_api(lambda repo: repo.list_tags(), server, **options)
    assert len(server.requests) <= 21


def test_an_endless_referrers_listing_ends_at_its_cap(server: HostileServer) -> None:
    server.add(r"^GET /v2/app/referrers/", endless_pages(5, "referrers"))
    digest = "sha256:" + "ab" * 32
    with pytest.raises(RegistryError, match="kept sending pages"):
        run_api(lambda repo: repo.list_referrers(digest), server, max_pages=15)
    assert len([r for r in server.requests if "/referrers/" in r.target]) <= 16


def test_the_caps_have_defaults() -> None:
    from splitbuild.store.registry import MAX_ENTRIES, MAX_PAGES, RegistryClient

    client = RegistryClient(env={})
    assert (client.max_pages, client.max_entries) == (MAX_PAGES, MAX_ENTRIES) == (10_000, 1_000_000)


# -- 25: an oversized tags page is a registry fault --------------------------------------------
def test_an_oversized_tags_page_is_a_registry_error(server: HostileServer, tmp_path: Path) -> None:
    server.add(r"^GET /v2/app/tags/list", Attack(200, {}, b'{"tags":["', declared=40 * MIB, endless=ENDLESS))
    outcome = splitbuild("ls", f"{server.host}/app", home=tmp_path)
    assert outcome.code == 5, outcome.stderr
    assert "32 MiB" in outcome.stderr
    assert outcome.rss_mib < RSS_BOUND_MIB


# -- 25: a realm host name resolving to loopback -----------------------------------------------
@pytest.mark.parametrize("alias", ["127.1", "0x7f000001", "2130706433"])
def test_a_realm_name_resolving_to_loopback_gets_no_credentials(
    server: HostileServer, tmp_path: Path, alias: str
) -> None:
    with HostileServer({r"^GET /token": token_route}) as tokens:
        challenge = f'Bearer realm="http://{alias}:{tokens.port}/token",service="x"'
        server.add(r"^\w+ /v2/", Attack(401, {"WWW-Authenticate": challenge}, UNAUTHORIZED))
        outcome = splitbuild("inspect", f"{server.host}/app:v1", home=tmp_path, env=credentials_env(server))
        assert outcome.code == 6, outcome.stderr
        assert "refusing the token service" in outcome.stderr
        assert not [r for r in tokens.requests if r.authorization], "the credentials were sent"


def test_a_realm_name_is_checked_after_resolution() -> None:
    from splitbuild.auth.realm import realm_allowed

    # localhost resolves to 127.0.0.1: a remote registry cannot send credentials there
    assert not realm_allowed("https://localhost:8443/token", "registry.example.com", insecure=False)
    assert not realm_allowed("https://127.1/token", "registry.example.com", insecure=False)
    # what is allowed stays allowed: a local registry naming a local token service by address
    assert realm_allowed("http://127.0.0.1:5001/token", "127.0.0.1:5000", insecure=True)
    assert realm_allowed("http://localhost:5001/token", "127.0.0.1:5000", insecure=True)


# -- issue 15: an unreachable registry fails at once -------------------------------------------
def closed_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize("host", ["refused", "unknown"])
def test_an_unreachable_registry_fails_at_once(tmp_path: Path, host: str) -> None:
    registry = f"127.0.0.1:{closed_port()}" if host == "refused" else "no-such-registry.invalid"
    env = {"SPLITBUILD_RETRY_ATTEMPTS": "5", "SPLITBUILD_INSECURE_REGISTRIES": registry}
    outcome = splitbuild("inspect", f"{registry}/app:v1", home=tmp_path, env=env)
    assert outcome.code == 5, outcome.stderr
    lines = outcome.stderr.splitlines()
    assert len(lines) == 2, outcome.stderr
    assert lines[1].startswith("hint: ")
    assert ("connection refused" if host == "refused" else "unknown host") in lines[0]
    assert "gave up after" not in lines[0]  # no retries
    assert outcome.seconds < 6  # the five attempts' backoff alone is 7.5 s
