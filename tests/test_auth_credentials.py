"""Credential sources: docker config.json, podman auth.json, helpers, environment, precedence."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

from splitbuild.auth import Credential, StaticKeychain, default_keychain
from splitbuild.auth.authfile import AuthFileKeychain, parse_auth_file
from splitbuild.auth.environment import registry_env_prefix
from splitbuild.auth.helper import helper_get
from splitbuild.errors import ConfigError
from tests.credential_helper import helper_calls, write_helper


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def write_json(path: Path, document: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document))
    return path


# -- Credential ------------------------------------------------------------------------------
def test_credential_repr_masks_secrets() -> None:
    credential = Credential("alice", "pa55word", "id-tok3n", "reg-tok3n", source="somewhere")
    for text in (repr(credential), str(credential), f"{credential}", f"{[credential]}"):
        assert "alice" in text
        assert "somewhere" in text
        for secret in ("pa55word", "id-tok3n", "reg-tok3n"):
            assert secret not in text
    assert credential.secrets == ("pa55word", "id-tok3n", "reg-tok3n")


def test_credential_equality_ignores_source() -> None:
    assert Credential("a", "b", source="x") == Credential("a", "b", source="y")
    assert hash(Credential("a", "b", source="x")) == hash(Credential("a", "b"))
    assert Credential().is_empty
    assert not Credential("a", "b").is_empty
    assert Credential("a", "b").has_basic
    assert not Credential("a", None, "tok").has_basic


# -- docker config.json ----------------------------------------------------------------------
def docker_keychain(tmp_path: Path, document: Any, env: dict[str, str] | None = None) -> AuthFileKeychain:
    path = write_json(tmp_path / "docker" / "config.json", document)
    return AuthFileKeychain(path, dialect="docker", env=env)


@pytest.mark.parametrize("registry", ["docker.io", "index.docker.io"])
def test_docker_hub_uses_the_v1_url_key(tmp_path: Path, registry: str) -> None:
    keychain = docker_keychain(
        tmp_path,
        {"auths": {"https://index.docker.io/v1/": {"auth": b64("hubuser:hubpass")}, "docker.io": {}}},
    )
    assert keychain.resolve(registry) == Credential("hubuser", "hubpass")


def test_docker_hub_hand_written_keys_are_accepted(tmp_path: Path) -> None:
    keychain = docker_keychain(tmp_path, {"auths": {"docker.io": {"auth": b64("u:p")}}})
    assert keychain.resolve("docker.io") == Credential("u", "p")
    assert keychain.resolve("registry-1.docker.io") == Credential("u", "p")


def test_docker_entry_fields(tmp_path: Path) -> None:
    keychain = docker_keychain(
        tmp_path,
        {
            "auths": {
                "ghcr.io": {"auth": b64("octo:ghp_secret:with:colons")},
                "plain.example": {"username": "u", "password": "p"},
                "acr.example": {
                    "auth": b64("00000000-0000-0000-0000-000000000000:"),
                    "identitytoken": "refresh",
                },
                "token.example": {"registrytoken": "bearer-token"},
                "https://legacy.example:5000/v2/": {"auth": b64("old:style")},
                "empty.example": {},
            }
        },
    )
    assert keychain.resolve("ghcr.io") == Credential("octo", "ghp_secret:with:colons")
    assert keychain.resolve("plain.example") == Credential("u", "p")
    assert keychain.resolve("acr.example") == Credential(
        "00000000-0000-0000-0000-000000000000", None, identity_token="refresh"
    )
    assert keychain.resolve("token.example") == Credential(registry_token="bearer-token")
    assert keychain.resolve("legacy.example:5000") == Credential("old", "style")
    assert keychain.resolve("empty.example") is None
    assert keychain.resolve("other.example") is None
    found = keychain.resolve("ghcr.io")
    assert found is not None
    assert found.source is not None
    assert "config.json" in found.source
    assert "ghcr.io" in found.source


def test_docker_namespaced_keys_as_an_extension(tmp_path: Path) -> None:
    keychain = docker_keychain(
        tmp_path,
        {"auths": {"quay.io/acme": {"auth": b64("acme:robot")}, "quay.io": {"auth": b64("any:one")}}},
    )
    assert keychain.resolve("quay.io", "acme/app") == Credential("acme", "robot")
    assert keychain.resolve("quay.io", "other/app") == Credential("any", "one")
    assert keychain.resolve("quay.io") == Credential("any", "one")


def test_docker_invalid_auth_names_the_entry_not_the_value(tmp_path: Path) -> None:
    keychain = docker_keychain(tmp_path, {"auths": {"ghcr.io": {"auth": b64("nocolonsecret")}}})
    with pytest.raises(ConfigError, match=r"auths\['ghcr.io'\]\.auth") as info:
        keychain.resolve("ghcr.io")
    assert "nocolonsecret" not in str(info.value)
    assert b64("nocolonsecret") not in str(info.value)


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("{not json", "invalid JSON"),
        ("[]", "expected a JSON object"),
        ('{"auths": []}', "auths must be an object"),
        ('{"auths": {"x": "y"}}', r"auths\['x'\] must be an object"),
        ('{"auths": {"x": {"auth": 5}}}', r"auths\['x'\]\.auth must be a string"),
        ('{"credHelpers": {"x": 1}}', "credHelpers must be an object of strings"),
        ('{"credsStore": 1}', "credsStore must be a string"),
    ],
)
def test_malformed_config_files(tmp_path: Path, text: str, match: str) -> None:
    path = tmp_path / "config.json"
    path.write_text(text)
    with pytest.raises(ConfigError, match=match) as info:
        AuthFileKeychain(path, dialect="docker").resolve("x")
    assert str(path) in str(info.value)
    assert "\n" not in str(info.value)


def test_missing_file_gives_no_credentials(tmp_path: Path) -> None:
    assert AuthFileKeychain(tmp_path / "nope.json", dialect="docker").resolve("ghcr.io") is None


def test_unreadable_file_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / "dir.json").mkdir()
    with pytest.raises(ConfigError, match="cannot read"):
        AuthFileKeychain(tmp_path / "dir.json", dialect="docker").resolve("ghcr.io")


# -- credential helpers ----------------------------------------------------------------------
def test_creds_store_answers_for_every_registry(tmp_path: Path) -> None:
    env = write_helper(
        tmp_path,
        {
            "https://index.docker.io/v1/": {"stdout": '{"Username":"hub","Secret":"hubsecret"}', "exit": 0},
            "ghcr.io": {"stdout": '{"ServerURL":"ghcr.io","Username":"<token>","Secret":"idtok"}', "exit": 0},
        },
    )
    keychain = docker_keychain(
        tmp_path, {"auths": {"ghcr.io": {"auth": b64("file:ignored")}}, "credsStore": "test"}, env
    )
    assert keychain.resolve("docker.io") == Credential("hub", "hubsecret")
    assert keychain.resolve("ghcr.io") == Credential(identity_token="idtok")
    assert keychain.resolve("quay.io") is None
    assert [c["stdin"] for c in helper_calls(tmp_path)] == [
        "https://index.docker.io/v1/",
        "ghcr.io",
        "quay.io",
    ]
    found = keychain.resolve("docker.io")
    assert found is not None
    assert found.source is not None
    assert "docker-credential-test" in found.source


def test_cred_helpers_win_over_creds_store(tmp_path: Path) -> None:
    env = write_helper(
        tmp_path, {"ecr.example": {"stdout": '{"Username":"AWS","Secret":"ecrpass"}', "exit": 0}}
    )
    keychain = docker_keychain(
        tmp_path, {"credsStore": "desktop-not-installed", "credHelpers": {"ecr.example": "test"}}, env
    )
    assert keychain.resolve("ecr.example") == Credential("AWS", "ecrpass")
    with pytest.raises(
        ConfigError, match=r"docker-credential-desktop-not-installed .* is not on PATH"
    ) as info:
        keychain.resolve("ghcr.io")
    assert info.value.hint is not None
    assert "credsStore" not in info.value.message or "config.json" in info.value.message


def test_registry_token_is_kept_next_to_a_helper(tmp_path: Path) -> None:
    env = write_helper(tmp_path, {"r.example": {"stdout": '{"Username":"u","Secret":"s"}', "exit": 0}})
    keychain = docker_keychain(
        tmp_path, {"auths": {"r.example": {"registrytoken": "rt"}}, "credHelpers": {"r.example": "test"}}, env
    )
    assert keychain.resolve("r.example") == Credential("u", "s", registry_token="rt")


def test_helper_failures(tmp_path: Path) -> None:
    env = write_helper(
        tmp_path,
        {
            "fails": {"stdout": "keychain is locked", "exit": 3},
            "garbage": {"stdout": "not json", "exit": 0},
            "list": {"stdout": "[1, 2]", "exit": 0},
            "slow": {"stdout": "{}", "exit": 0, "sleep": 5},
            "empty": {"stdout": '{"Username":"","Secret":""}', "exit": 0},
        },
    )
    with pytest.raises(ConfigError, match=r"failed for fails \(exit 3\): keychain is locked"):
        helper_get("test", "fails", configured_in="cfg", env=env)
    with pytest.raises(ConfigError, match="invalid JSON"):
        helper_get("test", "garbage", configured_in="cfg", env=env)
    with pytest.raises(ConfigError, match="invalid JSON"):
        helper_get("test", "list", configured_in="cfg", env=env)
    with pytest.raises(ConfigError, match=r"did not answer for slow within 0\.5 s"):
        helper_get("test", "slow", configured_in="cfg", env=env, timeout=0.5)
    assert helper_get("test", "empty", configured_in="cfg", env=env) is None


# -- podman auth.json ------------------------------------------------------------------------
def test_podman_namespaces_and_helpers(tmp_path: Path) -> None:
    env = write_helper(tmp_path, {"helped.example": {"stdout": '{"Username":"h","Secret":"hs"}', "exit": 0}})
    path = write_json(
        tmp_path / "auth.json",
        {
            "auths": {
                "quay.io/acme/app": {"auth": b64("repo:level")},
                "quay.io/acme": {"auth": b64("org:level")},
                "quay.io": {"auth": b64("host:level")},
                "docker.io": {"auth": b64("dock:er")},
                "other.example": {"username": "ignored", "password": "by-podman"},
            },
            "credHelpers": {"helped.example": "test"},
        },
    )
    keychain = AuthFileKeychain(path, dialect="containers", env=env)
    assert keychain.resolve("quay.io", "acme/app") == Credential("repo", "level")
    assert keychain.resolve("quay.io", "acme/lib") == Credential("org", "level")
    assert keychain.resolve("quay.io", "else/lib") == Credential("host", "level")
    assert keychain.resolve("docker.io", "library/ubuntu") == Credential("dock", "er")
    assert keychain.resolve("index.docker.io") == Credential("dock", "er")
    assert keychain.resolve("other.example") is None
    assert keychain.resolve("helped.example") == Credential("h", "hs")


def test_parse_rejects_extra_fields_in_docker_auth_config() -> None:
    with pytest.raises(ConfigError, match="may only contain 'auth', not 'identitytoken'"):
        parse_auth_file(
            '{"auths": {"x": {"auth": "", "identitytoken": "t"}}}',
            display="$DOCKER_AUTH_CONFIG",
            dialect="docker",
            strict_auth_only=True,
        )
    with pytest.raises(ConfigError, match="only 'auths' is allowed, not 'credsStore'"):
        parse_auth_file('{"credsStore": "x"}', display="$X", dialect="docker", strict_auth_only=True)


# -- environment -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("registry", "prefix"),
    [
        ("ghcr.io", "SPLITBUILD_AUTH_GHCR_IO_"),
        ("127.0.0.1:5000", "SPLITBUILD_AUTH_127_0_0_1_5000_"),
        ("docker.io", "SPLITBUILD_AUTH_DOCKER_IO_"),
        ("index.docker.io", "SPLITBUILD_AUTH_DOCKER_IO_"),
        ("registry-1.docker.io", "SPLITBUILD_AUTH_DOCKER_IO_"),
        ("my-reg.example.com", "SPLITBUILD_AUTH_MY_REG_EXAMPLE_COM_"),
    ],
)
def test_registry_env_prefix(registry: str, prefix: str) -> None:
    assert registry_env_prefix(registry) == prefix


def test_registry_env_variables(tmp_path: Path) -> None:
    env = {
        "HOME": str(tmp_path),
        "SPLITBUILD_AUTH_GHCR_IO_USERNAME": "octo",
        "SPLITBUILD_AUTH_GHCR_IO_PASSWORD": "ghp_x",
        "SPLITBUILD_AUTH_DOCKER_IO_IDENTITY_TOKEN": "idtok",
        "SPLITBUILD_AUTH_REG_EXAMPLE_REGISTRY_TOKEN": "regtok",
        "SPLITBUILD_AUTH_EMPTY_EXAMPLE_USERNAME": "",
        "SPLITBUILD_AUTH_EMPTY_EXAMPLE_PASSWORD": "",
        "SPLITBUILD_AUTH_HALF_EXAMPLE_USERNAME": "someone",
        "SPLITBUILD_AUTH_ORPHAN_EXAMPLE_PASSWORD": "secret-orphan",
    }
    keychain = default_keychain(env)
    assert keychain.resolve("ghcr.io") == Credential("octo", "ghp_x")
    assert keychain.resolve("index.docker.io") == Credential(identity_token="idtok")
    assert keychain.resolve("reg.example") == Credential(registry_token="regtok")
    assert keychain.resolve("empty.example") is None
    with pytest.raises(
        ConfigError, match=r"SPLITBUILD_AUTH_HALF_EXAMPLE_USERNAME is set but .*PASSWORD is empty"
    ):
        keychain.resolve("half.example")
    with pytest.raises(ConfigError, match="SPLITBUILD_AUTH_ORPHAN_EXAMPLE_PASSWORD is set but") as info:
        keychain.resolve("orphan.example")
    assert "secret-orphan" not in str(info.value)
    found = keychain.resolve("ghcr.io")
    assert found is not None
    assert found.source == "$SPLITBUILD_AUTH_GHCR_IO_*"


def test_registry_auth_document_variables(tmp_path: Path) -> None:
    env = {
        "HOME": str(tmp_path),
        "SPLITBUILD_REGISTRY_AUTH": json.dumps(
            {
                "auths": {
                    "ghcr.io": {"username": "doc", "password": "docpass"},
                    "docker.io": {"auth": b64("a:b")},
                }
            }
        ),
        "DOCKER_AUTH_CONFIG": json.dumps({"auths": {"quay.io": {"auth": b64("q:r")}}}),
    }
    keychain = default_keychain(env)
    assert keychain.resolve("ghcr.io") == Credential("doc", "docpass")
    assert keychain.resolve("docker.io") == Credential("a", "b")
    assert keychain.resolve("quay.io") == Credential("q", "r")
    bad = default_keychain(
        {"HOME": str(tmp_path), "SPLITBUILD_REGISTRY_AUTH": '{"auths": {"x": {"auth": "c2VjcmV0"'}
    )
    with pytest.raises(ConfigError, match=r"^\$SPLITBUILD_REGISTRY_AUTH: invalid JSON") as info:
        bad.resolve("x")
    assert "c2VjcmV0" not in str(info.value)


def test_precedence_env_then_docker_then_podman(tmp_path: Path) -> None:
    home = tmp_path / "home"
    runtime = tmp_path / "run"
    runtime.mkdir()
    write_json(
        home / ".docker" / "config.json",
        {"auths": {"a.example": {"auth": b64("docker:a")}, "b.example": {"auth": b64("docker:b")}}},
    )
    write_json(
        runtime / "containers" / "auth.json",
        {"auths": {"b.example": {"auth": b64("podman:b")}, "c.example": {"auth": b64("podman:c")}}},
    )
    write_json(
        home / ".config" / "containers" / "auth.json", {"auths": {"d.example": {"auth": b64("cfg:d")}}}
    )
    (home / ".dockercfg").write_text(json.dumps({"https://e.example/v1/": {"auth": b64("legacy:e")}}))
    env = {
        "HOME": str(home),
        "XDG_RUNTIME_DIR": str(runtime),
        "SPLITBUILD_AUTH_A_EXAMPLE_USERNAME": "env",
        "SPLITBUILD_AUTH_A_EXAMPLE_PASSWORD": "a",
    }
    keychain = default_keychain(env)
    assert keychain.resolve("a.example") == Credential("env", "a")
    assert keychain.resolve("b.example") == Credential("docker", "b")
    found = keychain.resolve("b.example")
    assert found is not None
    assert found.source == "~/.docker/config.json (auths['b.example'])"
    assert keychain.resolve("c.example") == Credential("podman", "c")
    assert keychain.resolve("d.example") == Credential("cfg", "d")
    assert keychain.resolve("e.example") == Credential("legacy", "e")
    assert keychain.resolve("f.example") is None


def test_docker_config_and_registry_auth_file_variables(tmp_path: Path) -> None:
    write_json(tmp_path / "dc" / "config.json", {"auths": {"a.example": {"auth": b64("from:dockerconfig")}}})
    write_json(tmp_path / "explicit.json", {"auths": {"b.example": {"auth": b64("from:explicit")}}})
    runtime = tmp_path / "run"
    write_json(runtime / "containers" / "auth.json", {"auths": {"c.example": {"auth": b64("not:used")}}})
    env = {
        "HOME": str(tmp_path / "home"),
        "DOCKER_CONFIG": str(tmp_path / "dc"),
        "REGISTRY_AUTH_FILE": str(tmp_path / "explicit.json"),
        "XDG_RUNTIME_DIR": str(runtime),
    }
    keychain = default_keychain(env)
    assert keychain.resolve("a.example") == Credential("from", "dockerconfig")
    assert keychain.resolve("b.example") == Credential("from", "explicit")
    assert keychain.resolve("c.example") is None


def test_static_keychain() -> None:
    keychain = StaticKeychain({"r.example": Credential("u", "p")})
    assert keychain.resolve("r.example", "any/repo") == Credential("u", "p")
    assert keychain.resolve("other.example") is None
