"""The native-first CI planner: which runner builds each platform, natively or under QEMU, and why.

Pure functions over data: no I/O, no CLI. The input is the list of platforms, the runner
overrides of a config and the CI provider (whose runner catalog, :mod:`splitbuild.runners`, gives
the defaults); the output is a frozen :class:`Plan`, one :class:`Leg` per platform, in the order
the platforms were configured.

Platform strings are validated and normalised here as containerd does (``linux/aarch64`` ->
``linux/arm64``, ``linux/arm64/v8`` -> ``linux/arm64``, ``linux/arm`` -> ``linux/arm/v7``), see
:func:`normalize_platform`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict

from splitbuild.errors import ConfigError
from splitbuild.platforms import PlatformParts, normalize_platform, split_platform
from splitbuild.runner_config import (
    DEFAULT_RUNNER_KEY,
    RunnerOverride,
    check_runner_labels,
    normalize_runner_key,
)
from splitbuild.runners import Catalog, Provider, catalog, check_foreign_labels

if TYPE_CHECKING:
    from splitbuild.config import CiConfig, Config

__all__ = [
    "DEFAULT_RUNNER_KEY",
    "UNKNOWN_PLATFORM_NOTE",
    "Leg",
    "Plan",
    "RunnerOverride",
    "check_runner_labels",
    "known_runner_arch",
    "normalize_runner_key",
    "plan",
    "plan_platforms",
    "supply_chain_notes",
]

# Which platform architectures a runner architecture executes without emulation.
_RUNS_NATIVELY: dict[str, frozenset[str]] = {
    "amd64": frozenset({"amd64", "386"}),
    "arm64": frozenset({"arm64", "arm"}),
}
QEMU_SLOWDOWN = (
    "QEMU emulation is typically 5-15x slower than native on compile-heavy steps (about 1.5x on "
    "download-bound ones)"
)


def known_runner_arch(label: str, provider: Provider = "github") -> str | None:
    """The CPU architecture of a known runner label of ``provider``, else ``None``."""
    known = catalog(provider).known_arch(label)
    return known.arch if known else None


def _runs_natively(runner_arch: str, platform_arch: str) -> bool:
    return platform_arch in _RUNS_NATIVELY.get(runner_arch, frozenset({runner_arch}))


# --- the plan -----------------------------------------------------------------------------------


class Leg(BaseModel):
    """One build leg: a platform, the runner labels it runs on, and whether QEMU is needed."""

    model_config = ConfigDict(frozen=True)

    platform: str
    runner: tuple[str, ...]
    runner_arch: str | None
    mode: Literal["native", "qemu"]
    reason: str
    notes: tuple[str, ...] = ()
    override: str | None = None

    @property
    def pair(self) -> str:
        """The platform with ``/`` replaced by ``-`` (``linux-arm-v7``), for cache scopes."""
        return self.platform.replace("/", "-")

    @property
    def output_key(self) -> str:
        """The job output that carries this leg's digest (``digest_linux_arm_v7``)."""
        return "digest_" + re.sub(r"[^a-z0-9]", "_", self.platform)

    @property
    def qemu_arch(self) -> str | None:
        """The binfmt name to register for this leg (``arm``, ``ppc64le``), or ``None`` if native."""
        return split_platform(self.platform).architecture if self.mode == "qemu" else None


class Plan(BaseModel):
    """The legs of a split build, in configured platform order, for one CI provider, and notes on
    the whole build (what the index will hold besides the platform images, who signs it)."""

    model_config = ConfigDict(frozen=True)

    provider: Provider = "github"
    legs: tuple[Leg, ...]
    notes: tuple[str, ...] = ()

    @property
    def platforms(self) -> tuple[str, ...]:
        return tuple(leg.platform for leg in self.legs)

    @property
    def emulated(self) -> tuple[Leg, ...]:
        return tuple(leg for leg in self.legs if leg.mode == "qemu")

    def leg(self, platform: str) -> Leg:
        wanted = normalize_platform(platform)
        for leg in self.legs:
            if leg.platform == wanted:
                return leg
        raise ConfigError(f"platform {platform!r} is not in the plan ({', '.join(self.platforms)})")


