"""The shared auth conformance vectors (``conformance/auth/auth-vectors.json``), every section.

Token-flow vectors are exercised end to end in ``test_auth_flow.py``; here: challenge parsing,
request encodings, token responses, realm rules, addresses, auth decoding, config keys, and the
podman auth.json lookup with the upstream fixture files.
"""

from __future__ import annotations

import base64
import json
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import pytest

from splitbuild.auth.authfile import (
    AuthDecodeError,
    AuthFileKeychain,
    auth_key_lookup_order,
    convert_to_hostname,
    decode_auth,
    docker_config_key,
    validate_auth_key,
)
from splitbuild.auth.challenge import parse_challenges, select_challenge
from splitbuild.auth.credentials import Credential
from splitbuild.auth.realm import canonical_address, is_local_registry, is_rfc1918, validate_realm
from splitbuild.auth.sources import default_keychain, podman_auth_paths
from splitbuild.auth.tokens import (
    TokenResponseError,
    encode_form,
    parse_token_response,
    token_get_request,
    token_post_request,
)
from tests.constants import CONFORMANCE
from tests.credential_helper import write_helper

VECTORS: dict[str, Any] = json.loads((CONFORMANCE / "auth" / "auth-vectors.json").read_text())
NOW = 1_700_000_000.0


def _ids(section: str, key: str = "id") -> list[str]:
    return [f"{i}:{v.get(key, '')}"[:80] for i, v in enumerate(VECTORS[section])]


def _pairs(values: dict[str, list[str]]) -> list[tuple[str, str]]:
    return [(k, v) for k, vs in values.items() for v in vs]


def _port(text: str) -> str:
    return text.replace("PORT", "5000")


# -- challenges ------------------------------------------------------------------------------
@pytest.mark.parametrize("vector", VECTORS["challenges"], ids=_ids("challenges"))
def test_challenge_vector(vector: dict[str, Any]) -> None:
    parsed = parse_challenges(vector["headers"])
    assert [{"scheme": c.scheme, "params": dict(c.params)} for c in parsed] == vector["challenges"]
    if "ggcr_selected" in vector:
        ggcr = parsed[vector["ggcr_selected"]]
        expected = ggcr if ggcr.scheme in ("basic", "bearer") else None
        assert select_challenge(parsed) == expected


# -- request encodings -----------------------------------------------------------------------
@pytest.mark.parametrize("vector", VECTORS["encodings"], ids=_ids("encodings"))
def test_encoding_vector(vector: dict[str, Any]) -> None:
    values = {k: [_port(v) for v in vs] for k, vs in vector["values"].items()}
    assert encode_form(_pairs(values)) == _port(vector["encoded"])


def _basic(header: str | None) -> tuple[str | None, str | None]:
    if header is None:
        return None, None
    user, _, password = base64.b64decode(header.removeprefix("Basic ")).decode().partition(":")
    return user, password


@pytest.mark.parametrize(
    "vector",
    [v for v in VECTORS["encodings"] if v["method"] == "GET"],
    ids=lambda v: v["id"],
)
def test_token_get_request_vector(vector: dict[str, Any]) -> None:
    realm = _port(vector["realm"])
    values = {k: [_port(v) for v in vs] for k, vs in vector["values"].items()}
    in_realm = {k for k, _ in parse_qsl(realm.partition("?")[2])}
    username, password = _basic(vector.get("authorization"))
    service = values.get("service", [""])[0]
    handled = {"scope", "service", "account", *in_realm}
    extra = [(k, v) for k, v in _pairs(values) if k not in handled]
    if not service and "service" in values:
        extra.append(("service", ""))
    request = token_get_request(
        realm,
        service=service or None,
        scopes=values.get("scope", []),
        username=username,
        password=password,
        extra=extra,
    )
    assert str(request.url) == _port(vector["request_url"])
    assert request.headers.get("Authorization") == vector.get("authorization")


@pytest.mark.parametrize(
    "vector",
    [
        v
        for v in VECTORS["encodings"]
        if v["method"] == "POST" and v["values"]["grant_type"] == ["refresh_token"]
    ],
    ids=lambda v: v["id"],
)
def test_token_post_request_vector(vector: dict[str, Any]) -> None:
    values = {k: [_port(v) for v in vs] for k, vs in vector["values"].items()}
    request = token_post_request(
        _port(vector["realm"]),
        service=values["service"][0] or None,
        scopes=values["scope"][0].split(" "),
        refresh_token=values["refresh_token"][0],
        client_id=values["client_id"][0],
    )
    assert request.method == "POST"
    assert str(request.url) == _port(vector["request_url"])
    assert request.content.decode() == _port(vector["body"])
    assert request.headers["Content-Type"] == vector["content_type"]


