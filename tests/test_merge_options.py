"""``merge_options``: MergeOptions from the words the CLI and the facade take, in one place."""

from __future__ import annotations

from pathlib import Path

import pytest

from splitbuild.errors import InvalidInput, UsageError
from splitbuild.merge import merge_options

DIGEST_A = "sha256:" + "a" * 64
DIGEST_B = "sha256:" + "b" * 64


def test_sources_texts_and_a_digests_dir_resolve_in_the_first_target(tmp_path: Path) -> None:
    (tmp_path / ("b" * 64)).write_text("")
    options = merge_options(
        ["registry.example/acme/app:1.2", "registry.example/acme/app:latest"],
        [DIGEST_A],
        digests_dir=tmp_path,
        platforms=["Linux/ARM64", "linux/amd64"],
        optional_platforms=["linux/i686"],
    )
    assert [str(t) for t in options.targets] == [
        "registry.example/acme/app:1.2",
        "registry.example/acme/app:latest",
    ]
    assert [str(s.ref) for s in options.sources] == [
        f"registry.example/acme/app@{DIGEST_A}",
        f"registry.example/acme/app@{DIGEST_B}",
    ]
    assert options.platforms == ["linux/arm64", "linux/amd64"]
    assert options.optional_platforms == ["linux/386"]


def test_an_explicit_annotation_wins_over_a_label_of_the_tag_rules() -> None:
    options = merge_options(
        ["registry.example/acme/app:1"],
        [DIGEST_A],
        annotations=["index:org.opencontainers.image.title=mine"],
        default_annotations={
            "org.opencontainers.image.title": "from-labels",
            "org.opencontainers.image.version": "1",
        },
    )
    assert options.annotations.index == {
        "org.opencontainers.image.title": "mine",
        "org.opencontainers.image.version": "1",
    }


def test_bad_words_are_one_line_errors(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="no target"):
        merge_options([], [DIGEST_A])
    with pytest.raises(UsageError, match="must name a tag"):
        merge_options([f"registry.example/acme/app@{DIGEST_A}"], [DIGEST_A])
    with pytest.raises(InvalidInput, match="not a directory"):
        merge_options(["registry.example/acme/app:1"], digests_dir=tmp_path / "missing")
