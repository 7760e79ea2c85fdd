"""The ``[runners]`` table's vocabulary: runner keys, overrides and which labels can build images.

Below both :mod:`splitbuild.config` (which validates the table) and :mod:`splitbuild.planner` (which
applies it), so neither imports the other at run time.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from splitbuild.errors import ConfigError
from splitbuild.platforms import normalize_platform_prefix

__all__ = ["DEFAULT_RUNNER_KEY", "RunnerOverride", "check_runner_labels", "normalize_runner_key"]

DEFAULT_RUNNER_KEY = "default"


def normalize_runner_key(text: str) -> str:
    """Normalise a ``[runners]`` key: ``default``, an OS (``linux``), an OS/arch prefix
    (``linux/arm`` matches every arm variant) or a full platform."""
    if text.strip().lower() == DEFAULT_RUNNER_KEY:
        return DEFAULT_RUNNER_KEY
    return normalize_platform_prefix(text, "runner key")


@dataclass(frozen=True)
class RunnerOverride:
    """A ``[runners]`` entry: the ``runs-on`` labels and, when known, the runner's CPU architecture."""

    labels: tuple[str, ...]
    arch: str | None = None


_NO_DOCKER_PREFIXES = ("macos-", "windows-", "xcode-", "saas-macos-", "saas-windows-")
_NO_DOCKER_LABELS = frozenset({"ubuntu-slim", "macos-latest", "windows-latest"})


def check_runner_labels(labels: Sequence[str]) -> None:
    """Reject runner labels that cannot build Linux images (macOS, Windows, ubuntu-slim)."""
    for label in labels:
        lowered = label.lower()
        if lowered in _NO_DOCKER_LABELS or lowered.startswith(_NO_DOCKER_PREFIXES):
            raise ConfigError(
                f"runner {label!r} cannot build Linux container images "
                "(no Docker engine on macOS, Windows or ubuntu-slim runners); use a Linux runner"
            )
