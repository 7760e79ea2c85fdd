"""TLS test helpers: a registry name that resolves to loopback in this process, a seeded index."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest

from splitbuild.client import Client
from splitbuild.reference import Reference
from splitbuild.retry import FAST_RETRY
from splitbuild.store.registry import is_loopback
from tests.images import push
from tests.ops_support import multiarch

TLS_NAME = "registry.splitbuild.test"
PLATFORMS = ["linux/amd64", "linux/arm64"]


@contextmanager
def resolving_to_loopback(name: str) -> Iterator[str]:
    """``name`` resolves to 127.0.0.1 in this process (nothing else changes); both assumptions
    the TLS tests rely on are checked, failing loudly."""
    real = socket.getaddrinfo

    def resolve(host: Any, *args: Any, **kwargs: Any) -> Any:
        text = host.decode() if isinstance(host, bytes) else host
        return real("127.0.0.1" if text == name else host, *args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(socket, "getaddrinfo", resolve)
        addresses = {info[4][0] for info in socket.getaddrinfo(name, 443, proto=socket.IPPROTO_TCP)}
        if addresses != {"127.0.0.1"}:
            raise RuntimeError(f"{name} resolves to {addresses}, not 127.0.0.1")
        if is_loopback(f"{name}:443"):
            raise RuntimeError(f"splitbuild treats {name} as loopback: it would not use TLS")
        yield name


def seed_index(host: str, repo: str, ca_file: Path | str | None) -> tuple[str, list[str]]:
    """A buildx-style index (two images, their attestations) as ``host/repo:v1``: its digest and
    the digests of its images."""
    index = multiarch(PLATFORMS, seed=repo)

    async def run() -> None:
        async with Client(retry=FAST_RETRY, env={}, ca_file=ca_file) as client:
            await push(client.repository(Reference.parse(f"{host}/{repo}")), index, "v1")

    anyio.run(run)
    return index.digest, [child.digest for child in index.children[: len(PLATFORMS)]]