def test_password_grant_vector_is_only_an_encoding() -> None:
    """splitbuild never sends the OAuth2 password grant (distribution's ForceOAuth); only its
    encoding is checked (above). Every POST vector is either that one or a refresh grant."""
    grants = {v["values"]["grant_type"][0] for v in VECTORS["encodings"] if v["method"] == "POST"}
    assert grants == {"refresh_token", "password"}


# -- token responses -------------------------------------------------------------------------
def _expected_response(vector: dict[str, Any]) -> str:
    for column in ("distribution_GET", "ggcr", "containers_image"):
        if column in vector:
            return str(vector[column])
    return ""


@pytest.mark.parametrize("vector", VECTORS["token_responses"], ids=_ids("token_responses", "body"))
def test_token_response_vector(vector: dict[str, Any]) -> None:
    body = vector["body"].encode()
    expected = _expected_response(vector)
    if expected.startswith("ERROR"):
        with pytest.raises(TokenResponseError):
            parse_token_response(body, NOW)
        return
    token = parse_token_response(body, NOW)
    document = json.loads(body)
    assert token.value == (document.get("access_token") or document.get("token"))
    if expected and not expected.startswith("zero issued_at"):
        assert token.value == expected.split(" ")[0].rstrip(";,")
    if "distribution_lifetime_s" in vector:
        assert token.expires_at - NOW == vector["distribution_lifetime_s"]
    if "distribution_expiry" in vector:
        assert token.expires_at == datetime.fromisoformat(vector["distribution_expiry"]).timestamp()
    if "expires 20" in expected:
        stamp = expected.split("expires ", 1)[1].split(" ")[0]
        assert token.expires_at == datetime.fromisoformat(stamp).timestamp()
    if "zero issued_at" in expected:
        assert token.expires_at == NOW + document["expires_in"]
    if "refresh_token" in document:
        assert token.refresh_token == document["refresh_token"]


# -- realm, addresses, schemes ---------------------------------------------------------------
@pytest.mark.parametrize("vector", VECTORS["realm_validation"], ids=_ids("realm_validation", "realm"))
def test_realm_validation_vector(vector: dict[str, Any]) -> None:
    assert validate_realm(vector["realm"], vector["registry_host"], vector["insecure"]) is vector["valid"]


@pytest.mark.parametrize("vector", VECTORS["canonical_address"], ids=_ids("canonical_address", "address"))
def test_canonical_address_vector(vector: dict[str, Any]) -> None:
    assert canonical_address(vector["scheme"], vector["address"]) == vector["canonical"]


@pytest.mark.parametrize("vector", VECTORS["registry_scheme"], ids=_ids("registry_scheme", "registry"))
def test_registry_scheme_vector(vector: dict[str, Any]) -> None:
    if "scheme" in vector:
        assert is_local_registry(vector["registry"]) is (vector["scheme"] == "http")
    if "rfc1918" in vector:
        assert is_rfc1918(vector["registry"]) is vector["rfc1918"]


# -- config.json / auth.json -----------------------------------------------------------------
@pytest.mark.parametrize("vector", VECTORS["auth_decoding"], ids=_ids("auth_decoding", "description"))
@pytest.mark.parametrize(
    ("dialect", "column"), [("docker", "docker_cli"), ("containers", "containers_image")]
)
def test_auth_decoding_vector(vector: dict[str, Any], dialect: Any, column: str) -> None:
    expected = vector[column]
    if not expected["ok"]:
        with pytest.raises(AuthDecodeError):
            decode_auth(vector["auth"], dialect)
        return
    assert decode_auth(vector["auth"], dialect) == (expected["username"], expected["password"])


@pytest.mark.parametrize("vector", VECTORS["convert_to_hostname"], ids=_ids("convert_to_hostname", "input"))
def test_convert_to_hostname_vector(vector: dict[str, Any]) -> None:
    assert convert_to_hostname(vector["input"]) == vector["hostname"]


@pytest.mark.parametrize("vector", VECTORS["docker_cli_config_keys"], ids=lambda v: v["registry_hostname"])
def test_docker_cli_config_key_vector(vector: dict[str, Any]) -> None:
    assert docker_config_key(vector["registry_hostname"]) == vector["config_key"]


def _fixture(name: str) -> dict[str, Any]:
    """An upstream fixture file without the vectors' ``_decoded`` annotations."""
    document = VECTORS["containers_image_fixtures"][name]
    clean = json.loads(json.dumps(document))
    entries = clean.get("auths", clean)
    for entry in entries.values():
        entry.pop("_decoded", None)
    return dict(clean)


def _legacy_fixture_name() -> str:
    return str(next(n for n in VECTORS["containers_image_fixtures"] if n.startswith("legacy.json")))


