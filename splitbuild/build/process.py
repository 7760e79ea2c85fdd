"""One builder process: run it, keep its output in a log file and its last lines in memory.

A cancelled run (Ctrl-C, a sibling's failure) terminates the process, then kills it if it does
not exit within a few seconds; no builder process outlives the command.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import anyio

from splitbuild.errors import BuildError, shorten

__all__ = ["ProcessResult", "run_logged"]

TAIL_LINES = 20
_TERMINATE_GRACE = 5.0


@dataclass(frozen=True)
class ProcessResult:
    argv: tuple[str, ...]
    returncode: int
    seconds: float
    tail: tuple[str, ...]
    """The last lines of the combined stdout and stderr."""

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    def last_error(self) -> str:
        """The most telling line of the output: the last one mentioning an error, else the last."""
        for line in reversed(self.tail):
            lowered = line.lower()
            if "error" in lowered or "failed" in lowered:
                return line.strip()
        return self.tail[-1].strip() if self.tail else f"exit status {self.returncode}"


async def run_logged(
    argv: Sequence[str],
    *,
    log: Path,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    on_line: Callable[[str], None] | None = None,
) -> ProcessResult:
    """Run ``argv`` with stdout and stderr appended to ``log``; ``on_line`` sees each line."""
    tail: deque[str] = deque(maxlen=TAIL_LINES)
    started = time.monotonic()
    full_env = dict(os.environ if env is None else env)
    log.parent.mkdir(parents=True, exist_ok=True)
    async with await anyio.open_file(log, "ab") as sink:
        await sink.write(("$ " + " ".join(argv) + "\n").encode())
        await sink.flush()
        try:
            process = await anyio.open_process(
                list(argv),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                env=full_env,
                cwd=cwd,
            )
        except OSError as exc:  # a missing or non-executable program
            raise BuildError(f"cannot run {shorten(argv[0])}: {exc.strerror or exc}") from None
        try:
            assert process.stdout is not None
            pending = b""
            async for chunk in process.stdout:
                await sink.write(chunk)
                pending += chunk
                *lines, pending = pending.split(b"\n")
                for raw in lines:
                    line = raw.decode(errors="replace").rstrip("\r")
                    tail.append(line)
                    if on_line is not None:
                        on_line(line)
            if pending:
                line = pending.decode(errors="replace")
                tail.append(line)
                if on_line is not None:
                    on_line(line)
            returncode = await process.wait()
        finally:
            with anyio.CancelScope(shield=True):
                if process.returncode is None:
                    process.terminate()
                    with anyio.move_on_after(_TERMINATE_GRACE):
                        await process.wait()
                    if process.returncode is None:
                        process.kill()
                        await process.wait()
                await process.aclose()
    return ProcessResult(
        argv=tuple(argv), returncode=returncode, seconds=time.monotonic() - started, tail=tuple(tail)
    )
