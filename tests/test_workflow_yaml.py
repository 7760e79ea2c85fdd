"""The YAML writer, the workflow model and the table of action pins."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from splitbuild.workflow.github_model import Grant, Job, Step
from splitbuild.workflow.pins import Pin, all_pins, pin
from splitbuild.workflow.yaml_dump import Commented, dump_yaml


def test_commented_values_get_a_trailing_comment() -> None:
    text = dump_yaml({"a": Commented("x@1", "v1.2.3"), "b": [Commented("write", "why not")], "c": "write"})
    assert text == "a: x@1 # v1.2.3\nb:\n  - write # why not\nc: write\n"
    assert yaml.safe_load(text) == {"a": "x@1", "b": ["write"], "c": "write"}


def test_comment_follows_a_quoted_value() -> None:
    text = dump_yaml({"v": Commented("3.12", "a version")})
    assert text == "v: '3.12' # a version\n"
    assert yaml.safe_load(text) == {"v": "3.12"}


def test_commented_values_must_be_single_lines() -> None:
    with pytest.raises(ValueError, match="single lines"):
        dump_yaml({"a": Commented("x", "two\nlines")})


def test_strings_round_trip_with_literal_blocks_and_quoting() -> None:
    data = {
        "on": {"push": None},
        "run": 'echo "$A"\nexit 0\n',
        "no-newline-at-end": "a\nb",
        "looks-like-bool": "true",
        "looks-like-number": "60",
        "expression": "${{ matrix.platform }}",
        "colon": "a: b",
        "hash": "a #b",
        "empty": {},
        "rules": "type=semver,pattern={{version}}",
    }
    text = dump_yaml(data)
    assert yaml.safe_load(text) == data
    assert 'run: |\n  echo "$A"\n  exit 0\n' in text
    assert "expression: ${{ matrix.platform }}\n" in text
    assert "empty: {}\n" in text


def test_sequences_are_indented_and_keys_keep_their_order() -> None:
    assert dump_yaml({"z": 1, "a": ["x", "y"]}) == "z: 1\na:\n  - x\n  - y\n"


def test_model_writes_aliases_in_field_order_and_skips_unset_fields() -> None:
    job = Job(
        name="j",
        runs_on="ubuntu-24.04",
        timeout_minutes=5,
        permissions={"contents": Grant(level="read", why="checkout")},
        steps=[
            Step(name="s", uses=pin("actions/checkout"), with_={"persist-credentials": "false"}),
            Step(name="r", if_="always()", run="true\n", shell="bash"),
        ],
    )
    data = job.model_dump(by_alias=True, exclude_none=True)
    assert list(data) == ["name", "runs-on", "timeout-minutes", "permissions", "steps"]
    assert list(data["steps"][1]) == ["name", "if", "shell", "run"]


def test_step_needs_exactly_one_of_uses_and_run() -> None:
    with pytest.raises(ValidationError, match="exactly one of uses and run"):
        Step(name="x")
    with pytest.raises(ValidationError, match="exactly one of uses and run"):
        Step(name="x", uses=pin("actions/checkout"), run="true")
    with pytest.raises(ValidationError, match="with needs uses"):
        Step(name="x", run="true", with_={"a": "b"})


def test_pins_are_well_formed() -> None:
    pins = all_pins()
    assert set(pins) >= {
        "actions/checkout",
        "actions/setup-python",
        "docker/setup-qemu-action",
        "docker/setup-buildx-action",
        "docker/login-action",
        "docker/build-push-action",
    }
    for action, item in pins.items():
        assert item.action == action
        assert item.ref == f"{action}@{item.sha}"


# Pins the shared notes do not list (the checks of issue 17), each read with
# `git rev-parse 'TAG^{commit}'` from a snapshot of the action's own repository, TAG its newest
# vX.Y.Z release tag there.
OTHER_PINS = {
    ("github/codeql-action/upload-sarif", "v4.36.2"): "8aad20d150bbac5944a9f9d289da16a4b0d87c1e",
    ("aquasecurity/setup-trivy", "v0.3.1"): "81e514348e19b6112ce2a7e3ecbafe19c1e1f567",
    ("anchore/scan-action/download-grype", "v7.4.0"): "e1165082ffb1fe366ebaf02d8526e7c4989ea9d2",
}


def test_pins_are_release_tag_shas_from_the_shared_notes(conformance_dir: Path) -> None:
    """Only SHAs seen behind a release tag of the action's own repository may be written."""
    shared = json.loads((conformance_dir / "notes" / "action-pins.json").read_text())
    seen: dict[tuple[str, str], str] = dict(OTHER_PINS)
    for entry in shared:
        seen[(entry["action"], entry["tag"])] = entry["sha"]
        prev = entry.get("prev_major")
        if prev:
            seen[(entry["action"], prev["tag"])] = prev["sha"]
    for item in all_pins().values():
        assert seen.get((item.action, item.tag)) == item.sha, item.action


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("sha", "abc123", "full lowercase commit SHA"),
        ("sha", "A" * 40, "full lowercase commit SHA"),
        ("tag", "v4", "release tag"),
        ("action", "checkout", "bad action name"),
    ],
)
def test_pin_validation(field: str, value: str, message: str) -> None:
    good = pin("actions/checkout").model_dump()
    with pytest.raises(ValidationError, match=message):
        Pin.model_validate({**good, field: value})
