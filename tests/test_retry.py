"""The retry policy: bounded in attempts and in total time, and it honours ``Retry-After``.

Against a scripted loopback server (``tests.faults.ScriptedServer``) whose answers and request
times are known, through the library and through the real ``splitbuild`` process; and against
the token service of a registry with token auth.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import anyio
import pytest

from splitbuild.auth import Credential, StaticKeychain
from splitbuild.client import Client
from splitbuild.errors import ConfigError, NotFound, RegistryError
from splitbuild.reference import Reference
from splitbuild.retry import RetryPolicy
from tests.faults import Reply, ScriptedServer
from tests.images import make_image, push
from tests.registry_server import RegistryServer
from tests.token_server import TokenServer, start_token_server

IMAGE = make_image("linux/amd64", seed="retry")
MANIFEST = Reply(
    200,
    IMAGE.manifest.raw,
    {"Content-Type": IMAGE.manifest.media_type, "Docker-Content-Digest": IMAGE.digest},
)
UNAVAILABLE = b'{"errors":[{"code":"UNAVAILABLE","message":"try later"}]}'


def busy(retry_after: str | None = None, status: int = 429) -> Reply:
    return Reply(status, UNAVAILABLE, {"Retry-After": retry_after} if retry_after is not None else {})


def policy(**changes: float) -> RetryPolicy:
    """No jitter, a tiny backoff (so any long wait is the server's ``Retry-After``)."""
    values: dict[str, float] = {
        "attempts": 5,
        "initial": 0.01,
        "multiplier": 1.0,
        "max_delay": 5.0,
        "total": 10.0,
        "jitter": 0.0,
    }
    values.update(changes)
    return RetryPolicy(
        attempts=int(values["attempts"]),
        initial=values["initial"],
        multiplier=values["multiplier"],
        max_delay=values["max_delay"],
        total=values["total"],
        jitter=values["jitter"],
    )


def get_manifest(server: ScriptedServer, retry: RetryPolicy) -> tuple[float, BaseException | None]:
    """GET the scripted manifest; the elapsed time and the error (None on success)."""

    async def run() -> None:
        async with Client(retry=retry, env={}) as client:
            repo = client.repository(Reference.parse(f"{server.host}/acme/app"))
            manifest = await repo.get_manifest("v1")
            assert manifest.digest == IMAGE.digest

    start = time.monotonic()
    try:
        anyio.run(run)
    except RegistryError as exc:
        return time.monotonic() - start, exc
    return time.monotonic() - start, None


@pytest.fixture
def scripted() -> Iterator[Callable[[list[Reply]], ScriptedServer]]:
    """A scripted server whose manifest route answers the given replies in turn."""
    servers: list[ScriptedServer] = []

    def make(replies: list[Reply]) -> ScriptedServer:
        server = ScriptedServer({r"/manifests/": replies}).start()
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.stop()


def test_retry_after_in_seconds_is_waited_for(scripted: Callable[[list[Reply]], ScriptedServer]) -> None:
    server = scripted([busy("1"), MANIFEST])
    elapsed, error = get_manifest(server, policy())
    assert error is None
    assert len(server.requests) == 2
    # the server's second, not the policy's 10 ms backoff
    assert 1.0 <= server.gaps()[0] < 2.0
    assert elapsed < 3.0


def test_without_retry_after_the_backoff_applies(scripted: Callable[[list[Reply]], ScriptedServer]) -> None:
    server = scripted([busy(None), busy(None, 503), MANIFEST])
    _elapsed, error = get_manifest(server, policy(initial=0.2))
    assert error is None
    assert len(server.requests) == 3
    assert all(0.2 <= gap < 1.0 for gap in server.gaps())


def test_retry_after_as_an_http_date_is_waited_for(scripted: Callable[[list[Reply]], ScriptedServer]) -> None:
    # HTTP dates have whole seconds: two seconds ahead is a wait of one to two seconds
    when = email.utils.format_datetime(dt.datetime.now(dt.UTC) + dt.timedelta(seconds=2), usegmt=True)
    server = scripted([busy(when, 503), MANIFEST])
    _, error = get_manifest(server, policy())
    assert error is None
    assert 0.9 <= server.gaps()[0] < 2.5


def test_one_wait_is_capped_by_max_delay(scripted: Callable[[list[Reply]], ScriptedServer]) -> None:
    server = scripted([busy("30"), MANIFEST])
    _, error = get_manifest(server, policy(max_delay=0.3, total=60))
    assert error is None
    assert 0.3 <= server.gaps()[0] < 1.0


def test_attempts_are_bounded(scripted: Callable[[list[Reply]], ScriptedServer]) -> None:
    server = scripted([busy(None, 503)])
    _, error = get_manifest(server, policy(attempts=3))
    assert isinstance(error, RegistryError)
    assert len(server.requests) == 3
    assert error.exit_code == 5
    assert error.status == 503
    assert error.attempts == 3
    assert "\n" not in error.message
    assert error.message.startswith(f"{server.host}/acme/app:v1: GET http://{server.host}/v2/acme/app/")
    assert "503 UNAVAILABLE (try later); gave up after 3 attempts in " in error.message


def test_total_time_is_bounded(scripted: Callable[[list[Reply]], ScriptedServer]) -> None:
    # waits of 1 s: attempts at 0 s and 1 s; a third would start at 2 s, past the 1.5 s budget,
    # so the second wait is not started
    server = scripted([busy("1")])
    elapsed, error = get_manifest(server, policy(attempts=50, total=1.5))
    assert isinstance(error, RegistryError)
    assert len(server.requests) == 2
    assert elapsed < 2.0
    assert error.message.endswith("(Retry-After: 1 s)")
    assert "gave up after 2 attempts" in error.message


def test_a_wait_past_the_budget_is_not_started(scripted: Callable[[list[Reply]], ScriptedServer]) -> None:
    server = scripted([busy("10"), MANIFEST])
    elapsed, error = get_manifest(server, policy(max_delay=30, total=5))
    assert isinstance(error, RegistryError)
    assert len(server.requests) == 1
    assert elapsed < 1.0
    assert "gave up after 1 attempt in " in error.message
    assert "(Retry-After: 10 s)" in error.message


def test_a_retry_after_past_the_budget_ends_the_retries_even_when_one_wait_is_capped(
    scripted: Callable[[list[Reply]], ScriptedServer],
) -> None:
    # a wait of max_delay (0.3 s) would fit the budget, but the server asked for 10 s
    server = scripted([busy("10"), MANIFEST])
    elapsed, error = get_manifest(server, policy(max_delay=0.3, total=5))
    assert isinstance(error, RegistryError)
    assert len(server.requests) == 1
    assert elapsed < 1.0
    assert error.message.endswith("gave up after 1 attempt in 0.0 s (Retry-After: 10 s)")


def test_errors_that_are_not_transient_are_not_retried(
    scripted: Callable[[list[Reply]], ScriptedServer],
) -> None:
    server = scripted([Reply(400, b'{"errors":[{"code":"MANIFEST_INVALID","message":"no"}]}'), MANIFEST])
    _, error = get_manifest(server, policy())
    assert isinstance(error, RegistryError)
    assert len(server.requests) == 1
    assert error.status == 400
    assert error.attempts is None
    missing = scripted([Reply(404, b'{"errors":[{"code":"MANIFEST_UNKNOWN","message":"gone"}]}')])

    async def run() -> None:
        async with Client(retry=policy(), env={}) as client:
            await client.repository(Reference.parse(f"{missing.host}/acme/app")).get_manifest("v1")

    with pytest.raises(NotFound):
        anyio.run(run)
    assert len(missing.requests) == 1


def test_policy_from_environment() -> None:
    assert RetryPolicy.from_env({}) == RetryPolicy()
    tuned = RetryPolicy.from_env({"SPLITBUILD_RETRY_ATTEMPTS": "2", "SPLITBUILD_RETRY_TOTAL": "7.5"})
    assert (tuned.attempts, tuned.total) == (2, 7.5)
    # empty values count as unset (CI systems expand missing variables to "")
    assert RetryPolicy.from_env({"SPLITBUILD_RETRY_ATTEMPTS": ""}) == RetryPolicy()
    with pytest.raises(ConfigError, match="SPLITBUILD_RETRY_ATTEMPTS must be a whole number"):
        RetryPolicy.from_env({"SPLITBUILD_RETRY_ATTEMPTS": "three"})


# -- the real process -----------------------------------------------------------------------


def run_cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    root = Path(__file__).resolve().parent.parent
    full_env = {"PATH": os.environ.get("PATH", ""), "HOME": env.get("HOME", "/nonexistent"), **env}
    return subprocess.run(
        [sys.executable, "-m", "splitbuild", *args],
        env={**full_env, "PYTHONPATH": str(root)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_the_cli_retries_and_waits(tmp_path: Path) -> None:
    tags = Reply(200, json.dumps({"name": "acme/app", "tags": ["v1", "v2"]}).encode())
    with ScriptedServer({r"/tags/list": [busy("1"), busy(None, 502), tags]}) as server:
        result = run_cli("ls", f"{server.host}/acme/app", env={"HOME": str(tmp_path)})
        assert (result.returncode, result.stdout, result.stderr) == (0, "v1\nv2\n", "")
        assert len(server.requests) == 3
        assert server.gaps()[0] >= 1.0


def test_the_cli_gives_up_with_one_line(tmp_path: Path) -> None:
    with ScriptedServer({r"/tags/list": [busy(None, 503)]}) as server:
        env = {"HOME": str(tmp_path), "SPLITBUILD_RETRY_ATTEMPTS": "3", "SPLITBUILD_RETRY_TOTAL": "30"}
        result = run_cli("ls", f"{server.host}/acme/app", env=env)
        assert result.returncode == 5
        assert len(server.requests) == 3
        lines = result.stderr.splitlines()
        assert len(lines) == 1, result.stderr
        assert lines[0].startswith(f"splitbuild: error: {server.host}/acme/app tags: GET http://")
        assert "503 UNAVAILABLE (try later); gave up after 3 attempts in " in lines[0]


# -- the token service ------------------------------------------------------------------------

USER = ("retry-user", "retry-pw-0xD4")


@pytest.fixture(scope="module")
def tokens(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TokenServer]:
    server = start_token_server(
        tmp_path_factory.mktemp("retry-tokens"),
        users=dict([USER]),
        grants={USER[0]: {"retry/*": ("pull", "push")}},
    )
    yield server
    server.stop()


def test_a_busy_token_service_is_retried_after_retry_after(
    token_registry: RegistryServer, tokens: TokenServer
) -> None:
    repo = f"retry/{uuid.uuid4().hex[:8]}"
    keychain = StaticKeychain({token_registry.host: Credential(username=USER[0], password=USER[1])})

    async def run() -> list[float]:
        async with Client(retry=policy(), env={}, keychain=keychain) as client:
            target = client.repository(Reference.parse(f"{token_registry.host}/{repo}"))
            await push(target, IMAGE, "v1")
            tokens.reset()
            tokens.fail_next.extend([429])  # the token service answers with Retry-After: 1
            fresh = Client(retry=policy(), env={}, keychain=keychain)
            async with fresh:
                start = time.monotonic()
                got = await fresh.repository(Reference.parse(f"{token_registry.host}/{repo}")).get_manifest(
                    "v1"
                )
                assert got.digest == IMAGE.digest
                return [time.monotonic() - start]

    (elapsed,) = anyio.run(run)
    assert [entry.account for entry in tokens.requests] == [USER[0], USER[0]]
    assert 1.0 <= elapsed < 2.5


def test_nested_operations_do_not_multiply_attempts() -> None:
    """read_blob retries around open_blob; an upload retries around reading its source: each is
    still at most ``attempts`` requests, not attempts squared."""
    layer = IMAGE.manifest.image().layers[0]
    with ScriptedServer() as server:
        server.add(r"/v2/app/blobs/", busy(status=503))

        async def run() -> None:
            async with Client(retry=policy(attempts=4), env={}) as client:
                await client.repository(Reference.parse(f"{server.host}/app")).read_blob(layer)

        with pytest.raises(RegistryError, match="gave up after 4 attempts"):
            anyio.run(run)
        assert len([s for s in server.requests if "/blobs/" in s.path]) == 4


# -- Retry-After by RFC 9110 (issue 14 item 25) -------------------------------------------------
def _retry_after(value: str) -> float | None:
    import httpx

    from splitbuild._http import retry_after

    return retry_after(httpx.Response(429, headers={"Retry-After": value}))


@pytest.mark.parametrize("value", ["nan", "-5", "1_0", "1.5", "+3", "inf", "1e3", "0x10", "soon", ""])
def test_a_retry_after_that_is_not_delta_seconds_or_a_date_is_ignored(value: str) -> None:
    assert _retry_after(value) is None


def test_retry_after_delta_seconds_and_dates() -> None:
    assert _retry_after("10") == 10.0
    assert _retry_after(" 3 ") == 3.0
    assert _retry_after("0") == 0.0
    assert _retry_after("99999999999999999999") == 24 * 3600.0
    past = email.utils.format_datetime(dt.datetime(2001, 1, 1, tzinfo=dt.UTC), usegmt=True)
    assert _retry_after(past) == 0.0
    ahead = email.utils.format_datetime(dt.datetime.now(dt.UTC) + dt.timedelta(seconds=100), usegmt=True)
    found = _retry_after(ahead)
    assert found is not None
    assert 90 < found <= 100


def _wait_after(policy_: RetryPolicy, error: RegistryError, attempt: int) -> float:
    from tenacity import AsyncRetrying, RetryCallState

    state = RetryCallState(AsyncRetrying(), None, (), {})
    state.attempt_number = attempt
    state.set_exception((RegistryError, error, None))
    return policy_.wait(state)


@pytest.mark.parametrize("asked", [0.0, None])
def test_the_backoff_floor_holds_whatever_the_server_asks(asked: float | None) -> None:
    floor = RetryPolicy(initial=0.5, multiplier=2.0, jitter=0.0, max_delay=30.0)
    error = RegistryError("busy", status=429, retryable=True, retry_after=asked)
    assert [_wait_after(floor, error, n) for n in (1, 2, 3)] == [0.5, 1.0, 2.0]


def test_a_longer_retry_after_still_wins_up_to_max_delay() -> None:
    floor = RetryPolicy(initial=0.5, jitter=0.0, max_delay=30.0)
    assert _wait_after(floor, RegistryError("busy", retryable=True, retry_after=7.0), 1) == 7.0
    assert _wait_after(floor, RegistryError("busy", retryable=True, retry_after=99.0), 1) == 30.0


def test_retry_after_nan_does_not_hammer_the_registry(
    scripted: Callable[[list[Reply]], ScriptedServer],
) -> None:
    server = scripted([busy("nan"), busy("-5"), MANIFEST])
    _, error = get_manifest(server, policy(initial=0.3, multiplier=1.0))
    assert error is None
    assert all(gap >= 0.25 for gap in server.gaps()), server.gaps()
