"""Builders: the programs that build one platform of the image into an OCI image layout.

Two are supported: docker buildx, where a docker engine is reachable, and buildah (with the vfs
storage driver and chroot isolation, which work inside containers and CI runners). Each platform
is built by its own process into its own directory; :func:`splitbuild.build.selection.select_builder`
picks the builder and fails with what to install when none is usable.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import anyio

from splitbuild.build.process import ProcessResult
from splitbuild.build.spec import BuildSpec
from splitbuild.errors import BuildError

__all__ = [
    "Builder",
    "LegDir",
    "LegOutput",
    "StepFailed",
    "layout_digest",
    "probe",
]

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
