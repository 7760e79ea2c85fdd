"""TLS: a registry with a certificate from a private CA is refused by default and accepted with the
CA given explicitly (``--ca-file`` on the commands, ``Client(ca_file=...)`` in Python).

splitbuild speaks plain HTTP to loopback literals (``localhost``, ``127.0.0.0/8``, ``::1``), as
docker does, so the TLS registry is reached by a name that is none of those: ``TLS_NAME``, under
the ``.test`` domain reserved for testing (RFC 2606). The ``tls_name`` fixture (tests/conftest.py)
makes that name resolve to 127.0.0.1 inside this test process (the commands run in-process) and
checks both assumptions before any test relies on them.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path

import anyio
import pytest
from typer.testing import CliRunner

from splitbuild.cli.app import make_app
from splitbuild.client import Client
from splitbuild.errors import RegistryError
from splitbuild.reference import Reference
from splitbuild.retry import NO_RETRY
from tests.registry_server import RegistryServer, TLSIdentity
from tests.tls_support import TLS_NAME, seed_index


@pytest.fixture(scope="module")
def tls_registry(registry_factory: Callable[..., RegistryServer], tls_name: str) -> RegistryServer:
    server = registry_factory(tls_name=tls_name)
    assert server.tls is not None
    return server


def ca_of(server: RegistryServer) -> Path:
    assert server.tls is not None
    return server.tls.ca_path


def invoke(*args: str, attempts: int = 1) -> tuple[int, str, str]:
    env = {
        "SPLITBUILD_RETRY_ATTEMPTS": str(attempts),
        "HOME": "/nonexistent",
        "DOCKER_CONFIG": "/nonexistent",
    }
    result = CliRunner().invoke(make_app(), list(args), env=env)
    return result.exit_code, result.stdout, result.stderr


def test_the_client_refuses_an_unknown_ca_by_default(tls_registry: RegistryServer) -> None:
    async def run() -> None:
        async with Client(retry=NO_RETRY, env={}) as client:
            assert client.registry.base_url(Reference.parse(f"{tls_registry.tls_host}/x")).startswith(
                "https://"
            )
            await client.repository(Reference.parse(f"{tls_registry.tls_host}/tls/none")).list_tags()

    with pytest.raises(RegistryError, match="CERTIFICATE_VERIFY_FAILED") as info:
        anyio.run(run)
    assert tls_registry.tls_host in info.value.message
    assert "\n" not in info.value.message


def test_the_client_accepts_the_registry_with_its_ca_file(tls_registry: RegistryServer) -> None:
    repo = f"tls/{uuid.uuid4().hex[:8]}"
    digest, _ = seed_index(tls_registry.tls_host, repo, ca_of(tls_registry))

    async def run() -> str:
        async with Client(retry=NO_RETRY, env={}, ca_file=ca_of(tls_registry)) as client:
            manifest = await client.repository(
                Reference.parse(f"{tls_registry.tls_host}/{repo}")
            ).get_manifest("v1")
            return manifest.digest

    assert anyio.run(run) == digest


@pytest.mark.parametrize(
    "command",
    [
        ["ls", "{tls}/{repo}"],
        ["inspect", "{tls}/{repo}:v1"],
        ["copy", "{tls}/{repo}:v1", "{tls}/{repo}-copy:v1"],
        ["tag", "{tls}/{repo}:v1", "v1-again"],
        ["verify", "{tls}/{repo}:v1", "--platform", "linux/amd64,linux/arm64"],
        ["delete", "--dry-run", "{tls}/{repo}:v1"],
        ["prune", "{tls}/{repo}", "--keep-last", "1"],
        ["merge", "-t", "{tls}/{repo}:merged", "{tls}/{repo}@{img0}", "{tls}/{repo}@{img1}"],
    ],
    ids=lambda command: command[0],
)
def test_every_registry_command_refuses_then_accepts_with_ca_file(
    tls_registry: RegistryServer, command: list[str]
) -> None:
    repo = f"tls/{uuid.uuid4().hex[:8]}"
    _, images = seed_index(tls_registry.tls_host, repo, ca_of(tls_registry))
    args = [
        part.format(tls=tls_registry.tls_host, repo=repo, img0=images[0], img1=images[1]) for part in command
    ]
    code, stdout, stderr = invoke(*args)
    # a registry that cannot be reached is a registry error (5) for every command, verify included
    assert code == 5, stderr
    assert stdout == ""
    lines = stderr.splitlines()
    assert len(lines) == 2, stderr  # the error, and a hint naming --ca-file
    assert lines[1] == "hint: pass the CA that signed the registry's certificate as --ca-file"
    assert lines[0].startswith("splitbuild: error: ")
    assert "certificate verify failed" in lines[0]
    assert tls_registry.tls_host in lines[0]
    code, stdout, stderr = invoke(*args, "--ca-file", str(ca_of(tls_registry)))
    assert code == 0, stderr
    assert stdout


def test_a_ca_that_did_not_sign_the_certificate_is_refused(
    tls_registry: RegistryServer, tmp_path: Path
) -> None:
    other = TLSIdentity.issue(tmp_path, TLS_NAME)
    code, _, stderr = invoke("ls", f"{tls_registry.tls_host}/tls/other", "--ca-file", str(other.ca_path))
    assert code == 5
    assert "certificate verify failed" in stderr


def test_copy_between_a_plain_and_a_tls_registry_keeps_digests(
    registry: RegistryServer, tls_registry: RegistryServer
) -> None:
    repo = f"tls/{uuid.uuid4().hex[:8]}"
    digest, _ = seed_index(registry.host, repo, None)
    ca = str(ca_of(tls_registry))
    code, _, stderr = invoke(
        "copy", f"{registry.host}/{repo}:v1", f"{tls_registry.tls_host}/{repo}", "--ca-file", ca
    )
    assert code == 0, stderr
    code, _, stderr = invoke(
        "copy", f"{tls_registry.tls_host}/{repo}:v1", f"{registry.host}/{repo}-back", "--ca-file", ca
    )
    assert code == 0, stderr

    async def digests() -> set[str]:
        async with Client(retry=NO_RETRY, env={}, ca_file=ca) as client:
            found = set()
            for ref in (f"{tls_registry.tls_host}/{repo}:v1", f"{registry.host}/{repo}-back:v1"):
                found.add((await client.repository(Reference.parse(ref)).get_manifest("v1")).digest)
            return found

    assert anyio.run(digests) == {digest}
