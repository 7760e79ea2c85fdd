"""splitbuild.tags against the shared docker/metadata-action vectors (used as they are)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from splitbuild.tags import Context, Inputs, compute_metadata
from splitbuild.tags.resolve import resolve

REPO_ROOT = Path(__file__).resolve().parent.parent
BAKE_KINDS = {"tags": "tags", "labels": "labels", "annotations": "annotations", "tagsLabels": "tags-labels"}


def _vectors(conformance_dir: Path) -> list[dict[str, Any]]:
    path = conformance_dir / "metadata" / "metadata-vectors.json"
    data: list[dict[str, Any]] = json.loads(path.read_text(encoding="utf-8"))
    return data


def _compute_vectors(conformance_dir: Path) -> list[dict[str, Any]]:
    return [v for v in _vectors(conformance_dir) if v["kind"] == "compute" and not v["expected"].get("error")]


def test_shared_checker_reports_no_failure(conformance_dir: Path) -> None:
    checker = conformance_dir / "metadata" / "check_vectors.py"
    proc = subprocess.run(
        [sys.executable, str(checker), "splitbuild.tags:compute", "--strict"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    last = proc.stdout.strip().splitlines()[-1]
    match = re.fullmatch(r"(\d+) passed, (\d+) failed", last)
    assert match is not None, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert match.group(2) == "0", proc.stdout[-4000:]
    assert int(match.group(1)) == len(_vectors(conformance_dir))
    assert proc.returncode == 0


def test_json_and_bake_outputs_match_the_informative_expectations(conformance_dir: Path) -> None:
    checked = 0
    for vector in _compute_vectors(conformance_dir):
        expected = vector["expected"]
        metadata = compute_metadata(
            Inputs.from_mapping(vector["inputs"]), Context.from_mapping(vector["context"]), strict=False
        )
        if "json" in expected:
            assert metadata.to_json() == expected["json"], vector["id"]
            assert list(metadata.to_json()["labels"]) == list(expected["json"]["labels"]), vector["id"]
            checked += 1
        for kind, body in expected.get("bake", {}).items():
            assert metadata.bake_file(BAKE_KINDS[kind]) == body, (vector["id"], kind)
            checked += 1
    assert checked >= 10


def test_strict_mode_accepts_every_upstream_configuration(conformance_dir: Path) -> None:
    for vector in _compute_vectors(conformance_dir):
        strict = compute_metadata(
            Inputs.from_mapping(vector["inputs"]), Context.from_mapping(vector["context"])
        )
        if "tags" in vector["expected"]:
            assert strict.tags == vector["expected"]["tags"], vector["id"]


@pytest.mark.parametrize("field", ["ref", "sha"])
def test_resolved_context_matches_upstream(conformance_dir: Path, field: str) -> None:
    vectors = [v for v in _compute_vectors(conformance_dir) if "resolved" in v]
    assert vectors
    for vector in vectors:
        resolved = resolve(Context.from_mapping(vector["context"]))
        assert getattr(resolved, field) == vector["resolved"][field], vector["id"]
