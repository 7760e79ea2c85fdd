"""The default TLS trust prepared on a thread at start-up (``splitbuild._tls``): the command line
starts loading the CA bundle beside its imports; the first registry client takes that context, and
every later one builds its own from the environment, as before."""

from __future__ import annotations

from collections.abc import Callable

import anyio
import pytest

from splitbuild import _tls
from splitbuild.client import Client
from splitbuild.errors import RegistryError
from splitbuild.reference import Reference
from splitbuild.retry import NO_RETRY
from tests.registry_server import RegistryServer


@pytest.fixture(scope="module")
def tls_registry(registry_factory: Callable[..., RegistryServer], tls_name: str) -> RegistryServer:
    server = registry_factory(tls_name=tls_name)
    assert server.tls is not None
    return server


async def reach(server: RegistryServer) -> None:
    async with Client(retry=NO_RETRY, env={}) as client:
        assert (
            await client.repository(Reference.parse(f"{server.tls_host}/tls/prepared")).head_manifest("v1")
            is None
        )


def test_the_first_client_takes_the_prepared_trust_and_later_ones_read_the_environment(
    tls_registry: RegistryServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert tls_registry.tls is not None
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    monkeypatch.setenv("SSL_CERT_FILE", str(tls_registry.tls.ca_path))
    _tls.prepare()
    monkeypatch.delenv("SSL_CERT_FILE")
    anyio.run(reach, tls_registry)  # trusts the CA: the context was built while SSL_CERT_FILE named it
    with pytest.raises(RegistryError, match="CERTIFICATE_VERIFY_FAILED"):
        anyio.run(reach, tls_registry)  # a new context, from today's environment


def test_without_preparing_each_client_reads_the_environment(
    tls_registry: RegistryServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert tls_registry.tls is not None
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    monkeypatch.setenv("SSL_CERT_FILE", str(tls_registry.tls.ca_path))
    anyio.run(reach, tls_registry)
    monkeypatch.delenv("SSL_CERT_FILE")
    with pytest.raises(RegistryError, match="CERTIFICATE_VERIFY_FAILED"):
        anyio.run(reach, tls_registry)


def test_a_failure_on_the_thread_is_raised_where_the_context_is_taken(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    monkeypatch.setenv("SSL_CERT_FILE", "/nonexistent/ca.pem")
    _tls.prepare()
    with pytest.raises(FileNotFoundError):
        _tls.default_context()
    monkeypatch.delenv("SSL_CERT_FILE")
    assert _tls.default_context().cert_store_stats()["x509_ca"] > 0  # certifi's bundle
