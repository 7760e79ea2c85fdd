from __future__ import annotations

import httpx

from tests.constants import TEST_PASSWORD, TEST_USER
from tests.registry_server import RegistryServer


def test_registry_answers_v2(registry: RegistryServer) -> None:
    r = httpx.get(f"{registry.url}/v2/")
    assert r.status_code == 200
    assert r.headers["Docker-Distribution-Api-Version"] == "registry/2.0"


def test_auth_registry_requires_credentials(auth_registry: RegistryServer) -> None:
    assert httpx.get(f"{auth_registry.url}/v2/").status_code == 401
    assert httpx.get(f"{auth_registry.url}/v2/", auth=(TEST_USER, TEST_PASSWORD)).status_code == 200
