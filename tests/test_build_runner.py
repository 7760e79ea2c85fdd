"""The split-build runner with a stand-in builder: --jobs bound, per-platform timing, push by digest
into every output (OCI layout and a real registry), merge, and what a failure leaves behind."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import anyio
import pytest

from splitbuild.build.builders import LegDir, LegOutput, LineCallback, StepFailed
from splitbuild.build.host import detect_host
from splitbuild.build.process import ProcessResult
from splitbuild.build.report import render_table
from splitbuild.build.runner import BuildFailed, BuildOptions, BuildResult, LegResult, run_build
from splitbuild.build.spec import BuildSpec
from splitbuild.client import Client
from splitbuild.errors import BuildError, InvalidReference, RegistryError, UsageError
from splitbuild.index import platform_set
from splitbuild.reference import AnyReference, parse_reference
from splitbuild.retry import NO_RETRY
from splitbuild.store.layout import LayoutRepository
from tests.images import make_image, push
from tests.registry_server import RegistryServer

HOST = detect_host("x86_64")


class FakeBuilder:
    """Writes a synthetic image per platform into the leg's layout; counts concurrent builds."""

    name = "fake"

    def __init__(
        self,
        *,
        fail: Sequence[str] = (),
        delay: float = 0.05,
        refuse: str | None = None,
        two_manifests: Sequence[str] = (),
    ) -> None:
        self.fail = set(fail)
        self.two_manifests = set(two_manifests)
        self.delay = delay
        self.refuse = refuse
        self.active = 0
        self.max_active = 0
        self.built: list[str] = []
        self.checked: list[str] | None = None

    def describe(self) -> str:
        return "fake builder"

    async def check_platforms(self, emulated: Sequence[str]) -> None:
        self.checked = list(emulated)
        if self.refuse is not None:
            raise BuildError(self.refuse)

    async def build(self, spec: BuildSpec, leg: LegDir, on_line: LineCallback | None) -> LegOutput:
        self.active += 1
        self.max_active = max(self.max_active, self.active)
        try:
            await anyio.sleep(self.delay)
            if on_line is not None:
                on_line(f"building {leg.platform}")
            if leg.platform in self.fail:
                result = ProcessResult(("fake",), 3, self.delay, ("step 2/3", "error: RUN exited with 3"))
                raise StepFailed(leg.platform, "build", result, leg.log)
            await push(LayoutRepository(leg.layout), make_image(leg.platform, seed="fake"), "build")
            if leg.platform in self.two_manifests:
                await push(LayoutRepository(leg.layout), make_image(leg.platform, seed="other"), "other")
            self.built.append(leg.platform)
            return LegOutput(layout=leg.layout, build_seconds=self.delay, export_seconds=0.001)
        finally:
            self.active -= 1


def _options(
    tmp_path: Path, outputs: list[AnyReference], platforms: list[str], **extra: object
) -> BuildOptions:
    spec = BuildSpec(context=tmp_path, dockerfile=tmp_path / "Dockerfile")
    return BuildOptions(
        spec=spec,
        platforms=platforms,
        outputs=outputs,
        tags=["dev", "v1"],
        host=HOST,
        workdir=tmp_path / "work",
        **extra,  # type: ignore[arg-type]
    )


@pytest.mark.anyio
async def test_builds_pushes_by_digest_and_merges_into_every_output(
    tmp_path: Path, registry: RegistryServer
) -> None:
    layout = parse_reference(f"oci:{tmp_path / 'oci'}")
    remote = parse_reference(f"{registry.host}/runner/ok")
    progress: list[tuple[str, str]] = []
    lines: list[tuple[str, str]] = []
    builder = FakeBuilder()
    options = _options(
        tmp_path,
        [layout, remote],
        ["linux/amd64", "linux/arm64", "linux/386"],
        on_progress=lambda p, m: progress.append((p, m)),
        on_output=lambda p, line: lines.append((p, line)),
    )
    async with Client() as client:
        result = await run_build(client, builder, options)
        assert builder.checked == ["linux/arm64"]  # 386 runs natively on an amd64 host
        assert [leg.mode for leg in result.legs] == ["native", "emulated", "native"]
        assert all(leg.status == "ok" and leg.digest for leg in result.legs)
        assert result.tags == [f"{layout}:dev", f"{layout}:v1", f"{remote}:dev", f"{remote}:v1"]
        for ref in (layout, remote):
            repo = client.repository(ref)
            index = await repo.get_manifest("v1")
            assert index.digest == result.index
            assert platform_set(index) == {"linux/amd64", "linux/arm64", "linux/386"}
            assert [c.digest for c in index.children()] == [leg.digest for leg in result.legs]
    assert ("linux/arm64", "building linux/arm64") in lines
    assert any(p == "linux/arm64" and m.startswith("built in") for p, m in progress)
    assert not (tmp_path / "work").exists() or not any((tmp_path / "work").iterdir())


