"""The build host: its CPU architecture and which platforms it executes without emulation.

An x86-64 CPU runs 32-bit x86 code natively (``linux/386``); an arm64 CPU runs 32-bit Arm code
natively only when it implements AArch32 at EL0 and the kernel supports it (GitHub's Neoverse
runners do; Apple silicon and some server CPUs do not), which ``lscpu`` reports as
``CPU op-mode(s): 32-bit, 64-bit``. Every other platform needs QEMU user emulation.
"""

from __future__ import annotations

import platform as _platform
import shutil
import subprocess
from dataclasses import dataclass

from splitbuild.errors import BuildError, ConfigError
from splitbuild.platforms import normalize_arch, split_platform

__all__ = ["Host", "aarch32_supported", "detect_host"]


@dataclass(frozen=True)
class Host:
    """``arch`` is the GOARCH of the host (``amd64``, ``arm64``...); ``native`` the platform
    architectures it executes without emulation, ``why`` says why, per architecture."""

    arch: str
    native: frozenset[str]

    @property
    def platform(self) -> str:
        return f"linux/{self.arch}"

    def is_native(self, platform: str) -> bool:
        return split_platform(platform).architecture in self.native

    def why(self, platform: str) -> str:
        arch = split_platform(platform).architecture
        if arch == self.arch:
            return f"the host is {self.arch}"
        if arch in self.native:
            return f"the {self.arch} host executes {arch} code natively"
        return f"the host is {self.arch}: {arch} runs under QEMU user emulation"


def aarch32_supported() -> bool:
    """True when ``lscpu`` says this arm64 CPU also executes 32-bit code."""
    lscpu = shutil.which("lscpu")
    if lscpu is None:
        return False
    try:
        out = subprocess.run([lscpu], capture_output=True, text=True, timeout=10, check=False).stdout
    except (OSError, subprocess.TimeoutExpired):
        return False
    for line in out.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "CPU op-mode(s)":
            return "32-bit" in value
    return False


def detect_host(machine: str | None = None, *, aarch32: bool | None = None) -> Host:
    """The host of this process (``machine`` defaults to ``uname -m``; ``aarch32`` to
    :func:`aarch32_supported` on arm64 hosts)."""
    text = machine if machine is not None else _platform.machine()
    try:
        arch, _ = normalize_arch(text)
    except ConfigError:
        raise BuildError(f"unsupported build host architecture {text!r}") from None
    native = {arch}
    if arch == "amd64":
        native.add("386")
    elif arch == "arm64" and (aarch32 if aarch32 is not None else aarch32_supported()):
        native.add("arm")
    return Host(arch=arch, native=frozenset(native))
