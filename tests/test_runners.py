"""Runner catalogs per CI provider and the planner's provider-specific defaults: GitLab.com hosted
runner tags, Forgejo's conventional label, architecture inference from free-form tags, and the
refusal of another provider's hosted-runner labels."""

from __future__ import annotations

import pytest

from splitbuild.errors import ConfigError
from splitbuild.planner import RunnerOverride, known_runner_arch, plan_platforms
from splitbuild.runners import PROVIDERS, Provider, catalog, check_foreign_labels, foreign_label

PLATFORMS = ["linux/amd64", "linux/386", "linux/arm64", "linux/arm/v7", "linux/arm/v6", "linux/ppc64le"]


def _legs(
    provider: Provider, overrides: dict[str, RunnerOverride] | None = None
) -> dict[str, tuple[str, str]]:
    the_plan = plan_platforms(PLATFORMS, overrides, provider)
    assert the_plan.provider == provider
    return {leg.platform: (", ".join(leg.runner), leg.mode) for leg in the_plan.legs}


def test_providers() -> None:
    assert PROVIDERS == ("github", "gitlab", "forgejo")
    with pytest.raises(
        ConfigError, match="unknown CI provider 'circleci' \\(allowed: github, gitlab, forgejo\\)"
    ):
        catalog("circleci")


def test_github_defaults_are_unchanged() -> None:
    assert _legs("github") == {
        "linux/amd64": ("ubuntu-24.04", "native"),
        "linux/386": ("ubuntu-24.04", "native"),
        "linux/arm64": ("ubuntu-24.04-arm", "native"),
        "linux/arm/v7": ("ubuntu-24.04-arm", "native"),
        "linux/arm/v6": ("ubuntu-24.04-arm", "native"),
        "linux/ppc64le": ("ubuntu-24.04", "qemu"),
    }


def test_gitlab_com_hosted_runner_defaults() -> None:
    assert _legs("gitlab") == {
        "linux/amd64": ("saas-linux-small-amd64", "native"),
        "linux/386": ("saas-linux-small-amd64", "native"),
        "linux/arm64": ("saas-linux-small-arm64", "native"),
        "linux/arm/v7": ("saas-linux-small-arm64", "native"),
        "linux/arm/v6": ("saas-linux-small-arm64", "native"),
        "linux/ppc64le": ("saas-linux-small-amd64", "qemu"),
    }
    leg = plan_platforms(["linux/ppc64le"], provider="gitlab").legs[0]
    assert leg.reason == "no GitLab.com hosted ppc64le runner: emulated with QEMU on x64"
    assert any('[ci.gitlab.runners] "linux/ppc64le" = "<runner tag>"' in note for note in leg.notes)
    arm = plan_platforms(["linux/arm/v7"], provider="gitlab").legs[0]
    assert any("exec format error" in note for note in arm.notes)


def test_forgejo_has_no_arm64_convention_so_arm_is_emulated() -> None:
    legs = _legs("forgejo")
    assert legs["linux/amd64"] == ("ubuntu-latest", "native")
    assert legs["linux/arm64"] == ("ubuntu-latest", "qemu")
    leg = plan_platforms(["linux/arm/v7"], provider="forgejo").legs[0]
    assert any('arch = "arm64"' in note for note in leg.notes)


def test_hosted_gitlab_tags_have_known_architectures() -> None:
    assert known_runner_arch("saas-linux-medium-arm64", "gitlab") == "arm64"
    assert known_runner_arch("SAAS-LINUX-2XLARGE-AMD64", "gitlab") == "amd64"
    assert known_runner_arch("saas-linux-small-arm64") is None  # not a GitHub label
    assert known_runner_arch("ubuntu-24.04-arm", "gitlab") is None


