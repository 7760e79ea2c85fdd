"""binfmt_misc detection against handler files written the way the kernel prints them, and the
host's native platforms."""

from __future__ import annotations

from pathlib import Path

import pytest

from splitbuild.build.binfmt import check_emulation, elf_header, enable_hint, find_handler, read_handlers
from splitbuild.build.host import detect_host
from splitbuild.errors import BuildError

# As /proc/sys/fs/binfmt_misc/<name> prints Debian qemu-user-static's handlers (flags PF).
AARCH64 = """enabled
interpreter /usr/libexec/qemu-binfmt/aarch64-binfmt-P
flags: PF
offset 0
magic 7f454c460201010000000000000000000200b700
mask ffffffffffffff00fffffffffffffffffeffffff
"""
ARM = """enabled
interpreter /usr/libexec/qemu-binfmt/arm-binfmt-P
flags: PF
offset 0
magic 7f454c4601010100000000000000000002002800
mask ffffffffffffff00fffffffffffffffffeffffff
"""
S390X = """enabled
interpreter /usr/libexec/qemu-binfmt/s390x-binfmt-P
flags: PF
offset 0
magic 7f454c4602020100000000000000000000020016
mask fffffffffffffffcfffffffffffffffffffeffff
"""
JAR = """enabled
interpreter /usr/bin/jexec
flags:
extension .jar
"""


def _binfmt(tmp_path: Path, handlers: dict[str, str], status: str = "enabled") -> Path:
    root = tmp_path / "binfmt_misc"
    root.mkdir()
    (root / "status").write_text(status + "\n")
    (root / "register").write_text("")
    for name, text in handlers.items():
        (root / name).write_text(text)
    return root


def test_elf_headers() -> None:
    arm64 = elf_header("arm64")
    assert arm64[:4] == b"\x7fELF"
    assert arm64[4:7] == b"\x02\x01\x01"  # 64-bit, little endian, version 1
    assert arm64[18:20] == b"\xb7\x00"  # EM_AARCH64
    assert elf_header("s390x")[4:6] == b"\x02\x02"  # big endian
    assert elf_header("s390x")[18:20] == b"\x00\x16"
    assert elf_header("arm")[4] == 1  # 32-bit
    with pytest.raises(BuildError, match="no QEMU user emulation is known for architecture 'wasm'"):
        elf_header("wasm")


def test_handlers_are_matched_by_magic_not_by_name(tmp_path: Path) -> None:
    # tonistiigi/binfmt, Debian and others name handlers differently; the magic decides.
    root = _binfmt(tmp_path, {"aarch64-emulator": AARCH64, "qemu-arm": ARM, "jar": JAR})
    handlers = read_handlers(root)
    assert handlers is not None
    assert [h.name for h in handlers] == ["aarch64-emulator", "qemu-arm"]
    arm64 = find_handler("arm64", handlers)
    assert arm64 is not None
    assert arm64.name == "aarch64-emulator"
    assert arm64.fix_binary
    arm = find_handler("arm", handlers)
    assert arm is not None
    assert arm.name == "qemu-arm"
    assert find_handler("s390x", handlers) is None
    assert find_handler("amd64", handlers) is None
    found = check_emulation(["linux/arm64", "linux/arm/v7"], root)
    assert {p: h.name for p, h in found.items()} == {
        "linux/arm64": "aarch64-emulator",
        "linux/arm/v7": "qemu-arm",
    }


def test_big_endian_handler_matches(tmp_path: Path) -> None:
    root = _binfmt(tmp_path, {"qemu-s390x": S390X})
    assert check_emulation(["linux/s390x"], root)["linux/s390x"].name == "qemu-s390x"


def test_not_mounted(tmp_path: Path) -> None:
    root = tmp_path / "empty"
    root.mkdir()
    assert read_handlers(root) is None
    with pytest.raises(BuildError) as caught:
        check_emulation(["linux/arm64"], root)
    assert caught.value.message == (
        f"QEMU emulation is needed for linux/arm64 but binfmt_misc is not mounted at {root}"
    )
    assert caught.value.hint == (
        "as root: apt-get install qemu-user-static binfmt-support && "
        f"mount -t binfmt_misc binfmt_misc {root} && update-binfmts --enable qemu-aarch64; "
        "with a docker engine: docker run --privileged --rm tonistiigi/binfmt --install arm64"
    )


def test_missing_handler_names_the_packages_and_commands(tmp_path: Path) -> None:
    root = _binfmt(tmp_path, {"qemu-aarch64": AARCH64})
    with pytest.raises(BuildError) as caught:
        check_emulation(["linux/arm64", "linux/arm/v7", "linux/ppc64le"], root)
    assert caught.value.message == (
        "QEMU emulation is needed for linux/arm64, linux/arm/v7, linux/ppc64le but no binfmt_misc "
        "handler is registered for arm (qemu-arm), ppc64le (qemu-ppc64le)"
    )
    assert caught.value.hint == enable_hint(["arm", "ppc64le"], root)
    assert "update-binfmts --enable qemu-arm qemu-ppc64le" in (caught.value.hint or "")
    assert "tonistiigi/binfmt --install arm,ppc64le" in (caught.value.hint or "")


def test_disabled_handler(tmp_path: Path) -> None:
    root = _binfmt(tmp_path, {"qemu-aarch64": AARCH64.replace("enabled", "disabled", 1)})
    with pytest.raises(BuildError, match="qemu-aarch64 are registered but disabled") as caught:
        check_emulation(["linux/arm64"], root)
    assert "update-binfmts --enable qemu-aarch64" in (caught.value.hint or "")


def test_disabled_binfmt_misc(tmp_path: Path) -> None:
    root = _binfmt(tmp_path, {"qemu-aarch64": AARCH64}, status="disabled")
    with pytest.raises(BuildError, match="binfmt_misc is disabled") as caught:
        check_emulation(["linux/arm64"], root)
    assert caught.value.hint == f"as root: echo 1 > {root}/status"


def test_handler_without_fix_binary_flag_cannot_work_in_a_chroot(tmp_path: Path) -> None:
    root = _binfmt(tmp_path, {"qemu-aarch64": AARCH64.replace("flags: PF", "flags: P")})
    with pytest.raises(BuildError, match=r"qemu-aarch64 lack the F \(fix-binary\) flag") as caught:
        check_emulation(["linux/arm64"], root)
    assert "tonistiigi/binfmt --install arm64" in (caught.value.hint or "")


def test_nothing_emulated_needs_nothing(tmp_path: Path) -> None:
    assert check_emulation([], tmp_path / "absent") == {}


@pytest.mark.parametrize(
    ("machine", "aarch32", "native"),
    [
        ("x86_64", None, {"amd64", "386"}),
        ("aarch64", True, {"arm64", "arm"}),
        ("aarch64", False, {"arm64"}),
        ("armv7l", None, {"arm"}),
        ("riscv64", None, {"riscv64"}),
    ],
)
def test_host_native_platforms(machine: str, aarch32: bool | None, native: set[str]) -> None:
    host = detect_host(machine, aarch32=aarch32)
    assert host.native == native


def test_host_explains_each_platform() -> None:
    host = detect_host("x86_64")
    assert host.platform == "linux/amd64"
    assert host.is_native("linux/386")
    assert not host.is_native("linux/arm64/v8")
    assert host.why("linux/amd64") == "the host is amd64"
    assert host.why("linux/386") == "the amd64 host executes 386 code natively"
    assert host.why("linux/arm/v7") == "the host is amd64: arm runs under QEMU user emulation"
    with pytest.raises(BuildError, match="unsupported build host architecture 'sparc64'"):
        detect_host("sparc64")
