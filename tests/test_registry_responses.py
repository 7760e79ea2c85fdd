"""Registry answers that must end in a clean error (the real process against a scripted registry).

Redirect loops and undecodable bodies are registry errors; a tag list that is not a list of tags,
a malformed ``Link`` header or a pagination loop is refused instead of trusted or followed forever;
registry-supplied text never reaches the terminal as control sequences.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from splitbuild.models import OCI_MANIFEST
from tests.cli_support import run
from tests.faults import Reply, ScriptedServer
from tests.images import make_image

IMAGE = make_image("linux/amd64", seed="pending")


@pytest.fixture
def server() -> Iterator[ScriptedServer]:
    with ScriptedServer() as scripted:
        yield scripted


def splitbuild(*args: str, home: Path) -> tuple[int, str, str]:
    try:
        result = run(list(args), {"SPLITBUILD_RETRY_ATTEMPTS": "1"}, home, timeout=20)
    except subprocess.TimeoutExpired:
        pytest.fail(f"splitbuild {' '.join(args)} was still running after 20 s")
    return result.returncode, result.stdout, result.stderr


def one_error_line(stderr: str) -> str:
    lines = stderr.splitlines()
    assert lines, "no error message"
    assert lines[0].startswith("splitbuild: error: ")
    assert "internal error" not in lines[0]
    return lines[0]


def test_a_redirect_loop_is_a_registry_error(server: ScriptedServer, tmp_path: Path) -> None:
    server.add(r"/v2/loop/", Reply(302, b"", {"Location": "/v2/loop/manifests/v1"}))
    code, _, stderr = splitbuild("inspect", f"{server.host}/loop:v1", home=tmp_path)
    assert code == 5
    assert "redirect" in one_error_line(stderr)


def test_a_body_that_cannot_be_decoded_is_a_registry_error(server: ScriptedServer, tmp_path: Path) -> None:
    server.add(
        r"/v2/gzip/", Reply(200, b"not gzip", {"Content-Encoding": "gzip", "Content-Type": OCI_MANIFEST})
    )
    code, _, stderr = splitbuild("inspect", f"{server.host}/gzip:v1", home=tmp_path)
    assert code == 5
    assert f"{server.host}/gzip:v1" in one_error_line(stderr)


@pytest.mark.parametrize(
    "body",
    [
        {"name": "x", "tags": "abc"},
        {"name": "x", "tags": [1, None]},
        {"name": "x", "tags": ["v1", "\x1b[2J\x1b[31mgotcha"]},
        {"name": "x", "tags": ["v1", "two\nlines"]},
    ],
    ids=["string", "not-strings", "escape-sequence", "newline"],
)
def test_a_tag_list_that_is_not_a_list_of_tags_is_refused(
    server: ScriptedServer, tmp_path: Path, body: dict[str, object]
) -> None:
    server.add(r"/v2/odd/tags/list", Reply(200, json.dumps(body).encode()))
    code, stdout, stderr = splitbuild("ls", f"{server.host}/odd", home=tmp_path)
    assert code == 5
    assert stdout == ""
    assert "tags" in one_error_line(stderr)


def test_a_malformed_link_header_is_a_registry_error(server: ScriptedServer, tmp_path: Path) -> None:
    server.add(
        r"/v2/link/tags/list", Reply(200, b'{"tags":["a"]}', {"Link": '<http://[::1:bad>; rel="next"'})
    )
    code, _, stderr = splitbuild("ls", f"{server.host}/link", home=tmp_path)
    assert code == 5
    assert "Link" in one_error_line(stderr)


def test_a_pagination_loop_ends(server: ScriptedServer, tmp_path: Path) -> None:
    next_page = {"Link": '</v2/loop/tags/list?n=1000>; rel="next"'}
    server.add(r"/v2/loop/tags/list", Reply(200, b'{"tags":["a"]}', next_page))
    code, _, stderr = splitbuild("ls", f"{server.host}/loop", home=tmp_path)
    assert code == 5
    assert len(server.requests) <= 2
    assert "Link" in one_error_line(stderr)


def test_inspect_escapes_control_characters_from_the_registry(server: ScriptedServer, tmp_path: Path) -> None:
    doc = json.loads(IMAGE.manifest.raw)
    doc["annotations"] = {"title": "\x1b]0;pwned\x07\x1b[31mred", "odd": "\ud800"}
    server.add(r"/v2/ansi/manifests/", Reply(200, json.dumps(doc).encode(), {"Content-Type": OCI_MANIFEST}))
    for digest, data in IMAGE.blobs.items():
        server.add(rf"/v2/ansi/blobs/{digest}$", Reply(200, data))
    code, stdout, stderr = splitbuild("inspect", f"{server.host}/ansi:v1", home=tmp_path)
    assert (code, stderr) == (0, "")
    assert "\x1b" not in stdout
    assert "title" in stdout
