"""The smoke test of one built platform: its ``[test]`` command run inside the image.

The image is the OCI image layout the builder wrote (whichever builder built it). buildah imports
it into a private storage root next to it (vfs storage), creates a working container and runs the
command with chroot isolation, which works inside containers and on CI runners; an emulated
platform's binaries run under QEMU through binfmt_misc (checked before anything was built). The
storage root is removed afterwards, whether the test passed or not.
"""

from __future__ import annotations

import functools
import os
import secrets
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import anyio

from splitbuild.build.builders import LegDir, LineCallback, StepFailed
from splitbuild.build.process import ProcessResult, run_logged
from splitbuild.errors import BuildError

__all__ = ["SmokeTester", "find_tester"]


@dataclass(frozen=True)
class SmokeTester:
    """Runs smoke tests with the buildah at ``executable``."""

    executable: str

    def _storage(self, root: Path) -> list[str]:
        return [
            self.executable,
            "--root",
            str(root / "root"),
            "--runroot",
            str(root / "run"),
            "--storage-driver",
            "vfs",
        ]

    async def run(
        self, leg: LegDir, layout: Path, command: Sequence[str], on_line: LineCallback | None
    ) -> ProcessResult:
        """Run ``command`` in the image at ``layout``; raise :class:`StepFailed` when it fails
        (its exit status and last lines: the test's own output)."""
        root = leg.path / "test-storage"
        env = {**os.environ, "STORAGE_DRIVER": "vfs", "BUILDAH_ISOLATION": "chroot"}
        name = f"splitbuild-test-{leg.pair}"
        storage = self._storage(root)
        link = await anyio.to_thread.run_sync(_named_link, layout)
        try:
            created = await run_logged(
                [*storage, "from", "--quiet", "--platform", leg.platform, "--name", name, f"oci:{link}"],
                log=leg.log,
                env=env,
                on_line=on_line,
            )
            if not created.ok:
                raise StepFailed(leg.platform, "smoke test set-up", created, leg.log)
            ran = await run_logged(
                [*storage, "run", "--isolation", "chroot", name, "--", *command],
                log=leg.log,
                env=env,
                on_line=on_line,
            )
            if not ran.ok:
                raise StepFailed(leg.platform, "smoke test", ran, leg.log)
            return ran
        finally:
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(functools.partial(link.unlink, missing_ok=True))
                await run_logged([*storage, "rm", "--all"], log=leg.log, env=env)
                await anyio.to_thread.run_sync(shutil.rmtree, root, True)


def _named_link(layout: Path) -> Path:
    """A link to ``layout`` whose path is a valid image name. buildah names the image it reads
    after the layout's path, and a temporary directory such as ``splitbuild-build-1bx4t1c_`` is
    not one; lower-case hex under /tmp is."""
    link = Path("/tmp") / f"splitbuild-test-{secrets.token_hex(8)}"
    os.symlink(os.path.abspath(layout), link)
    return link


def find_tester(path: str | None = None) -> SmokeTester:
    """The smoke tester (buildah, whichever builder builds); :class:`BuildError` naming what to
    install when buildah is missing."""
    buildah = shutil.which("buildah", path=path)
    if buildah is None:
        raise BuildError(
            "the config's [test] runs in the built image with buildah, which is not installed",
            hint="apt-get install buildah",
        )
    return SmokeTester(buildah)