def _key_matches(key: str, platform: PlatformParts) -> int:
    """How specifically ``key`` matches ``platform``: -1 no match, 0 default, else the key's depth."""
    if key == DEFAULT_RUNNER_KEY:
        return 0
    key_parts = key.split("/")
    plat_parts = [platform.os, platform.architecture] + ([platform.variant] if platform.variant else [])
    if key_parts == plat_parts[: len(key_parts)]:
        return len(key_parts)
    return -1


def _best_override(
    platform: PlatformParts, overrides: Mapping[str, RunnerOverride]
) -> tuple[str, RunnerOverride] | None:
    best: tuple[int, str, RunnerOverride] | None = None
    for key, override in overrides.items():
        depth = _key_matches(key, platform)
        if depth >= 0 and (best is None or depth > best[0]):
            best = (depth, key, override)
    return (best[1], best[2]) if best else None


def _emulated_leg(platform: PlatformParts, runners: Catalog) -> Leg:
    text = str(platform)
    arch = platform.architecture
    return Leg(
        platform=text,
        runner=(runners.x64,),
        runner_arch="amd64",
        mode="qemu",
        reason=runners.missing_reason.format(arch=arch),
        notes=(QEMU_SLOWDOWN, f"for a native build, opt into {runners.option(arch, text)}"),
    )


def _default_leg(platform: PlatformParts, runners: Catalog) -> Leg:
    text = str(platform)
    arch = platform.architecture
    if arch in ("amd64", "386"):
        notes: tuple[str, ...] = ()
        if platform.variant == "v4":
            notes = ("x86-64-v4 needs AVX-512, which not every hosted runner's CPU has",)
        return Leg(
            platform=text,
            runner=(runners.x64,),
            runner_arch="amd64",
            mode="native",
            reason=runners.x64_reason.format(arch=arch),
            notes=notes,
        )
    if arch in ("arm64", "arm") and runners.arm64 is not None:
        notes = ()
        reason = runners.arm64_reason
        if arch == "arm":
            reason = runners.arm32_reason
            notes = (runners.arm32_note,)
        return Leg(
            platform=text,
            runner=(runners.arm64,),
            runner_arch="arm64",
            mode="native",
            reason=reason,
            notes=notes,
        )
    return _emulated_leg(platform, runners)


def _override_leg(
    platform: PlatformParts, key: str, override: RunnerOverride, runners: Catalog, table: str
) -> Leg:
    text = str(platform)
    where = f'{table} "{key}"'
    try:
        check_runner_labels(override.labels)
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc.message}") from None
    if override.arch is None:  # a declared architecture says: this runner is mine
        check_foreign_labels(runners.provider, override.labels, where)
    runner_arch, kind = (override.arch, "declared") if override.arch else runners.labels_arch(override.labels)
    shown = ", ".join(override.labels)
    if runner_arch is None:
        return Leg(
            platform=text,
            runner=override.labels,
            runner_arch=None,
            mode="native",
            reason=f"{where} chose runner {shown}; assumed native",
            notes=(f"if runner {shown} is not {platform.architecture}, set arch in {where}",),
            override=key,
        )
    if _runs_natively(runner_arch, platform.architecture):
        return Leg(
            platform=text,
            runner=override.labels,
            runner_arch=runner_arch,
            mode="native",
            reason=f"{where} chose runner {shown} ({kind}, {runner_arch}): native",
            override=key,
        )
    return Leg(
        platform=text,
        runner=override.labels,
        runner_arch=runner_arch,
        mode="qemu",
        reason=f"{where} chose runner {shown} ({kind}, {runner_arch}): {platform.architecture} under QEMU",
        notes=(QEMU_SLOWDOWN,),
        override=key,
    )


