"""Shared fixtures: real registries (CNCF distribution) on loopback, started and stopped here."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from splitbuild.client import Client
from splitbuild.retry import FAST_RETRY
from tests.registry_server import RegistryServer, start_registry

# Byte-identical copies of the project's shared reference material (see tests/conformance/README.md):
# tests read these, never anything outside the repository.
CONFORMANCE = Path(__file__).resolve().parent / "conformance"

TEST_USER = "splitbuild-user"
TEST_PASSWORD = "s3cret-Passw0rd-not-for-output"


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


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(autouse=True)
def _forget_secrets() -> None:
    """Each test starts with no registered secret (splitbuild.scrub masks those of earlier tests)."""
    from splitbuild.scrub import forget_secrets

    forget_secrets()


# --- shared client (the ops, merge, referrers and store tests) -----------------------------------


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
