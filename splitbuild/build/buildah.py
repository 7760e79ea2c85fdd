"""The buildah builder: ``buildah build`` then ``buildah push`` into an OCI image layout.

Every platform gets its own storage root (``--root``/``--runroot`` under its private directory),
so builds never contend for a lock, nothing is left in the user's or the runner's image store,
and removing the directory removes everything. ``STORAGE_DRIVER=vfs`` and
``BUILDAH_ISOLATION=chroot`` need no overlay mounts and no nested container runtime, so this works
inside containers and on CI runners. Emulated platforms run through binfmt_misc (see
:mod:`splitbuild.build.binfmt`).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from pathlib import Path

import anyio

from splitbuild.build.binfmt import BINFMT_DIR, check_emulation
from splitbuild.build.builders import LegDir, LegOutput, LineCallback, StepFailed, probe
from splitbuild.build.process import run_logged
from splitbuild.build.spec import BuildSpec
from splitbuild.errors import BuildError

__all__ = ["BuildahBuilder", "buildah_build_argv"]

_IMAGE_NAME = "localhost/splitbuild-leg"
LAYOUT_TAG = "build"


def _storage(buildah: str, leg: LegDir) -> list[str]:
    return [
        buildah,
        "--root",
        str(leg.path / "storage" / "root"),
        "--runroot",
        str(leg.path / "storage" / "run"),
        "--storage-driver",
        "vfs",
    ]


def buildah_build_argv(buildah: str, spec: BuildSpec, leg: LegDir) -> list[str]:
    """The ``buildah build`` argument vector for one platform."""
    argv = [*_storage(buildah, leg), "build", "--isolation", "chroot", "--platform", leg.platform]
    argv += spec.flags()
    argv += ["--tag", f"{_IMAGE_NAME}:{leg.pair}", str(spec.context)]
    return argv


class BuildahBuilder:
    name = "buildah"

    def __init__(self, executable: str, version: str, binfmt_root: Path) -> None:
        self.executable = executable
        self.version = version
        self.binfmt_root = binfmt_root

    @classmethod
    async def create(cls, executable: str, *, binfmt_root: Path | None = None) -> BuildahBuilder:
        code, out = await probe([executable, "--version"])
        if code != 0:
            raise BuildError(f"buildah does not run ({executable} --version: {out or code})")
        version = out.split()[2] if out.startswith("buildah version ") else out
        return cls(executable, version, binfmt_root or BINFMT_DIR)

    def describe(self) -> str:
        return f"buildah {self.version} (vfs storage, chroot isolation, QEMU through binfmt_misc)"

    async def check_platforms(self, emulated: Sequence[str]) -> None:
        check_emulation(emulated, self.binfmt_root)

    def _env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["STORAGE_DRIVER"] = "vfs"
        env["BUILDAH_ISOLATION"] = "chroot"
        return env

    async def build(self, spec: BuildSpec, leg: LegDir, on_line: LineCallback | None) -> LegOutput:
        env = self._env()
        built = await run_logged(
            buildah_build_argv(self.executable, spec, leg), log=leg.log, env=env, on_line=on_line
        )
        if not built.ok:
            raise StepFailed(leg.platform, "build", built, leg.log)
        push_argv = [
            *_storage(self.executable, leg),
            "push",
            "--format",
            "oci",
            f"{_IMAGE_NAME}:{leg.pair}",
            f"oci:{leg.layout}:{LAYOUT_TAG}",
        ]
        exported = await run_logged(push_argv, log=leg.log, env=env, on_line=on_line)
        if not exported.ok:
            raise StepFailed(leg.platform, "export to OCI layout", exported, leg.log)
        await anyio.to_thread.run_sync(shutil.rmtree, leg.path / "storage", True)
        return LegOutput(layout=leg.layout, build_seconds=built.seconds, export_seconds=exported.seconds)