def plan_platforms(
    platforms: Sequence[str],
    overrides: Mapping[str, RunnerOverride] | None = None,
    provider: Provider = "github",
    table: str = "[runners]",
) -> Plan:
    """Map each platform to a runner of ``provider``: overrides win (most specific key first),
    then the provider's defaults (x64 for amd64/386, arm64 for arm64 and 32-bit arm where the
    provider has arm64 runners, QEMU on x64 for the rest). ``table`` names the config table the
    overrides came from, in messages. Raises :class:`ConfigError` for malformed, unknown,
    non-Linux or duplicate platforms."""
    runners = catalog(provider)
    if not platforms:
        raise ConfigError("no platforms to plan")
    normalized_overrides = {normalize_runner_key(k): v for k, v in (overrides or {}).items()}
    seen: dict[str, str] = {}
    legs: list[Leg] = []
    for text in platforms:
        parts = split_platform(text)
        name = str(parts)
        if name in seen:
            raise ConfigError(f"platform {text!r} is listed twice (same as {seen[name]!r})")
        seen[name] = text
        if parts.os != "linux":
            raise ConfigError(f"platform {text!r}: only linux images can be built on CI runners")
        chosen = _best_override(parts, normalized_overrides)
        legs.append(_override_leg(parts, *chosen, runners, table) if chosen else _default_leg(parts, runners))
    return Plan(provider=provider, legs=tuple(legs))


# --- attestations and signatures ---------------------------------------------------------------

UNKNOWN_PLATFORM_NOTE = (
    "attestation manifests appear in the index as unknown/unknown entries, and that is correct: the "
    "unknown platform keeps docker, containerd and every other runtime from ever pulling one as an "
    "image, while the annotations vnd.docker.reference.type=attestation-manifest and "
    "vnd.docker.reference.digest (and, as OCI artifacts, their subject field) tie each one to the "
    "platform image it describes; splitbuild merge keeps each with its image"
)


def _attestation_notes(ci: CiConfig) -> list[str]:
    parts = []
    if ci.provenance is not False:
        parts.append(f"a SLSA provenance attestation (mode={ci.provenance})")
    if ci.sbom:
        parts.append("an SBOM")
    if not parts:
        why = " (buildah writes none)" if ci.provider == "gitlab" and ci.gitlab.builder == "buildah" else ""
        return [f"attestations: none{why}; the index lists only the platform images"]
    notes = [
        f"attestations: BuildKit gives each platform image {' and '.join(parts)}, pushed as an OCI "
        "artifact (oci-artifact=true) in an attestation manifest beside the image",
        UNKNOWN_PLATFORM_NOTE,
    ]
    if ci.provenance == "max":
        notes.append(
            "provenance mode=max records the build arguments: pass secrets as [image.secrets], "
            "never as build-args"
        )
    return notes


def supply_chain_notes(ci: CiConfig) -> tuple[str, ...]:
    """What the published index carries besides the platform images, and who signs or attests it,
    for ``splitbuild plan``: one sentence per note."""
    notes = _attestation_notes(ci)
    if ci.sign == "cosign":
        if ci.provider == "gitlab":
            who = "a sign job after the merge signs the index with cosign, keyless (GitLab.com OIDC)"
        else:
            who = "the merge job signs the index with cosign, keyless (this workflow's GitHub OIDC)"
        notes.append(
            f"signing: {who}, by digest in every image repository, and shows the cosign verify "
            "command; pull requests never sign"
        )
    if ci.attest:
        notes.append(
            "attestation: the merge job records a GitHub build provenance attestation of the index "
            "digest for every image name and pushes it to the registry (gh attestation verify "
            "oci://IMAGE@DIGEST --repo OWNER/REPO checks it); pull requests never attest"
        )
    return tuple(notes)


def plan(config: Config) -> Plan:
    """The plan for a loaded config, for its CI provider (``[ci] provider``), with the
    :func:`supply_chain_notes` of its ``[ci]`` table."""
    table, overrides = config.runner_overrides
    legs = plan_platforms(config.image.platforms, overrides, config.ci.provider, table)
    return legs.model_copy(update={"notes": supply_chain_notes(config.ci)})
