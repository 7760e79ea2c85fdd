"""The GitLab CI context, mapped onto the GitHub event model metadata-action's rules read.

========================================  ===============================================================
GitLab pipeline                           context
========================================  ===============================================================
``CI_COMMIT_TAG`` set                     ``ref=refs/tags/<tag>``
``CI_MERGE_REQUEST_IID`` set              ``eventName=pull_request``, ``ref=refs/pull/<iid>/merge``
                                          (``type=ref,event=pr`` gives ``pr-<iid>``), ``payload.number``
                                          and ``payload.pull_request`` {number, head.sha, base.ref}
``CI_EXTERNAL_PULL_REQUEST_IID`` set      the same, from the ``CI_EXTERNAL_PULL_REQUEST_*`` variables
``CI_COMMIT_BRANCH`` set                  ``ref=refs/heads/<branch>``
``CI_PIPELINE_SOURCE``                    ``push`` -> ``push``, ``schedule`` -> ``schedule``,
                                          ``merge_request_event``/``external_pull_request_event`` ->
                                          ``pull_request``, anything else (``web``, ``api``,
                                          ``trigger``, ``pipeline``...) -> ``workflow_dispatch``
``CI_COMMIT_SHA``                         ``sha``; the merge request's head is
                                          ``CI_MERGE_REQUEST_SOURCE_BRANCH_SHA`` (merged-results
                                          pipelines) else ``CI_COMMIT_SHA``
``CI_COMMIT_TIMESTAMP``                   ``commitDate``
``CI_DEFAULT_BRANCH``                     ``defaultBranch`` and ``payload.repository.default_branch``
``CI_PROJECT_NAME``/``_DESCRIPTION``/``_URL``  ``repo.name``/``description``/``html_url`` (no license)
========================================  ===============================================================

The precedence is tag, then merge request, then branch; a pipeline with none of them has an empty
``ref`` (only ``type=raw``/``type=sha`` rules then yield tags).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from splitbuild.errors import ConfigError
from splitbuild.tags.github_env import metadata_env

__all__ = ["gitlab_context_data", "gitlab_event_name"]

_EVENTS = {
    "push": "push",
    "schedule": "schedule",
    "merge_request_event": "pull_request",
    "external_pull_request_event": "pull_request",
}


def gitlab_event_name(pipeline_source: str) -> str:
    """The GitHub event name a ``CI_PIPELINE_SOURCE`` corresponds to."""
    return _EVENTS.get(pipeline_source or "push", "workflow_dispatch")


def _number(value: str, name: str) -> int:
    if not value.isdigit():
        raise ConfigError(f"GitLab CI context: {name}={value!r} is not a number")
    return int(value)


def _pull_request(env: Mapping[str, str], sha: str) -> tuple[str, dict[str, Any]] | None:
    for prefix in ("CI_MERGE_REQUEST", "CI_EXTERNAL_PULL_REQUEST"):
        iid = env.get(f"{prefix}_IID", "")
        if not iid:
            continue
        number = _number(iid, f"{prefix}_IID")
        pull_request = {
            "number": number,
            "head": {"sha": env.get(f"{prefix}_SOURCE_BRANCH_SHA") or sha},
            "base": {"ref": env.get(f"{prefix}_TARGET_BRANCH_NAME", "")},
        }
        return f"refs/pull/{number}/merge", {"number": number, "pull_request": pull_request}
    return None


def gitlab_context_data(env: Mapping[str, str]) -> dict[str, Any]:
    """The context of a GitLab CI job (``GITLAB_CI=true``), as context-file JSON data."""
    sha = env.get("CI_COMMIT_SHA", "")
    if not sha:
        raise ConfigError("GitLab CI context incomplete: CI_COMMIT_SHA not set")
    event_name = gitlab_event_name(env.get("CI_PIPELINE_SOURCE", ""))
    default_branch = env.get("CI_DEFAULT_BRANCH") or None
    payload: dict[str, Any] = {}
    tag = env.get("CI_COMMIT_TAG", "")
    branch = env.get("CI_COMMIT_BRANCH", "")
    pull_request = _pull_request(env, sha)
    if tag:
        ref = f"refs/tags/{tag}"
    elif pull_request is not None:
        ref, pr_payload = pull_request
        payload.update(pr_payload)
        event_name = "pull_request"
    elif branch:
        ref = f"refs/heads/{branch}"
    else:
        ref = ""
    if default_branch:
        payload["repository"] = {"default_branch": default_branch}
    project_name = env.get("CI_PROJECT_NAME") or env.get("CI_PROJECT_PATH", "").rsplit("/", 1)[-1]
    return {
        "eventName": event_name,
        "ref": ref,
        "sha": sha,
        "payload": payload,
        "commitDate": env.get("CI_COMMIT_TIMESTAMP") or None,
        "defaultBranch": default_branch,
        "repo": {
            "name": project_name or None,
            "description": env.get("CI_PROJECT_DESCRIPTION") or None,
            "html_url": env.get("CI_PROJECT_URL") or None,
        },
        "env": metadata_env(env),
    }
