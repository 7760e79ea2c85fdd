"""``splitbuild tags`` refuses input it would turn into nonsense: an ``--images`` name with a tag
or digest (``app:latest:pr-7``) and an ``--annotation-levels`` level buildx does not know
(``foo:key=value``). One line, exit 3."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from splitbuild.cli.app import make_app

SHA = "860c1904a1ce19322e91ac35af1ab07466440c37"


@pytest.fixture
def context_file(tmp_path: Path) -> Path:
    path = tmp_path / "context.json"
    data = {
        "eventName": "pull_request",
        "ref": "refs/pull/7/merge",
        "sha": SHA,
        "now": "2020-01-10T00:30:00Z",
        "repo": {"name": "app"},
        "payload": {"number": 7},
    }
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def run(context_file: Path, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(
        make_app(), ["tags", "--context", str(context_file), *args], env={"GITHUB_ACTIONS": None}
    )
    return result.exit_code, result.stdout, result.stderr


def _one_error_line(err: str) -> str:
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("splitbuild: error: ")
    assert "Traceback" not in err
    return lines[0]


@pytest.mark.parametrize(
    "image",
    [
        "ghcr.io/acme/app:latest",
        "acme/app:1.2",
        "app:latest",
        "localhost:5000/app:v1",
        "ghcr.io/acme/app@sha256:" + "a" * 64,
        "ghcr.io/acme/app:v1@sha256:" + "a" * 64,
        "name=ghcr.io/acme/app:latest,enable=true",
        "name=ghcr.io/acme/app:latest,enable=false",
    ],
)
def test_an_image_with_a_tag_or_digest_is_refused(context_file: Path, image: str) -> None:
    code, out, err = run(context_file, "--images", image)
    assert code == 3
    assert out == ""
    line = _one_error_line(err)
    assert "an image name has no tag or digest; give the name alone" in line


def test_the_refusal_names_the_entry(context_file: Path) -> None:
    _, _, err = run(context_file, "--images", "ghcr.io/acme/app\ndocker.io/acme/app:latest")
    assert "--images 'docker.io/acme/app:latest'" in _one_error_line(err)


@pytest.mark.parametrize("image", ["ghcr.io/acme/app", "localhost:5000/acme/app", "Org/App", "app"])
def test_an_image_name_gets_the_tags(context_file: Path, image: str) -> None:
    code, out, err = run(context_file, "--images", image)
    assert code == 0, err
    assert out == f"{image.lower()}:pr-7\n"


@pytest.mark.parametrize(
    ("levels", "message"),
    [
        ("foo", "unknown level 'foo'"),
        ("index,foo", "unknown level 'foo'"),
        ("Manifest", "unknown level 'Manifest'"),
        ("index,", "unknown level ''"),
        ("manifest[linux/arm64", "unknown level 'manifest[linux/arm64'"),
        ("index[linux/arm64]", "only manifest and manifest-descriptor name a platform"),
        ("index-descriptor[linux/arm64]", "only manifest and manifest-descriptor name a platform"),
        ("manifest[linux/bogus]", "unknown architecture 'bogus'"),
        ("manifest[]", "malformed platform"),
    ],
)
def test_an_unknown_annotation_level_is_refused(context_file: Path, levels: str, message: str) -> None:
    code, out, err = run(context_file, "--annotations", "k=v", "--annotation-levels", levels)
    assert code == 3
    assert out == ""
    line = _one_error_line(err)
    assert line.startswith("splitbuild: error: --annotation-levels: ")
    assert message in line
    if "unknown level" in message:
        assert "(expected manifest, index, manifest-descriptor, index-descriptor" in line


def test_known_annotation_levels_prefix_the_annotations(context_file: Path) -> None:
    levels = (
        "manifest,index,manifest-descriptor,index-descriptor,"
        "manifest[linux/arm64],manifest-descriptor[linux/amd64]"
    )
    code, out, err = run(
        context_file, "--images", "org/app", "--annotations", "k=v", "--annotation-levels", levels, "--json"
    )
    assert code == 0, err
    annotations = json.loads(out)["annotations"]
    assert [a for a in annotations if a.endswith(":k=v")] == [f"{level}:k=v" for level in levels.split(",")]
