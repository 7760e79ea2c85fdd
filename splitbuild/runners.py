"""Runner catalogs: per CI provider, the runner labels splitbuild knows, their CPU architectures,
and the defaults the planner picks (with the words it uses to explain them).

Three providers: ``github`` (GitHub Actions: GitHub-hosted runners and the partner runners that
appear as self-hosted), ``gitlab`` (GitLab CI: GitLab.com hosted runner tags) and ``forgejo``
(Forgejo/Gitea Actions: runner labels are whatever the runners register, so only the conventional
``ubuntu-latest`` is assumed). Pure data and small lookups; no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Literal, get_args

from splitbuild.errors import ConfigError

__all__ = [
    "PROVIDERS",
    "Catalog",
    "KnownRunner",
    "Provider",
    "catalog",
    "check_foreign_labels",
    "foreign_label",
]

Provider = Literal["github", "gitlab", "forgejo"]
PROVIDERS: tuple[Provider, ...] = get_args(Provider)


@dataclass(frozen=True)
class KnownRunner:
    """A runner label whose CPU architecture is known, and what kind of runner it is."""

    arch: str
    kind: str


def _frozen(data: Mapping[str, str]) -> Mapping[str, str]:
    return MappingProxyType(dict(data))


@dataclass(frozen=True)
class Catalog:
    """What one CI provider offers and how the planner words its choices.

    The ``*_reason`` and ``*_option`` texts are ``str.format`` templates: ``{arch}`` is the
    platform's architecture, ``{platform}`` the whole platform, ``{table}`` the config table that
    overrides runners for this provider."""

    provider: Provider
    title: str
    hosted: str
    known: Mapping[str, KnownRunner]
    arch_labels: Mapping[str, str]
    x64: str
    arm64: str | None
    merge_runner: str
    table: str
    x64_reason: str
    arm64_reason: str
    arm32_reason: str
    arm32_note: str
    missing_reason: str
    default_option: str
    native_options: Mapping[str, str] = field(default_factory=lambda: _frozen({}))
    own_kind: str = "self-hosted"

    def known_arch(self, label: str) -> KnownRunner | None:
        """The known runner behind ``label`` (case-insensitive), else ``None``."""
        return self.known.get(label.lower())

    def labels_arch(self, labels: Sequence[str]) -> tuple[str | None, str | None]:
        """(architecture, kind) inferred from a runner's labels; (None, None) when unknown or
        when the labels name two architectures."""
        found: set[tuple[str, str]] = set()
        for label in labels:
            lowered = label.lower()
            known = self.known.get(lowered)
            if known is not None:
                found.add((known.arch, known.kind))
            elif lowered in self.arch_labels:
                found.add((self.arch_labels[lowered], self.own_kind))
        arches = {arch for arch, _ in found}
        if len(arches) != 1:
            return None, None
        arch = arches.pop()
        kinds = sorted(kind for a, kind in found if a == arch)
        return arch, kinds[0]

    def option(self, arch: str, platform: str) -> str:
        """How to get a native runner for ``arch`` on this provider."""
        template = self.native_options.get(arch, self.default_option)
        return template.format(arch=arch, platform=platform, table=self.table)


def _github() -> Catalog:
    hosted = "GitHub-hosted"
    known = {
        "ubuntu-latest": KnownRunner("amd64", hosted),
        "ubuntu-22.04": KnownRunner("amd64", hosted),
        "ubuntu-24.04": KnownRunner("amd64", hosted),
        "ubuntu-26.04": KnownRunner("amd64", hosted),
        "ubuntu-22.04-arm": KnownRunner("arm64", hosted),
        "ubuntu-24.04-arm": KnownRunner("arm64", hosted),
        "ubuntu-26.04-arm": KnownRunner("arm64", hosted),
        "ubuntu-24.04-ppc64le": KnownRunner("ppc64le", "IBM actionspz GitHub App"),
        "ubuntu-24.04-s390x": KnownRunner("s390x", "IBM actionspz GitHub App"),
        "ubuntu-24.04-riscv": KnownRunner("riscv64", "RISE RISC-V GitHub App"),
        "ubuntu-26.04-riscv": KnownRunner("riscv64", "RISE RISC-V GitHub App"),
    }
    ibm = "(install the IBM actionspz GitHub App; each project is approved)"
    return Catalog(
        provider="github",
        title="GitHub Actions",
        hosted=hosted,
        known=MappingProxyType(known),
        # Self-hosted runners get these architecture labels by default.
        arch_labels=_frozen({"x64": "amd64", "arm64": "arm64", "arm": "arm"}),
        x64="ubuntu-24.04",
        arm64="ubuntu-24.04-arm",
        merge_runner="ubuntu-24.04",
        table="[runners]",
        x64_reason="x64 GitHub-hosted runner runs {arch} natively",
        arm64_reason="arm64 GitHub-hosted runner (free for public repositories)",
        arm32_reason="arm64 GitHub-hosted runner; its Neoverse CPUs also execute 32-bit Arm code natively",
        arm32_note=(
            "32-bit Arm runs natively only on arm64 CPUs with AArch32 support (GitHub's do; "
            "Apple silicon and some server CPUs do not)"
        ),
        missing_reason="no GitHub-hosted {arch} runner: emulated with QEMU on x64",
        default_option='a self-hosted {arch} runner: [runners] "{platform}" = "<label>"',
        native_options=_frozen(
            {
                "ppc64le": 'IBM\'s native runners: [runners] "linux/ppc64le" = "ubuntu-24.04-ppc64le" ' + ibm,
                "s390x": 'IBM\'s native runners: [runners] "linux/s390x" = "ubuntu-24.04-s390x" ' + ibm,
                "riscv64": 'RISE native runners: [runners] "linux/riscv64" = "ubuntu-24.04-riscv" '
                "(install the RISE RISC-V GitHub App)",
            }
        ),
    )


# Tags that name an architecture on self-managed GitLab runners and Forgejo/Gitea runners
# (labels are free-form there; these are the spellings people use).
_FREE_FORM_ARCH_LABELS = {
    "amd64": "amd64",
    "x86_64": "amd64",
    "x64": "amd64",
    "arm64": "arm64",
    "aarch64": "arm64",
    "ppc64le": "ppc64le",
    "s390x": "s390x",
    "riscv64": "riscv64",
}


_GITLAB_SIZES = ("small", "medium", "large", "xlarge", "2xlarge")


def _gitlab() -> Catalog:
    hosted = "GitLab.com hosted"
    known = {f"saas-linux-{size}-amd64": KnownRunner("amd64", hosted) for size in _GITLAB_SIZES}
    known.update({f"saas-linux-{size}-arm64": KnownRunner("arm64", hosted) for size in _GITLAB_SIZES})
    return Catalog(
        provider="gitlab",
        title="GitLab CI",
        hosted=hosted,
        known=MappingProxyType(known),
        arch_labels=_frozen(_FREE_FORM_ARCH_LABELS),
        x64="saas-linux-small-amd64",
        arm64="saas-linux-small-arm64",
        merge_runner="saas-linux-small-amd64",
        table="[ci.gitlab.runners]",
        x64_reason="x64 GitLab.com hosted runner runs {arch} natively",
        arm64_reason="arm64 GitLab.com hosted runner (saas-linux-small-arm64, every tier)",
        arm32_reason="arm64 GitLab.com hosted runner; its Arm Neoverse CPUs also execute 32-bit Arm code",
        arm32_note=(
            "32-bit Arm runs natively only on arm64 CPUs with AArch32 support; if the build fails "
            'with "exec format error", build it under QEMU: [ci.gitlab.runners] "linux/arm" = '
            '"saas-linux-small-amd64"'
        ),
        missing_reason="no GitLab.com hosted {arch} runner: emulated with QEMU on x64",
        default_option='a self-managed {arch} runner: {table} "{platform}" = "<runner tag>"',
        own_kind="self-managed",
    )


def _forgejo() -> Catalog:
    kind = "Forgejo/Gitea runner label, assumed x64"
    known = {label: KnownRunner("amd64", kind) for label in ("ubuntu-latest", "ubuntu-24.04", "ubuntu-22.04")}
    return Catalog(
        provider="forgejo",
        title="Forgejo Actions",
        hosted="Forgejo/Gitea",
        known=MappingProxyType(known),
        arch_labels=_frozen(_FREE_FORM_ARCH_LABELS),
        x64="ubuntu-latest",
        arm64=None,
        merge_runner="ubuntu-latest",
        table="[ci.forgejo.runners]",
        x64_reason="runner label ubuntu-latest (assumed x64) runs {arch} natively",
        arm64_reason="",
        arm32_reason="",
        arm32_note="",
        missing_reason=(
            "no conventional {arch} runner label on Forgejo/Gitea: emulated with QEMU on ubuntu-latest"
        ),
        default_option=(
            'a runner of yours on {arch} hardware: {table} "{platform}" = '
            '{{ labels = ["<its label>"], arch = "{arch}" }}'
        ),
        native_options=_frozen(
            {
                "arm": 'an arm64 runner of yours (most also run 32-bit Arm): {table} "{platform}" = '
                '{{ labels = ["<its label>"], arch = "arm64" }}'
            }
        ),
    )


_CATALOGS: dict[str, Catalog] = {c.provider: c for c in (_github(), _gitlab(), _forgejo())}


def catalog(provider: str) -> Catalog:
    """The catalog of ``provider``; a :class:`ConfigError` names the known providers."""
    try:
        return _CATALOGS[provider]
    except KeyError:
        raise ConfigError(f"unknown CI provider {provider!r} (allowed: {', '.join(PROVIDERS)})") from None


def check_foreign_labels(provider: str, labels: Sequence[str], where: str) -> None:
    """Refuse runner labels that name another provider's hosted runners (a GitHub label given to
    GitLab, a GitLab.com tag given to GitHub): such a job would wait for a runner that never comes.
    ``where`` names the config key, for the message."""
    own = catalog(provider)
    for label in labels:
        other = foreign_label(provider, label)
        if other is not None:
            raise ConfigError(
                f"{where}: runner {label!r} is a {other.title} runner label, unknown to {own.title}; "
                f"give {own.table} the runners of {own.title}",
                hint='if a runner of yours carries this label, declare it: { labels = [...], arch = "..." }',
            )


def foreign_label(provider: str, label: str) -> Catalog | None:
    """The catalog of another provider whose hosted runners ``label`` names (a GitHub label used
    for GitLab, or a GitLab.com tag used for GitHub), else ``None``. Forgejo labels are free-form,
    so nothing is foreign there."""
    if provider == "forgejo":
        return None
    for other in ("github", "gitlab"):
        if other != provider and _CATALOGS[other].known_arch(label) is not None:
            return _CATALOGS[other]
    return None
