"""No credential ever appears in output: every command that talks to a registry, on success and on
failure (wrong password, unreachable registry, token service refusing or down), in verbose mode.

Against the htpasswd registry (basic auth: the password and its base64 ``user:password`` form)
and against distribution with token auth (``tests/token_server.py``): there, every bearer token
the service issued and every refresh token are secrets too.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import anyio
import pytest
from typer.testing import CliRunner

from splitbuild.auth import StaticKeychain
from splitbuild.auth.credentials import Credential
from splitbuild.auth.environment import registry_env_prefix
from splitbuild.cli.app import make_app
from splitbuild.client import Client
from splitbuild.reference import Reference
from splitbuild.retry import FAST_RETRY
from tests.constants import TEST_PASSWORD, TEST_USER
from tests.images import make_image, push
from tests.ops_support import multiarch
from tests.registry_server import RegistryServer, free_port
from tests.token_server import TokenServer, start_token_server

PLATFORMS = ["linux/amd64", "linux/arm64"]
WRONG_PASSWORD = TEST_PASSWORD + "-wrong"
ALICE = ("alice", "alice-pw-secret-0xE5")
READER = ("reader", "reader-pw-secret-0xF6")
REFRESH = "refresh-token-secret-0x17"


def seed(server: RegistryServer, repo: str) -> list[str]:
    async def run() -> list[str]:
        keychain = StaticKeychain({server.host: Credential(username=TEST_USER, password=TEST_PASSWORD)})
        async with Client(retry=FAST_RETRY, env={}, keychain=keychain) as client:
            target = client.repository(Reference.parse(f"{server.host}/{repo}"))
            out = []
            for p in PLATFORMS:
                image = make_image(p, seed="secret")
                await push(target, image)
                out.append(image.digest)
            return out

    return anyio.run(run)


def env_for(server: RegistryServer, password: str, tmp_home: str) -> dict[str, str]:
    prefix = registry_env_prefix(server.host)
    return {
        f"{prefix}USERNAME": TEST_USER,
        f"{prefix}PASSWORD": password,
        "HOME": tmp_home,
        "DOCKER_CONFIG": tmp_home,
        "SPLITBUILD_RETRY_ATTEMPTS": "2",
    }


def basic_forms(user: str, password: str) -> list[str]:
    """A password and the ways it travels: ``user:password`` and its base64 (Basic, config.json)."""
    pair = f"{user}:{password}"
    return [password, pair, base64.b64encode(pair.encode()).decode()]


@pytest.mark.parametrize("verbose", [False, True])
@pytest.mark.parametrize("password_ok", [True, False])
def test_merge_never_prints_the_password(
    auth_registry: RegistryServer, tmp_path: pytest.TempPathFactory, verbose: bool, password_ok: bool
) -> None:
    repo = f"secrets/{uuid.uuid4().hex[:8]}"
    digests = seed(auth_registry, repo)
    password = TEST_PASSWORD if password_ok else TEST_PASSWORD + "-wrong"
    args = ["-v"] if verbose else []
    args += ["merge", "-t", f"{auth_registry.host}/{repo}:v1", "--json", *digests]
    result = CliRunner().invoke(make_app(), args, env=env_for(auth_registry, password, str(tmp_path)))
    output = result.stdout + result.stderr
    assert result.exit_code == (0 if password_ok else 6), output
    assert TEST_PASSWORD not in output
    assert base64.b64encode(f"{TEST_USER}:{password}".encode()).decode() not in output
    if verbose:
        assert "HTTP Request" in output  # verbose mode really logged the requests
    if not password_ok:
        assert auth_registry.host in result.stderr


# -- every registry command ---------------------------------------------------------------------

COMMANDS: dict[str, list[str]] = {
    "inspect": ["inspect", "{ref}:v1"],
    "ls": ["ls", "{ref}"],
    "copy": ["copy", "{ref}:v1", "{ref}-copy"],
    "tag": ["tag", "{ref}:v1", "v2"],
    "delete": ["delete", "{ref}:v1"],
    "prune": ["prune", "{ref}", "--keep-last", "0", "--yes"],
    "verify": ["verify", "{ref}:v1", "--platform", "linux/amd64,linux/arm64", "--deep"],
    "merge": ["merge", "-t", "{ref}:merged", "{ref}@{img0}", "{ref}@{img1}"],
}
READ_ONLY = {"inspect", "ls", "verify"}


@dataclass
class Setup:
    """What one run uses: the registry host, the environment, the exit code to expect."""

    host: str
    env: dict[str, str]
    exit_code: int
    secrets: list[str] = field(default_factory=list)
    reaches_registry: bool = True


def seed_index(host: str, repo: str, credential: Credential | None) -> list[str]:
    """A buildx-style index as ``host/repo:v1`` (pushed when ``credential``); its image digests."""
    index = multiarch(PLATFORMS, seed=repo)
    if credential is not None:

        async def run() -> None:
            async with Client(
                retry=FAST_RETRY, env={}, keychain=StaticKeychain({host: credential})
            ) as client:
                await push(client.repository(Reference.parse(f"{host}/{repo}")), index, "v1")

        anyio.run(run)
    return [child.digest for child in index.children[: len(PLATFORMS)]]


def run_command(command: str, setup: Setup, repo: str, images: list[str], *, verbose: bool = True) -> str:
    """Run ``command`` and check: the exit code, no known secret anywhere, a one-line error naming
    the registry on failure, and (verbose) that requests were really logged. Returns the output."""
    ref = f"{setup.host}/{repo}"
    args = [part.format(ref=ref, img0=images[0], img1=images[1]) for part in COMMANDS[command]]
    result = CliRunner().invoke(make_app(), (["-v"] if verbose else []) + args, env=setup.env)
    output = result.stdout + result.stderr
    assert result.exit_code == setup.exit_code, output
    assert_no_secret(output, setup.secrets)
    assert "Traceback" not in output
    if verbose and setup.reaches_registry:
        assert "HTTP Request" in result.stderr
    if setup.exit_code != 0:
        errors = [line for line in result.stderr.splitlines() if line.startswith("splitbuild: error: ")]
        assert len(errors) == 1, result.stderr
        assert setup.host in errors[0]
    return output


def assert_no_secret(output: str, secrets: list[str]) -> None:
    for secret in secrets:
        assert secret not in output, f"a secret leaked: {secret[:4]}..."


def docker_config(home: Path, host: str, user: str, password: str) -> None:
    auth = base64.b64encode(f"{user}:{password}".encode()).decode()
    (home / "config.json").write_text(json.dumps({"auths": {host: {"auth": auth}}}))


def base_env(home: Path) -> dict[str, str]:
    return {"HOME": str(home), "DOCKER_CONFIG": str(home), "SPLITBUILD_RETRY_ATTEMPTS": "2"}


def password_env(host: str, user: str, password: str) -> dict[str, str]:
    prefix = registry_env_prefix(host)
    return {f"{prefix}USERNAME": user, f"{prefix}PASSWORD": password}


BASIC_SECRETS = basic_forms(TEST_USER, TEST_PASSWORD) + basic_forms(TEST_USER, WRONG_PASSWORD)


def basic_setup(scenario: str, command: str, server: RegistryServer, home: Path) -> Setup:
    env = base_env(home)
    if scenario == "env":
        env |= password_env(server.host, TEST_USER, TEST_PASSWORD)
        return Setup(server.host, env, 0, BASIC_SECRETS)
    if scenario == "config-file":
        docker_config(home, server.host, TEST_USER, TEST_PASSWORD)
        return Setup(server.host, env, 0, BASIC_SECRETS)
    if scenario == "wrong-password":
        env |= password_env(server.host, TEST_USER, WRONG_PASSWORD)
        return Setup(server.host, env, 6, BASIC_SECRETS)
    # unreachable: credentials for a port where nothing listens
    host = f"127.0.0.1:{free_port()}"
    docker_config(home, host, TEST_USER, TEST_PASSWORD)
    env |= password_env(host, TEST_USER, TEST_PASSWORD)
    return Setup(host, env, 5, BASIC_SECRETS, reaches_registry=False)


@pytest.mark.parametrize("command", list(COMMANDS))
@pytest.mark.parametrize("scenario", ["env", "config-file", "wrong-password", "unreachable"])
def test_basic_auth_commands_never_print_credentials(
    auth_registry: RegistryServer, tmp_path: Path, scenario: str, command: str
) -> None:
    setup = basic_setup(scenario, command, auth_registry, tmp_path)
    repo = f"secrets/{uuid.uuid4().hex[:8]}"
    reachable = setup.host == auth_registry.host
    credential = Credential(username=TEST_USER, password=TEST_PASSWORD) if reachable else None
    images = seed_index(setup.host, repo, credential)
    run_command(command, setup, repo, images)


@pytest.mark.parametrize("command", list(COMMANDS))
def test_basic_auth_reports_never_print_credentials(
    auth_registry: RegistryServer, tmp_path: Path, command: str
) -> None:
    """The same commands without ``-v``: their human reports."""
    setup = basic_setup("config-file", command, auth_registry, tmp_path)
    repo = f"secrets/{uuid.uuid4().hex[:8]}"
    images = seed_index(setup.host, repo, Credential(username=TEST_USER, password=TEST_PASSWORD))
    run_command(command, setup, repo, images, verbose=False)


# -- token auth ---------------------------------------------------------------------------------


@dataclass
class Issued:
    """Every bearer token the token service handed out (recorded as they are issued)."""

    tokens: list[str] = field(default_factory=list)

    def secrets(self, service: TokenServer) -> list[str]:
        found = [REFRESH, *service.refresh_tokens]
        for token in self.tokens:
            found += [token, token.rsplit(".", 1)[-1]]  # the whole JWT, and its signature alone
        return found


@pytest.fixture(scope="module")
def tokens(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TokenServer]:
    server = start_token_server(
        tmp_path_factory.mktemp("secrets-tokens"),
        users=dict([ALICE, READER]),
        refresh_tokens={REFRESH: ALICE[0]},
        rotate_refresh_tokens=True,
        grants={ALICE[0]: {"secrets/*": ("pull", "push", "delete")}, READER[0]: {"secrets/*": ("pull",)}},
    )
    yield server
    server.stop()


@pytest.fixture
def issued(tokens: TokenServer, monkeypatch: pytest.MonkeyPatch) -> Issued:
    record = Issued()
    issue = tokens.issue

    def recording(account: str | None, scopes: list[str]) -> str:
        token = issue(account, scopes)
        record.tokens.append(token)
        return token

    monkeypatch.setattr(tokens, "issue", recording)
    tokens.reset()
    return record


TOKEN_SCENARIOS = ["password", "refresh-token", "wrong-password", "pull-only", "service-down"]


def token_setup(
    scenario: str, command: str, server: RegistryServer, tokens: TokenServer, home: Path
) -> Setup:
    env = base_env(home)
    prefix = registry_env_prefix(server.host)
    secrets = basic_forms(*ALICE) + basic_forms(*READER) + basic_forms(ALICE[0], ALICE[1] + "-wrong")
    if scenario == "password":
        return Setup(server.host, env | password_env(server.host, *ALICE), 0, secrets)
    if scenario == "refresh-token":
        return Setup(server.host, env | {f"{prefix}IDENTITY_TOKEN": REFRESH}, 0, secrets)
    if scenario == "wrong-password":
        env |= password_env(server.host, ALICE[0], ALICE[1] + "-wrong")
        return Setup(server.host, env, 6, secrets)
    if scenario == "pull-only":  # the token service grants pull only: writes are refused
        code = 0 if command in READ_ONLY else 6
        return Setup(server.host, env | password_env(server.host, *READER), code, secrets)
    tokens.fail_next.extend([503] * 50)  # service-down: the token service answers 503
    return Setup(server.host, env | password_env(server.host, *ALICE), 5, secrets)


@pytest.mark.parametrize("command", list(COMMANDS))
@pytest.mark.parametrize("scenario", TOKEN_SCENARIOS)
def test_token_auth_commands_never_print_credentials_or_tokens(
    token_registry: RegistryServer,
    tokens: TokenServer,
    issued: Issued,
    tmp_path: Path,
    scenario: str,
    command: str,
) -> None:
    repo = f"secrets/{uuid.uuid4().hex[:8]}"
    images = seed_index(token_registry.host, repo, Credential(username=ALICE[0], password=ALICE[1]))
    setup = token_setup(scenario, command, token_registry, tokens, tmp_path)
    try:
        output = run_command(command, setup, repo, images)
    finally:
        tokens.fail_next.clear()
    # the tokens issued during the run are known only now
    assert issued.tokens
    assert_no_secret(output, issued.secrets(tokens))
