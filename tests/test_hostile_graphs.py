"""Hostile manifest graphs (issue 14, items 14 and 15), served from a layout to the real process:
indexes nested thousands of levels deep are refused with exit 3 (never a RecursionError), and a
fan-out (a hundred indexes listing the same thousands of images) costs memory per distinct
manifest, not per path: every command stays under 200 MiB."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from splitbuild.models import MAX_INDEX_DEPTH
from tests.hostile import MAX_RSS, MiB, RawLayout, Run, run_cli

FAN_OUT = 100
"""Indexes under the top index."""
IMAGES = 2000
"""Images every one of them lists."""


def ok(run: Run) -> None:
    assert not run.timed_out, f"killed after {run.seconds:.0f} s"
    assert run.exit_code == 0, run.stderr[-800:]
    assert run.max_rss < MAX_RSS, f"peak RSS {run.max_rss / MiB:.0f} MiB"


def too_deep(run: Run) -> None:
    assert not run.timed_out, f"killed after {run.seconds:.0f} s"
    assert run.exit_code == 3, (run.exit_code, run.stderr[-800:])
    assert "Traceback" not in run.stderr
    assert "RecursionError" not in run.stderr
    assert f"indexes nested more than {MAX_INDEX_DEPTH} levels deep" in run.stderr, run.stderr
    assert run.max_rss < MAX_RSS, f"peak RSS {run.max_rss / MiB:.0f} MiB"


def chain(raw: RawLayout, levels: int, seed: str) -> dict[str, object]:
    """``levels`` indexes, each listing the next, over one image."""
    desc = raw.image(seed=seed)
    for level in range(levels):
        desc = raw.index([desc], seed=f"{seed}-{level}")
    return desc


@pytest.fixture(scope="module")
def deep(tmp_path_factory: pytest.TempPathFactory) -> RawLayout:
    raw = RawLayout(tmp_path_factory.mktemp("deep") / "layout")
    raw.tag("deep", chain(raw, 3000, "deep"))
    raw.tag("fine", raw.image(seed="fine"))
    return raw


@pytest.mark.parametrize(
    "args",
    [
        ("delete", "--dry-run", "{layout}:deep"),
        ("delete", "--dry-run", "{layout}:fine"),
        ("prune", "--keep-last", "0", "{layout}"),
        ("copy", "{layout}:deep", "{dst}:deep"),
    ],
    ids=["delete-deep", "delete-other-tag", "prune", "copy"],
)
def test_indexes_nested_3000_deep_are_invalid_input(
    deep: RawLayout, tmp_path: Path, args: tuple[str, ...]
) -> None:
    filled = [a.format(layout=f"oci:{deep.path}", dst=f"oci:{tmp_path / 'dst'}") for a in args]
    too_deep(run_cli(*filled))


def test_a_chain_at_the_depth_limit_is_copied_and_planned(tmp_path: Path) -> None:
    raw = RawLayout(tmp_path / "layout")
    raw.tag("v1", chain(raw, MAX_INDEX_DEPTH, "limit"))
    dst = tmp_path / "dst"
    ok(run_cli("copy", f"oci:{raw.path}:v1", f"oci:{dst}:v1"))
    run = run_cli("delete", "--dry-run", "--json", f"oci:{dst}:v1")
    ok(run)
    plan = json.loads(run.stdout)["plan"]
    assert len(plan["manifests"]) == MAX_INDEX_DEPTH + 1
    too_long = RawLayout(tmp_path / "over")
    too_long.tag("v1", chain(too_long, MAX_INDEX_DEPTH + 1, "over"))
    too_deep(run_cli("copy", f"oci:{too_long.path}:v1", f"oci:{tmp_path / 'dst2'}:v1"))


@pytest.fixture(scope="module")
def fan_out(tmp_path_factory: pytest.TempPathFactory) -> RawLayout:
    raw = RawLayout(tmp_path_factory.mktemp("fan") / "layout")
    images = [raw.image(seed=i) for i in range(IMAGES)]
    middles = [raw.index(images, seed=f"middle-{i}") for i in range(FAN_OUT)]
    raw.tag("top", raw.index(middles, seed="top"))
    return raw


def test_fan_out_delete_dry_run_costs_memory_per_distinct_manifest(fan_out: RawLayout) -> None:
    run = run_cli("delete", "--dry-run", "--json", f"oci:{fan_out.path}:top", deadline=300)
    ok(run)
    plan = json.loads(run.stdout)["plan"]
    assert len(plan["manifests"]) == 1 + FAN_OUT + IMAGES


def test_fan_out_copy_costs_memory_per_distinct_manifest(fan_out: RawLayout, tmp_path: Path) -> None:
    dst = tmp_path / "dst"
    run = run_cli("copy", "--json", f"oci:{fan_out.path}:top", f"oci:{dst}:top", deadline=600)
    ok(run)
    result = json.loads(run.stdout)
    assert result["manifests"]["pushed"] == 1 + FAN_OUT + IMAGES
    assert result["blobs"]["copied"] == 1  # the one config every image shares
