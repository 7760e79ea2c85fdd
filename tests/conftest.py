"""Shared fixtures: real registries (CNCF distribution) on loopback, started and stopped here."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from splitbuild.client import Client
from splitbuild.retry import FAST_RETRY
from tests.constants import CONFORMANCE, TEST_PASSWORD, TEST_USER
from tests.registry_server import RegistryServer, start_registry
from tests.tls_support import TLS_NAME, resolving_to_loopback
from tests.token_server import TokenServer


@pytest.fixture(scope="session")
def conformance_dir() -> Path:
    """tests/conformance: the conformance vectors and checkers, and the action-pin notes."""
    return CONFORMANCE


@pytest.fixture(scope="session")
def registry_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., RegistryServer]]:
    """Start extra registries on demand; all are stopped at the end of the session."""
    started: list[RegistryServer] = []

    def make(**kwargs: Any) -> RegistryServer:
        server = start_registry(tmp_path_factory.mktemp("registry"), **kwargs)
        started.append(server)
        return server

    yield make
    for server in started:
        server.stop()


@pytest.fixture(scope="session")
def registry(registry_factory: Callable[..., RegistryServer]) -> RegistryServer:
    """A plain-HTTP registry without auth, shared by the session (use unique repository names)."""
    return registry_factory()


@pytest.fixture(scope="session")
def registry2(registry_factory: Callable[..., RegistryServer]) -> RegistryServer:
    """A second independent registry, for cross-registry copies."""
    return registry_factory()


@pytest.fixture(scope="session")
def auth_registry(registry_factory: Callable[..., RegistryServer]) -> RegistryServer:
    """A registry with htpasswd basic auth; user ``TEST_USER`` / password ``TEST_PASSWORD``."""
    return registry_factory(htpasswd=(TEST_USER, TEST_PASSWORD))


@pytest.fixture(scope="module")
def token_registry(registry_factory: Callable[..., RegistryServer], tokens: TokenServer) -> RegistryServer:
    """A registry with ``auth: token`` trusting ``tokens``, the token service (tests/token_server.py)
    that the requesting module defines with its own users, refresh tokens and grants."""
    return registry_factory(extra_config=tokens.registry_config())


@pytest.fixture(scope="module")
def tls_name() -> Iterator[str]:
    """``TLS_NAME`` (tests/tls_support.py), resolving to 127.0.0.1 in this process for the
    requesting module's tests; give it to ``registry_factory(tls_name=...)`` for an HTTPS registry."""
    with resolving_to_loopback(TLS_NAME) as name:
        yield name


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(autouse=True)
def _forget_secrets() -> None:
    """Each test starts with no registered secret (splitbuild.scrub masks those of earlier tests)."""
    from splitbuild.scrub import forget_secrets

    forget_secrets()


# --- shared client (the ops, merge, provider, referrers and store tests) --------------------------


@pytest.fixture
async def client() -> AsyncIterator[Client]:
    """A :class:`~splitbuild.client.Client` that retries fast and ignores this process's
    environment (no credentials, insecure hosts or retry settings from it)."""
    async with Client(retry=FAST_RETRY, env={}) as c:
        yield c


@pytest.fixture(autouse=True)
def _no_blob_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    """The CLI remembers where blobs live (splitbuild.blobcache) in the user's cache: tests leave it
    off, so that one test's registries never steer another's requests (tests/test_blobcache.py and
    tests/test_blobcache_copy.py turn it on with a directory of their own)."""
    monkeypatch.setenv("SPLITBUILD_BLOB_CACHE", "0")
