"""The native-first planner and platform normalisation (table-driven; pure functions)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from splitbuild.errors import ConfigError
from splitbuild.planner import Leg, RunnerOverride, known_runner_arch, normalize_runner_key, plan_platforms
from splitbuild.platforms import normalize_platform, split_platform


@pytest.mark.parametrize(
    ("text", "normalized"),
    [
        ("linux/amd64", "linux/amd64"),
        ("linux/x86_64", "linux/amd64"),
        ("linux/amd64/v1", "linux/amd64"),
        ("linux/amd64/v3", "linux/amd64/v3"),
        ("linux/i386", "linux/386"),
        ("linux/arm64", "linux/arm64"),
        ("linux/arm64/v8", "linux/arm64"),
        ("linux/aarch64", "linux/arm64"),
        ("linux/arm64/v9.0", "linux/arm64/v9"),
        ("linux/arm64/v8.2", "linux/arm64/v8.2"),
        ("linux/arm", "linux/arm/v7"),
        ("linux/arm/7", "linux/arm/v7"),
        ("linux/arm/v6", "linux/arm/v6"),
        ("linux/armhf", "linux/arm/v7"),
        ("linux/armel", "linux/arm/v6"),
        ("linux/armv7l", "linux/arm/v7"),
        ("Linux/ARM64", "linux/arm64"),
        (" linux/ppc64le ", "linux/ppc64le"),
        ("linux/ppc64el", "linux/ppc64le"),
        ("linux/riscv64", "linux/riscv64"),
        ("linux/s390x", "linux/s390x"),
        ("macos/arm64", "darwin/arm64"),
        ("windows/amd64", "windows/amd64"),
    ],
)
def test_normalize_platform(text: str, normalized: str) -> None:
    assert normalize_platform(text) == normalized


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("arm64", "malformed platform 'arm64'"),
        ("linux", "malformed platform"),
        ("linux/arm/v7/extra", "malformed platform"),
        ("linux//arm", "malformed platform"),
        ("linux/arm 64", "malformed platform"),
        ("", "malformed platform"),
        ("linux/arm65", "unknown architecture 'arm65'"),
        ("plan10/amd64", "unknown operating system 'plan10'"),
        ("linux/arm/v9", "unknown variant 'v9' for arm"),
        ("linux/arm64/v7", "unknown variant 'v7' for arm64"),
        ("linux/amd64/v5", "unknown variant 'v5' for amd64"),
        ("linux/riscv64/rva23", "has no variants"),
        ("linux/armhf/v6", "already implies variant 'v7'"),
    ],
)
def test_malformed_or_unknown_platforms(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        normalize_platform(text)


def test_split_platform_parts() -> None:
    parts = split_platform("linux/arm")
    assert (parts.os, parts.architecture, parts.variant) == ("linux", "arm", "v7")
    assert split_platform("linux/arm64/v8").variant is None


_PLATFORMS = st.sampled_from(["linux", "Linux", "windows", "macos"]).flatmap(
    lambda os_name: st.sampled_from(
        [
            "amd64",
            "x86_64",
            "amd64/v2",
            "arm64",
            "aarch64",
            "arm64/v8",
            "arm",
            "arm/v6",
            "armhf",
            "386",
            "i686",
            "s390x",
            "riscv64",
            "ppc64el",
        ]
    ).map(lambda arch: f"{os_name}/{arch}")
)


@given(_PLATFORMS)
def test_normalization_is_idempotent_and_canonical(text: str) -> None:
    once = normalize_platform(text)
    assert normalize_platform(once) == once
    assert once == once.lower()
    assert once.count("/") in (1, 2)


@pytest.mark.parametrize(
    ("key", "normalized"),
    [
        ("default", "default"),
        ("DEFAULT", "default"),
        ("linux", "linux"),
        ("linux/arm", "linux/arm"),
        ("linux/aarch64", "linux/arm64"),
        ("linux/arm64/v8", "linux/arm64"),
        ("linux/armhf", "linux/arm/v7"),
        ("linux/arm/v6", "linux/arm/v6"),
    ],
)
def test_normalize_runner_key(key: str, normalized: str) -> None:
    assert normalize_runner_key(key) == normalized


@pytest.mark.parametrize("key", ["linux/nope", "nope", "linux/arm/v7/x", "linux/arm/v3"])
def test_bad_runner_keys(key: str) -> None:
    with pytest.raises(ConfigError):
        normalize_runner_key(key)


def _only(platform: str, overrides: dict[str, RunnerOverride] | None = None) -> Leg:
    (leg,) = plan_platforms([platform], overrides).legs
    return leg


@pytest.mark.parametrize(
    ("platform", "runner", "mode"),
    [
        ("linux/amd64", "ubuntu-24.04", "native"),
        ("linux/amd64/v3", "ubuntu-24.04", "native"),
        ("linux/386", "ubuntu-24.04", "native"),
        ("linux/arm64", "ubuntu-24.04-arm", "native"),
        ("linux/arm/v7", "ubuntu-24.04-arm", "native"),
        ("linux/arm/v6", "ubuntu-24.04-arm", "native"),
        ("linux/ppc64le", "ubuntu-24.04", "qemu"),
        ("linux/s390x", "ubuntu-24.04", "qemu"),
        ("linux/riscv64", "ubuntu-24.04", "qemu"),
        ("linux/mips64le", "ubuntu-24.04", "qemu"),
        ("linux/loong64", "ubuntu-24.04", "qemu"),
    ],
)
def test_github_hosted_defaults(platform: str, runner: str, mode: str) -> None:
    leg = _only(platform)
    assert leg.runner == (runner,)
    assert leg.mode == mode
    assert leg.override is None
    arch = platform.split("/")[1]
    if mode == "qemu":
        assert leg.reason == f"no GitHub-hosted {arch} runner: emulated with QEMU on x64"
    elif runner == "ubuntu-24.04":
        assert leg.reason == f"x64 GitHub-hosted runner runs {arch} natively"
    elif arch == "arm64":
        assert leg.reason == "arm64 GitHub-hosted runner (free for public repositories)"
    else:  # 32-bit Arm
        assert leg.reason == (
            "arm64 GitHub-hosted runner; its Neoverse CPUs also execute 32-bit Arm code natively"
        )


@pytest.mark.parametrize(
    ("platform", "native_label"),
    [
        ("linux/ppc64le", "ubuntu-24.04-ppc64le"),
        ("linux/s390x", "ubuntu-24.04-s390x"),
        ("linux/riscv64", "ubuntu-24.04-riscv"),
        ("linux/mips64le", "self-hosted mips64le runner"),
    ],
)
def test_emulated_legs_explain_the_cost_and_the_native_option(platform: str, native_label: str) -> None:
    leg = _only(platform)
    assert leg.qemu_arch == platform.split("/")[1]
    assert any("slower" in note for note in leg.notes)
    assert any(native_label in note for note in leg.notes)


def test_32bit_arm_notes_the_aarch32_caveat() -> None:
    leg = _only("linux/arm/v7")
    assert leg.qemu_arch is None
    assert any("AArch32" in note for note in leg.notes)


def test_override_precedence_most_specific_key_wins() -> None:
    overrides = {
        "default": RunnerOverride(("self-hosted", "X64")),
        "linux/arm": RunnerOverride(("pi",), arch="arm"),
        "linux/arm/v6": RunnerOverride(("pi-zero",), arch="arm"),
    }
    the_plan = plan_platforms(["linux/amd64", "linux/arm64", "linux/arm/v7", "linux/arm/v6"], overrides)
    legs = {leg.platform: leg for leg in the_plan.legs}
    assert legs["linux/amd64"].runner == ("self-hosted", "X64")
    assert legs["linux/amd64"].override == "default"
    assert legs["linux/amd64"].mode == "native"
    # "linux/arm" is a prefix of arm variants, not of arm64: default applies to arm64 (x64 -> QEMU).
    assert legs["linux/arm64"].override == "default"
    assert legs["linux/arm64"].mode == "qemu"
    assert legs["linux/arm/v7"].runner == ("pi",)
    assert legs["linux/arm/v7"].mode == "native"
    assert legs["linux/arm/v6"].runner == ("pi-zero",)


@pytest.mark.parametrize(
    ("platform", "override", "mode", "arch"),
    [
        ("linux/amd64", RunnerOverride(("ubuntu-24.04-arm",)), "qemu", "arm64"),
        ("linux/arm64", RunnerOverride(("ubuntu-24.04",)), "qemu", "amd64"),
        ("linux/ppc64le", RunnerOverride(("ubuntu-24.04-ppc64le",)), "native", "ppc64le"),
        ("linux/s390x", RunnerOverride(("ubuntu-24.04-s390x",)), "native", "s390x"),
        ("linux/riscv64", RunnerOverride(("ubuntu-26.04-riscv",)), "native", "riscv64"),
        ("linux/arm/v7", RunnerOverride(("self-hosted", "ARM64")), "native", "arm64"),
        ("linux/arm/v7", RunnerOverride(("self-hosted", "ARM")), "native", "arm"),
        ("linux/arm64", RunnerOverride(("self-hosted", "ARM")), "qemu", "arm"),
        ("linux/riscv64", RunnerOverride(("big-box",), arch="amd64"), "qemu", "amd64"),
        ("linux/riscv64", RunnerOverride(("big-box",), arch="riscv64"), "native", "riscv64"),
    ],
)
def test_override_native_or_qemu_from_runner_arch(
    platform: str, override: RunnerOverride, mode: str, arch: str
) -> None:
    leg = _only(platform, {platform: override})
    assert leg.mode == mode
    assert leg.runner_arch == arch
    assert leg.runner == override.labels
    assert (leg.qemu_arch is not None) == (mode == "qemu")


def test_unknown_runner_label_is_assumed_native_with_a_note() -> None:
    leg = _only("linux/riscv64", {"linux/riscv64": RunnerOverride(("my-riscv-box",))})
    assert leg.mode == "native"
    assert leg.runner_arch is None
    assert "assumed native" in leg.reason
    assert any("set arch" in note for note in leg.notes)


def test_contradicting_arch_labels_mean_unknown() -> None:
    leg = _only("linux/amd64", {"linux/amd64": RunnerOverride(("self-hosted", "X64", "ARM64"))})
    assert leg.runner_arch is None


@pytest.mark.parametrize(
    "label", ["macos-14", "macos-latest", "windows-2025", "ubuntu-slim", "Windows-11-arm"]
)
def test_runners_without_docker_are_errors(label: str) -> None:
    with pytest.raises(ConfigError, match="cannot build Linux container images"):
        _only("linux/arm64", {"linux/arm64": RunnerOverride((label,))})


def test_plan_errors() -> None:
    with pytest.raises(ConfigError, match="no platforms"):
        plan_platforms([])
    with pytest.raises(ConfigError, match="listed twice"):
        plan_platforms(["linux/arm64", "linux/aarch64"])
    with pytest.raises(ConfigError, match="only linux"):
        plan_platforms(["windows/amd64"])
    with pytest.raises(ConfigError, match="unknown architecture"):
        plan_platforms(["linux/sparc"])


def test_leg_names_and_plan_lookup() -> None:
    the_plan = plan_platforms(["linux/arm/v7", "linux/amd64", "linux/ppc64le"])
    assert the_plan.platforms == ("linux/arm/v7", "linux/amd64", "linux/ppc64le")
    leg = the_plan.leg("linux/armhf")
    assert leg.pair == "linux-arm-v7"
    assert leg.output_key == "digest_linux_arm_v7"
    assert [leg.platform for leg in the_plan.emulated] == ["linux/ppc64le"]
    with pytest.raises(ConfigError, match="not in the plan"):
        the_plan.leg("linux/s390x")


def test_known_runner_arch() -> None:
    assert known_runner_arch("ubuntu-24.04-arm") == "arm64"
    assert known_runner_arch("UBUNTU-24.04") == "amd64"
    assert known_runner_arch("ubuntu-24.04-s390x") == "s390x"
    assert known_runner_arch("my-runner") is None


def test_plan_is_pure_and_serialisable() -> None:
    first = plan_platforms(["linux/amd64", "linux/riscv64"])
    second = plan_platforms(["linux/amd64", "linux/riscv64"])
    assert first == second
    data = first.model_dump(mode="json")
    assert data["legs"][1]["mode"] == "qemu"
    assert data["legs"][0]["runner"] == ["ubuntu-24.04"]


@pytest.mark.parametrize(
    "text",
    [
        "linux/amd64",
        "linux/x86_64",
        "linux/amd64/v1",
        "linux/amd64/v3",
        "linux/i386",
        "linux/arm64",
        "linux/arm64/v8",
        "linux/aarch64",
        "linux/arm",
        "linux/arm/7",
        "linux/arm/v6",
        "linux/armhf",
        "linux/ppc64le",
        "linux/riscv64",
        "linux/s390x",
    ],
)
def test_agrees_with_the_oci_platform_model(text: str) -> None:
    from splitbuild.models import Platform

    model = Platform.parse(text)
    assert normalize_platform(text) == str(model) == model.key


@pytest.mark.parametrize(
    ("text", "normalized"),
    [
        ("linux/armel", "linux/arm/v6"),
        ("linux/arm64/v9.0", "linux/arm64/v9"),
        ("Linux/ARM64", "linux/arm64"),
        ("linux/i686", "linux/386"),
    ],
)
def test_one_grammar_for_the_config_and_the_registry_commands(text: str, normalized: str) -> None:
    """Once two parsers that disagreed (issue 16): merge/verify/copy and the config now share one."""
    from splitbuild.config import parse_config
    from splitbuild.models import Platform

    config = parse_config(f'[image]\nnames = ["ghcr.io/acme/app"]\nplatforms = ["{text}"]\n')
    assert config.image.platforms == [normalized]
    assert str(Platform.parse(text)) == normalized


def test_platforms_a_registry_names_compare_normalised_and_never_fail() -> None:
    from splitbuild.models import Platform

    assert Platform(os="linux", architecture="arm64", variant="v8").key == "linux/arm64"
    assert Platform(os="linux", architecture="arm").key == "linux/arm/v7"
    assert Platform(os="linux", architecture="aarch64").key == "linux/arm64"
    assert Platform(os="unknown", architecture="unknown").key == "unknown/unknown"
    assert Platform(os="linux", architecture="sparc64").key == "linux/sparc64"


def test_a_mistyped_platform_gets_a_suggestion() -> None:
    with pytest.raises(
        ConfigError, match=r"unknown architecture 'ar64' \(allowed: .*\); did you mean 'arm64'\?"
    ):
        normalize_platform("linux/ar64")
    with pytest.raises(ConfigError, match=r"; did you mean 'linux'\?"):
        normalize_platform("lnux/amd64")


# --- notes on what the index carries -------------------------------------------------------------

_CONFIG = '[image]\nnames = ["ghcr.io/acme/app"]\nplatforms = ["linux/amd64", "linux/arm64"]\n'


def _notes(ci: str = "", provider: str | None = None) -> tuple[str, ...]:
    from splitbuild.config import parse_config
    from splitbuild.planner import plan

    if provider == "gitlab":
        text = _CONFIG.replace("ghcr.io/acme/app", "registry.gitlab.com/acme/app")
    else:
        text = _CONFIG
    return plan(parse_config(text + ("[ci]\n" + ci if ci else ""), provider=provider)).notes


def test_default_plan_explains_the_unknown_platform_entries() -> None:
    from splitbuild.planner import UNKNOWN_PLATFORM_NOTE

    notes = _notes()
    assert notes[0].startswith(
        "attestations: BuildKit gives each platform image a SLSA provenance attestation"
    )
    assert "(mode=min)" in notes[0]
    assert "oci-artifact=true" in notes[0]
    assert notes[1] == UNKNOWN_PLATFORM_NOTE
    assert "unknown/unknown" in notes[1]
    assert "vnd.docker.reference.digest" in notes[1]
    assert "correct" in notes[1]
    assert not any(n.startswith(("signing:", "attestation:")) for n in notes)


def test_sbom_max_provenance_and_none() -> None:
    both = _notes('provenance = "max"\nsbom = true\n')
    assert "(mode=max) and an SBOM" in both[0]
    assert any("records the build arguments" in n for n in both)
    sbom_only = _notes("provenance = false\nsbom = true\n")
    assert sbom_only[0].startswith("attestations: BuildKit gives each platform image an SBOM,")
    assert not any("build arguments" in n for n in sbom_only)
    none = _notes("provenance = false\n")
    assert none == ("attestations: none; the index lists only the platform images",)


def test_signing_and_attestation_notes_per_provider() -> None:
    github = _notes('sign = "cosign"\nattest = true\n')
    (signing,) = [n for n in github if n.startswith("signing:")]
    assert "the merge job signs the index with cosign" in signing
    assert "pull requests never sign" in signing
    (attestation,) = [n for n in github if n.startswith("attestation:")]
    assert "gh attestation verify" in attestation
    gitlab = _notes('sign = "cosign"\n', provider="gitlab")
    (signing,) = [n for n in gitlab if n.startswith("signing:")]
    assert "a sign job after the merge" in signing
    assert "GitLab.com" in signing


def test_buildah_note_says_why_there_are_no_attestations() -> None:
    notes = _notes('[ci.gitlab]\nbuilder = "buildah"\n', provider="gitlab")
    assert notes == ("attestations: none (buildah writes none); the index lists only the platform images",)


def test_plan_platforms_has_no_config_notes() -> None:
    assert plan_platforms(["linux/amd64"]).notes == ()
