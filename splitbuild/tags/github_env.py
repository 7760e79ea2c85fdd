"""The GitHub Actions context: ``GITHUB_*`` variables and the event payload file.

The payload's ``repository`` object gives the label data metadata-action would fetch from the API
(name, description, ``html_url``, license, default branch), so no API call is made. When a payload
lacks it, ``GITHUB_REPOSITORY``/``GITHUB_SERVER_URL`` give the name and URL, and a ``schedule`` run
(which always runs on the default branch) gives the default branch.

The readers here return the context as JSON data (the context file's format);
:meth:`splitbuild.tags.schema.Context.from_environment` validates it, so this module does not import
the models.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from splitbuild.errors import ConfigError

__all__ = ["CONTEXT_MAX_BYTES", "METADATA_ENV_PREFIX", "github_context_data", "metadata_env", "read_payload"]

METADATA_ENV_PREFIX = "DOCKER_METADATA_"
# The most a context file or CI event payload may hold (GitHub caps webhook payloads at 25 MB; a
# push event's is a few KiB to a few MiB).
CONTEXT_MAX_BYTES = 16 << 20


def metadata_env(env: Mapping[str, str]) -> dict[str, str]:
    """The ``DOCKER_METADATA_*`` settings in ``env``."""
    return {key: value for key, value in env.items() if key.startswith(METADATA_ENV_PREFIX)}


def read_payload(path: str) -> dict[str, Any]:
    """The webhook payload at ``GITHUB_EVENT_PATH``; ``{}`` when the file does not exist."""
    from splitbuild.inputfile import display, read_text_file

    file = Path(path)
    if not file.exists():
        return {}
    where = f"GITHUB_EVENT_PATH '{display(path)}'"
    try:
        data = json.loads(read_text_file(file, limit=CONTEXT_MAX_BYTES, label=where))
    except (RecursionError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{where} is not a readable JSON file: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{where} does not hold a JSON object")
    return data


def _repo_info(repository: Mapping[str, Any], env: Mapping[str, str]) -> dict[str, Any]:
    slug = env.get("GITHUB_REPOSITORY", "")
    server = env.get("GITHUB_SERVER_URL", "https://github.com").rstrip("/")
    data = dict(repository)
    if not data.get("name") and slug:
        data["name"] = slug.rsplit("/", 1)[-1]
    if not data.get("html_url") and slug:
        data["html_url"] = f"{server}/{slug}"
    return data


def github_context_data(env: Mapping[str, str]) -> dict[str, Any]:
    """The context of a GitHub Actions job (``GITHUB_ACTIONS=true``), as context-file JSON data."""
    missing = [name for name in ("GITHUB_EVENT_NAME", "GITHUB_SHA") if not env.get(name)]
    if missing:
        raise ConfigError(f"GitHub Actions context incomplete: {', '.join(missing)} not set")
    event_name = env["GITHUB_EVENT_NAME"]
    ref = env.get("GITHUB_REF", "")
    event_path = env.get("GITHUB_EVENT_PATH", "")
    payload = read_payload(event_path) if event_path else {}
    repository = payload.get("repository")
    repository = repository if isinstance(repository, Mapping) else {}
    default_branch = repository.get("default_branch")
    if not isinstance(default_branch, str) or not default_branch:
        default_branch = ref.removeprefix("refs/heads/") if "schedule" in event_name else None
    return {
        "eventName": event_name,
        "ref": ref,
        "sha": env["GITHUB_SHA"],
        "payload": payload,
        "defaultBranch": default_branch,
        "repo": _repo_info(repository, env),
        "env": metadata_env(env),
    }
