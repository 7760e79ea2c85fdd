"""``splitbuild.toml``: the typed config and its loader.

The file has four tables: ``[image]`` (what to build and where it goes), ``[tags]``
(docker/metadata-action rules, passed through to ``splitbuild merge``), ``[runners]`` (platform or
prefix -> runner labels) and ``[ci]`` (the CI provider, triggers, pull requests, cache,
provenance/SBOM, signing and attestation, timeouts, registry logins, how the merge job installs
splitbuild), with ``[ci.gitlab]`` and ``[ci.forgejo]`` for what only those providers need (their
own runner tables among it, so one file can serve every CI system). Keys are spelled with hyphens,
as in build-push-action. Every error names the file, the key and what is allowed, as a
:class:`~splitbuild.errors.ConfigError`.
"""

from __future__ import annotations

import posixpath
import re
import tomllib
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from splitbuild._version import __version__
from splitbuild.errors import ConfigError, InvalidReference
from splitbuild.platforms import normalize_arch, split_platform
from splitbuild.reference import (
    DOCKER_HUB,
    canonical_registry,
    image_registry,
    is_registry_host,
    parse_image_name,
)
from splitbuild.runner_config import (
    DEFAULT_RUNNER_KEY,
    RunnerOverride,
    check_runner_labels,
    normalize_runner_key,
)
from splitbuild.runners import PROVIDERS, Provider, catalog
from splitbuild.textline import line_fault, shown

# DOCKER_HUB and image_registry are splitbuild.reference's, re-exported for the workflow generators.
__all__ = [
    "DEFAULT_CONFIG_NAME",
    "DEFAULT_TAG_RULES",
    "DOCKER_HUB",
    "GHCR",
    "CiConfig",
    "Config",
    "ForgejoConfig",
    "GitLabConfig",
    "ImageConfig",
    "LoginConfig",
    "RunnerTable",
    "ScanConfig",
    "TagsConfig",
    "TestConfig",
    "declared_provider",
    "image_registry",
    "load_config",
    "parse_config",
]

DEFAULT_CONFIG_NAME = "splitbuild.toml"
GHCR = "ghcr.io"
# docker/metadata-action's own default rules, written out so the generated workflow says them.
DEFAULT_TAG_RULES = ("type=schedule", "type=ref,event=branch", "type=ref,event=tag", "type=ref,event=pr")

_ACTIONS_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_BUILD_ARG = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_SECRET_ID = re.compile(r"^[A-Za-z0-9_.-]+$")
_LABEL_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]*$")
_PYTHON_VERSION = re.compile(r"^(?:3\.[0-9]+(?:\.[0-9]+)?|pypy3\.[0-9]+)$")
_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")
_STAGE = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9 _.-]*$")
_URL = re.compile(r"^https?://[A-Za-z0-9.-]+(?::[0-9]+)?(?:/[A-Za-z0-9._~%/-]*)?$")


def _kebab(name: str) -> str:
    return name.replace("_", "-")


def _one_line(value: str, what: str) -> str:
    fault = line_fault(value)
    if fault is not None:
        raise ValueError(f"{what} must be a single line of text (it holds {fault})")
    return value


def _actions_name(value: str, what: str) -> str:
    if not _ACTIONS_NAME.match(value):
        raise ValueError(f"{what} {value!r} is not a valid GitHub Actions name (letters, digits, _)")
    if value.upper().startswith("GITHUB_") and value != "GITHUB_TOKEN":
        raise ValueError(f"{what} {value!r}: names starting with GITHUB_ are reserved")
    return value


def _relative_path(value: str, what: str) -> str:
    """``value`` if it names a path inside the repository: relative, and not leading out of the
    top with ``..`` once normalised (``docker/../Dockerfile`` is fine, ``../Dockerfile`` is not)."""
    _one_line(value, what)
    if not value or value.startswith("/") or re.match(r"^[A-Za-z]:[\\/]", value):
        raise ValueError(f"{what} {value!r} must be a relative path inside the repository")
    normalised = posixpath.normpath(value.replace("\\", "/"))
    if normalised == ".." or normalised.startswith("../"):
        raise ValueError(
            f"{what} {value!r} must be a relative path inside the repository (it leads out with '..')"
        )
    return value


def _validate_image_name(name: str) -> str:
    try:
        parse_image_name(name)
    except InvalidReference as exc:
        raise ValueError(exc.message) from None
    return name


def _registry_host(value: str, message: str) -> str:
    """``value`` lower-cased if it is a registry host (``Registry.Example.com`` is
    ``registry.example.com``), else ``ValueError(message)``."""
    if not is_registry_host(value):
        raise ValueError(message)
    return value.lower()


class _Table(BaseModel):
    """A TOML table: hyphenated keys, unknown keys rejected with the list of allowed ones."""

    model_config = ConfigDict(
        extra="forbid", frozen=True, strict=True, alias_generator=_kebab, populate_by_name=True
    )

    @model_validator(mode="before")
    @classmethod
    def _known_keys(cls, data: Any) -> Any:
        if isinstance(data, Mapping):
            allowed = [field.alias or name for name, field in cls.model_fields.items()]
            for key in data:
                if key not in allowed:
                    raise ValueError(f"unknown key {key!r} (allowed: {', '.join(allowed)})")
        elif not isinstance(data, BaseModel):
            raise ValueError(f"must be a table, not {type(data).__name__}")
        return data


