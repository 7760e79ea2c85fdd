"""The local split build: one build per platform, each pushed by digest, then one merge.

Flow of :func:`run_build`:

1. every emulated platform is checked with the builder (binfmt_misc handlers for buildah, the
   builder's platform list for docker) and every output is reached once, before anything builds;
2. each platform is built by its own builder process in its own directory, at most ``jobs`` at a
   time, into an OCI image layout; its smoke test (``[test]``, :mod:`~splitbuild.build.smoke`)
   runs in that image, then the vulnerability scan (:mod:`~splitbuild.build.scan`) reads it; only
   when both passed is its manifest tree pushed by digest into every output
   (:class:`~splitbuild.transfer.Transfer`): a platform that fails either is pushed nowhere;
3. when every platform succeeded, :func:`splitbuild.merge.merge` writes the index and the tags.
   When one failed, the others still finish and are pushed by digest, and :class:`BuildFailed`
   reports which platforms succeeded (with their digests) and which failed; no index and no tag
   is written. When the only failures are scan findings, :class:`ScanRefused` (a
   :class:`~splitbuild.errors.Refused`) says so instead.
"""

from __future__ import annotations

import functools
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import anyio

from splitbuild._tasks import task_group
from splitbuild.build.builders import Builder, LegDir, StepFailed, layout_digest
from splitbuild.build.host import Host
from splitbuild.build.scan import ScanFindings, Scanner
from splitbuild.build.smoke import SmokeTester, find_tester
from splitbuild.build.spec import BuildSpec
from splitbuild.client import Client
from splitbuild.config import TestConfig
from splitbuild.errors import BuildError, Refused, SplitbuildError, UsageError
from splitbuild.index import Annotations
from splitbuild.merge import MergeOptions, parse_sources
from splitbuild.publish import publish
from splitbuild.reference import AnyReference, validate_tag
from splitbuild.store.base import Repository
from splitbuild.store.layout import LayoutRepository
from splitbuild.transfer import Transfer

__all__ = [
    "BuildFailed",
    "BuildOptions",
    "BuildResult",
    "LegResult",
    "Progress",
    "ScanRefused",
    "run_build",
]

Mode = Literal["native", "emulated"]
Status = Literal["pending", "ok", "failed"]
Step = Literal["build", "test", "scan", "push"]
Progress = Callable[[str, str], None]
"""``progress(platform, message)``: one line of progress (the CLI writes it to stderr)."""


@dataclass
class BuildOptions:
    """A local split build. ``outputs`` are repositories (``oci:PATH`` or a registry repository,
    without tag or digest); every tag in ``tags`` is applied in every output."""

    spec: BuildSpec
    platforms: list[str]
    outputs: list[AnyReference]
    tags: list[str]
    host: Host
    jobs: int | None = None
    annotations: Annotations = field(default_factory=Annotations)
    allow_shrink: bool = False
    allow_rollback: bool = False
    """Move a tag even off an index annotated newer (see :mod:`splitbuild.merge`)."""
    delete_displaced: bool = False
    """Delete the indexes moved tags left, where nothing uses them (:mod:`splitbuild.publish`)."""
    workdir: Path | None = None
    """Where the per-platform directories are created (a new temporary directory inside it)."""
    on_progress: Progress | None = None
    on_output: Callable[[str, str], None] | None = None
    """``on_output(platform, line)`` sees every line the builder prints (``--verbose``)."""
    test: TestConfig | None = None
    """The smoke test run in each platform's image before it is pushed (``[test]``)."""
    scanner: Scanner | None = None
    """The vulnerability scan of each platform's image before it is pushed (``[scan]``)."""
    tester: SmokeTester | None = None
    """Who runs the smoke tests (default: buildah found on ``PATH``)."""

    def __post_init__(self) -> None:
        if not self.platforms:
            raise UsageError("no platform to build")
        if not self.outputs:
            raise UsageError("no output: give at least one in `outputs`")
        for ref in self.outputs:
            if ref.identifier is not None:
                raise UsageError(f"`outputs` {ref}: give a repository without tag or digest (tags: `tags`)")
        if not self.tags:
            raise UsageError("no tag for the index")
        for tag in self.tags:
            validate_tag(tag)
        if self.jobs is not None and self.jobs < 1:
            raise UsageError(f"`jobs` must be at least 1, not {self.jobs}")


