"""The actions generated workflows use, each pinned to a full commit SHA (package data ``pins.json``).

Every SHA was read from a release tag of the action's own repository; the tag goes into the
``# vX.Y.Z`` comment after the ``uses:`` line.
"""

from __future__ import annotations

import json
import re
from functools import cache
from importlib import resources

from pydantic import BaseModel, ConfigDict, field_validator

__all__ = ["Pin", "all_pins", "pin"]

_SHA = re.compile(r"^[0-9a-f]{40}$")
_TAG = re.compile(r"^v[0-9]+\.[0-9]+\.[0-9]+$")
_ACTION = re.compile(r"^[A-Za-z0-9-]+/[A-Za-z0-9._-]+(?:/[A-Za-z0-9._-]+)?$")
"""``owner/repository``, or ``owner/repository/path`` for an action in a subdirectory."""


class Pin(BaseModel):
    """One pinned action: ``uses: {action}@{sha} # {tag}``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    action: str
    tag: str
    sha: str
    commit_date: str
    source: str

    @field_validator("action")
    @classmethod
    def _action(cls, value: str) -> str:
        if not _ACTION.match(value):
            raise ValueError(f"bad action name {value!r}")
        return value

    @field_validator("sha")
    @classmethod
    def _sha(cls, value: str) -> str:
        if not _SHA.match(value):
            raise ValueError(f"not a full lowercase commit SHA: {value!r}")
        return value

    @field_validator("tag")
    @classmethod
    def _tag(cls, value: str) -> str:
        if not _TAG.match(value):
            raise ValueError(f"not a release tag vX.Y.Z: {value!r}")
        return value

    @property
    def ref(self) -> str:
        """The ``uses:`` value: ``owner/action@sha``."""
        return f"{self.action}@{self.sha}"


class _PinFile(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    comment: str
    pins: tuple[Pin, ...]


@cache
def all_pins() -> dict[str, Pin]:
    """Every pin in the package data, by action name."""
    text = resources.files("splitbuild.workflow").joinpath("pins.json").read_text(encoding="utf-8")
    data = _PinFile.model_validate(json.loads(text))
    out: dict[str, Pin] = {}
    for item in data.pins:
        if item.action in out:
            raise ValueError(f"pins.json: {item.action} is pinned twice")
        out[item.action] = item
    return out


def pin(action: str) -> Pin:
    """The pin for ``action``; a ``KeyError`` means the generator uses an action with no pin."""
    return all_pins()[action]
