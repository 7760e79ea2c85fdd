"""Builders: the programs that build one platform of the image into an OCI image layout.

Two are supported: docker buildx, where a docker engine is reachable, and buildah (with the vfs
storage driver and chroot isolation, which work inside containers and CI runners). Each platform
is built by its own process into its own directory; :func:`select_builder` picks the builder and
fails with what to install when none is usable.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

import anyio

from splitbuild.build.process import ProcessResult
from splitbuild.build.spec import BuildSpec
from splitbuild.errors import BuildError, UsageError

__all__ = [
    "BUILDER_CHOICES",
    "Builder",
    "LegDir",
    "LegOutput",
    "StepFailed",
    "layout_digest",
    "select_builder",
]

BuilderName = Literal["auto", "buildah", "docker"]
BUILDER_CHOICES: tuple[str, ...] = ("auto", "buildah", "docker")
_PROBE_TIMEOUT = 15.0

LineCallback = Callable[[str], None]


@dataclass(frozen=True)
class LegDir:
    """The private directory of one platform's build."""

    platform: str
    path: Path

    @property
    def pair(self) -> str:
        return self.platform.replace("/", "-")

    @property
    def layout(self) -> Path:
        """Where the builder leaves the image: an OCI image layout with one manifest."""
        return self.path / "oci"

    @property
    def log(self) -> Path:
        return self.path / "build.log"


@dataclass(frozen=True)
class LegOutput:
    layout: Path
    build_seconds: float
    export_seconds: float


class StepFailed(BuildError):
    """A builder process failed; ``result`` holds its exit status and last output lines."""

    def __init__(self, platform: str, step: str, result: ProcessResult, log: Path) -> None:
        super().__init__(
            f"{platform}: {step} failed (exit status {result.returncode}): {result.last_error()}"
        )
        self.platform = platform
        self.step = step
        self.result = result
        self.log = log


class Builder(Protocol):
    name: str

    def describe(self) -> str:
        """One line: the builder, its version and how it runs."""
        ...

    async def check_platforms(self, emulated: Sequence[str]) -> None:
        """Raise :class:`BuildError` (with what to run) when an emulated platform cannot run."""
        ...

    async def build(self, spec: BuildSpec, leg: LegDir, on_line: LineCallback | None) -> LegOutput:
        """Build ``leg.platform`` into ``leg.layout``; raise :class:`StepFailed` on failure."""
        ...


def layout_digest(layout: Path) -> str:
    """The digest of the one manifest a builder wrote into ``layout``'s ``index.json``."""
    try:
        doc = json.loads((layout / "index.json").read_bytes())
    except (OSError, ValueError) as exc:
        raise BuildError(f"the builder wrote no readable OCI layout at {layout}: {exc}") from None
    entries = doc.get("manifests") if isinstance(doc, dict) else None
    if not isinstance(entries, list) or len(entries) != 1 or not isinstance(entries[0], dict):
        count = len(entries) if isinstance(entries, list) else 0
        raise BuildError(f"the builder's OCI layout at {layout} holds {count} manifests, expected 1")
    digest = entries[0].get("digest")
    if not isinstance(digest, str):
        raise BuildError(f"the builder's OCI layout at {layout} has an entry without a digest")
    return digest


async def probe(argv: Sequence[str], env: Mapping[str, str] | None = None) -> tuple[int, str]:
    """Run a quick command; (exit status, combined output). A timeout counts as failure."""
    try:
        with anyio.fail_after(_PROBE_TIMEOUT):
            done = await anyio.run_process(
                list(argv), check=False, stderr=subprocess.STDOUT, env=dict(env) if env else None
            )
    except TimeoutError:
        return 124, f"{argv[0]} did not answer within {_PROBE_TIMEOUT:.0f} s"
    except OSError as exc:
        return 127, str(exc)
    return done.returncode, done.stdout.decode(errors="replace").strip()


async def _docker_engine(path: str | None) -> tuple[str | None, str]:
    """(docker executable, "") when an engine and buildx answer, else (None, why not)."""
    docker = shutil.which("docker", path=path)
    if docker is None:
        return None, "the docker CLI is not installed"
    code, out = await probe([docker, "version", "--format", "{{.Server.Version}}"])
    if code != 0:
        last = out.splitlines()[-1] if out else f"exit status {code}"
        return None, f"no docker engine is reachable ({last})"
    code, out = await probe([docker, "buildx", "version"])
    if code != 0:
        return None, "the docker buildx plugin is not installed"
    return docker, ""


async def select_builder(name: str, *, path: str | None = None, binfmt_root: Path | None = None) -> Builder:
    """The builder called ``name`` (``auto``: docker when an engine is reachable, else buildah).

    ``path`` is the executable search path (default: ``PATH``).
    """
    from splitbuild.build.buildah import BuildahBuilder
    from splitbuild.build.docker import DockerBuilder

    if name not in BUILDER_CHOICES:
        raise UsageError(f"unknown builder {name!r} (expected one of {', '.join(BUILDER_CHOICES)})")
    buildah = shutil.which("buildah", path=path)
    if name == "buildah":
        if buildah is None:
            raise BuildError(
                "buildah is not installed",
                hint="apt-get install buildah (or --builder docker where a docker engine runs)",
            )
        return await BuildahBuilder.create(buildah, binfmt_root=binfmt_root)
    docker, why_not = await _docker_engine(path)
    if docker is not None:
        return await DockerBuilder.create(docker)
    if name == "docker":
        raise BuildError(
            f"--builder docker: {why_not}", hint="start a docker engine, or use --builder buildah"
        )
    if buildah is None:
        raise BuildError(
            f"no builder: buildah is not installed and {why_not}",
            hint="apt-get install buildah qemu-user-static binfmt-support (or start a docker engine)",
        )
    return await BuildahBuilder.create(buildah, binfmt_root=binfmt_root)