@dataclass
class LegResult:
    platform: str
    mode: Mode
    status: Status = "pending"
    digest: str | None = None
    build_seconds: float | None = None
    export_seconds: float | None = None
    push_seconds: float | None = None
    test_seconds: float | None = None
    scan_seconds: float | None = None
    findings: int | None = None
    """Vulnerabilities the scan reported (None: not scanned)."""
    failed_step: Step | None = None
    error: str | None = None
    log_tail: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, object]:
        return {
            "platform": self.platform,
            "mode": self.mode,
            "status": self.status,
            "digest": self.digest,
            "buildSeconds": _round(self.build_seconds),
            "exportSeconds": _round(self.export_seconds),
            "pushSeconds": _round(self.push_seconds),
            "testSeconds": _round(self.test_seconds),
            "scanSeconds": _round(self.scan_seconds),
            "findings": self.findings,
            "failedStep": self.failed_step,
            "error": self.error,
        }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


@dataclass
class BuildResult:
    builder: str
    host: str
    legs: list[LegResult]
    outputs: list[str]
    index: str | None = None
    tags: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    seconds: float = 0.0
    jobs: int = 1

    @property
    def succeeded(self) -> list[LegResult]:
        return [leg for leg in self.legs if leg.status == "ok"]

    @property
    def failed(self) -> list[LegResult]:
        return [leg for leg in self.legs if leg.status == "failed"]

    def mean_build_seconds(self, mode: Mode) -> float | None:
        return _mean([leg.build_seconds for leg in self.succeeded if leg.mode == mode and leg.build_seconds])

    @property
    def emulation_ratio(self) -> float | None:
        """Mean emulated build time over mean native build time (same Dockerfile, same run)."""
        native, emulated = self.mean_build_seconds("native"), self.mean_build_seconds("emulated")
        if native is None or emulated is None or native <= 0:
            return None
        return emulated / native

    def to_dict(self) -> dict[str, object]:
        ratio = self.emulation_ratio
        return {
            "builder": self.builder,
            "host": self.host,
            "jobs": self.jobs,
            "platforms": [leg.to_dict() for leg in self.legs],
            "index": self.index,
            "tags": self.tags,
            "unchanged": self.unchanged,
            "outputs": self.outputs,
            "seconds": round(self.seconds, 3),
            "nativeSeconds": _round(self.mean_build_seconds("native")),
            "emulatedSeconds": _round(self.mean_build_seconds("emulated")),
            "emulationRatio": None if ratio is None else round(ratio, 2),
        }


def _failure_text(result: BuildResult) -> str:
    failed = "; ".join(f"{leg.error}" for leg in result.failed)
    done = ", ".join(f"{leg.platform} ({leg.digest})" for leg in result.succeeded) or "none"
    return f"{failed}; succeeded: {done}; no index written"


class BuildFailed(BuildError):
    """At least one platform failed (its build, smoke test, scanner or push): the others were pushed
    by digest, no index was written."""

    def __init__(self, result: BuildResult) -> None:
        hint = (
            "fix the failing platform and re-run (the platforms that succeeded are in the outputs)"
            if result.succeeded
            else "every platform failed: fix the build and re-run"
        )
        super().__init__(_failure_text(result), hint=hint)
        self.result = result


class ScanRefused(Refused):
    """Every failed platform failed only its vulnerability scan: those were pushed nowhere, the
    others by digest, and no index was written."""

    def __init__(self, result: BuildResult) -> None:
        super().__init__(
            _failure_text(result),
            hint="update the affected packages, or list accepted findings in the scan's allow-list",
        )
        self.result = result


async def _remove(path: Path) -> None:
    """Remove a build directory, even when the run is being cancelled."""
    with anyio.CancelScope(shield=True):
        await anyio.to_thread.run_sync(shutil.rmtree, path, True)


def _emit(options: BuildOptions, platform: str, message: str) -> None:
    if options.on_progress is not None:
        options.on_progress(platform, message)


async def _preflight(client: Client, options: BuildOptions) -> list[Repository]:
    """Open every output once (a registry that is down or refuses fails here, before building)."""
    repos = [client.repository(ref) for ref in options.outputs]

    async def touch(repo: Repository) -> None:
        await repo.head_manifest(options.tags[0])

    async with task_group() as tg:
        for repo in repos:
            tg.start_soon(touch, repo)
    return repos


def _fail(options: BuildOptions, leg: LegResult, step: Step, error: str, tail: tuple[str, ...] = ()) -> None:
    leg.status, leg.failed_step, leg.error, leg.log_tail = "failed", step, error, tail
    _emit(options, leg.platform, f"FAILED ({step}): {error}")


