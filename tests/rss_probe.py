"""Run ``python -m MODULE ARGS`` and record this process's own peak resident set size.

``wait4``'s ``ru_maxrss`` cannot measure a child of the test process: Linux carries the parent's
high-water mark into the child across fork (or vfork) and exec, so a child of a 300 MiB pytest
process "peaks" at 300 MiB whatever it does. ``VmHWM`` in ``/proc/self/status`` belongs to the
current address space only, which exec starts afresh. At exit (normal, ``SystemExit`` or an
uncaught exception) the figure in KiB is written to the file named by ``RSS_PROBE_FILE``.

Usage: ``python tests/rss_probe.py MODULE [ARGS...]``.
"""

from __future__ import annotations

import atexit
import os
import runpy
import sys


def peak_kib() -> int:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    raise RuntimeError("no VmHWM in /proc/self/status")


def _report() -> None:
    target = os.environ.get("RSS_PROBE_FILE")
    if target:
        with open(target, "w", encoding="ascii") as out:
            out.write(str(peak_kib()))


if __name__ == "__main__":
    atexit.register(_report)
    module = sys.argv[1]
    sys.argv = [module, *sys.argv[2:]]
    sys.path[0] = os.getcwd()
    runpy.run_module(module, run_name="__main__", alter_sys=True)
