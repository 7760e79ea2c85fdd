"""TLS failures end cleanly:

* a certificate that does not verify is not retried (it can never succeed) and the error hints at
  ``--ca-file``;
* ``--ca-file`` adds to the default trust: one run reaches a private registry and a public one;
* a ``--ca-file`` that is missing or not a PEM bundle is invalid input naming the file.
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
from splitbuild.retry import RetryPolicy
from tests.registry_server import RegistryServer
from tests.tls_support import seed_index


@pytest.fixture(scope="module")
def tls_pair(registry_factory: Callable[..., RegistryServer], tls_name: str) -> tuple[RegistryServer, ...]:
    """Two TLS registries, each with its own CA."""
    return registry_factory(tls_name=tls_name), registry_factory(tls_name=tls_name)


def ca(server: RegistryServer) -> str:
    assert server.tls is not None
    return str(server.tls.ca_path)


def test_a_certificate_failure_is_not_retried_and_hints_at_ca_file(
    tls_pair: tuple[RegistryServer, ...],
) -> None:
    server = tls_pair[0]
    client = Client(retry=RetryPolicy(attempts=5, initial=0.2), env={})

    async def run() -> None:
        async with client:
            await client.repository(Reference.parse(f"{server.tls_host}/tls/x")).list_tags()

    with pytest.raises(RegistryError) as info:
        anyio.run(run)
    assert client.requests == 1
    assert "`ca_file`" in (info.value.hint or "")


def test_ca_file_adds_to_the_default_trust(tls_pair: tuple[RegistryServer, ...]) -> None:
    first, second = tls_pair
    repo = f"tls/{uuid.uuid4().hex[:8]}"
    digest, _ = seed_index(first.tls_host, repo, ca(first))
    # the second registry's CA is the default trust (what the system bundle is on a runner)
    result = CliRunner().invoke(
        make_app(),
        [
            "copy",
            f"{first.tls_host}/{repo}:v1",
            f"{second.tls_host}/{repo}",
            "--ca-file",
            ca(first),
            "--json",
        ],
        env={"SSL_CERT_FILE": ca(second), "SPLITBUILD_RETRY_ATTEMPTS": "1"},
    )
    assert result.exit_code == 0, result.stderr
    assert f'"digest": "{digest}"' in result.stdout


def test_a_ca_file_that_is_not_pem_is_invalid_input(
    tls_pair: tuple[RegistryServer, ...], tmp_path: Path
) -> None:
    bogus = tmp_path / "not-a-ca.pem"
    bogus.write_text("this is not a certificate\n")
    result = CliRunner().invoke(
        make_app(), ["ls", f"{tls_pair[0].tls_host}/tls/x", "--ca-file", str(bogus)], env={}
    )
    assert result.exit_code == 3, result.stderr
    assert str(bogus) in result.stderr
    assert len(result.stderr.splitlines()) == 1


def test_a_missing_ca_file_is_named(tls_pair: tuple[RegistryServer, ...], tmp_path: Path) -> None:
    missing = tmp_path / "no-such-ca.pem"
    result = CliRunner().invoke(
        make_app(), ["ls", f"{tls_pair[0].tls_host}/tls/x", "--ca-file", str(missing)], env={}
    )
    assert result.exit_code == 3, result.stderr
    assert str(missing) in result.stderr
