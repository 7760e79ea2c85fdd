"""QEMU user emulation through binfmt_misc: which emulated platforms the kernel can execute.

The kernel lists its handlers in ``/proc/sys/fs/binfmt_misc/<name>`` (``enabled``,
``interpreter``, ``flags``, ``offset``, ``magic``, ``mask``). A platform is covered when an
enabled handler's magic matches the ELF header of a static executable for its architecture,
whatever the handler is called (Debian's ``qemu-aarch64``, tonistiigi/binfmt's, a distribution's
own). The handler also needs the ``F`` (fix-binary) flag: builds run in a chroot where the
interpreter's path does not exist, so the kernel must have opened it at registration.

:func:`check_emulation` is called before anything builds and stops with what to run when a
platform is not covered.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from splitbuild.errors import BuildError
from splitbuild.platforms import split_platform

__all__ = [
    "BINFMT_DIR",
    "Handler",
    "check_emulation",
    "elf_header",
    "enable_hint",
    "find_handler",
    "read_handlers",
]

BINFMT_DIR = Path("/proc/sys/fs/binfmt_misc")

# GOARCH -> (ELF class: 1 = 32-bit, 2 = 64-bit; big endian; e_machine)
_ELF: dict[str, tuple[int, bool, int]] = {
    "386": (1, False, 3),
    "amd64": (2, False, 62),
    "arm": (1, False, 40),
    "arm64": (2, False, 183),
    "loong64": (2, False, 258),
    "mips": (1, True, 8),
    "mipsle": (1, False, 8),
    "mips64": (2, True, 8),
    "mips64le": (2, False, 8),
    "ppc64": (2, True, 21),
    "ppc64le": (2, False, 21),
    "riscv64": (2, False, 243),
    "s390x": (2, True, 22),
}
# GOARCH -> the QEMU name (Debian's handler is qemu-<name>)
_QEMU_NAME = {
    "386": "i386",
    "amd64": "x86_64",
    "arm64": "aarch64",
    "loong64": "loongarch64",
    "mips64le": "mips64el",
    "mipsle": "mipsel",
}


@dataclass(frozen=True)
class Handler:
    """One binfmt_misc entry (magic-type entries only; extension-type ones are ignored)."""

    name: str
    enabled: bool
    interpreter: str
    flags: str
    offset: int
    magic: bytes
    mask: bytes

    def matches(self, header: bytes) -> bool:
        """The kernel's test: every byte of ``magic`` equals the file's byte under ``mask``."""
        window = header[self.offset : self.offset + len(self.magic)]
        if len(window) < len(self.magic):
            return False
        mask = self.mask or b"\xff" * len(self.magic)
        return all((a ^ b) & m == 0 for a, b, m in zip(window, self.magic, mask, strict=False))

    @property
    def fix_binary(self) -> bool:
        return "F" in self.flags


def qemu_name(arch: str) -> str:
    return _QEMU_NAME.get(arch, arch)


def elf_header(arch: str) -> bytes:
    """The first 64 bytes of a static executable for ``arch`` (a GOARCH such as ``arm64``)."""
    try:
        elf_class, big, machine = _ELF[arch]
    except KeyError:
        raise BuildError(f"no QEMU user emulation is known for architecture {arch!r}") from None
    order = ">" if big else "<"
    ident = b"\x7fELF" + bytes([elf_class, 2 if big else 1, 1]) + bytes(9)
    rest = struct.pack(f"{order}HHI", 2, machine, 1)  # e_type EXEC, e_machine, e_version
    return (ident + rest).ljust(64, b"\x00")


def _parse(name: str, text: str) -> Handler | None:
    enabled = False
    fields: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if line in ("enabled", "disabled"):
            enabled = line == "enabled"
            continue
        key, _, value = line.partition(" ")
        fields[key.rstrip(":")] = value.strip()
    if "magic" not in fields:
        return None
    try:
        magic = bytes.fromhex(fields["magic"])
        mask = bytes.fromhex(fields.get("mask", ""))
        offset = int(fields.get("offset", "0"))
    except ValueError:
        return None
    return Handler(
        name=name,
        enabled=enabled,
        interpreter=fields.get("interpreter", ""),
        flags=fields.get("flags", ""),
        offset=offset,
        magic=magic,
        mask=mask,
    )


def read_handlers(root: Path = BINFMT_DIR) -> list[Handler] | None:
    """The registered handlers, or None when binfmt_misc is not mounted at ``root``."""
    if not (root / "status").is_file():
        return None
    handlers = []
    for entry in sorted(root.iterdir()):
        if entry.name in ("status", "register") or not entry.is_file():
            continue
        try:
            handler = _parse(entry.name, entry.read_text(errors="replace"))
        except OSError:
            continue
        if handler is not None:
            handlers.append(handler)
    return handlers


def find_handler(arch: str, handlers: Sequence[Handler]) -> Handler | None:
    """The handler the kernel would use for ``arch`` executables (enabled ones first)."""
    header = elf_header(arch)
    matching = [h for h in handlers if h.matches(header)]
    matching.sort(key=lambda h: not h.enabled)
    return matching[0] if matching else None


def enable_hint(arches: Sequence[str], root: Path = BINFMT_DIR) -> str:
    """What to run (as root) to register handlers for ``arches``."""
    names = " ".join(f"qemu-{qemu_name(a)}" for a in arches)
    mount = "" if (root / "status").is_file() else f"mount -t binfmt_misc binfmt_misc {root} && "
    return (
        f"as root: apt-get install qemu-user-static binfmt-support && {mount}update-binfmts --enable {names}"
        f"; with a docker engine: docker run --privileged --rm tonistiigi/binfmt --install {','.join(arches)}"
    )


def check_emulation(platforms: Sequence[str], root: Path = BINFMT_DIR) -> dict[str, Handler]:
    """The handler for each emulated platform; raises :class:`BuildError` (with the commands to
    run) when one is missing, disabled, or lacks the fix-binary flag."""
    if not platforms:
        return {}
    arches = list(dict.fromkeys(split_platform(p).architecture for p in platforms))
    shown = ", ".join(platforms)
    handlers = read_handlers(root)
    if handlers is None:
        raise BuildError(
            f"QEMU emulation is needed for {shown} but binfmt_misc is not mounted at {root}",
            hint=enable_hint(arches, root),
        )
    status = (root / "status").read_text(errors="replace").strip()
    if status != "enabled":
        raise BuildError(
            f"QEMU emulation is needed for {shown} but binfmt_misc is disabled ({root}/status)",
            hint=f"as root: echo 1 > {root}/status",
        )
    found: dict[str, Handler] = {}
    missing: list[str] = []
    disabled: list[Handler] = []
    unfixed: dict[str, Handler] = {}
    for platform in platforms:
        arch = split_platform(platform).architecture
        handler = find_handler(arch, handlers)
        if handler is None:
            missing.append(arch)
        elif not handler.enabled:
            disabled.append(handler)
        elif not handler.fix_binary:
            unfixed[arch] = handler
        else:
            found[platform] = handler
    if missing:
        names = ", ".join(f"{a} (qemu-{qemu_name(a)})" for a in dict.fromkeys(missing))
        raise BuildError(
            f"QEMU emulation is needed for {shown} but no binfmt_misc handler is registered for {names}",
            hint=enable_hint(list(dict.fromkeys(missing)), root),
        )
    if disabled:
        names = " ".join(h.name for h in disabled)
        raise BuildError(
            f"binfmt_misc handler(s) {', '.join(h.name for h in disabled)} are registered but disabled",
            hint=f"as root: update-binfmts --enable {names} (or: echo 1 > {root}/<name>)",
        )
    if unfixed:
        names = ", ".join(dict.fromkeys(h.name for h in unfixed.values()))
        raise BuildError(
            f"binfmt_misc handler(s) {names} lack the F (fix-binary) flag: "
            "the interpreter is not visible inside the build's chroot",
            hint="re-register them with qemu-user-static's handlers (flags PF) or "
            f"docker run --privileged --rm tonistiigi/binfmt --install {','.join(unfixed)}",
        )
    return found
