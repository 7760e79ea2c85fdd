"""Crafted OCI layouts (issue 14, items 16-21): FIFOs, links, devices, sparse giants and malformed
``index.json`` are refused with exit 3 by the real process, within a deadline and 200 MiB, and
nothing is ever created or written outside the layout."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import pytest

from splitbuild.errors import InvalidInput
from splitbuild.store.layout_files import read_at_most
from tests.hostile import MAX_RSS, MiB, RawLayout, Run, run_cli

REF_NAME = "org.opencontainers.image.ref.name"


def refused(run: Run, says: str) -> None:
    """Exit 3 with a one-line error containing ``says``, in bounded time and memory."""
    assert not run.timed_out, f"killed after {run.seconds:.0f} s: {run.stderr[-300:]}"
    assert run.exit_code == 3, (run.exit_code, run.stderr[-500:])
    assert "Traceback" not in run.stderr
    lines = [line for line in run.stderr.splitlines() if line.startswith("splitbuild: error:")]
    assert len(lines) == 1, run.stderr
    assert says in lines[0], run.stderr
    assert run.max_rss < MAX_RSS, f"peak RSS {run.max_rss / MiB:.0f} MiB"


@pytest.fixture
def layout(tmp_path: Path) -> tuple[RawLayout, dict[str, object]]:
    raw = RawLayout(tmp_path / "layout")
    image = raw.image()
    raw.tag("v1", image)
    return raw, image


def config_path(raw: RawLayout, image: dict[str, object]) -> Path:
    manifest = json.loads(raw.blob_path(str(image["digest"])).read_bytes())
    return raw.blob_path(manifest["config"]["digest"])


def test_the_layout_fixture_is_readable(layout: tuple[RawLayout, dict[str, object]]) -> None:
    raw, image = layout
    run = run_cli("inspect", "--json", f"oci:{raw.path}:v1")
    assert run.exit_code == 0, run.stderr
    assert json.loads(run.stdout)["digest"] == image["digest"]


@pytest.mark.parametrize("which", ["manifest", "config"])
def test_a_fifo_as_a_blob_is_refused_without_hanging(
    layout: tuple[RawLayout, dict[str, object]], which: str
) -> None:
    raw, image = layout
    path = raw.blob_path(str(image["digest"])) if which == "manifest" else config_path(raw, image)
    path.unlink()
    os.mkfifo(path)
    refused(run_cli("inspect", f"oci:{raw.path}:v1", deadline=30), "is a FIFO, not a regular file")


def test_a_blob_linked_to_dev_zero_is_refused(layout: tuple[RawLayout, dict[str, object]]) -> None:
    raw, image = layout
    path = config_path(raw, image)
    path.unlink()
    path.symlink_to("/dev/zero")
    refused(run_cli("inspect", f"oci:{raw.path}:v1"), "is a symbolic link")


def test_a_hard_linked_device_is_refused_too(layout: tuple[RawLayout, dict[str, object]]) -> None:
    raw, image = layout
    path = raw.blob_path(str(image["digest"]))
    path.unlink()
    os.mkfifo(path)  # no mknod without privileges: a FIFO stands in for any special file
    refused(run_cli("copy", f"oci:{raw.path}:v1", f"oci:{raw.path.parent / 'dst'}:v1"), "is a FIFO")


def test_a_sparse_2gib_manifest_is_refused_before_it_is_read(
    layout: tuple[RawLayout, dict[str, object]],
) -> None:
    raw, image = layout
    os.truncate(raw.blob_path(str(image["digest"])), 2048 * MiB)
    refused(run_cli("inspect", f"oci:{raw.path}:v1"), "exceeds the 4 MiB limit")


def test_an_oversized_config_blob_is_refused_by_its_size(layout: tuple[RawLayout, dict[str, object]]) -> None:
    raw, image = layout
    os.truncate(config_path(raw, image), 1024 * MiB)
    run = run_cli("inspect", f"oci:{raw.path}:v1")
    assert run.exit_code == 7, run.stderr  # the file is not the blob the manifest names
    assert "the file holds 1073741824 bytes" in run.stderr
    assert run.max_rss < MAX_RSS


def test_a_huge_index_json_is_refused_before_it_is_read(layout: tuple[RawLayout, dict[str, object]]) -> None:
    raw, _ = layout
    os.truncate(raw.path / "index.json", 300 * MiB)
    refused(run_cli("ls", f"oci:{raw.path}"), "index.json is over the 8 MiB limit")


def test_an_index_json_just_over_the_cap_is_refused(layout: tuple[RawLayout, dict[str, object]]) -> None:
    raw, image = layout
    entries = [{**image, "annotations": {REF_NAME: f"t{i}"}} for i in range(40_000)]
    (raw.path / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": entries}))
    assert (raw.path / "index.json").stat().st_size > 8 * MiB
    refused(run_cli("inspect", f"oci:{raw.path}:t1"), "index.json is over the 8 MiB limit")


MALFORMED = {
    "deep-nesting": ('{"manifests": ' + "[" * 100_000 + "]" * 100_000 + "}", "nested too deeply"),
    "annotations-a-list": (
        json.dumps({"manifests": [{"digest": "sha256:" + "0" * 64, "annotations": ["v1"]}]}),
        "manifests[0].annotations is not an object of strings",
    ),
    "ref-name-a-number": (
        json.dumps({"manifests": [{"digest": "sha256:" + "0" * 64, "annotations": {REF_NAME: 5}}]}),
        "manifests[0].annotations is not an object of strings",
    ),
    "entry-a-string": (json.dumps({"manifests": ["v1"]}), "manifests[0] is not an object"),
    "digest-a-number": (json.dumps({"manifests": [{"digest": 5}]}), "manifests[0].digest is not a string"),
    "media-type-an-object": (
        json.dumps({"manifests": [{"digest": "sha256:" + "0" * 64, "mediaType": {}}]}),
        "manifests[0].mediaType is not a string",
    ),
    "manifests-an-object": (json.dumps({"manifests": {"v1": 1}}), "index.json is not an OCI image index"),
    "top-a-list": ("[]", "index.json is not an OCI image index"),
    "not-utf8": ('{"manifests": "\xff"}'.encode("latin-1").decode("latin-1"), "index.json is not valid JSON"),
}


COMMANDS = [(case, command) for case in sorted(MALFORMED) for command in ("inspect", "copy-into")]
COMMANDS += [("deep-nesting", "ls"), ("annotations-a-list", "ls"), ("annotations-a-list", "delete-dry-run")]


@pytest.mark.parametrize(("case", "command"), COMMANDS)
def test_a_malformed_index_json_is_invalid_input(tmp_path: Path, case: str, command: str) -> None:
    raw = RawLayout(tmp_path / "layout")
    text, says = MALFORMED[case]
    (raw.path / "index.json").write_bytes(text.encode("latin-1") if case == "not-utf8" else text.encode())
    args = {
        "inspect": ("inspect", f"oci:{raw.path}:v1"),
        "ls": ("ls", f"oci:{raw.path}"),
        "delete-dry-run": ("delete", "--dry-run", f"oci:{raw.path}:v1"),
        "copy-into": ("copy", f"oci:{_source(tmp_path)}:v1", f"oci:{raw.path}:v1"),
    }[command]
    refused(run_cli(*args), says)


def _source(tmp_path: Path) -> Path:
    src = RawLayout(tmp_path / "source")
    src.tag("v1", src.image(seed="source"))
    return src.path


def test_a_directory_as_a_blob_is_refused(layout: tuple[RawLayout, dict[str, object]]) -> None:
    raw, image = layout
    path = raw.blob_path(str(image["digest"]))
    path.unlink()
    path.mkdir()
    refused(run_cli("inspect", f"oci:{raw.path}:v1"), "is a directory")
    verdict = run_cli("verify", "--platform", "linux/amd64", "--deep", f"oci:{raw.path}:v1")
    assert verdict.exit_code == 7, verdict.stderr  # verify reports the damage as a failed check
    assert "is a directory, not a regular file" in verdict.stdout


def test_a_linked_index_json_is_refused(tmp_path: Path, layout: tuple[RawLayout, dict[str, object]]) -> None:
    raw, _ = layout
    elsewhere = tmp_path / "elsewhere.json"
    (raw.path / "index.json").rename(elsewhere)
    (raw.path / "index.json").symlink_to(elsewhere)
    refused(run_cli("ls", f"oci:{raw.path}"), "index.json (or a directory above it) is a symbolic link")


def test_a_linked_lock_file_creates_nothing_outside_the_layout(tmp_path: Path) -> None:
    dst = RawLayout(tmp_path / "dst")
    outside = tmp_path / "outside"
    outside.mkdir()
    (dst.path / ".splitbuild.lock").symlink_to(outside / "created-by-splitbuild")
    refused(run_cli("copy", f"oci:{_source(tmp_path)}:v1", f"oci:{dst.path}:v1"), ".splitbuild.lock")
    assert list(outside.iterdir()) == []
    assert json.loads((dst.path / "index.json").read_text())["manifests"] == []


def test_a_linked_blobs_directory_gets_no_files_written_into_it(tmp_path: Path) -> None:
    dst = tmp_path / "dst"
    outside = tmp_path / "outside"
    (outside / "sha256").mkdir(parents=True)
    dst.mkdir()
    (dst / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    (dst / "blobs").symlink_to(outside)
    refused(run_cli("copy", f"oci:{_source(tmp_path)}:v1", f"oci:{dst}:v1"), "blobs/sha256 (or a directory")
    assert list((outside / "sha256").iterdir()) == []


def test_a_linked_algorithm_directory_gets_no_files_written_into_it(tmp_path: Path) -> None:
    dst = RawLayout(tmp_path / "dst")
    outside = tmp_path / "outside"
    outside.mkdir()
    (dst.path / "blobs" / "sha256").rmdir()
    (dst.path / "blobs" / "sha256").symlink_to(outside)
    refused(run_cli("copy", f"oci:{_source(tmp_path)}:v1", f"oci:{dst.path}:v1"), "is a symbolic link")
    assert list(outside.iterdir()) == []


def test_the_layout_root_itself_may_be_a_link(
    tmp_path: Path, layout: tuple[RawLayout, dict[str, object]]
) -> None:
    raw, image = layout
    (tmp_path / "alias").symlink_to(raw.path)
    run = run_cli("inspect", "--json", f"oci:{tmp_path / 'alias'}:v1")
    assert run.exit_code == 0, run.stderr
    assert json.loads(run.stdout)["digest"] == image["digest"]


@pytest.mark.parametrize("command", ["inspect", "copy-into"])
def test_a_100000_character_layout_path_is_shortened_in_the_error(tmp_path: Path, command: str) -> None:
    path = "oci:" + str(tmp_path) + "/a" * 50_000
    args = (
        ("inspect", f"{path}:v1") if command == "inspect" else ("copy", f"oci:{_source(tmp_path)}:v1", path)
    )
    run = run_cli(*args)
    refused(run, "cannot be opened (File name too long)")
    assert len(run.stderr) < 400
    assert "..." in run.stderr


def test_reading_stops_one_byte_past_the_limit() -> None:
    """What a file that grows after its size was checked meets: never more than limit + 1 bytes."""
    stream = io.BytesIO(b"x" * (64 * MiB))
    with pytest.raises(InvalidInput, match="grew"):
        read_at_most(stream, 10, "grew")
    assert stream.tell() == 11
    assert read_at_most(io.BytesIO(b"x" * 10), 10, "grew") == b"x" * 10
