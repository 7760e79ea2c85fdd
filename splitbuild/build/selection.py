"""Which builder runs a local build: docker buildx where an engine answers, else buildah.

Above :mod:`~splitbuild.build.builders` (the interface) and the two implementations
(:mod:`~splitbuild.build.buildah`, :mod:`~splitbuild.build.docker`), which import only the interface.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Literal

from splitbuild.build.buildah import BuildahBuilder
from splitbuild.build.builders import Builder, probe
from splitbuild.build.docker import DockerBuilder
from splitbuild.errors import BuildError, UsageError

__all__ = ["BUILDER_CHOICES", "BuilderName", "select_builder"]

BuilderName = Literal["auto", "buildah", "docker"]
BUILDER_CHOICES: tuple[str, ...] = ("auto", "buildah", "docker")


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
    if name not in BUILDER_CHOICES:
        raise UsageError(f"unknown builder {name!r} (expected one of {', '.join(BUILDER_CHOICES)})")
    buildah = shutil.which("buildah", path=path)
    if name == "buildah":
        if buildah is None:
            raise BuildError(
                "buildah is not installed",
                hint="apt-get install buildah (or `builder` docker where a docker engine runs)",
            )
        return await BuildahBuilder.create(buildah, binfmt_root=binfmt_root)
    docker, why_not = await _docker_engine(path)
    if docker is not None:
        return await DockerBuilder.create(docker)
    if name == "docker":
        raise BuildError(
            f"`builder` docker: {why_not}", hint="start a docker engine, or use `builder` buildah"
        )
    if buildah is None:
        raise BuildError(
            f"no builder: buildah is not installed and {why_not}",
            hint="apt-get install buildah qemu-user-static binfmt-support (or start a docker engine)",
        )
    return await BuildahBuilder.create(buildah, binfmt_root=binfmt_root)