class ImageConfig(_Table):
    """``[image]``: what to build, for which platforms, and every repository the index goes to."""

    names: list[str] = Field(min_length=1)
    platforms: list[str] = Field(min_length=1)
    optional_platforms: list[str] = Field(default_factory=list)
    """Platforms (of ``platforms``) whose failed build leg does not stop the merge: it publishes
    the others and reports the ones left out (``merge --optional-platform``)."""
    context: str = "."
    dockerfile: str | None = None
    target: str | None = None
    build_args: dict[str, str] = Field(default_factory=dict)
    build_contexts: dict[str, str] = Field(default_factory=dict)
    secrets: dict[str, str] = Field(default_factory=dict)
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: list[str] = Field(default_factory=list)
    allow_rollback: bool = False
    """Move a tag even when its current index is annotated newer (``merge --allow-rollback``)."""
    delete_displaced: bool = False
    """Delete the indexes moved tags left, where nothing uses them (``merge --delete-displaced``)."""

    @field_validator("names")
    @classmethod
    def _names(cls, names: list[str]) -> list[str]:
        seen: set[str] = set()
        for name in names:
            _validate_image_name(name)
            if name in seen:
                raise ValueError(f"image name {name!r} is listed twice")
            seen.add(name)
        return names

    @field_validator("platforms")
    @classmethod
    def _platforms(cls, platforms: list[str]) -> list[str]:
        out: list[str] = []
        for text in platforms:
            try:
                parts = split_platform(text)
            except ConfigError as exc:
                raise ValueError(exc.message) from None
            name = str(parts)
            if parts.os != "linux":
                raise ValueError(f"platform {text!r}: only linux images can be built on CI runners")
            if name in out:
                raise ValueError(f"platform {text!r} is listed twice (as {name})")
            out.append(name)
        return out

    @field_validator("optional_platforms")
    @classmethod
    def _optional_platforms(cls, platforms: list[str], info: ValidationInfo) -> list[str]:
        out: list[str] = []
        for text in platforms:
            try:
                name = str(split_platform(text))
            except ConfigError as exc:
                raise ValueError(exc.message) from None
            if name in out:
                raise ValueError(f"optional platform {text!r} is listed twice (as {name})")
            out.append(name)
        every = info.data.get("platforms")
        if every is None:  # platforms itself is invalid (reported)
            return out
        unknown = [p for p in out if p not in every]
        if unknown:
            raise ValueError(f"{', '.join(unknown)} not in platforms ({', '.join(every)})")
        if out and len(out) == len(every):
            raise ValueError("every platform is optional; at least one platform must be required")
        return out

    @property
    def required_platforms(self) -> list[str]:
        """``platforms`` without the optional ones: the merge refuses to publish without any."""
        return [p for p in self.platforms if p not in self.optional_platforms]

    @field_validator("context")
    @classmethod
    def _context(cls, value: str) -> str:
        return _relative_path(value, "context")

    @field_validator("dockerfile")
    @classmethod
    def _dockerfile(cls, value: str | None) -> str | None:
        return None if value is None else _relative_path(value, "dockerfile")

    @field_validator("target")
    @classmethod
    def _target(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", value):
            raise ValueError(f"target {value!r} is not a valid build stage name")
        return value

    @field_validator("build_args")
    @classmethod
    def _build_args(cls, args: dict[str, str]) -> dict[str, str]:
        for key, value in args.items():
            if not _BUILD_ARG.match(key):
                raise ValueError(f"build-arg name {key!r} must be letters, digits and _")
            _one_line(value, f"build-arg {key}")
        return args

    @field_validator("build_contexts")
    @classmethod
    def _build_contexts(cls, contexts: dict[str, str]) -> dict[str, str]:
        for key, value in contexts.items():
            if not _SECRET_ID.match(key) or not value:
                raise ValueError(f"build-context {key!r} needs a name (letters, digits, . _ -) and a value")
            _one_line(value, f"build-context {key}")
        return contexts

    @field_validator("secrets")
    @classmethod
    def _secrets(cls, secrets: dict[str, str]) -> dict[str, str]:
        for key, value in secrets.items():
            if not _SECRET_ID.match(key):
                raise ValueError(f"secret id {key!r} must be letters, digits, . _ or -")
            _actions_name(value, f"secret {key}: Actions secret name")
        return secrets

    @field_validator("labels")
    @classmethod
    def _labels(cls, labels: dict[str, str]) -> dict[str, str]:
        for key, value in labels.items():
            if not _LABEL_KEY.match(key):
                raise ValueError(f"label key {key!r} is not valid (letters, digits, . _ / -)")
            _one_line(value, f"label {key}")
        return labels

    @field_validator("annotations")
    @classmethod
    def _annotations(cls, annotations: list[str]) -> list[str]:
        for item in annotations:
            _one_line(item, "annotation")
            key, sep, _ = item.partition("=")
            if not sep or not key:
                raise ValueError(f"annotation {item!r} must be KEY=VALUE (optionally index:KEY=VALUE)")
        return annotations


class TagsConfig(_Table):
    """``[tags]``: docker/metadata-action rules, same syntax and meaning; ``splitbuild merge``
    computes the tags in the merge job."""

    rules: list[str] = Field(default_factory=lambda: list(DEFAULT_TAG_RULES))
    flavor: list[str] = Field(default_factory=list)
    labels: list[str] = Field(default_factory=list)

    @field_validator("rules", "flavor", "labels")
    @classmethod
    def _lines(cls, items: list[str]) -> list[str]:
        for item in items:
            _one_line(item, "each rule (one per list item)")
            if not item.strip():
                raise ValueError("empty rule")
        return items

    # The merge job computes the tags; checking the rules here (splitbuild.tags.validate: syntax,
    # templates, keys, regular expressions) makes a typo fail at `splitbuild generate` instead of
    # in the merge job of the first release.
    @field_validator("rules")
    @classmethod
    def _tag_rules(cls, rules: list[str]) -> list[str]:
        from splitbuild.tags import parse_rule_lines
        from splitbuild.tags.flavor import Flavor
        from splitbuild.tags.rules import parse_tag_rule
        from splitbuild.tags.validate import check_configuration

        try:
            for item in rules:
                if len(parse_rule_lines([item], name="tag rule")) != 1:
                    raise ConfigError(f"tag rule {item!r}: one rule per list item")
            check_configuration([parse_tag_rule(item) for item in rules], Flavor(), (), ())
        except ConfigError as exc:
            raise ValueError(exc.message) from None
        return rules

    @field_validator("flavor")
    @classmethod
    def _flavor(cls, flavor: list[str]) -> list[str]:
        from splitbuild.tags import parse_rule_lines
        from splitbuild.tags.flavor import parse_flavor_lines
        from splitbuild.tags.validate import check_configuration

        try:
            check_configuration((), parse_flavor_lines(parse_rule_lines(flavor, name="flavor")), (), ())
        except ConfigError as exc:
            raise ValueError(exc.message) from None
        return flavor

    @field_validator("labels")
    @classmethod
    def _labels(cls, labels: list[str]) -> list[str]:
        from splitbuild.tags.flavor import Flavor
        from splitbuild.tags.validate import check_configuration

        try:
            check_configuration((), Flavor(), labels, ())
        except ConfigError as exc:
            raise ValueError(exc.message) from None
        return labels


class LoginConfig(_Table):
    """``[ci.logins."HOST"]``: how the jobs log in to a registry (set the host to ``false`` for a
    registry that needs no login). The user name is one of ``username`` (literal),
    ``username-var`` (an Actions variable) or ``username-secret``; the password is an Actions secret."""

    username: str | None = None
    username_var: str | None = None
    username_secret: str | None = None
    password_secret: str

    @field_validator("username")
    @classmethod
    def _username(cls, value: str | None) -> str | None:
        return None if value is None else _one_line(value, "username")

    @field_validator("username_var", "username_secret", "password_secret")
    @classmethod
    def _names(cls, value: str | None) -> str | None:
        return None if value is None else _actions_name(value, "name")

    @model_validator(mode="after")
    def _one_username(self) -> LoginConfig:
        given = [v for v in (self.username, self.username_var, self.username_secret) if v is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of username, username-var, username-secret")
        return self


def _default_install() -> str:
    return f"splitbuild=={__version__}"


def _runner_override(value: Any) -> RunnerOverride:
    if isinstance(value, RunnerOverride):
        return value
    arch: str | None = None
    labels: Any = value
    if isinstance(value, Mapping):
        unknown = sorted(set(value) - {"labels", "arch"})
        if unknown:
            raise ValueError(f"unknown key {unknown[0]!r} (allowed: labels, arch)")
        if "labels" not in value:
            raise ValueError("a runner table needs labels")
        labels = value["labels"]
        raw_arch = value.get("arch")
        if raw_arch is not None:
            if not isinstance(raw_arch, str):
                raise ValueError("arch must be a string such as amd64, arm64 or riscv64")
            try:
                arch = normalize_arch(raw_arch)[0]
            except ConfigError as exc:
                raise ValueError(exc.message) from None
    if isinstance(labels, str):
        labels = [labels]
    if (
        not isinstance(labels, list)
        or not labels
        or not all(isinstance(x, str) and x.strip() for x in labels)
    ):
        raise ValueError('a runner is a label, a list of labels, or { labels = [...], arch = "..." }')
    for label in labels:
        _one_line(label, "runner label")
    try:
        check_runner_labels(labels)
    except ConfigError as exc:
        raise ValueError(exc.message) from None
    return RunnerOverride(labels=tuple(labels), arch=arch)


def _runner_keys(runners: Any) -> Any:
    if not isinstance(runners, Mapping):
        raise ValueError("must be a table of platform (or prefix, or default) = runner label(s)")
    out: dict[str, Any] = {}
    spelled: dict[str, str] = {}
    for key, value in runners.items():
        try:
            normalized = normalize_runner_key(key)
        except ConfigError as exc:
            raise ValueError(f"key {key!r}: {exc.message}") from None
        if normalized in out:
            raise ValueError(f"keys {spelled[normalized]!r} and {key!r} both mean {normalized!r}")
        out[normalized] = value
        spelled[normalized] = key
    return out


# A runners table: platform (or prefix, or default) -> runner, keys normalised.
RunnerTable = Annotated[
    dict[str, Annotated[RunnerOverride, BeforeValidator(_runner_override)]], BeforeValidator(_runner_keys)
]


def _runner_labels(value: str | list[str] | None) -> str | list[str] | None:
    labels = [value] if isinstance(value, str) else value
    if labels is not None and (not labels or any(not label.strip() for label in labels)):
        raise ValueError("needs at least one non-empty runner label")
    for label in labels or ():
        _one_line(label, "runner label")
    return value


def _labels_tuple(value: str | list[str]) -> tuple[str, ...]:
    return (value,) if isinstance(value, str) else tuple(value)


def _container_image(value: str, what: str) -> str:
    _one_line(value, what)
    if not value or any(c.isspace() for c in value):
        raise ValueError(f"{what} {value!r} must be an image reference without spaces")
    return value


class GitLabConfig(_Table):
    """``[ci.gitlab]``: what only GitLab CI needs (used when the provider is ``gitlab``)."""

    runners: RunnerTable | None = None
    merge_runner: str | list[str] | None = None
    builder: Literal["buildx", "buildah"] = "buildx"
    docker_image: str = "docker:29-cli"
    dind_image: str = "docker:29-dind"
    dind_mtu: int = Field(default=1360, ge=0, le=65535)
    buildah_image: str = "quay.io/buildah/stable:v1.43"
    python_image: str | None = None
    cosign_image: str = "alpine:3.22"
    ci_registry: str = "registry.gitlab.com"
    build_stage: str = "build"
    merge_stage: str = "deploy"
    insecure_registries: list[str] = Field(default_factory=list)
    """Registry hosts (``host[:port]``) reached over plain HTTP by the build jobs and the merge."""
    web_branches: list[str] = Field(default_factory=list)
    """Branch patterns (besides the default branch) whose "Run pipeline" (web) pipelines publish."""

    @field_validator("merge_runner")
    @classmethod
    def _merge_runner(cls, value: str | list[str] | None) -> str | list[str] | None:
        return _runner_labels(value)

    @field_validator("insecure_registries")
    @classmethod
    def _insecure(cls, hosts: list[str]) -> list[str]:
        for host in hosts:
            if not is_registry_host(host):
                raise ValueError(f"insecure-registries: {host!r} must be a registry host[:port]")
        return [host.lower() for host in hosts]

    @field_validator("web_branches")
    @classmethod
    def _web_branches(cls, patterns: list[str]) -> list[str]:
        for pattern in patterns:
            _one_line(pattern, "pattern")
            if not pattern.strip():
                raise ValueError("empty pattern")
        return patterns

    @field_validator("docker_image", "dind_image", "buildah_image", "python_image", "cosign_image")
    @classmethod
    def _images(cls, value: str | None) -> str | None:
        return None if value is None else _container_image(value, "image")

    @field_validator("dind_mtu")
    @classmethod
    def _mtu(cls, value: int) -> int:
        if 0 < value < 576:
            raise ValueError(f"dind-mtu {value} is below 576 (0 keeps Docker's default)")
        return value

    @field_validator("ci_registry")
    @classmethod
    def _registry(cls, value: str) -> str:
        return _registry_host(
            value, f"ci-registry {value!r} must be a registry host (e.g. registry.gitlab.com)"
        )

    @field_validator("build_stage", "merge_stage")
    @classmethod
    def _stage(cls, value: str) -> str:
        if not _STAGE.match(value):
            raise ValueError(f"stage {value!r} must be letters, digits, spaces and . _ - (not a leading .)")
        return value


class ForgejoConfig(_Table):
    """``[ci.forgejo]``: what only Forgejo/Gitea Actions needs (used when the provider is ``forgejo``)."""

    runners: RunnerTable | None = None
    merge_runner: str | list[str] | None = None
    actions_url: str = "https://github.com"

    @field_validator("merge_runner")
    @classmethod
    def _merge_runner(cls, value: str | list[str] | None) -> str | list[str] | None:
        return _runner_labels(value)

    @field_validator("actions_url")
    @classmethod
    def _actions_url(cls, value: str) -> str:
        if not _URL.match(value):
            raise ValueError(f"actions-url {value!r} must be an http(s) URL such as https://github.com")
        return value.rstrip("/")


def _builder(gitlab: Any) -> Any:
    if isinstance(gitlab, GitLabConfig):
        return gitlab.builder
    return gitlab.get("builder", "buildx") if isinstance(gitlab, Mapping) else "buildx"


class CiConfig(_Table):
    """``[ci]``: the CI provider, triggers, pull-request behaviour, cache, attestations, signing,
    timeouts, logins; ``[ci.gitlab]`` and ``[ci.forgejo]`` hold what only those providers need."""

    provider: Provider = "github"
    name: str = "splitbuild"
    branches: list[str] = Field(default_factory=lambda: ["main"])
    tags: list[str] = Field(default_factory=lambda: ["v*"])
    pull_requests: bool = True
    previews: bool = False
    """Same-repository pull requests (merge requests) publish a ``pr-<N>`` (``mr-<N>``) index,
    deleted when they close; pull requests from forks never push."""
    workflow_dispatch: bool = True
    schedule: list[str] = Field(default_factory=list)
    timeout_minutes: int = Field(default=60, ge=1, le=4320)
    qemu_timeout_minutes: int = Field(default=180, ge=1, le=4320)
    merge_timeout_minutes: int = Field(default=15, ge=1, le=4320)
    merge_runner: str | list[str] | None = None
    environment: str | None = None
    cache: Literal["gha", "registry", "none"] = "gha"
    cache_mode: Literal["min", "max"] = "max"
    provenance: Literal["min", "max", False] = "min"
    sbom: bool = False
    sign: Literal["cosign", False] = False
    attest: bool = False
    install: str = Field(default_factory=_default_install)
    python_version: str = "3.12"
    binfmt_image: str | None = None
    logins: dict[str, LoginConfig | Literal[False]] = Field(default_factory=dict)
    gitlab: GitLabConfig = Field(default_factory=GitLabConfig)
    forgejo: ForgejoConfig = Field(default_factory=ForgejoConfig)

    @model_validator(mode="before")
    @classmethod
    def _provider_defaults(cls, data: Any) -> Any:
        """Defaults that depend on the provider: the cache (GitHub's cache service only on
        GitHub), and no provenance with buildah (which writes none)."""
        if not isinstance(data, Mapping) or data.get("provider", "github") not in PROVIDERS:
            return data
        provider = data.get("provider", "github")
        out = dict(data)
        out.setdefault("cache", "gha" if provider == "github" else "registry")
        if provider == "gitlab" and _builder(data.get("gitlab")) == "buildah":
            if data.get("provenance", False) is not False:
                raise ValueError(
                    f"provenance {data['provenance']!r} needs [ci.gitlab] builder = 'buildx' "
                    "(buildah writes no provenance attestations); set provenance = false"
                )
            if data.get("sbom") is True:
                raise ValueError("sbom = true needs [ci.gitlab] builder = 'buildx' (buildah writes no SBOM)")
            out["provenance"] = False
        return out

    @field_validator("name", "install")
    @classmethod
    def _single_line(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be empty")
        return _one_line(value, "value")

    @field_validator("environment")
    @classmethod
    def _environment(cls, value: str | None) -> str | None:
        """The merge job's deployment environment (GitHub/Forgejo ``environment:``)."""
        if value is not None and not re.fullmatch(r"[A-Za-z0-9._-]+( [A-Za-z0-9._-]+)*", value):
            raise ValueError(
                f"environment {value!r} must be a name of letters, digits, '.', '_', '-' and single spaces"
            )
        return value

    @field_validator("branches", "tags")
    @classmethod
    def _patterns(cls, patterns: list[str]) -> list[str]:
        for pattern in patterns:
            _one_line(pattern, "pattern")
            if not pattern.strip():
                raise ValueError("empty pattern")
        return patterns

    @field_validator("schedule")
    @classmethod
    def _cron(cls, crons: list[str]) -> list[str]:
        for cron in crons:
            if len(cron.split()) != 5:
                raise ValueError(f"schedule {cron!r} must be a cron expression with 5 fields")
        return crons

    @field_validator("merge_runner")
    @classmethod
    def _merge_runner(cls, value: str | list[str] | None) -> str | list[str] | None:
        return _runner_labels(value)

    @field_validator("python_version")
    @classmethod
    def _python(cls, value: str) -> str:
        if not _PYTHON_VERSION.match(value):
            raise ValueError(f"python-version {value!r} must look like 3.12 (3.11 or newer)")
        if value.startswith("3.") and int(value.split(".")[1]) < 11:
            raise ValueError(f"python-version {value!r}: splitbuild needs Python 3.11 or newer")
        return value

    @field_validator("binfmt_image")
    @classmethod
    def _binfmt(cls, value: str | None) -> str | None:
        return None if value is None else _one_line(value, "binfmt-image")

    @field_validator("logins", mode="before")
    @classmethod
    def _login_values(cls, logins: Any) -> Any:
        if isinstance(logins, Mapping):
            for host, login in logins.items():
                if login is not False and not isinstance(login, Mapping | LoginConfig):
                    raise ValueError(
                        f"{host!r} must be a table (username or username-var or username-secret, "
                        "and password-secret) or false"
                    )
        return logins

    @field_validator("logins")
    @classmethod
    def _logins(
        cls, logins: dict[str, LoginConfig | Literal[False]]
    ) -> dict[str, LoginConfig | Literal[False]]:
        out: dict[str, LoginConfig | Literal[False]] = {}
        for host, login in logins.items():
            _registry_host(host, f"login key {host!r} must be a registry host (e.g. docker.io, quay.io)")
            key = canonical_registry(host)
            if key in out:
                raise ValueError(f"registry {key!r} has two logins")
            out[key] = login
        return out

    @model_validator(mode="after")
    def _some_trigger(self) -> CiConfig:
        if not (self.branches or self.tags or self.pull_requests or self.workflow_dispatch or self.schedule):
            raise ValueError("no trigger: set branches, tags, pull-requests, workflow-dispatch or schedule")
        if self.previews and not self.pull_requests:
            raise ValueError(
                "previews = true needs pull-requests = true (previews are built from pull requests)"
            )
        if self.provider == "gitlab" and self.cache == "gha":
            raise ValueError("cache 'gha' is GitHub's cache service; with GitLab use 'registry' or 'none'")
        return self

    @model_validator(mode="after")
    def _signing_support(self) -> CiConfig:
        """``sign`` and ``attest`` need what only some providers' jobs have."""
        if self.attest and self.provider != "github":
            raise ValueError(
                f"attest = true is not supported with provider {self.provider!r}: it records a GitHub "
                "artifact attestation (actions/attest-build-provenance), which only GitHub Actions has; "
                "set attest = false"
            )
        if self.sign and self.provider == "forgejo":
            raise ValueError(
                "sign = 'cosign' is not supported with provider 'forgejo': keyless cosign needs an OIDC "
                "identity that the public Sigstore accepts, and Forgejo/Gitea Actions jobs have none; "
                "set sign = false"
            )
        return self

    @property
    def merge_runner_labels(self) -> tuple[str, ...]:
        """Where the merge job runs: ``[ci.<provider>] merge-runner``, else ``[ci] merge-runner``,
        else the provider's default."""
        by_provider = {"gitlab": self.gitlab.merge_runner, "forgejo": self.forgejo.merge_runner}
        specific = by_provider.get(self.provider)
        value = specific if specific is not None else self.merge_runner
        return (catalog(self.provider).merge_runner,) if value is None else _labels_tuple(value)

    @property
    def default_logins(self) -> frozenset[str]:
        """Registries the provider can log in to without a ``[ci.logins]`` entry: ``ghcr.io``
        (``GITHUB_TOKEN``) on GitHub, the GitLab registry (``CI_REGISTRY_USER``/``_PASSWORD``) on
        GitLab, and Docker Hub (``DOCKERHUB_USERNAME``/``DOCKERHUB_TOKEN``) everywhere."""
        if self.provider == "github":
            return frozenset({GHCR, DOCKER_HUB})
        if self.provider == "gitlab":
            return frozenset({self.gitlab.ci_registry, DOCKER_HUB})
        return frozenset({DOCKER_HUB})

    @property
    def gitlab_python_image(self) -> str:
        """The merge job's image on GitLab: ``[ci.gitlab] python-image``, else the official
        Python (or PyPy) image for ``python-version``."""
        if self.gitlab.python_image is not None:
            return self.gitlab.python_image
        if self.python_version.startswith("pypy"):
            return f"pypy:{self.python_version.removeprefix('pypy')}-slim"
        return f"python:{self.python_version}-slim"


# --- leg checks: [test] and [scan] -------------------------------------------------------------

SCANNERS = ("trivy", "grype")
SEVERITIES = ("low", "medium", "high", "critical")
_SCANNER_VERSION = re.compile(r"^v?[0-9]+\.[0-9]+\.[0-9]+$")
TestCommand = str | list[str]


def _test_command(value: Any, what: str | None) -> Any:
    """A smoke-test command: a shell line (run by ``/bin/sh -c`` in the image) or an argument list
    (run as is); ``false`` (only per platform) skips the platform."""
    where = f"{what}: " if what else ""
    if isinstance(value, str):
        if not value.strip():
            raise ValueError(f"{where}an empty command")
        return _one_line(value, what or "the command")
    if isinstance(value, list):
        if not value or not all(isinstance(item, str) and item for item in value):
            raise ValueError(f"{where}an argument list needs non-empty strings")
        for item in value:
            _one_line(item, what or "the command")
        return value
    raise ValueError(f"{where}must be a command line (string) or an argument list")


class TestConfig(_Table):
    """``[test]``: the smoke test run in every leg's image right after its build, before its digest
    goes to the merge. ``platforms`` replaces the command for a platform (``false``: no test there)."""

    __test__ = False  # not a pytest class

    command: TestCommand
    platforms: dict[str, TestCommand | Literal[False]] = Field(default_factory=dict)

    @field_validator("command", mode="before")
    @classmethod
    def _command(cls, value: Any) -> Any:
        return _test_command(value, None)

    @field_validator("platforms", mode="before")
    @classmethod
    def _platform_commands(cls, value: Any) -> Any:
        if not isinstance(value, Mapping):
            return value
        out: dict[str, Any] = {}
        for key, command in value.items():
            try:
                platform = str(split_platform(key))
            except ConfigError as exc:
                raise ValueError(f"key {key!r}: {exc.message}") from None
            if platform in out:
                raise ValueError(f"platform {key!r} is listed twice (as {platform})")
            out[platform] = command if command is False else _test_command(command, platform)
        return out

    def command_for(self, platform: str) -> list[str] | None:
        """The argument vector run in ``platform``'s image (a shell line as ``/bin/sh -c LINE``),
        or None when that platform has no test."""
        command = self.platforms.get(platform, self.command)
        if command is False:
            return None
        return ["/bin/sh", "-c", command] if isinstance(command, str) else list(command)


class ScanConfig(_Table):
    """``[scan]``: the vulnerability scan of every leg's image before any tag exists. A finding at
    or above ``severity`` stops the leg."""

    scanner: Literal["trivy", "grype"] = "trivy"
    severity: Literal["low", "medium", "high", "critical"] = "high"
    ignore_unfixed: bool = False
    allow_list: str | None = None
    """The scanner's own ignore file: ``.trivyignore`` syntax for trivy, a grype config for grype."""
    version: str | None = None
    """The scanner release CI installs (default: :data:`SCANNER_VERSIONS`)."""

    @field_validator("allow_list")
    @classmethod
    def _allow_list(cls, value: str | None) -> str | None:
        return None if value is None else _relative_path(value, "allow-list")

    @field_validator("version")
    @classmethod
    def _version(cls, value: str | None) -> str | None:
        if value is not None and not _SCANNER_VERSION.match(value):
            raise ValueError(f"version {value!r} must be a release number such as 0.68.2")
        return value

    @property
    def severities(self) -> list[str]:
        """The threshold and every severity above it, lowest first."""
        return list(SEVERITIES[SEVERITIES.index(self.severity) :])

    @property
    def scanner_version(self) -> str:
        """The release CI installs, as ``X.Y.Z`` (no ``v``)."""
        return (self.version or SCANNER_VERSIONS[self.scanner]).removeprefix("v")


SCANNER_VERSIONS = {"trivy": "0.68.2", "grype": "0.110.0"}


class Config(_Table):
    """A whole ``splitbuild.toml``."""

    image: ImageConfig
    tags: TagsConfig = Field(default_factory=TagsConfig)
    runners: RunnerTable = Field(default_factory=dict)
    ci: CiConfig = Field(default_factory=CiConfig)
    test: TestConfig | None = None
    scan: ScanConfig | None = None

    @model_validator(mode="before")
    @classmethod
    def _no_expressions(cls, data: Any) -> Any:
        for path, value in _walk(data, ()):
            if isinstance(value, str) and "${{" in value:
                raise ValueError(
                    f"{_format_loc(path)}: GitHub expressions (${{{{ ... }}}}) are not allowed in config "
                    "values; use the *-var and *-secret keys"
                )
        return data

    @model_validator(mode="before")
    @classmethod
    def _single_lines(cls, data: Any) -> Any:
        """Every key and string value is one line of text: the generated files carry them in
        comments, headers and scalars, where a line break would start new YAML."""
        for path, value in _walk(data, ()):
            fault = line_fault(value) if isinstance(value, str) else None
            if fault is not None:
                raise ValueError(f"{_format_loc(path)}: holds {fault}; config values must be single lines")
        return data

    @model_validator(mode="after")
    def _cross_checks(self) -> Config:
        tables = [("[runners]", self.runners)]
        tables += [(f"[ci.{p}.runners]", t) for p, t in self._provider_tables().items() if t is not None]
        for table, runners in tables:
            for key in runners:
                if key != DEFAULT_RUNNER_KEY and not any(
                    f"{p}/".startswith(f"{key}/") for p in self.image.platforms
                ):
                    raise ValueError(
                        f"{table} key {key!r} matches none of image.platforms "
                        f"({', '.join(self.image.platforms)})"
                    )
        if self.test is not None:
            for platform in self.test.platforms:
                if platform not in self.image.platforms:
                    raise ValueError(
                        f"test.platforms key {platform!r} is not in image.platforms "
                        f"({', '.join(self.image.platforms)})"
                    )
        for name in self.image.names:
            registry = image_registry(name)
            if registry not in self.ci.default_logins and registry not in self.ci.logins:
                raise ValueError(
                    f"image name {name!r}: no login for registry {registry!r}; add "
                    f'[ci.logins."{registry}"] with username and password-secret, or set it to false'
                )
        return self

    def _provider_tables(self) -> dict[str, dict[str, RunnerOverride] | None]:
        return {"gitlab": self.ci.gitlab.runners, "forgejo": self.ci.forgejo.runners}

    @property
    def runner_overrides(self) -> tuple[str, dict[str, RunnerOverride]]:
        """The runner overrides for the configured provider and the table they come from:
        ``[ci.gitlab.runners]`` / ``[ci.forgejo.runners]`` when present, else ``[runners]``."""
        specific = self._provider_tables().get(self.ci.provider)
        if specific is not None:
            return f"[ci.{self.ci.provider}.runners]", specific
        return "[runners]", self.runners

    @property
    def registries(self) -> tuple[str, ...]:
        """The registries of ``image.names`` in order, then the other ``[ci.logins]`` hosts."""
        out: list[str] = []
        for host in [image_registry(n) for n in self.image.names] + list(self.ci.logins):
            if host not in out:
                out.append(host)
        return tuple(out)


def _walk(data: Any, path: tuple[str | int, ...]) -> Iterator[tuple[tuple[str | int, ...], Any]]:
    if isinstance(data, Mapping):
        for key, value in data.items():
            yield (*path, str(key)), key
            yield from _walk(value, (*path, str(key)))
    elif isinstance(data, list):
        for index, value in enumerate(data):
            yield from _walk(value, (*path, index))
    else:
        yield path, data


def _format_loc(loc: tuple[str | int, ...]) -> str:
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        elif line_fault(part) is not None:
            text += f'."{shown(part)}"' if text else f'"{shown(part)}"'
        elif _BARE_KEY.match(part):
            text += f".{part}" if text else part
        else:
            text += f'."{part}"' if text else f'"{part}"'
    return text


_TYPE_MESSAGES = {
    "missing": "required key is missing",
    "string_type": "must be a string",
    "list_type": "must be a list",
    "dict_type": "must be a table",
    "bool_type": "must be true or false",
    "int_type": "must be an integer",
    "model_type": "must be a table",
    "dataclass_type": "must be a table",
}


def _describe(error: Mapping[str, Any]) -> str:
    loc = tuple(
        p for p in error["loc"] if not (isinstance(p, str) and p.startswith(("function-", "literal[")))
    )
    kind = error["type"]
    if kind == "value_error":
        message = str(error["msg"]).removeprefix("Value error, ")
    elif kind in _TYPE_MESSAGES:
        message = _TYPE_MESSAGES[kind]
    elif kind == "literal_error":
        message = f"must be {error['ctx']['expected']}".replace("False", "false")
    elif kind == "too_short":
        message = "must not be empty"
    elif kind in ("greater_than_equal", "less_than_equal"):
        message = str(error["msg"]).replace("Input", "value")
    else:
        message = str(error["msg"])
    where = _format_loc(loc)
    return f"{where}: {message}" if where else message


def _union_noise(error: Mapping[str, Any]) -> bool:
    # For `LoginConfig | false`, pydantic reports both branches; the `false` branch is noise
    # when the value was a table.
    return error["type"] == "literal_error" and isinstance(error.get("input"), Mapping)


def _with_provider(data: Any, provider: str | None) -> Any:
    if provider is None or not isinstance(data, dict):
        return data
    ci = data.get("ci", {})
    return {**data, "ci": {**ci, "provider": provider}} if isinstance(ci, dict) else data


def parse_config(text: str, source: str = DEFAULT_CONFIG_NAME, *, provider: str | None = None) -> Config:
    """Parse the TOML text of a config; ``source`` names the file in error messages. ``provider``
    replaces ``[ci] provider`` (``splitbuild generate --ci``) before validation, so the
    provider's defaults and checks apply."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: invalid TOML: {exc}") from None
    except RecursionError:
        raise ConfigError(f"{source}: invalid TOML: arrays or tables nested too deeply") from None
    try:
        return Config.model_validate(_with_provider(data, provider))
    except ValidationError as exc:
        errors = [e for e in exc.errors(include_url=False) if not _union_noise(e)] or exc.errors(
            include_url=False
        )
        first = _describe(errors[0])
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        raise ConfigError(f"{source}: {first}{more}") from None


# A splitbuild.toml is a few KiB; the cap keeps a wrong path (a log, a device) from being read whole.
CONFIG_MAX_BYTES = 1 << 20


def _read(path: str | Path) -> tuple[str, str]:
    """The config's name for messages (one line) and its text (a regular file, size-capped)."""
    from splitbuild.inputfile import display, read_text_file

    file = display(Path(path))
    text = read_text_file(
        path,
        limit=CONFIG_MAX_BYTES,
        label=file,
        missing="config file not found",
        missing_hint="run `splitbuild init` to write a starter config",
    )
    return file, text


def load_config(path: str | Path = DEFAULT_CONFIG_NAME, *, provider: str | None = None) -> Config:
    """Read and validate a config file (for ``provider`` instead of its ``[ci] provider``, if given)."""
    file, text = _read(path)
    return parse_config(text, file, provider=provider)


def declared_provider(path: str | Path = DEFAULT_CONFIG_NAME) -> str:
    """The ``[ci] provider`` a config file names (``github`` when it names none); the file is
    validated only by :func:`load_config`."""
    file, text = _read(path)
    try:
        ci = tomllib.loads(text).get("ci", {})
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{file}: invalid TOML: {exc}") from None
    except RecursionError:
        raise ConfigError(f"{file}: invalid TOML: arrays or tables nested too deeply") from None
    provider = ci.get("provider", "github") if isinstance(ci, dict) else "github"
    return provider if isinstance(provider, str) else "github"


def find_config(start: Path, name: str = DEFAULT_CONFIG_NAME) -> Path | None:
    """The config file ``name`` in ``start`` or the nearest directory above it, as git finds its
    repository: the search stops at the first directory holding ``.git`` (the top of the
    repository) or at the file system's root. None when there is none."""
    directory = start.resolve()
    while True:
        candidate = directory / name
        if candidate.is_file():
            return candidate
        if (directory / ".git").exists() or directory.parent == directory:
            return None
        directory = directory.parent


def repository_top(config_path: str | Path) -> Path:
    """The top of the repository the config file ``config_path`` belongs to, found as
    :func:`find_config` finds it (as git does): the nearest directory at or above the file's holding
    ``.git``; the file's own directory when there is none. Absolute, symbolic links resolved."""
    start = Path(config_path).absolute().parent.resolve()
    directory = start
    while not (directory / ".git").exists():
        if directory.parent == directory:
            return start
        directory = directory.parent
    return directory
