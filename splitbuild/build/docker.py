"""The docker buildx builder: ``docker buildx build --output type=oci`` into an OCI archive.

The archive is unpacked into the platform's OCI image layout. Provenance and SBOM attestations are
turned off so the layout holds exactly the platform's image manifest (the merge builds the index).
The builder must support the OCI exporter: a ``docker-container`` builder, or the docker driver
with the containerd image store. Emulated platforms must be listed by ``docker buildx inspect``
(register QEMU with ``tonistiigi/binfmt``).
"""

from __future__ import annotations

import tarfile
from collections.abc import Sequence

import anyio

from splitbuild.build.builders import LegDir, LegOutput, LineCallback, StepFailed, probe
from splitbuild.build.process import run_logged
from splitbuild.build.spec import BuildSpec
from splitbuild.errors import BuildError, ConfigError
from splitbuild.platforms import normalize_platform, split_platform

__all__ = ["DockerBuilder", "buildx_platforms", "docker_build_argv"]


def docker_build_argv(docker: str, spec: BuildSpec, leg: LegDir) -> list[str]:
    """The ``docker buildx build`` argument vector for one platform."""
    argv = [docker, "buildx", "build", "--platform", leg.platform, *spec.flags()]
    argv += ["--provenance=false", "--sbom=false", "--progress=plain"]
    argv += ["--output", f"type=oci,dest={leg.path / 'image.tar'}", str(spec.context)]
    return argv


def buildx_platforms(inspect_output: str) -> set[str]:
    """The platforms ``docker buildx inspect`` lists for its nodes (normalised)."""
    found: set[str] = set()
    for line in inspect_output.splitlines():
        key, _, value = line.partition(":")
        if key.strip() != "Platforms":
            continue
        for item in value.split(","):
            text = item.strip().rstrip("*")
            try:
                found.add(normalize_platform(text))
            except ConfigError:
                continue
    return found


def _unpack(archive: str, into: str) -> None:
    with tarfile.open(archive) as tar:
        tar.extractall(into, filter="data")


class DockerBuilder:
    name = "docker"

    def __init__(self, executable: str, version: str) -> None:
        self.executable = executable
        self.version = version

    @classmethod
    async def create(cls, executable: str) -> DockerBuilder:
        _, out = await probe([executable, "buildx", "version"])
        return cls(executable, out.splitlines()[0] if out else "buildx")

    def describe(self) -> str:
        return f"docker {self.version} (QEMU through the engine's binfmt_misc)"

    async def check_platforms(self, emulated: Sequence[str]) -> None:
        if not emulated:
            return
        code, out = await probe([self.executable, "buildx", "inspect", "--bootstrap"])
        if code != 0:
            raise BuildError(f"docker buildx inspect failed: {out.splitlines()[-1] if out else code}")
        available = buildx_platforms(out)
        missing = [p for p in emulated if normalize_platform(p) not in available]
        if missing:
            arches = ",".join(dict.fromkeys(split_platform(p).architecture for p in missing))
            raise BuildError(
                f"the docker builder cannot run {', '.join(missing)} (its platforms: "
                f"{', '.join(sorted(available)) or 'none listed'})",
                hint=f"register QEMU: docker run --privileged --rm tonistiigi/binfmt --install {arches}",
            )

    async def build(self, spec: BuildSpec, leg: LegDir, on_line: LineCallback | None) -> LegOutput:
        leg.path.mkdir(parents=True, exist_ok=True)
        built = await run_logged(docker_build_argv(self.executable, spec, leg), log=leg.log, on_line=on_line)
        if not built.ok:
            if any("OCI exporter is not supported" in line for line in built.tail):
                raise BuildError(
                    f"{leg.platform}: the docker builder cannot export OCI images",
                    hint="create a docker-container builder (docker buildx create --use), turn on the "
                    "containerd image store, or use `builder` buildah",
                )
            raise StepFailed(leg.platform, "build", built, leg.log)
        started = anyio.current_time()
        archive = leg.path / "image.tar"
        await anyio.to_thread.run_sync(_unpack, str(archive), str(leg.layout))
        archive.unlink()
        return LegOutput(
            layout=leg.layout, build_seconds=built.seconds, export_seconds=anyio.current_time() - started
        )