async def _check_leg(options: BuildOptions, leg: LegResult, directory: LegDir, layout: Path) -> bool:
    """The smoke test, then the scan, of the built image; False (``leg`` failed) when one fails."""
    on_line = None if options.on_output is None else functools.partial(options.on_output, leg.platform)
    command = None if options.test is None else options.test.command_for(leg.platform)
    if command is not None:
        tester = options.tester or find_tester()
        _emit(options, leg.platform, f"smoke test: {' '.join(command)}")
        started = time.monotonic()
        try:
            await tester.run(directory, layout, command, on_line)
        except StepFailed as exc:
            _fail(options, leg, "test", exc.message, exc.result.tail)
            return False
        except SplitbuildError as exc:  # no tester, a process that would not start
            _fail(options, leg, "test", f"{leg.platform}: {exc.message}")
            return False
        leg.test_seconds = time.monotonic() - started
    if options.scanner is not None:
        _emit(options, leg.platform, f"scanning with {options.scanner.settings.scanner}")
        started = time.monotonic()
        try:
            leg.findings = await options.scanner.run(directory, layout, on_line)
        except ScanFindings as exc:
            leg.findings = exc.count
            _fail(options, leg, "scan", exc.message)
            return False
        except StepFailed as exc:
            _fail(options, leg, "scan", exc.message, exc.result.tail)
            return False
        except SplitbuildError as exc:
            _fail(options, leg, "scan", f"{leg.platform}: {exc.message}")
            return False
        leg.scan_seconds = time.monotonic() - started
    return True


async def _build_leg(
    builder: Builder,
    options: BuildOptions,
    leg: LegResult,
    directory: LegDir,
    outputs: list[Repository],
    limiter: anyio.CapacityLimiter,
) -> None:
    async with limiter:
        _emit(options, leg.platform, f"building ({leg.mode})")
        sink = options.on_output
        on_line = None if sink is None else functools.partial(sink, leg.platform)
        try:
            built = await builder.build(options.spec, directory, on_line)
        except StepFailed as exc:
            _fail(options, leg, "build", exc.message, exc.result.tail)
            await _remove(directory.path)
            return
        except BuildError as exc:
            _fail(options, leg, "build", f"{leg.platform}: {exc.message}")
            await _remove(directory.path)
            return
        leg.build_seconds, leg.export_seconds = built.build_seconds, built.export_seconds
        try:
            if not await _check_leg(options, leg, directory, built.layout):  # its own errors: test, scan
                return
            started = time.monotonic()
            source = LayoutRepository(built.layout)
            manifest = await source.get_manifest(layout_digest(built.layout))
            async with task_group() as tg:
                for target in outputs:
                    tg.start_soon(Transfer(source, target).manifest, manifest.descriptor(), manifest)
        except SplitbuildError as exc:
            _fail(options, leg, "push", f"{leg.platform}: push by digest failed: {exc.message}")
            return
        finally:
            await _remove(directory.path)
        leg.push_seconds = time.monotonic() - started
        leg.digest, leg.status = manifest.digest, "ok"
        _emit(
            options,
            leg.platform,
            f"built in {leg.build_seconds:.1f} s ({leg.mode}), pushed {manifest.digest}",
        )


async def run_build(client: Client, builder: Builder, options: BuildOptions) -> BuildResult:
    """Build every platform, push each by digest into every output, then merge (see module doc)."""
    started = time.monotonic()
    jobs = options.jobs or os.cpu_count() or 1
    legs = [
        LegResult(platform=p, mode="native" if options.host.is_native(p) else "emulated")
        for p in options.platforms
    ]
    result = BuildResult(
        builder=builder.describe(),
        host=options.host.platform,
        legs=legs,
        outputs=[ref.name for ref in options.outputs],
        jobs=jobs,
    )
    await builder.check_platforms([leg.platform for leg in legs if leg.mode == "emulated"])
    if options.test is not None and options.tester is None:
        options.tester = find_tester()
    outputs = await _preflight(client, options)
    parent = options.workdir
    if parent is not None:
        parent.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="splitbuild-build-", dir=parent))
    try:
        limiter = anyio.CapacityLimiter(jobs)
        async with task_group() as tg:
            for leg in legs:
                directory = LegDir(leg.platform, workdir / leg.platform.replace("/", "-"))
                tg.start_soon(_build_leg, builder, options, leg, directory, outputs, limiter)
    finally:
        await _remove(workdir)
    if result.failed:
        result.seconds = time.monotonic() - started
        if all(leg.failed_step == "scan" and leg.findings for leg in result.failed):
            raise ScanRefused(result)
        raise BuildFailed(result)
    first = options.outputs[0]
    targets = [ref.with_tag(tag) for ref in options.outputs for tag in options.tags]
    sources = parse_sources([str(first.with_digest(leg.digest or "")) for leg in legs], targets[0])
    merged = await publish(
        client,
        MergeOptions(
            targets=targets,
            sources=sources,
            platforms=list(options.platforms),
            annotations=options.annotations,
            allow_shrink=options.allow_shrink,
            allow_rollback=options.allow_rollback,
        ),
        delete_displaced=options.delete_displaced,
    )
    result.index = merged.plan.index.digest
    result.tags = merged.pushed
    result.unchanged = merged.unchanged
    result.seconds = time.monotonic() - started
    return result