@pytest.mark.anyio
@pytest.mark.parametrize("jobs", [1, 2])
async def test_jobs_bounds_concurrent_builds(tmp_path: Path, jobs: int) -> None:
    builder = FakeBuilder(delay=0.1)
    platforms = ["linux/amd64", "linux/arm64", "linux/arm/v7", "linux/386"]
    options = _options(tmp_path, [parse_reference(f"oci:{tmp_path / 'oci'}")], platforms, jobs=jobs)
    async with Client() as client:
        result = await run_build(client, builder, options)
    assert builder.max_active == jobs
    assert result.jobs == jobs
    assert sorted(builder.built) == sorted(platforms)


@pytest.mark.anyio
async def test_a_failing_platform_reports_the_others_and_writes_no_index(
    tmp_path: Path, registry: RegistryServer
) -> None:
    layout = parse_reference(f"oci:{tmp_path / 'oci'}")
    remote = parse_reference(f"{registry.host}/runner/failed")
    builder = FakeBuilder(fail=["linux/arm64"])
    options = _options(tmp_path, [layout, remote], ["linux/amd64", "linux/arm64", "linux/arm/v7"])
    async with Client() as client:
        with pytest.raises(BuildFailed) as caught:
            await run_build(client, builder, options)
        failed = caught.value
        assert failed.exit_code == 9
        result = failed.result
        by_platform = {leg.platform: leg for leg in result.legs}
        assert by_platform["linux/arm64"].status == "failed"
        assert by_platform["linux/arm64"].log_tail[-1] == "error: RUN exited with 3"
        ok = [by_platform["linux/amd64"], by_platform["linux/arm/v7"]]
        assert all(leg.status == "ok" for leg in ok)  # the others finished
        assert failed.message == (
            "linux/arm64: build failed (exit status 3): error: RUN exited with 3; "
            f"succeeded: linux/amd64 ({ok[0].digest}), linux/arm/v7 ({ok[1].digest}); no index written"
        )
        assert result.index is None
        for ref in (layout, remote):
            repo = client.repository(ref)
            for leg in ok:
                assert leg.digest is not None
                assert await repo.head_manifest(leg.digest) is not None
            assert await repo.head_manifest("dev") is None
        assert await LayoutRepository(tmp_path / "oci").list_tags() == []
    table = render_table(result)
    assert "linux/arm64   emulated" in table
    assert "FAILED" in table
    assert "index" not in table


@pytest.mark.anyio
async def test_a_builder_output_that_cannot_be_pushed_fails_its_platform(tmp_path: Path) -> None:
    builder = FakeBuilder(two_manifests=["linux/amd64"])
    options = _options(tmp_path, [parse_reference(f"oci:{tmp_path / 'oci'}")], ["linux/amd64", "linux/arm64"])
    async with Client() as client:
        with pytest.raises(BuildFailed) as caught:
            await run_build(client, builder, options)
    message = caught.value.message
    assert message.startswith("linux/amd64: push by digest failed: the builder's OCI layout at ")
    assert "holds 2 manifests, expected 1" in message
    assert f"succeeded: linux/arm64 ({caught.value.result.legs[1].digest})" in message


@pytest.mark.anyio
async def test_emulation_check_fails_before_anything_is_built(tmp_path: Path) -> None:
    builder = FakeBuilder(refuse="no binfmt_misc handler for arm64")
    options = _options(tmp_path, [parse_reference(f"oci:{tmp_path / 'oci'}")], ["linux/amd64", "linux/arm64"])
    async with Client() as client:
        with pytest.raises(BuildError, match="no binfmt_misc handler for arm64"):
            await run_build(client, builder, options)
    assert builder.built == []
    assert not (tmp_path / "oci").exists()


