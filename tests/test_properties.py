"""Property tests: the manifest/index models, the config loader and the tag rules raise only their
documented errors, whatever they are given.

* ``Manifest.from_bytes``: ``InvalidManifest``, ``DigestMismatch`` or ``InvalidDigest``; what it
  accepts has the digest of its exact bytes and references only valid digests.
* ``parse_config``: ``ConfigError``.
* ``parse_tag``, ``parse_rule_lines``, ``compute_metadata``: ``ConfigError``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from splitbuild.config import parse_config
from splitbuild.digest import compute, parse_digest
from splitbuild.errors import (
    ConfigError,
    DigestMismatch,
    InvalidDigest,
    InvalidInput,
    InvalidManifest,
    VerificationError,
)
from splitbuild.models import (
    DOCKER_LIST,
    DOCKER_MANIFEST,
    MAX_MANIFEST_SIZE,
    OCI_INDEX,
    OCI_MANIFEST,
    Descriptor,
    Manifest,
)
from splitbuild.tags import Context, Inputs, compute_metadata, parse_rule_lines, parse_tag
from tests.images import make_image
from tests.ops_support import multiarch

MANIFEST_ERRORS = (InvalidManifest, DigestMismatch, InvalidDigest)
FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# -- manifests ----------------------------------------------------------------------------------

JSON_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False)
    | st.text(max_size=20)
)
JSON = st.recursive(
    JSON_SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=20,
)
MEDIA_TYPES = st.sampled_from(
    [None, OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_LIST, "text/html"]
) | st.text(max_size=40)
DIGESTS = st.sampled_from(["sha256:" + "0" * 64, "sha512:" + "a" * 128, "md5:abc", ""]) | st.text(max_size=80)


def from_bytes(raw: bytes, media_type: str | None = None, digest: str | None = None) -> Manifest | None:
    """Parse; None when rejected with a documented error (anything else fails the test)."""
    error: InvalidInput | VerificationError | None = None
    try:
        manifest = Manifest.from_bytes(raw, media_type=media_type, digest=digest, source="fuzz")
    except MANIFEST_ERRORS as exc:
        error = exc
    if error is not None:
        # one line, naming the manifest (or, for an expected digest that is malformed, the digest)
        assert error.message.startswith(("fuzz: ", "invalid digest "))
        assert "\n" not in error.message
        return None
    check_accepted(manifest)
    return manifest


def check_accepted(manifest: Manifest) -> None:
    algorithm, _ = parse_digest(manifest.digest)
    assert manifest.digest == compute(manifest.raw, algorithm)
    assert manifest.descriptor().size == len(manifest.raw)
    doc = json.loads(manifest.raw)
    written = doc["manifests"] if manifest.is_index else [doc["config"], *doc.get("layers", [])]
    parsed = manifest.children() + manifest.blobs()
    assert [(d.digest, d.size) for d in parsed] == [(w["digest"], w["size"]) for w in written]
    for desc in parsed:
        parse_digest(desc.digest)


@FAST
@given(raw=st.binary(max_size=300), media_type=MEDIA_TYPES, digest=st.none() | DIGESTS)
@example(raw=b"[" * 100_000, media_type=None, digest=None)
@example(raw=b'{"schemaVersion": ' + b"1" * 5000 + b"}", media_type=None, digest=None)
@example(raw=b"\xff\xfe{\x00}\x00", media_type=None, digest=None)
def test_manifest_from_random_bytes(raw: bytes, media_type: str | None, digest: str | None) -> None:
    from_bytes(raw, media_type, digest)


@FAST
@given(doc=JSON, media_type=MEDIA_TYPES)
def test_manifest_from_random_json(doc: Any, media_type: str | None) -> None:
    from_bytes(json.dumps(doc).encode(), media_type)


VALID = [make_image("linux/amd64").manifest, multiarch(["linux/amd64", "linux/arm64"]).manifest]


def paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path into a JSON document (keys and list indexes)."""
    found = [prefix]
    if isinstance(value, dict):
        for key, item in value.items():
            found += paths(item, (*prefix, key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            found += paths(item, (*prefix, i))
    return found


def replaced(doc: Any, path: tuple[Any, ...], value: Any) -> Any:
    if not path:
        return value
    copy = dict(doc) if isinstance(doc, dict) else list(doc)
    copy[path[0]] = value if len(path) == 1 else replaced(doc[path[0]], path[1:], value)
    return copy


@FAST
@given(data=st.data(), which=st.sampled_from(range(len(VALID))), value=JSON)
def test_manifest_with_one_field_replaced(data: st.DataObject, which: int, value: Any) -> None:
    """Valid manifests and indexes with one value anywhere replaced by random JSON."""
    doc = json.loads(VALID[which].raw)
    path = data.draw(st.sampled_from(paths(doc)))
    from_bytes(json.dumps(replaced(doc, path, value)).encode(), VALID[which].media_type)


def with_config_size(size: object) -> bytes:
    """The image manifest of ``VALID`` with its config descriptor's ``size`` replaced."""
    doc = json.loads(VALID[0].raw)
    doc["config"]["size"] = size
    return json.dumps(doc).encode()


def test_a_descriptor_size_is_the_length_of_what_it_describes() -> None:
    image = make_image("linux/amd64", layers=2)
    assert image.manifest.descriptor().size == len(image.manifest.raw)
    described = image.manifest.blobs()
    assert [d.size for d in described] == [len(image.blobs[d.digest]) for d in described]
    assert Manifest.from_bytes(with_config_size(12)).image().config.size == 12


@pytest.mark.parametrize("size", [-1, -(2**63)])
def test_a_negative_descriptor_size_is_invalid(size: int) -> None:
    with pytest.raises(InvalidManifest) as info:
        Manifest.from_bytes(with_config_size(size), source="m")
    assert info.value.message == (
        f"m: invalid {OCI_MANIFEST}: config.size: Input should be greater than or equal to 0"
    )
    with pytest.raises(ValidationError, match="greater than or equal to 0"):
        Descriptor.model_validate({"mediaType": OCI_MANIFEST, "digest": VALID[0].digest, "size": size})


# The OCI image spec makes ``size`` an int64, and Go's encoding/json (containerd, distribution)
# refuses a string, a boolean, a fraction-free float or a number past int64 for one: so does
# Descriptor.size.


@pytest.mark.parametrize(
    "size",
    [
        pytest.param("12", id="string"),
        pytest.param(12.0, id="float"),
        pytest.param(True, id="boolean"),
        pytest.param(2**63, id="past-int64"),
        pytest.param(12.5, id="fraction"),
        pytest.param("twelve", id="word"),
    ],
)
def test_a_descriptor_size_must_be_a_json_integer_within_int64(size: object) -> None:
    with pytest.raises(InvalidManifest, match=rf"^m: invalid {re.escape(OCI_MANIFEST)}: config\.size: "):
        Manifest.from_bytes(with_config_size(size), source="m")


@FAST
@given(which=st.sampled_from(range(len(VALID))), cut=st.integers(min_value=0, max_value=2000))
def test_truncated_manifests_and_wrong_digests(which: int, cut: int) -> None:
    raw = VALID[which].raw
    shorter = raw[: min(cut, len(raw) - 1)]
    assert from_bytes(shorter) is None
    with pytest.raises(DigestMismatch, match=r"^manifest: digest mismatch: expected sha256:"):
        Manifest.from_bytes(raw, digest=compute(shorter))


def test_manifest_size_limit_and_bad_references() -> None:
    padded = b'{"schemaVersion": 2, "manifests": [], "x": "' + b"a" * MAX_MANIFEST_SIZE + b'"}'
    with pytest.raises(InvalidManifest, match="exceeds the 4 MiB limit"):
        Manifest.from_bytes(padded)
    doc = json.loads(VALID[1].raw)
    doc["manifests"][0]["digest"] = "../../../etc/passwd"
    with pytest.raises(
        InvalidManifest, match=r"manifests\.0\.digest: invalid digest '\.\./\.\./\.\./etc/passwd'"
    ):
        Manifest.from_bytes(json.dumps(doc).encode())
    doc = json.loads(VALID[0].raw)
    doc["layers"][0]["digest"] = "sha256:" + "A" * 64
    with pytest.raises(InvalidManifest, match=r"layers\.0\.digest: invalid digest"):
        Manifest.from_bytes(json.dumps(doc).encode())


# -- config -------------------------------------------------------------------------------------

KEYS = st.sampled_from(
    [
        "names",
        "platforms",
        "context",
        "dockerfile",
        "target",
        "build-args",
        "labels",
        "annotations",
        "rules",
        "flavor",
        "linux/amd64",
        "linux/arm64",
        "default",
        "provider",
        "branches",
        "tags",
        "pull-requests",
        "schedule",
        "cache",
        "merge-runner",
        "python-version",
        "logins",
        "username",
        "password-secret",
        "gitlab",
        "forgejo",
        "runners",
        "builder",
        "sbom",
        "provenance",
        "sign",
        "ghcr.io",
        "docker.io",
        "labels",
        "arch",
        "secrets",
        "build-contexts",
    ]
) | st.from_regex(r"[A-Za-z0-9_-]{1,12}", fullmatch=True)
TABLES = (
    st.sampled_from(["image", "tags", "runners", "ci", "ci.gitlab", "ci.forgejo", 'ci.logins."ghcr.io"'])
    | KEYS
)
TOML_STRINGS = st.sampled_from(
    [
        "ghcr.io/acme/app",
        "linux/amd64",
        "linux/arm/v7",
        "windows/amd64",
        "type=semver,pattern={{version}}",
        "ubuntu-latest",
        "${{ secrets.X }}",
        "main",
        "",
        "..",
        "/abs",
        "3.12",
    ]
) | st.text(max_size=20)
TOML_SCALARS = (
    TOML_STRINGS.map(json.dumps)
    | st.integers(min_value=-(2**63), max_value=2**63 - 1).map(str)
    | st.sampled_from(["true", "false", "1979-05-27T07:32:00Z", "inf", "nan", "0x1F", "1e400"])
)
TOML_VALUES = st.recursive(
    TOML_SCALARS,
    lambda inner: (
        st.lists(inner, max_size=3).map(lambda items: "[" + ", ".join(items) + "]")
        | st.lists(st.tuples(KEYS, inner), max_size=3).map(
            lambda pairs: "{" + ", ".join(f"{json.dumps(k)} = {v}" for k, v in pairs) + "}"
        )
    ),
    max_leaves=8,
)


@st.composite
def toml_documents(draw: st.DrawFn) -> str:
    """TOML-shaped text over splitbuild's keys, now and then with random junk spliced in."""
    lines = []
    for table in draw(st.lists(TABLES, max_size=4)):
        lines.append(f"[{table}]")
        for key, value in draw(st.lists(st.tuples(KEYS, TOML_VALUES), max_size=5)):
            lines.append(f"{json.dumps(key)} = {value}")
    text = "\n".join(lines)
    if draw(st.booleans()):
        at = draw(st.integers(min_value=0, max_value=len(text)))
        text = text[:at] + draw(st.text(max_size=10)) + text[at:]
    return text


EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
BASE_CONFIGS = [tomllib.loads(path.read_text()) for path in sorted(EXAMPLES.glob("*/splitbuild.toml"))]


def toml_value(value: Any) -> str:
    """``value`` as a TOML value (tables inline); None is not TOML and is never passed."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(item) for item in value) + "]"
    return "{" + ", ".join(f"{json.dumps(k)} = {toml_value(v)}" for k, v in value.items()) + "}"


def toml_document(doc: dict[str, Any]) -> str:
    return "\n".join(f"{json.dumps(key)} = {toml_value(value)}" for key, value in doc.items())


TOML_DATA = st.recursive(
    st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | TOML_STRINGS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(KEYS, inner, max_size=3),
    max_leaves=6,
)


def without(doc: Any, path: tuple[Any, ...]) -> Any:
    """``doc`` without the entry at ``path`` (a list item or a table key)."""
    if len(path) == 1:
        if isinstance(doc, dict):
            return {k: v for k, v in doc.items() if k != path[0]}
        return [item for i, item in enumerate(doc) if i != path[0]]
    copy = dict(doc) if isinstance(doc, dict) else list(doc)
    copy[path[0]] = without(doc[path[0]], path[1:])
    return copy


@st.composite
def mutated_configs(draw: st.DrawFn) -> dict[str, Any]:
    """A valid example config with one to three entries replaced, removed or added."""
    doc: dict[str, Any] = draw(st.sampled_from(BASE_CONFIGS))
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        candidates = paths(doc)[1:]
        if not candidates:  # every entry removed already
            break
        path = draw(st.sampled_from(candidates))
        action = draw(st.sampled_from(["replace", "remove", "add"]))
        if action == "remove":
            doc = without(doc, path)
        elif action == "add" and path[:-1] and isinstance(lookup(doc, path[:-1]), dict):
            doc = replaced(doc, (*path[:-1], draw(KEYS)), draw(TOML_DATA))
        else:
            doc = replaced(doc, path, draw(TOML_DATA))
    return doc


def lookup(doc: Any, path: tuple[Any, ...]) -> Any:
    for part in path:
        doc = doc[part]
    return doc


def check_config(text: str) -> None:
    error: ConfigError | None = None
    try:
        parse_config(text, "fuzz.toml")
    except ConfigError as exc:
        error = exc
    if error is not None:
        assert error.message.startswith("fuzz.toml: ")


@FAST
@given(text=toml_documents())
@example(text='[image]\nnames = ["ghcr.io/acme/app"]\nplatforms = ["linux/amd64"]')
@example(text="[image]\nnames = [" * 2000)
@example(text='[image]\nnames = ["x"]\n[image]\nnames = ["y"]')
def test_config_from_toml_shaped_text(text: str) -> None:
    check_config(text)


@FAST
@given(doc=mutated_configs())
def test_config_from_mutated_examples(doc: dict[str, Any]) -> None:
    """The example configs (all valid) with entries replaced, removed or added at any depth."""
    check_config(toml_document(doc))


def test_the_example_configs_are_valid_bases() -> None:
    assert len(BASE_CONFIGS) >= 3
    for doc in BASE_CONFIGS:
        parse_config(toml_document(doc), "example.toml")


@FAST
@given(text=st.text(max_size=200))
def test_config_from_random_text(text: str) -> None:
    check_config(text)


@settings(max_examples=60, deadline=None)
@given(provider=st.sampled_from(["github", "gitlab", "forgejo"]) | st.text(max_size=8), text=toml_documents())
def test_config_with_a_provider(provider: str, text: str) -> None:
    with contextlib.suppress(ConfigError):
        parse_config(text, "fuzz.toml", provider=provider)


# -- tag rules ----------------------------------------------------------------------------------

RULE_KEYS = st.sampled_from(
    [
        "type",
        "pattern",
        "value",
        "enable",
        "priority",
        "prefix",
        "suffix",
        "event",
        "branch",
        "format",
        "group",
        "timezone",
        "match",
        "tag",
    ]
) | st.from_regex(r"[a-z]{1,8}", fullmatch=True)
RULE_VALUES = st.sampled_from(
    [
        "semver",
        "pep440",
        "match",
        "edge",
        "ref",
        "raw",
        "sha",
        "schedule",
        "branch",
        "tag",
        "pr",
        "{{version}}",
        "{{major}}.{{minor}}",
        "{{raw}}",
        "{{date 'YYYYMMDD'}}",
        "{{date 'x' tz='Mars/Olympus'}}",
        "{{sha}}",
        "{{branch}}",
        "{{is_default_branch}}",
        "{{ base_ref }}",
        "v(.*)",
        "(",
        "\\d+",
        "true",
        "false",
        "{{",
        "}}",
        "{{date}}",
        "nightly",
        "long",
        "short",
        "-1",
        "9999999999999999999999",
    ]
) | st.text(max_size=16)


@st.composite
def rule_lines(draw: st.DrawFn) -> str:
    fields = [f"{k}={v}" for k, v in draw(st.lists(st.tuples(RULE_KEYS, RULE_VALUES), max_size=5))]
    if draw(st.booleans()):
        fields.insert(0, draw(st.text(max_size=10)))
    line = ",".join(fields)
    return f'"{line}"' if draw(st.booleans()) and '"' not in line else line


@FAST
@given(line=rule_lines() | st.text(max_size=60))
def test_parse_tag_raises_only_config_errors(line: str) -> None:
    try:
        parsed = parse_tag(line)
    except ConfigError:
        return
    assert parsed["type"] in {"schedule", "semver", "pep440", "match", "edge", "ref", "raw", "sha"}


CONTEXTS: st.SearchStrategy[dict[str, Any]] = st.builds(
    dict,
    eventName=st.sampled_from(
        ["push", "pull_request", "pull_request_target", "schedule", "workflow_dispatch", ""]
    ),
    ref=st.sampled_from(
        ["refs/tags/v1.2.3", "refs/tags/1.0.0rc1", "refs/heads/main", "refs/pull/7/merge", "refs/tags/x", ""]
    )
    | st.text(max_size=20),
    sha=st.sampled_from(["860c1904a1ce19322e91ac35af1ab07466440c37", ""]) | st.text(max_size=10),
    defaultBranch=st.sampled_from(["main", None]),
    env=st.dictionaries(
        st.sampled_from(
            [
                "DOCKER_METADATA_PR_HEAD_SHA",
                "DOCKER_METADATA_SHORT_SHA_LENGTH",
                "DOCKER_METADATA_SET_OUTPUT_ENV",
            ]
        ),
        st.sampled_from(["true", "false", "7", "-3", "x", ""]),
        max_size=2,
    ),
)


@FAST
@given(
    tags=st.lists(rule_lines(), max_size=3),
    flavor=st.lists(
        st.sampled_from(["latest=auto", "latest=true", "latest=maybe", "prefix=v", "suffix=-x,onlatest=true"])
        | st.text(max_size=15),
        max_size=2,
    ),
    labels=st.lists(
        st.sampled_from(["a=b", "=x", "org.opencontainers.image.title={{sha}}"]) | st.text(max_size=15),
        max_size=2,
    ),
    images=st.lists(
        st.sampled_from(["ghcr.io/acme/app", "name=x,enable=false", "UPPER/Case"]) | st.text(max_size=15),
        max_size=2,
    ),
    context=CONTEXTS,
    strict=st.booleans(),
)
def test_compute_metadata_raises_only_config_errors(
    tags: list[str],
    flavor: list[str],
    labels: list[str],
    images: list[str],
    context: dict[str, Any],
    strict: bool,
) -> None:
    try:
        inputs = Inputs(images=images, tags=tags, flavor=flavor, labels=labels)
        metadata = compute_metadata(
            inputs,
            Context.from_mapping(context),
            strict=strict,
            clock=dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC),
        )
    except ConfigError:
        return
    assert all(isinstance(tag, str) and tag for tag in metadata.tags)


@FAST
@given(text=st.text(max_size=120))
def test_parse_rule_lines_raises_only_config_errors(text: str) -> None:
    with contextlib.suppress(ConfigError):
        parse_rule_lines([text])