def _as_dict(credential: Credential | None) -> dict[str, str]:
    if credential is None:
        return {}
    out = {"username": credential.username or "", "password": credential.password or ""}
    if credential.identity_token:
        out["identitytoken"] = credential.identity_token
        if not credential.username:
            del out["username"], out["password"]
    return out


def _split_key(key: str) -> tuple[str, str | None]:
    registry, _, repository = key.partition("/")
    return registry, repository or None


GET_CREDENTIALS = VECTORS["containers_image_get_credentials"]


@pytest.mark.parametrize(
    "vector",
    [v for v in GET_CREDENTIALS if "files" not in v and "registries_conf" not in v],
    ids=lambda v: v["id"].split("(")[-1].rstrip(")"),
)
def test_containers_get_credentials_vector(vector: dict[str, Any], tmp_path: Path) -> None:
    path = tmp_path / "auth.json"
    legacy = bool(vector.get("legacy_format"))
    if vector["file"] is not None:
        name = _legacy_fixture_name() if legacy else vector["file"]
        path.write_text(json.dumps(_fixture(name)))
    keychain = AuthFileKeychain(path, dialect="containers", legacy=legacy)
    expected = vector["expected"]
    if expected.get("identitytoken"):
        credential = keychain.resolve(*_split_key(vector["key"]))
        assert credential is not None
        assert credential.identity_token == expected["identitytoken"]
        assert credential.username == expected["username"]
        assert (credential.password or "") == expected["password"]
        return
    assert _as_dict(keychain.resolve(*_split_key(vector["key"]))) == expected


@pytest.mark.parametrize(
    "vector", [v for v in GET_CREDENTIALS if "registries_conf" in v], ids=lambda v: v["key"]
)
def test_containers_helper_vector(vector: dict[str, Any], tmp_path: Path) -> None:
    """registries.conf ``credential-helpers`` is not read by splitbuild; the same helper answer
    reaches it through ``credHelpers`` in auth.json, with the same result."""
    env = write_helper(tmp_path, {vector["key"]: {"stdout": vector["helper_get_stdout"], "exit": 0}})
    path = tmp_path / "auth.json"
    path.write_text(json.dumps({"credHelpers": {vector["key"]: "test"}}))
    credential = AuthFileKeychain(path, dialect="containers", env=env).resolve(vector["key"])
    assert _as_dict(credential) == vector["expected"]


def test_containers_prefer_new_config_vector(tmp_path: Path) -> None:
    (vector,) = [v for v in GET_CREDENTIALS if "files" in v]
    home = tmp_path / "home"
    (home / ".docker").mkdir(parents=True)
    names = {"full.json": "full.json", "legacy.json": _legacy_fixture_name()}
    for where, fixture in vector["files"].items():
        target = home / where.removeprefix("~/")
        target.write_text(json.dumps(_fixture(names[fixture])))
    env = {"HOME": str(home), "XDG_RUNTIME_DIR": str(tmp_path / "missing"), "PATH": ""}
    assert _as_dict(default_keychain(env).resolve(vector["key"])) == vector["expected"]


def test_every_get_credentials_vector_is_covered() -> None:
    kinds = {("files" in v, "registries_conf" in v) for v in GET_CREDENTIALS}
    assert kinds == {(False, False), (False, True), (True, False)}


@pytest.mark.parametrize("vector", VECTORS["containers_image_auth_key_lookup_order"], ids=lambda v: v["key"])
def test_auth_key_lookup_order_vector(vector: dict[str, Any]) -> None:
    assert auth_key_lookup_order(vector["key"]) == vector["order"]
    assert auth_key_lookup_order(vector["key"], legacy=True) == vector["legacy_format_order"]


@pytest.mark.parametrize("vector", VECTORS["containers_image_validate_key"], ids=lambda v: v["key"])
def test_validate_key_vector(vector: dict[str, Any]) -> None:
    if not vector["valid"]:
        with pytest.raises(ValueError, match="auth key"):
            validate_auth_key(vector["key"])
        return
    assert validate_auth_key(vector["key"]) is vector["namespaced"]


PATH_VECTORS = VECTORS["containers_image_path_to_auth"]
UNSUPPORTED_CONTEXT = {"LegacyFormatAuthFilePath"}


