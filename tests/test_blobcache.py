"""The blob location cache on its own: what it remembers, forgets and suggests, concurrent writers in
separate processes, and that it turns itself off instead of failing a run."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

from splitbuild.blobcache import FILE_NAME, BlobLocations, default_cache_dir

ROOT = Path(__file__).resolve().parent.parent
D1 = "sha256:" + "1" * 64
D2 = "sha256:" + "2" * 64


def test_it_suggests_the_repositories_that_hold_a_blob_most_recent_first(tmp_path: Path) -> None:
    cache = BlobLocations.open(tmp_path, env={})
    assert cache is not None
    cache.remember("reg.example", "team/a", [D1, D2])
    cache.remember("reg.example", "team/b", [D1])
    cache.remember("other.example", "team/c", [D1])
    assert cache.holders("reg.example", D1) == ["team/b", "team/a"]
    assert cache.holders("reg.example", D1, exclude="team/b") == ["team/a"]
    assert cache.holders("reg.example", D2) == ["team/a"]
    assert cache.holders("reg.example", "sha256:" + "3" * 64) == []
    cache.forget("reg.example", "team/b", D1)
    assert cache.holders("reg.example", D1) == ["team/a"]
    cache.close()
    reopened = BlobLocations.open(tmp_path, env={})
    assert reopened is not None
    assert reopened.holders("reg.example", D1) == ["team/a"]  # persistent
    assert reopened.holders("other.example", D1) == ["team/c"]  # per registry


def test_the_file_is_private_to_the_user(tmp_path: Path) -> None:
    BlobLocations.open(tmp_path / "cache", env={})
    mode = (tmp_path / "cache" / FILE_NAME).stat().st_mode
    assert stat.S_IMODE(mode) & 0o077 == 0
    assert stat.S_IMODE((tmp_path / "cache").stat().st_mode) & 0o077 == 0


def test_it_can_be_turned_off_and_moved() -> None:
    assert BlobLocations.open(env={"SPLITBUILD_BLOB_CACHE": "0"}) is None
    assert default_cache_dir({"SPLITBUILD_CACHE_DIR": "/x/y"}) == Path("/x/y")
    assert default_cache_dir({"XDG_CACHE_HOME": "/c", "HOME": "/h"}) == Path("/c/splitbuild")
    assert default_cache_dir({"HOME": "/h"}) == Path("/h/.cache/splitbuild")


def test_an_unusable_cache_is_off_not_an_error(tmp_path: Path) -> None:
    blocked = tmp_path / "file"
    blocked.write_text("not a directory")
    assert BlobLocations.open(blocked / "cache", env={}) is None
    corrupt = tmp_path / "corrupt"
    corrupt.mkdir()
    (corrupt / FILE_NAME).write_bytes(b"this is not an SQLite database" * 100)
    assert BlobLocations.open(corrupt, env={}) is None


def test_a_cache_that_breaks_during_a_run_goes_quiet(tmp_path: Path) -> None:
    cache = BlobLocations.open(tmp_path, env={})
    assert cache is not None
    cache.close()
    cache.remember("reg.example", "a", [D1])  # closed: nothing happens, nothing raises
    assert cache.holders("reg.example", D1) == []


WRITER = """
import sys
from pathlib import Path
from splitbuild.blobcache import BlobLocations
cache = BlobLocations.open(Path(sys.argv[1]), env={})
assert cache is not None
name = sys.argv[2]
for i in range(300):
    cache.remember("reg.example", f"{name}/{i % 7}", [f"sha256:{i:064x}"])
print(len(cache.holders("reg.example", "sha256:" + "0" * 64, limit=100)))
"""


def test_concurrent_processes_share_it(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    writers = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, str(tmp_path), f"w{n}"], env=env, stdout=subprocess.PIPE
        )
        for n in range(4)
    ]
    for writer in writers:
        out, _ = writer.communicate(timeout=120)
        assert writer.returncode == 0
        assert int(out) >= 1
    cache = BlobLocations.open(tmp_path, env={})
    assert cache is not None
    holders = cache.holders("reg.example", "sha256:" + "0" * 64, limit=100)
    assert sorted(holders) == ["w0/0", "w1/0", "w2/0", "w3/0"]
    assert len(cache.holders("reg.example", f"sha256:{299:064x}", limit=100)) == 4