@pytest.mark.parametrize(
    ("labels", "arch", "kind"),
    [
        (("docker", "aarch64"), "arm64", "self-managed"),
        (("linux", "x86_64"), "amd64", "self-managed"),
        (("saas-linux-large-arm64",), "arm64", "GitLab.com hosted"),
        (("power9",), None, None),
        (("amd64", "arm64"), None, None),  # two architectures: unknown
    ],
)
def test_gitlab_tags_name_architectures(labels: tuple[str, ...], arch: str | None, kind: str | None) -> None:
    assert catalog("gitlab").labels_arch(labels) == (arch, kind)


def test_github_keeps_its_own_self_hosted_labels_only() -> None:
    # On GitHub only the runner's default labels (X64, ARM64, ARM) name an architecture.
    assert catalog("github").labels_arch(["self-hosted", "ARM64"]) == ("arm64", "self-hosted")
    assert catalog("github").labels_arch(["self-hosted", "aarch64"]) == (None, None)


def test_self_managed_tags_decide_native_or_qemu() -> None:
    overrides = {
        "default": RunnerOverride(labels=("docker", "amd64")),
        "linux/arm": RunnerOverride(labels=("pi-4", "arm64")),
    }
    legs = _legs("gitlab", overrides)
    assert legs["linux/arm64"] == ("docker, amd64", "qemu")
    assert legs["linux/arm/v6"] == ("pi-4, arm64", "native")
    leg = plan_platforms(["linux/arm64"], overrides, "gitlab", "[ci.gitlab.runners]").legs[0]
    assert leg.reason.startswith(
        '[ci.gitlab.runners] "default" chose runner docker, amd64 (self-managed, amd64)'
    )


def test_another_providers_hosted_labels_are_refused() -> None:
    github_label = {"linux/arm64": RunnerOverride(labels=("ubuntu-24.04-arm",))}
    with pytest.raises(ConfigError) as info:
        plan_platforms(["linux/arm64"], github_label, "gitlab", "[runners]")
    assert str(info.value) == (
        "[runners] \"linux/arm64\": runner 'ubuntu-24.04-arm' is a GitHub Actions runner label, unknown to "
        "GitLab CI; give [ci.gitlab.runners] the runners of GitLab CI"
    )
    assert "arch" in str(info.value.hint)
    gitlab_label = {"linux/arm64": RunnerOverride(labels=("saas-linux-small-arm64",))}
    with pytest.raises(ConfigError, match="is a GitLab CI runner label, unknown to GitHub Actions"):
        plan_platforms(["linux/arm64"], gitlab_label, "github")
    # Forgejo labels are free-form: a GitHub-style label is whatever the runner registered.
    assert plan_platforms(["linux/arm64"], github_label, "forgejo").legs[0].mode == "native"
    # Declaring the architecture says: this is my runner with that tag.
    declared = {"linux/arm64": RunnerOverride(labels=("ubuntu-24.04-arm",), arch="arm64")}
    assert plan_platforms(["linux/arm64"], declared, "gitlab").legs[0].runner_arch == "arm64"


def test_foreign_label_lookup() -> None:
    assert foreign_label("gitlab", "ubuntu-24.04-ppc64le") is catalog("github")
    assert foreign_label("github", "saas-linux-small-amd64") is catalog("gitlab")
    assert foreign_label("github", "ubuntu-24.04") is None
    assert foreign_label("forgejo", "saas-linux-small-amd64") is None
    check_foreign_labels("gitlab", ["saas-linux-small-amd64", "my-tag"], "merge-runner")
    with pytest.raises(ConfigError, match=r"^merge-runner: runner 'ubuntu-latest'"):
        check_foreign_labels("gitlab", ["ubuntu-latest"], "merge-runner")


def test_gitlab_windows_and_macos_runners_are_refused() -> None:
    for label in ("saas-macos-medium-m1", "saas-windows-medium-amd64"):
        with pytest.raises(ConfigError, match="cannot build Linux container images"):
            plan_platforms(["linux/amd64"], {"default": RunnerOverride(labels=(label,))}, "gitlab")