@pytest.mark.parametrize(
    "vector",
    [v for v in PATH_VECTORS if not set(v["system_context"] or {}) & UNSUPPORTED_CONTEXT],
    ids=lambda v: f"{v['os']}-{v['XDG_RUNTIME_DIR']}-{v['system_context']}",
)
def test_path_to_auth_vector(vector: dict[str, Any], tmp_path: Path) -> None:
    home = tmp_path / "home"
    env = {"HOME": str(home)}
    context = vector["system_context"] or {}
    if "AuthFilePath" in context:
        env["REGISTRY_AUTH_FILE"] = context["AuthFilePath"]
    runtime = vector["XDG_RUNTIME_DIR"]
    if runtime == "<existing dir>":
        (tmp_path / "run").mkdir()
        env["XDG_RUNTIME_DIR"] = str(tmp_path / "run")
    elif runtime is not None:
        env["XDG_RUNTIME_DIR"] = str(tmp_path / "does-not-exist")
    platform = {"linux": "linux", "darwin": "darwin", "freebsd": "freebsd14"}[vector["os"]]
    paths = podman_auth_paths(
        env, platform=platform, uid=1000, root=context.get("RootForImplicitAbsolutePaths")
    )
    expected = (
        vector["path"]
        .replace("<uid>", "1000")
        .replace("$HOME", str(home))
        .replace("<existing dir>", str(tmp_path / "run"))
    )
    if expected.startswith("ERROR"):
        # containers/image refuses to *write* there; reading skips to the next location.
        assert paths[0] == home / ".config" / "containers" / "auth.json"
        return
    assert str(paths[0]) == expected
    assert vector["legacy_format"] is False


def test_path_to_auth_unsupported_contexts_are_known() -> None:
    """Only containers/image's explicit legacy-format auth file option has no splitbuild analogue."""
    skipped = [v for v in PATH_VECTORS if set(v["system_context"] or {}) & UNSUPPORTED_CONTEXT]
    assert [v["system_context"] for v in skipped] == [{"LegacyFormatAuthFilePath": "/absolute/path"}]


# -- credential helper protocol --------------------------------------------------------------
PROTOCOL = VECTORS["credential_helper_protocol"]


@pytest.mark.parametrize(
    "mock",
    [m for m in PROTOCOL["client_test_mock"] if m["action"] == "get"],
    ids=lambda m: m["stdin"] or "empty",
)
def test_helper_protocol_vector(mock: dict[str, Any], tmp_path: Path) -> None:
    from splitbuild.auth.helper import helper_get
    from splitbuild.errors import ConfigError

    env = write_helper(tmp_path, {mock["stdin"]: {"stdout": mock["stdout"], "exit": mock["exit"]}})
    result = mock["result"]
    if result == "ErrCredentialsNotFound":
        assert helper_get("test", mock["stdin"], configured_in="test", env=env) is None
    elif isinstance(result, str):
        with pytest.raises(ConfigError, match="docker-credential-test failed") as info:
            helper_get("test", mock["stdin"], configured_in="test", env=env)
        assert mock["stdout"] in str(info.value)
    elif result["Username"] == "<token>":
        credential = helper_get("test", mock["stdin"], configured_in="test", env=env)
        assert credential == Credential(identity_token=result["Secret"])
    else:
        credential = helper_get("test", mock["stdin"], configured_in="test", env=env)
        assert credential == Credential(result["Username"], result["Secret"])
    calls = json.loads((tmp_path / "helper-calls.json").read_text())
    assert calls == [{"argv": ["get"], "stdin": mock["stdin"]}]


def test_helper_protocol_actions_used() -> None:
    """splitbuild only reads credentials: ``get`` is the one action it runs."""
    assert {m["action"] for m in PROTOCOL["client_test_mock"]} == {"get", "list"}
    assert PROTOCOL["actions"]["get"]["argv"] == ["get"]


@pytest.mark.parametrize(
    ("dialect", "registry", "server_url"),
    [
        ("docker", "docker.io", "https://index.docker.io/v1/"),
        ("docker", "index.docker.io", "https://index.docker.io/v1/"),
        ("docker", "ghcr.io", "ghcr.io"),
        ("containers", "docker.io", "docker.io"),
        ("containers", "localhost:5000", "localhost:5000"),
    ],
)
def test_helper_server_url_passed(dialect: Any, registry: str, server_url: str, tmp_path: Path) -> None:
    """``server_url_passed``: docker passes its config key, containers/image the registry host."""
    assert "docker CLI" in PROTOCOL["server_url_passed"]
    env = write_helper(tmp_path, {server_url: {"stdout": '{"Username":"u","Secret":"s"}', "exit": 0}})
    path = tmp_path / "config.json"
    key = "credsStore" if dialect == "docker" else "credHelpers"
    path.write_text(json.dumps({key: "test"} if dialect == "docker" else {key: {registry: "test"}}))
    credential = AuthFileKeychain(path, dialect=dialect, env=env).resolve(registry)
    assert credential == Credential("u", "s")
    calls = json.loads((tmp_path / "helper-calls.json").read_text())
    assert calls == [{"argv": ["get"], "stdin": server_url}]


def test_vectors_have_expected_sections() -> None:
    assert len(VECTORS["challenges"]) == 77
    assert len(VECTORS["encodings"]) == 17
    assert len(VECTORS["token_flows"]) == 20
    assert len(VECTORS["token_responses"]) == 15
    assert len(GET_CREDENTIALS) == 24
