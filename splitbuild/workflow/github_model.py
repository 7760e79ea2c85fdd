"""A GitHub Actions workflow as typed, frozen models: only the keys splitbuild writes.

Field order is the key order in the written YAML. ``Workflow.to_data()`` gives plain data (with
:class:`~splitbuild.workflow.pins.Pin` objects for ``uses:``) for :mod:`.yaml_dump`.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from splitbuild.workflow.pins import Pin
from splitbuild.workflow.yaml_dump import Commented

__all__ = [
    "Concurrency",
    "Grant",
    "Job",
    "PullRequestTrigger",
    "PushTrigger",
    "ScheduleTrigger",
    "Step",
    "Triggers",
    "Workflow",
]

Permission = Literal["read", "write", "none"]


class _Node(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


class Grant(_Node):
    """A ``GITHUB_TOKEN`` permission of a job, written with the reason it is needed."""

    level: Permission
    why: str


class Step(_Node):
    """A step: either ``uses`` a pinned action (with ``with``) or ``run``s a script."""

    name: str
    id: str | None = None
    if_: str | None = Field(default=None, alias="if")
    uses: Pin | None = None
    with_: dict[str, str] | None = Field(default=None, alias="with")
    env: dict[str, str] | None = None
    shell: str | None = None
    run: str | None = None

    @model_validator(mode="after")
    def _uses_or_run(self) -> Step:
        if (self.uses is None) == (self.run is None):
            raise ValueError(f"step {self.name!r}: exactly one of uses and run")
        if self.with_ is not None and self.uses is None:
            raise ValueError(f"step {self.name!r}: with needs uses")
        return self


class Job(_Node):
    name: str
    needs: list[str] | None = None
    if_: str | None = Field(default=None, alias="if")
    runs_on: str | list[str] = Field(alias="runs-on")
    environment: str | None = None
    timeout_minutes: int = Field(alias="timeout-minutes")
    continue_on_error: bool | None = Field(default=None, alias="continue-on-error")
    """The build job of an optional platform: its failure does not fail the run (on GitHub)."""
    permissions: dict[str, Grant]
    outputs: dict[str, str] | None = None
    steps: list[Step]


class PushTrigger(_Node):
    branches: list[str] | None = None
    tags: list[str] | None = None


class PullRequestTrigger(_Node):
    branches: list[str] | None = None
    types: list[str] | None = None


class ScheduleTrigger(_Node):
    cron: str


class Triggers(_Node):
    push: PushTrigger | None = None
    pull_request: PullRequestTrigger | None = None
    workflow_dispatch: dict[str, Any] | None = None
    schedule: list[ScheduleTrigger] | None = None


class Concurrency(_Node):
    group: str
    cancel_in_progress: bool | str = Field(alias="cancel-in-progress")


class Workflow(_Node):
    name: str
    on: Triggers
    permissions: dict[str, Permission]
    concurrency: Concurrency
    jobs: dict[str, Job]

    def to_data(self, *, action_url: str | None = None) -> dict[str, Any]:
        """Plain data in key order, ``None`` fields left out; pins and permissions become
        :class:`Commented` values (``owner/action@sha # vX.Y.Z``, ``write # why``). With
        ``action_url``, actions are referenced by full URL (``{action_url}/owner/action@sha``)."""
        data: dict[str, Any] = _data(self, action_url)
        return data

    def pins(self) -> list[Pin]:
        """The pinned actions this workflow uses, in first-use order, without repeats."""
        seen: dict[str, Pin] = {}
        for job in self.jobs.values():
            for step in job.steps:
                if step.uses is not None:
                    seen.setdefault(step.uses.action, step.uses)
        return list(seen.values())


def _data(value: Any, action_url: str | None) -> Any:
    if isinstance(value, Pin):
        ref = value.ref if action_url is None else f"{action_url}/{value.ref}"
        return Commented(ref, value.tag)
    if isinstance(value, Grant):
        return Commented(value.level, value.why)
    if isinstance(value, BaseModel):
        out: dict[str, Any] = {}
        for name, field in type(value).model_fields.items():
            item = getattr(value, name)
            if item is not None:
                out[field.alias or name] = _data(item, action_url)
        return out
    if isinstance(value, dict):
        return {key: _data(item, action_url) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_data(item, action_url) for item in value]
    return value
