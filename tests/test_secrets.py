"""No credential ever appears in output: successful runs, failures, verbose mode."""

from __future__ import annotations

import base64
import uuid

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
from tests.conftest import TEST_PASSWORD, TEST_USER
from tests.images import make_image, push
from tests.registry_server import RegistryServer

PLATFORMS = ["linux/amd64", "linux/arm64"]


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