@pytest.mark.anyio
async def test_unreachable_output_fails_before_anything_is_built(tmp_path: Path) -> None:
    from tests.registry_server import free_port

    builder = FakeBuilder()
    dead = parse_reference(f"127.0.0.1:{free_port()}/nobody/home")
    options = _options(tmp_path, [dead], ["linux/amd64"])
    async with Client(retry=NO_RETRY) as client:
        with pytest.raises(RegistryError):
            await run_build(client, builder, options)
    assert builder.built == []


def test_options_are_checked() -> None:
    layout = parse_reference("oci:/tmp/x")
    spec = BuildSpec(context=Path("."), dockerfile=Path("Dockerfile"))
    with pytest.raises(UsageError, match="without tag or digest"):
        BuildOptions(spec, ["linux/amd64"], [parse_reference("oci:/tmp/x:latest")], ["v1"], HOST)
    with pytest.raises(UsageError, match="no output"):
        BuildOptions(spec, ["linux/amd64"], [], ["v1"], HOST)
    with pytest.raises(UsageError, match="`jobs` must be at least 1"):
        BuildOptions(spec, ["linux/amd64"], [layout], ["v1"], HOST, jobs=0)
    with pytest.raises(UsageError, match="no platform"):
        BuildOptions(spec, [], [layout], ["v1"], HOST)
    with pytest.raises(UsageError, match="no tag"):
        BuildOptions(spec, ["linux/amd64"], [layout], [], HOST)
    with pytest.raises(InvalidReference, match="invalid tag"):
        BuildOptions(spec, ["linux/amd64"], [layout], ["v1", "-x"], HOST)


def test_emulation_ratio_and_table() -> None:
    result = BuildResult(
        builder="fake",
        host="linux/amd64",
        legs=[
            LegResult("linux/amd64", "native", "ok", "sha256:" + "a" * 64, 1.0, 0.1, 0.05),
            LegResult("linux/arm64", "emulated", "ok", "sha256:" + "b" * 64, 5.0, 0.1, 0.05),
            LegResult("linux/arm/v7", "emulated", "ok", "sha256:" + "c" * 64, 7.0, 0.1, 0.05),
        ],
        outputs=["oci:out"],
        index="sha256:" + "d" * 64,
        tags=["oci:out:v1"],
        jobs=1,
    )
    assert result.emulation_ratio == pytest.approx(6.0)
    data = result.to_dict()
    assert data["emulationRatio"] == 6.0
    assert data["nativeSeconds"] == 1.0
    assert data["emulatedSeconds"] == 6.0
    table = render_table(result).splitlines()
    assert table[0].split() == ["PLATFORM", "MODE", "BUILD", "s", "EXPORT", "s", "PUSH", "s", "DIGEST"]
    assert table[2].split()[:3] == ["linux/arm64", "emulated", "5.00"]
    assert table[4] == (
        "emulation: 6.0x the native build time (mean 6.00 s emulated vs 1.00 s native, 1 job(s) at a time)"
    )
    assert table[5].startswith("index sha256:dddd")
    assert table[6] == "  pushed    oci:out:v1"


@pytest.mark.anyio
async def test_when_every_platform_fails_the_hint_does_not_speak_of_successes(tmp_path: Path) -> None:
    builder = FakeBuilder(fail=["linux/amd64", "linux/arm64"])
    options = _options(tmp_path, [parse_reference(f"oci:{tmp_path / 'oci'}")], ["linux/amd64", "linux/arm64"])
    async with Client() as client:
        with pytest.raises(BuildFailed) as caught:
            await run_build(client, builder, options)
    assert "succeeded: none" in caught.value.message
    assert caught.value.hint == "every platform failed: fix the build and re-run"


@pytest.mark.anyio
async def test_a_smoke_test_that_cannot_start_fails_the_test_step_not_the_push(tmp_path: Path) -> None:
    from splitbuild.build.smoke import SmokeTester
    from splitbuild.config import TestConfig

    layout = parse_reference(f"oci:{tmp_path / 'oci'}")
    options = _options(
        tmp_path,
        [layout],
        ["linux/amd64"],
        test=TestConfig(command="true"),
        tester=SmokeTester(str(tmp_path / "no-such-buildah")),
    )
    async with Client(retry=NO_RETRY) as client:
        with pytest.raises(BuildFailed) as caught:
            await run_build(client, FakeBuilder(), options)
    (leg,) = caught.value.result.failed
    assert leg.failed_step == "test"
    assert not (tmp_path / "oci" / "index.json").exists()  # nothing pushed, nothing merged
