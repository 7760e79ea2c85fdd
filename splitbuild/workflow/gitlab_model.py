"""A GitLab CI pipeline as typed, frozen models: only the keys splitbuild writes.

Field order is the key order in the written YAML. :meth:`Pipeline.to_data` gives plain data (job
names at the top level, as GitLab wants) for :mod:`.yaml_dump`. A variable whose value contains
``$`` is written as ``{value: ..., expand: false}`` so GitLab passes it to the job unexpanded.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "Artifacts",
    "Environment",
    "IdToken",
    "Image",
    "Inherit",
    "Job",
    "Need",
    "Pipeline",
    "Reports",
    "Retry",
    "Rule",
    "Service",
]

RetryWhen = Literal["runner_system_failure", "api_failure", "scheduler_failure"]


class _Node(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


class Service(_Node):
    """A service container (docker-in-docker)."""

    name: str
    alias: str | None = None
    command: list[str] | None = None


class Need(_Node):
    """A job this one waits for, and whether its artifacts (dotenv reports) come along."""

    job: str
    artifacts: bool


class Rule(_Node):
    """A ``rules:`` entry: when it matches, the job runs (or, with ``when: never``, does not),
    with ``variables`` and ``interruptible`` overriding the job's."""

    if_: str = Field(alias="if")
    when: Literal["never", "manual"] | None = None
    variables: dict[str, str] | None = None
    interruptible: bool | None = None


class Retry(_Node):
    max: int = Field(ge=0, le=2)
    when: list[RetryWhen]


class Reports(_Node):
    dotenv: str | None = None
    container_scanning: str | None = None


class Artifacts(_Node):
    paths: list[str] | None = None
    reports: Reports | None = None
    expire_in: str
    when: Literal["always"] | None = None


class Image(_Node):
    """A job image whose entrypoint is not a shell (``entrypoint: [""]`` lets the script run)."""

    name: str
    entrypoint: list[str]


class IdToken(_Node):
    """An ``id_tokens:`` entry: GitLab puts an OIDC token for audience ``aud`` in the variable."""

    aud: str


class Environment(_Node):
    """An ``environment:``: the preview's review-app environment, started by the preview job and
    stopped (``on_stop``) by the clean-up job when the merge request closes."""

    name: str
    action: Literal["start", "stop"]
    on_stop: str | None = None


class Inherit(_Node):
    """``inherit: {default: false}``: the project's ``default:`` (image, before_script...) does not
    leak into splitbuild's jobs when the file is included."""

    default: bool = False


class Job(_Node):
    stage: str
    image: str | Image
    services: list[Service] | None = None
    tags: list[str]
    needs: list[Need] | None = None
    rules: list[Rule]
    interruptible: bool
    allow_failure: bool | None = None
    """The build job of an optional platform: the merge runs without its digest when it fails."""
    timeout: str
    retry: Retry
    resource_group: str | None = None
    environment: Environment | None = None
    id_tokens: dict[str, IdToken] | None = None
    variables: dict[str, str]
    script: list[str]
    artifacts: Artifacts | None = None
    inherit: Inherit = Field(default_factory=Inherit)


class Pipeline(_Node):
    """The jobs, in order; no global keys, so the file can also be included from another one."""

    jobs: dict[str, Job]

    def to_data(self) -> dict[str, Any]:
        """Plain data: ``{job name: job}`` in order, ``None`` fields left out."""
        return {name: _data(job) for name, job in self.jobs.items()}


def _variable(value: str) -> str | dict[str, Any]:
    return {"value": value, "expand": False} if "$" in value else value


def _data(value: Any) -> Any:
    if isinstance(value, BaseModel):
        out: dict[str, Any] = {}
        for name, field in type(value).model_fields.items():
            item = getattr(value, name)
            if item is None:
                continue
            key = field.alias or name
            if isinstance(value, Job) and name == "variables":
                out[key] = {k: _variable(v) for k, v in item.items()}
            else:
                out[key] = _data(item)
        return out
    if isinstance(value, dict):
        return {key: _data(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_data(item) for item in value]
    return value
