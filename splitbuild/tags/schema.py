"""Typed inputs, CI context and result of the tag computation (pydantic, no I/O besides ``from_file``).

Field names are snake_case; the camelCase names of metadata-action's test vectors and of the JSON
context file (``eventName``, ``commitDate``, ``sepTags``...) are accepted as aliases.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from splitbuild.errors import ConfigError
from splitbuild.tags.github_env import CONTEXT_MAX_BYTES, github_context_data
from splitbuild.tags.gitlab_env import gitlab_context_data

__all__ = [
    "CONTEXT_MAX_BYTES",
    "DEFAULT_BAKE_TARGET",
    "Context",
    "Inputs",
    "Metadata",
    "RepoInfo",
    "RepoLicense",
    "VersionInfo",
    "validation_message",
]

DEFAULT_BAKE_TARGET = "docker-metadata-action"


def validation_message(source: str, error: ValidationError) -> str:
    """One line naming the first invalid field of ``error``."""
    first = error.errors()[0]
    where = ".".join(str(part) for part in first["loc"]) or "value"
    more = len(error.errors()) - 1
    suffix = f" (and {more} more)" if more else ""
    return f"{source}: {where}: {first['msg']}{suffix}"


class RepoLicense(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    spdx_id: str | None = None


class RepoInfo(BaseModel):
    """What the ``org.opencontainers.image.*`` labels need (the GitHub repository API's shape)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    name: str | None = None
    description: str | None = None
    html_url: str | None = None
    license: RepoLicense | None = None


class Context(BaseModel):
    """The CI event the tags are computed for, before metadata-action's own adjustments.

    ``ref``/``sha`` are the raw ``GITHUB_REF``/``GITHUB_SHA`` (the ``pull_request_target`` rewrite
    and ``DOCKER_METADATA_PR_HEAD_SHA`` are applied by the computation). ``commit_date`` ``None``
    means "from the payload's commits, else now"; ``now`` ``None`` means the wall clock.
    ``default_branch`` is the repository's default branch used by ``type=edge``;
    ``payload.repository.default_branch`` is the one ``{{is_default_branch}}`` reads. ``env`` holds
    the ``DOCKER_METADATA_*`` settings in force.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    event_name: str = Field("", alias="eventName")
    ref: str = ""
    sha: str = ""
    payload: dict[str, Any] = Field(default_factory=dict)
    commit_date: datetime | None = Field(None, alias="commitDate")
    now: datetime | None = None
    default_branch: str | None = Field(None, alias="defaultBranch")
    repo: RepoInfo = Field(default_factory=RepoInfo)
    env: dict[str, str] = Field(default_factory=dict)

    @field_validator("commit_date", "now")
    @classmethod
    def _to_utc_milliseconds(cls, value: datetime | None) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value.astimezone(UTC).replace(microsecond=value.microsecond // 1000 * 1000)

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], *, source: str = "context") -> Context:
        """Validate a context given as JSON data (the format of the context file and the vectors)."""
        try:
            return cls.model_validate(dict(data))
        except ValidationError as exc:
            raise ConfigError(validation_message(source, exc)) from None

    @classmethod
    def from_file(cls, path: str | Path) -> Context:
        """Read a JSON context file (see :meth:`to_file_data` for its format)."""
        from splitbuild.inputfile import display, read_text_file

        where = f"context file '{display(path)}'"
        text = read_text_file(path, limit=CONTEXT_MAX_BYTES, label=where, missing="does not exist")
        try:
            data = json.loads(text)
        except (RecursionError, json.JSONDecodeError) as exc:
            raise ConfigError(f"{where} is not JSON: {exc}") from None
        if not isinstance(data, dict):
            raise ConfigError(f"{where} must hold a JSON object")
        return cls.from_mapping(data, source=where)

    @classmethod
    def from_environment(cls, env: Mapping[str, str]) -> Context:
        """The context of the running CI job: GitHub Actions or GitLab CI, from its variables."""
        if env.get("GITHUB_ACTIONS") == "true":
            return cls.from_mapping(github_context_data(env), source="GitHub Actions context")
        if env.get("GITLAB_CI") == "true":
            return cls.from_mapping(gitlab_context_data(env), source="GitLab CI context")
        raise ConfigError(
            "no CI context: neither GITHUB_ACTIONS=true nor GITLAB_CI=true is set",
            hint="outside CI, read a JSON context file (`Context.from_file`)",
        )

    def to_file_data(self) -> dict[str, Any]:
        """This context as a JSON object that :meth:`from_file` reads back unchanged."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


class Inputs(BaseModel):
    """metadata-action's inputs, one entry per line (``images``, ``tags``, ``flavor``...).

    Entries are single lines as the action sees them after reading its multi-line inputs; use
    :func:`splitbuild.tags.parse_rule_lines` to split option values or YAML blocks into entries.
    ``annotation_levels`` ``None`` means ``DOCKER_METADATA_ANNOTATIONS_LEVELS`` from the context's
    ``env``, else ``manifest``.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    images: list[str] = Field(default_factory=list)
    tags: list[str] = Field(default_factory=list)
    flavor: list[str] = Field(default_factory=list)
    labels: list[str] = Field(default_factory=list)
    annotations: list[str] = Field(default_factory=list)
    sep_tags: str = Field("\n", alias="sepTags")
    sep_labels: str = Field("\n", alias="sepLabels")
    sep_annotations: str = Field("\n", alias="sepAnnotations")
    bake_target: str = Field(DEFAULT_BAKE_TARGET, alias="bakeTarget")
    annotation_levels: list[str] | None = Field(None, alias="annotationLevels")

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], *, source: str = "inputs") -> Inputs:
        try:
            return cls.model_validate(dict(data))
        except ValidationError as exc:
            raise ConfigError(validation_message(source, exc)) from None


class VersionInfo(BaseModel):
    """metadata-action's version record: the main tag, the other tags, whether ``latest`` is added."""

    model_config = ConfigDict(frozen=True)

    main: str | None = None
    partial: list[str] = Field(default_factory=list)
    latest: bool = False


class Metadata(BaseModel):
    """The computed outputs.

    ``tags`` are full references (``image:tag``, image-major order) or bare tags when no image is
    enabled; ``labels`` is the ``json`` output's label object (sorted like metadata-action);
    ``annotations`` carry their level prefix (``manifest:key=value``); ``label_list`` and
    ``annotation_list`` are the unprefixed ``key=value`` lines.
    """

    model_config = ConfigDict(frozen=True)

    version: str
    version_info: VersionInfo
    tags: list[str]
    tag_names: list[str]
    labels: dict[str, str]
    label_list: list[str]
    annotations: list[str]
    annotation_list: list[str]
    annotation_levels: list[str]
    images: list[str]
    bake_target: str = DEFAULT_BAKE_TARGET
    sep_tags: str = "\n"
    sep_labels: str = "\n"
    sep_annotations: str = "\n"

    def to_json(self) -> dict[str, Any]:
        """metadata-action's ``json`` output (``DOCKER_METADATA_OUTPUT_JSON``)."""
        return {
            "tags": list(self.tags),
            "tag-names": list(self.tag_names),
            "labels": dict(self.labels),
            "annotations": list(self.annotations),
        }

    def outputs(self) -> dict[str, str]:
        """The action's string outputs, joined with the configured separators."""
        return {
            "version": self.version,
            "tags": self.sep_tags.join(self.tags),
            "tag-names": self.sep_tags.join(self.tag_names),
            "labels": self.sep_labels.join(self.label_list),
            "annotations": self.sep_annotations.join(self.annotations),
            "json": json.dumps(self.to_json(), separators=(",", ":"), ensure_ascii=False),
        }

    def bake_args(self) -> dict[str, str]:
        args = {"DOCKER_META_IMAGES": ",".join(self.images)}
        if self.version_info.main is not None:
            args["DOCKER_META_VERSION"] = self.version_info.main
        return args

    def bake_file(self, kind: str) -> dict[str, Any]:
        """A bake definition: ``tags``, ``labels``, ``annotations`` or ``tags-labels``."""
        bodies: dict[str, dict[str, Any]] = {
            "tags": {"tags": list(self.tags), "args": self.bake_args()},
            "labels": {"labels": dict(self.labels)},
            "annotations": {"annotations": list(self.annotations)},
            "tags-labels": {"tags": list(self.tags), "labels": dict(self.labels), "args": self.bake_args()},
        }
        if kind not in bodies:
            raise ConfigError(f"unknown bake file kind {kind!r} (expected one of {', '.join(bodies)})")
        return {"target": {self.bake_target: bodies[kind]}}
