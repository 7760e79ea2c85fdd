"""Scopes, realm policy, and property tests: the parsers only raise their documented errors."""

from __future__ import annotations

import json

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from splitbuild.auth.authfile import AuthDecodeError, decode_auth, parse_auth_file
from splitbuild.auth.challenge import Challenge, parse_challenge, parse_challenges
from splitbuild.auth.realm import realm_allowed
from splitbuild.auth.scope import (
    Scope,
    add_challenge_scopes,
    merge_scopes,
    parse_scope,
    repository_scope,
    required_scope,
)
from splitbuild.auth.tokens import TokenResponseError, granted_access, parse_token_response
from splitbuild.errors import ConfigError


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("repository:acme/app:pull,push", Scope("repository", "acme/app", ("pull", "push"))),
        ("repository:localhost:5000/acme:pull", Scope("repository", "localhost:5000/acme", ("pull",))),
        ("repository(plugin):vieux/sshfs:pull", Scope("repository(plugin)", "vieux/sshfs", ("pull",))),
        ("registry:catalog:*", Scope("registry", "catalog", ("*",))),
        ("the-right-scope", None),
        ("repository:acme/app:", None),
        ("repository::pull", None),
        (":a:b", None),
    ],
)
def test_parse_scope(text: str, expected: Scope | None) -> None:
    assert parse_scope(text) == expected
    if expected is not None:
        assert str(expected) == text


def test_scope_kind_drops_the_class() -> None:
    assert Scope("repository(plugin)", "x", ("pull",)).kind == "repository"


def test_merge_and_challenge_scopes() -> None:
    assert repository_scope("acme/app", "pull", "push") == "repository:acme/app:pull,push"
    assert repository_scope("acme/app") == "repository:acme/app:pull"
    assert merge_scopes(
        ["repository:a:pull", "opaque", "repository:b:pull"],
        ["repository:a:push", "opaque", "repository:b:pull"],
    ) == ("repository:a:pull,push", "opaque", "repository:b:pull")
    assert add_challenge_scopes(["repository:a:pull,push"], ["repository:a:push,pull"]) == (
        "repository:a:pull,push",
    )
    assert add_challenge_scopes(["repository:a:pull"], ["repository:b:pull", "repository:a:delete"]) == (
        "repository:b:pull",
        "repository:a:pull,delete",
    )
    assert add_challenge_scopes(["the-wrong-scope"], ["the-right-scope"]) == (
        "the-right-scope",
        "the-wrong-scope",
    )


@pytest.mark.parametrize(
    ("method", "url", "expected"),
    [
        ("GET", "https://r/v2/acme/app/manifests/v1", "repository:acme/app:pull"),
        ("HEAD", "https://r/v2/a/b/c/blobs/sha256:00", "repository:a/b/c:pull"),
        ("POST", "https://r/v2/acme/app/blobs/uploads/", "repository:acme/app:push"),
        ("PUT", "https://r/v2/acme/app/manifests/v1", "repository:acme/app:push"),
        ("PATCH", "https://r/v2/acme/app/blobs/uploads/x", "repository:acme/app:push"),
        ("DELETE", "https://r/v2/acme/app/manifests/sha256:00", "repository:acme/app:delete"),
        ("GET", "https://r/v2/acme/tags/list", "repository:acme:pull"),
        ("GET", "https://r/v2/", None),
        ("GET", "https://r/v2/_catalog", None),
    ],
)
def test_required_scope(method: str, url: str, expected: str | None) -> None:
    scope = required_scope(method, httpx.URL(url))
    assert (str(scope) if scope else None) == expected


@pytest.mark.parametrize(
    ("realm", "registry", "insecure", "allowed"),
    [
        ("https://auth.docker.io/token", "registry-1.docker.io", False, True),
        ("http://127.0.0.1:9999/token", "127.0.0.1:5000", True, True),
        ("http://localhost:9999/token", "localhost:5000", True, True),
        ("http://192.168.1.5/token", "192.168.1.4:5000", True, True),
        ("http://127.0.0.1:9999/token", "127.0.0.1:5000", False, False),
        ("https://127.0.0.1:9999/token", "registry.example.com", False, False),
        ("https://169.254.169.254/token", "10.0.0.1:5000", False, False),
        ("ftp://auth.example/token", "localhost:5000", True, False),
        ("not a url", "localhost:5000", True, False),
    ],
)
def test_realm_allowed_for_local_registries(realm: str, registry: str, insecure: bool, allowed: bool) -> None:
    assert realm_allowed(realm, registry, insecure) is allowed


def test_granted_access() -> None:
    assert granted_access("opaque-token") is None
    assert granted_access("a.!!!.c") is None
    assert granted_access("a.eyJzdWIiOiJ4In0.c") is None  # no access claim


# -- properties ------------------------------------------------------------------------------
@given(st.text())
def test_challenge_parser_never_raises(line: str) -> None:
    challenge = parse_challenge(line)
    if challenge is not None:
        assert challenge.scheme == challenge.scheme.lower()
        assert all(key == key.lower() and value for key, value in challenge.params.items())


@given(st.lists(st.text(alphabet=st.sampled_from('Bearer realm="x",service=y \\,=\t'), max_size=40)))
def test_challenge_lists_parse(lines: list[str]) -> None:
    assert all(isinstance(c, Challenge) for c in parse_challenges(lines))


@given(st.text(), st.sampled_from(["docker", "containers"]))
def test_decode_auth_raises_only_its_error(value: str, dialect: str) -> None:
    messages = {"not valid base64", "not base64 of username:password", "has an empty username"}
    error: AuthDecodeError | None = None
    try:
        user, password = decode_auth(value, dialect)  # type: ignore[arg-type]
    except AuthDecodeError as exc:
        error = exc
    if error is not None:
        assert str(error) in messages
    else:
        assert isinstance(user, str)
        assert isinstance(password, str)


@given(st.text(), st.booleans())
def test_auth_file_parser_raises_only_config_error(text: str, legacy: bool) -> None:
    error: ConfigError | None = None
    try:
        parse_auth_file(text, display="f.json", dialect="docker", legacy=legacy)
    except ConfigError as exc:
        error = exc
    if error is not None:
        assert str(error).startswith("f.json: ")
        assert "\n" not in str(error)


@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
        lambda children: st.lists(children) | st.dictionaries(st.text(), children),
        max_leaves=8,
    )
    | st.fixed_dictionaries(
        {"token": st.text(), "expires_in": st.integers() | st.text(), "issued_at": st.text()},
    )
)
def test_token_response_parser_raises_only_its_error(document: object) -> None:
    try:
        token = parse_token_response(json.dumps(document).encode(), 1000.0)
    except TokenResponseError:
        return
    assert token.value
    assert token.expires_at >= 1000.0 + 60 or (isinstance(document, dict) and "issued_at" in document)
