"""The context adjustments metadata-action makes before evaluating rules (its ``getContext``).

* ``pull_request_target``: ``ref`` becomes ``refs/pull/<payload.number>/merge``;
* ``DOCKER_METADATA_PR_HEAD_SHA`` (matching ``/true/i``) on ``pull_request*`` events: ``sha``
  becomes ``payload.pull_request.head.sha`` when present;
* commit date: the given one, else the ``timestamp`` of the payload commit (``commits[]``, then
  ``head_commit``) whose id is ``sha``, else "now". metadata-action would ask the GitHub API before
  falling back to "now"; splitbuild makes no network call (give ``commitDate`` in a context file).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from splitbuild.errors import ConfigError
from splitbuild.tags.jsvalues import js_string
from splitbuild.tags.schema import Context, RepoInfo

__all__ = [
    "ResolvedContext",
    "dig",
    "iso_utc",
    "known_commit_date",
    "parse_timestamp",
    "resolve",
    "resolve_context",
]

PR_HEAD_SHA_ENV = "DOCKER_METADATA_PR_HEAD_SHA"


@dataclass(frozen=True)
class ResolvedContext:
    event_name: str
    ref: str
    sha: str
    payload: Mapping[str, Any]
    commit_date: datetime
    now: datetime
    default_branch: str | None = None
    repo: RepoInfo = field(default_factory=RepoInfo)
    env: Mapping[str, str] = field(default_factory=dict)


def dig(data: Any, *keys: str) -> Any:
    """``data?.a?.b``: ``None`` as soon as a level is missing or not an object."""
    for key in keys:
        if not isinstance(data, Mapping):
            return None
        data = data.get(key)
    return data


def parse_timestamp(value: Any, *, where: str) -> datetime:
    """An ISO 8601 timestamp as an aware UTC datetime with millisecond precision."""
    if isinstance(value, datetime):
        parsed = value
    else:
        try:
            parsed = datetime.fromisoformat(str(value).strip())
        except ValueError:
            raise ConfigError(f"{where}: {value!r} is not an ISO 8601 timestamp") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    parsed = parsed.astimezone(UTC)
    return parsed.replace(microsecond=parsed.microsecond // 1000 * 1000)


def _commit_date_from_payload(payload: Mapping[str, Any], sha: str) -> datetime | None:
    commits = payload.get("commits")
    if isinstance(commits, list):
        for commit in commits:
            if dig(commit, "id") == sha:
                timestamp = dig(commit, "timestamp")
                if timestamp:
                    return parse_timestamp(timestamp, where="event payload commits[].timestamp")
                break
    head = payload.get("head_commit")
    if isinstance(head, Mapping) and head.get("id") == sha:
        return parse_timestamp(head.get("timestamp"), where="event payload head_commit.timestamp")
    return None


def _sha(context: Context) -> str:
    """The commit the tags describe: the event's, or the pull request's head with
    ``DOCKER_METADATA_PR_HEAD_SHA``."""
    if re.search("true", context.env.get(PR_HEAD_SHA_ENV, ""), re.IGNORECASE) and "pull_request" in (
        context.event_name
    ):
        head_sha = dig(context.payload, "pull_request", "head", "sha")
        if head_sha is not None:
            return js_string(head_sha)
    return context.sha


def _commit_date(context: Context, sha: str) -> datetime | None:
    return context.commit_date or _commit_date_from_payload(context.payload, sha)


def resolve(context: Context, *, clock: datetime | None = None) -> ResolvedContext:
    """Apply the adjustments; ``clock`` (else the wall clock) stands in for a missing ``now``."""
    now = context.now or clock or datetime.now(UTC)
    now = now.replace(microsecond=now.microsecond // 1000 * 1000)
    payload = context.payload
    ref = context.ref
    if "pull_request_target" in context.event_name:
        number = payload.get("number")
        ref = f"refs/pull/{js_string(number)}/merge"
    sha = _sha(context)
    return ResolvedContext(
        event_name=context.event_name,
        ref=ref,
        sha=sha,
        payload=payload,
        commit_date=_commit_date(context, sha) or now,
        now=now,
        default_branch=context.default_branch,
        repo=context.repo,
        env=context.env,
    )


def known_commit_date(context: Context) -> datetime | None:
    """The commit's date when the context or its payload gives it (never "now")."""
    return _commit_date(context, _sha(context))


def iso_utc(instant: datetime) -> str:
    """``Date.prototype.toISOString()``: UTC with milliseconds and ``Z``."""
    utc = instant.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def resolve_context(raw: Mapping[str, Any]) -> dict[str, Any]:
    """The conformance checker's ``resolve_context``: ``{ref, sha, commitDate}`` from a raw event."""
    context = Context.from_mapping(
        {key: raw[key] for key in ("eventName", "ref", "sha", "payload", "env") if key in raw}
    )
    resolved = resolve(context)
    return {"ref": resolved.ref, "sha": resolved.sha, "commitDate": iso_utc(resolved.commit_date)}
