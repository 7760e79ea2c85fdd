"""Registry-name facts live in splitbuild.reference; the config reads them from there."""

from __future__ import annotations

import re

import pytest

from splitbuild.config import parse_config
from splitbuild.errors import ConfigError, InvalidReference
from splitbuild.reference import (
    DOCKER_HUB,
    DOCKER_HUB_ALIASES,
    Reference,
    canonical_registry,
    image_registry,
    is_registry_host,
    parse_image_name,
)

BASE = '[image]\nnames = ["ghcr.io/acme/app"]\nplatforms = ["linux/amd64"]\n'


@pytest.mark.parametrize("alias", sorted(DOCKER_HUB_ALIASES))
def test_every_docker_hub_alias_is_docker_io(alias: str) -> None:
    assert canonical_registry(alias) == DOCKER_HUB
    assert canonical_registry(alias.upper()) == DOCKER_HUB
    assert image_registry(f"{alias}/acme/app") == DOCKER_HUB


@pytest.mark.parametrize(
    ("host", "canonical"),
    [
        ("Registry.Example.com", "registry.example.com"),
        ("localhost:5000", "localhost:5000"),
        ("[::1]:5000", "[::1]:5000"),
        ("ghcr.io", "ghcr.io"),
    ],
)
def test_canonical_registry(host: str, canonical: str) -> None:
    assert canonical_registry(host) == canonical


@pytest.mark.parametrize(
    ("text", "valid"),
    [
        ("registry.example.com", True),
        ("registry.example.com:5000", True),
        ("[::1]:5000", True),
        ("localhost", True),
        ("https://quay.io", False),
        ("bad_host.io", False),
        ("quay.io\n", False),
        ("quay.io:", False),
        ("", False),
    ],
)
def test_is_registry_host(text: str, valid: bool) -> None:
    assert is_registry_host(text) is valid


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("ubuntu", "docker.io/library/ubuntu"),
        ("acme/app", "docker.io/acme/app"),
        ("index.docker.io/acme/app", "docker.io/acme/app"),
        ("registry-1.docker.io/acme/app", "registry-1.docker.io/acme/app"),
        ("Registry.Example.com:443/a/b", "Registry.Example.com:443/a/b"),
        ("localhost/app", "localhost/app"),
    ],
)
def test_parse_image_name_is_the_reference_grammar(name: str, expected: str) -> None:
    parsed = parse_image_name(name)
    assert parsed == Reference.parse(name)
    assert str(parsed) == expected


@pytest.mark.parametrize(
    ("name", "message"),
    [
        (
            "ghcr.io/a/b:latest",
            "image name 'ghcr.io/a/b:latest': give the repository without a tag or digest",
        ),
        ("ghcr.io/a/b@sha256:00", "give the repository without a tag or digest"),
        ("ghcr.io/Acme/app", "image name 'ghcr.io/Acme/app': invalid path component 'Acme'"),
        ("bad_host.io:x/a", "image name 'bad_host.io:x/a': invalid registry host 'bad_host.io:x'"),
        ("ghcr.io/a//b", "invalid path component ''"),
        ("ghcr.io/" + "a" * 250, "is longer than 255 characters"),
        ("quay.io\n/a", "invalid registry host 'quay.io\\n'"),
    ],
)
def test_parse_image_name_errors(name: str, message: str) -> None:
    with pytest.raises(InvalidReference, match=re.escape(message)) as info:
        parse_image_name(name)
    assert "\n" not in info.value.message


def test_config_image_names_use_the_reference_grammar() -> None:
    login = "[ci.logins.'registry.example.com']\nusername = 'u'\npassword-secret = 'X'\n"
    config = parse_config(BASE.replace("ghcr.io/acme/app", "Registry.Example.com/acme/app") + login)
    assert config.image.names == ["Registry.Example.com/acme/app"]
    with pytest.raises(ConfigError) as info:
        parse_config(BASE.replace("ghcr.io/acme/app", "ghcr.io/Acme/app"))
    assert "image.names: image name 'ghcr.io/Acme/app': invalid path component 'Acme'" in info.value.message
    assert "\n" not in info.value.message


def test_config_logins_key_by_the_canonical_registry() -> None:
    text = BASE + (
        "[ci.logins.'Registry-1.Docker.io']\nusername = 'u'\npassword-secret = 'X'\n"
        "[ci.logins.'registry.hub.docker.com']\nusername = 'u'\npassword-secret = 'X'\n"
    )
    with pytest.raises(ConfigError, match=re.escape("registry 'docker.io' has two logins")):
        parse_config(text)
    login = BASE + "[ci.logins.'Quay.IO']\nusername = 'u'\npassword-secret = 'X'\n"
    assert "quay.io" in parse_config(login).ci.logins
