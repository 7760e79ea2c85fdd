"""The hash-locked dependency closure the generated merge jobs install (package data
``install-lock.json``, written by ``tools/update_install_lock.py``).

The merge job installs before any registry login, into a fresh virtual environment: first every
dependency from :func:`requirements_text` with ``pip install --require-hashes --no-deps``, then
splitbuild itself (``[ci] install``) with ``--no-deps``, then ``pip check`` proves the closure
complete. So no code that is not pinned by version and hash runs in the job, and nothing at all is
installed where credentials are on disk.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["LockedPackage", "locked_packages", "requirements_text"]


class LockedPackage(BaseModel):
    """One locked distribution: ``name==version`` and the hashes of all its files."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(pattern=r"^[a-z0-9]+(-[a-z0-9]+)*$")
    version: str = Field(pattern=r"^[0-9A-Za-z.+!-]+$")
    hashes: tuple[str, ...] = Field(min_length=1)

    def requirement(self) -> str:
        """The requirements-file line (hashes on continuation lines)."""
        options = "".join(f" \\\n    --hash={h}" for h in self.hashes)
        return f"{self.name}=={self.version}{options}\n"


class _LockFile(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    comment: str
    python: str
    packages: tuple[LockedPackage, ...]


@cache
def locked_packages() -> tuple[LockedPackage, ...]:
    """The locked closure, sorted by name."""
    text = resources.files("splitbuild.workflow").joinpath("install-lock.json").read_text(encoding="utf-8")
    return _LockFile.model_validate(json.loads(text)).packages


def requirements_text() -> str:
    """The lock as a pip requirements file (every line pinned ``==`` with ``--hash``)."""
    return "".join(p.requirement() for p in locked_packages())
