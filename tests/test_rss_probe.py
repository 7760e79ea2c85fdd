"""The RSS probe the hostile suites rely on measures the child, not the test process that started it."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from tests.hostile import MiB, peak_rss_file, probe_command, read_peak_kib


def _peak_of(module_dir: Path, module: str, ballast: bytearray) -> int:
    assert len(ballast) > 0  # keeps the parent large while the child runs
    with peak_rss_file() as peak:
        env = {**os.environ, "RSS_PROBE_FILE": str(peak), "PYTHONPATH": str(module_dir)}
        subprocess.run(probe_command(module), env=env, check=True, cwd=module_dir)
        return read_peak_kib(peak) * 1024


def test_the_probe_sees_the_child_allocate_and_ignores_a_large_parent(tmp_path: Path) -> None:
    ballast = bytearray(os.urandom(1024)) * (300 * 1024)  # 300 MiB resident in this process
    (tmp_path / "small.py").write_text("print('hi')\n")
    (tmp_path / "large.py").write_text("import os\nblock = bytearray(os.urandom(1024)) * (80 * 1024)\n")
    small = _peak_of(tmp_path, "small", ballast)
    large = _peak_of(tmp_path, "large", ballast)
    assert small < 100 * MiB, small
    assert large > small + 70 * MiB, (small, large)


def test_no_figure_when_the_child_is_killed(tmp_path: Path) -> None:
    (tmp_path / "dies.py").write_text("import os, signal\nos.kill(os.getpid(), signal.SIGKILL)\n")
    with peak_rss_file() as peak:
        env = {**os.environ, "RSS_PROBE_FILE": str(peak), "PYTHONPATH": str(tmp_path)}
        code = subprocess.run(probe_command("dies"), env=env, cwd=tmp_path).returncode
        assert code == -9
        assert read_peak_kib(peak) == 0
