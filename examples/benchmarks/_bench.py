"""Shared pieces of the benchmark scripts: timing whole processes (wall and CPU) and reading
``python -X importtime`` output."""

from __future__ import annotations

import os
import resource
import statistics
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Timing:
    wall: float
    cpu: float
    """User + system CPU seconds of the child processes: steadier than wall time on a busy machine."""


def run_timed(commands: Sequence[Sequence[str]], env: dict[str, str], cwd: str | None = None) -> Timing:
    """Run ``commands`` one after the other; fail with the command's stderr tail if one fails.

    ``cwd``: somewhere neutral (``python -m`` puts the working directory first on ``sys.path``)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    for cmd in commands:
        proc = subprocess.run(list(cmd), env=env, cwd=cwd, capture_output=True, text=True)
        if proc.returncode != 0:
            raise SystemExit(f"{cmd[0]} failed ({proc.returncode}): {proc.stderr.strip()[-800:]}")
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return Timing(wall, cpu)


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


@dataclass(frozen=True)
class ImportTimes:
    total_ms: float
    """Sum of the top-level imports' cumulative times."""
    top: list[tuple[str, float]]
    """Top-level imports by cumulative time (ms), largest first."""
    modules: int


def import_times(stderr: str, limit: int = 8) -> ImportTimes:
    """Parse ``-X importtime`` lines (``import time: self | cumulative | name``)."""
    rows: list[tuple[str, float]] = []
    count = 0
    for line in stderr.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        _self, cumulative, name = line[len("import time:") :].split("|")
        count += 1
        if not name[1:].startswith(" "):  # top level: one space after the bar, no indentation
            rows.append((name.strip(), int(cumulative) / 1000))
    rows.sort(key=lambda r: -r[1])
    return ImportTimes(sum(ms for _, ms in rows), rows[:limit], count)


def with_pythonpath(env: dict[str, str], root: str) -> dict[str, str]:
    """``env`` with ``root`` first on PYTHONPATH (run that checkout's splitbuild)."""
    out = dict(env)
    out["PYTHONPATH"] = os.pathsep.join(filter(None, [root, env.get("PYTHONPATH")]))
    return out


def round_trips(times: Sequence[float], rtt: float) -> int:
    """How many round trips a client's requests took: arrival times (at a proxy adding ``rtt``)
    grouped into waves, a new wave starting where the gap is at least half a round trip (a request
    that had to wait for an answer)."""
    waves = 0
    last: float | None = None
    for t in sorted(times):
        if last is None or t - last >= rtt / 2:
            waves += 1
        last = t
    return waves
