"""Image references: distribution/reference conformance, the Reference API, OCI layout references."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from splitbuild.errors import InvalidDigest, InvalidReference
from splitbuild.reference import (
    DOCKER_HUB,
    AnyReference,
    LayoutReference,
    Reference,
    parse_raw,
    parse_reference,
    validate_digest,
    validate_tag,
)

REPO_ROOT = Path(__file__).resolve().parent.parent
D256 = "sha256:" + "0123456789abcdef" * 4
D512 = "sha512:" + "fedcba9876543210" * 8


# --- adapters for the other upstream APIs, run by the shared checker (see test_conformance_vectors) --


class AdapterError(ValueError):
    """A failure of an adapter itself, with the upstream error kind."""

    def __init__(self, kind: str) -> None:
        super().__init__(kind)
        self.kind = kind


@dataclass(frozen=True)
class DigestOnly:
    """What ``ParseAnyReference`` returns for a bare digest or image ID: no name at all."""

    digest: str
    domain: None = None
    path: None = None
    tag: None = None
    name: None = None
    familiar_name: None = None

    @property
    def familiar(self) -> str:
        return self.digest

    def __str__(self) -> str:
        return self.digest


def parse_named(text: str) -> Reference:
    """``ParseNamed``: only input that is already fully qualified."""
    ref = Reference.parse(text)
    if str(ref) != text:
        raise AdapterError("ErrNameNotCanonical")
    return ref


def parse_docker_ref(text: str) -> Reference:
    """``ParseDockerRef``: the digest wins over the tag; ``latest`` when neither is given."""
    ref = Reference.parse(text)
    if ref.digest is not None:
        return ref.with_digest(ref.digest)
    return ref if ref.tag is not None else ref.with_tag("latest")


def parse_any_reference(text: str) -> Reference | DigestOnly:
    """``ParseAnyReference``: an image ID or a bare digest is a digest-only reference."""
    if re.fullmatch("[a-f0-9]{64}", text):
        return DigestOnly("sha256:" + text)
    try:
        return DigestOnly(validate_digest(text))
    except InvalidDigest:
        return Reference.parse(text)


def with_name(text: str) -> Reference:
    """``WithName``: a bare name in the raw grammar, no tag or digest."""
    ref = parse_raw(text)
    if ref.tag is not None or ref.digest is not None:
        raise AdapterError("ErrReferenceInvalidFormat")
    return ref


EXTRAS = ["--extra", "name,str,familiar,familiar_name"]
KINDS = ["--error-attr", "kind"]
CHECKS = [
    pytest.param("splitbuild.reference:Reference.parse", "ParseNormalizedNamed", [], id="required"),
    pytest.param(
        "splitbuild.reference:Reference.parse", "ParseNormalizedNamed", EXTRAS + KINDS, id="normalized"
    ),
    pytest.param("splitbuild.reference:parse_raw", "Parse", EXTRAS + KINDS, id="raw"),
    pytest.param("tests.test_reference:parse_named", "ParseNamed", EXTRAS + KINDS, id="named"),
    pytest.param("tests.test_reference:parse_docker_ref", "ParseDockerRef", EXTRAS + KINDS, id="docker-ref"),
    pytest.param("tests.test_reference:parse_any_reference", "ParseAnyReference", EXTRAS + KINDS, id="any"),
    pytest.param("tests.test_reference:with_name", "WithName", EXTRAS, id="with-name"),
]


@pytest.mark.parametrize(("target", "api", "options"), CHECKS)
def test_conformance_vectors(conformance_dir: Path, target: str, api: str, options: list[str]) -> None:
    checker = conformance_dir / "reference" / "check_reference.py"
    result = subprocess.run(
        [sys.executable, str(checker), target, "--api", api, *options],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    summary = result.stdout.strip().splitlines()[-1] if result.stdout.strip() else ""
    assert re.fullmatch(r"[1-9][0-9]* passed, 0 failed", summary), result.stdout + result.stderr
    assert result.returncode == 0, result.stdout + result.stderr


# --- Reference.parse ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "registry", "repository", "tag", "digest"),
    [
        ("ubuntu", "docker.io", "library/ubuntu", None, None),
        ("ubuntu:22.04", "docker.io", "library/ubuntu", "22.04", None),
        ("docker.io/ubuntu", "docker.io", "library/ubuntu", None, None),
        ("index.docker.io/ubuntu", "docker.io", "library/ubuntu", None, None),
        ("bitnami/redis:7", "docker.io", "bitnami/redis", "7", None),
        ("docker.io/library/foo/bar", "docker.io", "library/foo/bar", None, None),
        ("registry-1.docker.io/ubuntu", "registry-1.docker.io", "ubuntu", None, None),
        (f"ghcr.io/org/app:v1@{D256}", "ghcr.io", "org/app", "v1", D256),
        (f"ghcr.io/org/app@{D512}", "ghcr.io", "org/app", None, D512),
        ("localhost/foo", "localhost", "foo", None, None),
        ("localhost:5000/foo/bar:tag", "localhost:5000", "foo/bar", "tag", None),
        ("localhost:5000", "docker.io", "library/localhost", "5000", None),
        ("127.0.0.1:5000/x", "127.0.0.1:5000", "x", None, None),
        ("[::1]:5000/x", "[::1]:5000", "x", None, None),
        ("Foo/bar", "Foo", "bar", None, None),
        ("foo_bar.com/baz", "", "foo_bar.com/baz", None, None),
        ("a/b__c.d-----e:_Tag.-", "docker.io", "a/b__c.d-----e", "_Tag.-", None),
    ],
)
def test_parse(text: str, registry: str, repository: str, tag: str | None, digest: str | None) -> None:
    ref = Reference.parse(text)
    assert (ref.registry, ref.repository, ref.tag, ref.digest) == (registry, repository, tag, digest)
    assert (ref.domain, ref.path) == (registry, repository)
    assert parse_reference(text) == ref


@pytest.mark.parametrize(
    ("text", "name", "string", "familiar", "familiar_name"),
    [
        (
            "ubuntu:22.04",
            "docker.io/library/ubuntu",
            "docker.io/library/ubuntu:22.04",
            "ubuntu:22.04",
            "ubuntu",
        ),
        (
            "bitnami/redis",
            "docker.io/bitnami/redis",
            "docker.io/bitnami/redis",
            "bitnami/redis",
            "bitnami/redis",
        ),
        (
            "library/foo/bar",
            "docker.io/library/foo/bar",
            "docker.io/library/foo/bar",
            "library/foo/bar",
            "library/foo/bar",
        ),
        (
            f"ghcr.io/o/a:v1@{D256}",
            "ghcr.io/o/a",
            f"ghcr.io/o/a:v1@{D256}",
            f"ghcr.io/o/a:v1@{D256}",
            "ghcr.io/o/a",
        ),
        ("foo_bar.com/baz", "foo_bar.com/baz", "foo_bar.com/baz", "foo_bar.com/baz", "foo_bar.com/baz"),
    ],
)
def test_forms(text: str, name: str, string: str, familiar: str, familiar_name: str) -> None:
    ref = Reference.parse(text)
    assert (ref.name, str(ref), ref.familiar, ref.familiar_name) == (name, string, familiar, familiar_name)


def test_familiar_form_of_dotted_namespace_is_read_back_as_a_registry() -> None:
    # Upstream quirk kept on purpose: "foo.bar/baz" names the registry foo.bar when parsed again.
    ref = Reference.parse("docker.io/foo.bar/baz")
    assert ref.familiar == "foo.bar/baz"
    assert Reference.parse(ref.familiar).registry == "foo.bar"


@pytest.mark.parametrize(
    ("text", "endpoint"),
    [("ubuntu", "registry-1.docker.io"), ("ghcr.io/a/b", "ghcr.io"), ("localhost:5000/a", "localhost:5000")],
)
def test_endpoint(text: str, endpoint: str) -> None:
    assert Reference.parse(text).endpoint == endpoint


def test_endpoint_without_registry_host() -> None:
    with pytest.raises(InvalidReference, match="names no registry host"):
        _ = Reference.parse("foo_bar.com/baz").endpoint


def test_identifier_prefers_digest() -> None:
    assert Reference.parse(f"a:v1@{D256}").identifier == D256
    assert Reference.parse("a:v1").identifier == "v1"
    assert Reference.parse("a").identifier is None


def test_scope() -> None:
    ref = Reference.parse("ubuntu:22.04")
    assert ref.scope() == "repository:library/ubuntu:pull"
    assert ref.scope("pull", "push") == "repository:library/ubuntu:pull,push"
    assert ref.scope("push", "pull", "push") == "repository:library/ubuntu:push,pull"
    assert Reference.parse("localhost:5000/a/b").scope("delete") == "repository:a/b:delete"


def test_with_tag_digest_and_repo() -> None:
    ref = Reference.parse(f"ghcr.io/o/a:v1@{D256}")
    assert ref.with_tag("v2") == Reference("ghcr.io", "o/a", "v2", None)
    assert ref.with_digest(D512) == Reference("ghcr.io", "o/a", None, D512)
    assert ref.repo() == Reference("ghcr.io", "o/a")
    assert str(ref.repo().with_tag("latest")) == "ghcr.io/o/a:latest"
    with pytest.raises(InvalidReference, match="invalid tag '-v2'"):
        ref.with_tag("-v2")
    with pytest.raises(InvalidDigest, match="invalid digest 'sha256:abc'"):
        ref.with_digest("sha256:abc")


@pytest.mark.parametrize(
    ("registry", "insecure"),
    [
        ("localhost", True),
        ("localhost:5000", True),
        ("LOCALHOST", True),
        ("127.0.0.1", True),
        ("127.1.2.3:5000", True),
        ("[::1]", True),
        ("[::1]:5000", True),
        ("[0:0:0:0:0:0:0:1]:80", True),
        ("[::ffff:7f00:1]:5000", True),
        ("128.0.0.1:5000", False),
        ("10.0.0.1:5000", False),
        ("192.168.1.1", False),
        ("[::2]:5000", False),
        ("localhost.example.com", False),
        ("ghcr.io", False),
        ("docker.io", False),
    ],
)
def test_insecure_default(registry: str, insecure: bool) -> None:
    ref = Reference.parse(f"{registry}/x")
    assert ref.registry == registry
    assert ref.insecure_default is insecure


@pytest.mark.parametrize(
    ("args", "error", "message"),
    [
        (("ghcr.io", "Bad"), InvalidReference, "invalid repository 'Bad'"),
        (("ghcr.io", "a//b"), InvalidReference, "invalid repository 'a//b'"),
        (("ghcr.io", "a" * 256), InvalidReference, "longer than 255"),
        (("bad_host", "a"), InvalidReference, "invalid registry 'bad_host'"),
        (("ghcr.io", "a", ".tag"), InvalidReference, "invalid tag '.tag'"),
        (("ghcr.io", "a", None, "sha256:ABC"), InvalidDigest, "invalid digest 'sha256:ABC'"),
    ],
)
def test_constructor_validates(args: tuple[str, ...], error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=re.escape(message)):
        Reference(*args)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "the reference is empty"),
        ("foo/Bar", "repository name 'foo/Bar' must be lowercase"),
        ("UPPER:tag", "repository name 'library/UPPER' must be lowercase"),
        (f"foo@SHA256:{D256[7:]}", "digest algorithm 'SHA256' must be lowercase"),
        ("a" * 64, "is an image ID, not a repository name"),
        ("a" * 248, "the repository path has 256 characters, at most 255 are allowed"),
        ("foo:", "invalid tag '': a tag cannot be empty"),
        ("foo:.tag", "invalid tag '.tag'"),
        ("foo:" + "t" * 129, "a tag has at most 128 characters, not 129"),
        ("foo@", "nothing after '@'"),
        ("foo@sha256:abc", "digest 'sha256:abc' is not ALGORITHM:HEX"),
        ("foo@sha256:" + "a" * 63, "sha256 needs 64 hex digits, not 63"),
        ("foo@md5:" + "a" * 32, "unsupported digest algorithm 'md5'"),
        ("foo@sha256:" + "A" * 64, "a sha256 digest must be lowercase hexadecimal"),
        (f"a@{D256}@{D256}", "more than one '@'"),
        ("foo\n", "whitespace or a control character ('\\n')"),
        ("foo:tág", "the character 'á'"),
        ("foo//bar", "empty path component"),
        ("a..b", "invalid path component 'a..b'"),
        ("example.com./foo", "invalid registry 'example.com.'"),
        ("fc00::1:5000/debian", "an IPv6 address must be in brackets"),
        ("[::1]:5000", "registry '[::1]:5000' is not followed by /REPOSITORY"),
        ("[ab]/foo", "'[ab]' is not a path component, and a registry host needs a '.' or a ':'"),
        (f"@{D256}", "the repository name is missing"),
    ],
)
def test_error_messages(text: str, reason: str) -> None:
    with pytest.raises(InvalidReference) as info:
        Reference.parse(text)
    message = str(info.value)
    shown = text if len(text) <= 120 else text[:117] + "..."
    assert message.startswith(f"invalid reference {shown!r}: ")
    assert reason in message
    assert "\n" not in message


def test_url_scheme_gets_a_hint() -> None:
    with pytest.raises(InvalidReference, match="has no URL scheme") as info:
        Reference.parse("docker://ghcr.io/a/b")
    assert info.value.hint == "remove 'docker://'"


def test_long_input_is_shortened_in_message() -> None:
    with pytest.raises(InvalidReference) as info:
        Reference.parse("a" * 5000 + "!")
    assert len(str(info.value)) < 300


def test_pathological_input_is_parsed_in_linear_time() -> None:
    # A regex with nested quantifiers could backtrack exponentially here; this one takes milliseconds.
    started = time.perf_counter()
    for text in ("a" * 200_000 + "!", "a-" * 100_000 + "!", "a." * 100_000 + "/!", "a/" * 100_000 + "!"):
        with pytest.raises(InvalidReference):
            Reference.parse(text)
    assert time.perf_counter() - started < 10


def test_parse_raw_does_not_normalize() -> None:
    assert parse_raw("ubuntu") == Reference("", "ubuntu")
    assert parse_raw("library/ubuntu:1") == Reference("library", "ubuntu", "1")
    assert parse_raw("localhost:5000") == Reference("", "localhost", "5000")
    with pytest.raises(InvalidReference, match="repository name must be lowercase"):
        parse_raw("foo/Bar")


# --- digests and tags ----------------------------------------------------------------------------------


@pytest.mark.parametrize("digest", [D256, "sha384:" + "a" * 96, D512])
def test_validate_digest_accepts(digest: str) -> None:
    assert validate_digest(digest) == digest


@pytest.mark.parametrize(
    ("digest", "reason"),
    [
        ("", "a digest is ALGORITHM:HEX"),
        ("sha256", "a digest is ALGORITHM:HEX"),
        (":" + "a" * 64, "a digest is ALGORITHM:HEX"),
        ("sha256:", "a digest is ALGORITHM:HEX"),
        ("SHA256:" + "a" * 64, "digest algorithm 'SHA256' must be lowercase"),
        ("sha256:" + "a" * 65, "sha256 needs 64 hex digits, not 65"),
        ("sha512:" + "a" * 64, "sha512 needs 128 hex digits, not 64"),
        ("sha256:" + "g" * 64, "must be lowercase hexadecimal"),
        ("md5:" + "a" * 32, "unsupported digest algorithm 'md5'"),
        ("Md5:" + "a" * 32, "a digest is ALGORITHM:HEX"),
        (D256 + "\n", "sha256 needs 64 hex digits, not 65"),
    ],
)
def test_validate_digest_rejects(digest: str, reason: str) -> None:
    with pytest.raises(InvalidDigest, match=re.escape(reason)) as info:
        validate_digest(digest)
    assert str(info.value).startswith(f"invalid digest {digest!r}")
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("tag", ["v1.0", "_x", "A" * 128, "1", "a-._"])
def test_validate_tag_accepts(tag: str) -> None:
    assert validate_tag(tag) == tag


@pytest.mark.parametrize(
    ("tag", "reason"),
    [
        ("", "a tag cannot be empty"),
        (".x", "does not start with '.' or '-'"),
        ("-x", "does not start with '.' or '-'"),
        ("a" * 129, "a tag has at most 128 characters, not 129"),
        ("x/y", "letters, digits, '_', '.' and '-' only"),
        ("tág", "letters, digits, '_', '.' and '-' only"),
        ("v1\n", "letters, digits, '_', '.' and '-' only"),
    ],
)
def test_validate_tag_rejects(tag: str, reason: str) -> None:
    with pytest.raises(InvalidReference, match=re.escape(reason)) as info:
        validate_tag(tag)
    assert str(info.value).startswith(f"invalid tag {tag[:20]!r}"[:-1])


# --- OCI layout references -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "path", "tag", "digest"),
    [
        ("oci:/tmp/x:v1", "/tmp/x", "v1", None),
        (f"oci:./build/oci@{D256}", "./build/oci", None, D256),
        ("oci:relative/dir", "relative/dir", None, None),
        (f"oci:/p:v1@{D256}", "/p", "v1", D256),
        ("oci:/a:b/c", "/a:b/c", None, None),
        ("oci:/a:b:v1", "/a:b", "v1", None),
        ("oci:/a:bad!tag", "/a:bad!tag", None, None),
        ("oci:/a@b", "/a@b", None, None),
        ("oci:/a@b/c:v1", "/a@b/c", "v1", None),
        ("oci:x", "x", None, None),
    ],
)
def test_layout_parse(text: str, path: str, tag: str | None, digest: str | None) -> None:
    ref = LayoutReference.parse(text)
    assert (ref.path, ref.tag, ref.digest) == (path, tag, digest)
    assert parse_reference(text) == ref
    assert ref.scheme == "oci"


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("oci:", "the directory path is empty"),
        ("oci::v1", "the directory path is empty"),
        (f"oci:@{D256}", "the directory path is empty"),
        ("oci:/x:", "empty tag after ':'"),
        ("oci:/x@sha256:abc", "sha256 needs 64 hex digits, not 3"),
        ("oci:/x@SHA256:" + "a" * 64, "digest algorithm 'SHA256' must be lowercase"),
        ("docker://x", "it must start with 'oci:'"),
    ],
)
def test_layout_parse_errors(text: str, reason: str) -> None:
    with pytest.raises(InvalidReference, match=re.escape(reason)) as info:
        LayoutReference.parse(text)
    assert str(info.value).startswith(f"invalid OCI layout reference {text!r}")


def test_layout_forms_and_derivations() -> None:
    ref = LayoutReference.parse("oci:/tmp/x:v1")
    assert (ref.name, str(ref), ref.identifier) == ("oci:/tmp/x", "oci:/tmp/x:v1", "v1")
    assert ref.familiar == str(ref)
    pinned = ref.with_digest(D256)
    assert str(pinned) == f"oci:/tmp/x@{D256}"
    assert pinned.identifier == D256
    assert str(pinned.with_tag("v2")) == "oci:/tmp/x:v2"
    assert ref.repo() == LayoutReference("/tmp/x")
    assert ref.repo().identifier is None
    with pytest.raises(InvalidReference, match="the directory path is empty"):
        LayoutReference("")
    with pytest.raises(InvalidDigest):
        ref.with_digest("sha256:abc")


def test_parse_reference_dispatches_on_scheme() -> None:
    assert isinstance(parse_reference("oci:/x"), LayoutReference)
    assert isinstance(parse_reference("ubuntu"), Reference)
    assert Reference.scheme == "registry"
    assert DOCKER_HUB == "docker.io"


def test_module_is_import_light() -> None:
    code = "import sys, splitbuild.reference; print(' '.join(sorted(sys.modules)))"
    loaded = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    ).stdout.split()
    for heavy in ("httpx", "pydantic", "anyio", "typer", "rich"):
        assert heavy not in loaded


# --- properties ------------------------------------------------------------------------------------------

_COMPONENT = st.from_regex(r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*", fullmatch=True)
_DOMAIN_PART = st.from_regex(r"[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?", fullmatch=True)
_REGISTRIES = st.one_of(
    st.sampled_from(["docker.io", "ghcr.io", "localhost", "localhost:5000", "127.0.0.1:5000", "[::1]:5000"]),
    st.builds(
        lambda parts, port: ".".join(parts) + port,
        st.lists(_DOMAIN_PART, min_size=2, max_size=4),
        st.sampled_from(["", ":5000", ":0"]),
    ).filter(lambda r: r.lower() != "index.docker.io"),
)
_TAGS = st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}", fullmatch=True)
_DIGESTS = st.one_of(
    st.text("0123456789abcdef", min_size=64, max_size=64).map("sha256:".__add__),
    st.text("0123456789abcdef", min_size=128, max_size=128).map("sha512:".__add__),
)
_REFERENCE_ALPHABET = "abcAB09._-:/@[]"


@st.composite
def _references(draw: st.DrawFn) -> Reference:
    registry = draw(_REGISTRIES)
    components = draw(st.lists(_COMPONENT, min_size=1, max_size=4))
    if registry == DOCKER_HUB and len(components) == 1:
        components.insert(0, "library")
    repository = "/".join(components)
    assume(len(repository) <= 255)
    return Reference(registry, repository, draw(st.none() | _TAGS), draw(st.none() | _DIGESTS))


@given(_references())
def test_str_round_trips(ref: Reference) -> None:
    assert Reference.parse(str(ref)) == ref
    assert parse_raw(str(ref)) == ref
    assert parse_reference(str(ref)) == ref


def _outcome(parse: Callable[[str], AnyReference], text: str) -> AnyReference | InvalidReference:
    """The parsed reference, or the InvalidReference raised; any other exception fails the test."""
    try:
        return parse(text)
    except InvalidReference as exc:
        return exc


@given(st.one_of(st.text(_REFERENCE_ALPHABET, max_size=40), st.text(max_size=40)))
def test_random_text_only_raises_invalid_reference(text: str) -> None:
    for parse in (Reference.parse, parse_raw, parse_reference):
        result = _outcome(parse, text)
        if isinstance(result, InvalidReference):
            assert "\n" not in str(result)
        else:
            assert parse(str(result)) == result


@given(st.text(max_size=40))
def test_random_layout_text_only_raises_invalid_reference(text: str) -> None:
    result = _outcome(LayoutReference.parse, "oci:" + text)
    if isinstance(result, InvalidReference):
        assert "\n" not in str(result)
    else:
        assert result.path
        assert LayoutReference.parse(str(result)) == result


@given(
    st.text(st.characters(codec="utf-8", exclude_characters=":@"), min_size=1, max_size=30),
    st.none() | _TAGS,
    st.none() | _DIGESTS,
)
def test_layout_round_trips(path: str, tag: str | None, digest: str | None) -> None:
    ref = LayoutReference(path, tag, digest)
    assert LayoutReference.parse(str(ref)) == ref
