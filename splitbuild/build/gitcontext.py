"""The local git state as a tag-computation context, on the same event model as GitHub's.

==================================  ==========================================================
git state                           context
==================================  ==========================================================
a tag points at ``HEAD``            event ``push``, ``ref=refs/tags/<tag>`` (the highest
                                    version when several do)
on a branch                         event ``push``, ``ref=refs/heads/<branch>``
detached ``HEAD``, no tag           event ``workflow_dispatch``, empty ``ref``
``HEAD``                            ``sha``; its committer date is the commit date
``origin/HEAD``, else the           the default branch (``type=edge``, ``{{is_default_branch}}``)
``init.defaultBranch`` setting,
else a local ``main``/``master``
the ``origin`` remote               repository name and URL (credentials removed), else the
                                    directory's name
not a git work tree (or no git)     event ``workflow_dispatch``, no ``ref``, no ``sha``
==================================  ==========================================================

Only read-only git commands are run; nothing in the repository is changed.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from splitbuild.tags.github_env import metadata_env
from splitbuild.tags.schema import Context

__all__ = ["GitState", "git_context", "git_state", "public_url"]

_SCP_LIKE = re.compile(r"^(?:[^@/]+@)?(?P<host>[^:/]+):(?P<path>[^/].*)$")


@dataclass(frozen=True)
class GitState:
    """What the tag rules see of a work tree (``root`` ``None``: not a git work tree)."""

    root: Path | None = None
    sha: str = ""
    commit_date: str | None = None
    branch: str | None = None
    tag: str | None = None
    default_branch: str | None = None
    name: str | None = None
    url: str | None = None

    def describe(self) -> str:
        if self.root is None:
            return "not a git work tree"
        if not self.sha:
            return "git work tree without commits"
        where = f"tag {self.tag}" if self.tag else f"branch {self.branch}" if self.branch else "detached HEAD"
        return f"{where} at {self.sha[:7]}"


def public_url(remote: str) -> str | None:
    """A browsable https URL for a git remote, without credentials (None for local paths)."""
    remote = remote.strip()
    if "://" in remote:
        parts = urlsplit(remote)
        if parts.scheme not in ("http", "https", "ssh", "git") or not parts.hostname:
            return None
        host = parts.hostname + (f":{parts.port}" if parts.port and parts.scheme in ("http", "https") else "")
        path = parts.path
    else:
        match = _SCP_LIKE.match(remote)
        if match is None:
            return None
        host, path = match.group("host"), "/" + match.group("path")
    path = path.removesuffix("/").removesuffix(".git")
    return urlunsplit(("https", host, path, "", ""))


def _git(git: str, root: Path, *args: str) -> str | None:
    try:
        done = subprocess.run(
            [git, "-C", str(root), *args],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
            env={**os.environ, "GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C"},
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def _default_branch(git: str, root: Path) -> str | None:
    remote_head = _git(git, root, "symbolic-ref", "-q", "--short", "refs/remotes/origin/HEAD")
    if remote_head:
        return remote_head.split("/", 1)[-1]
    configured = _git(git, root, "config", "--get", "init.defaultBranch")
    if configured:
        return configured
    for candidate in ("main", "master"):
        if _git(git, root, "rev-parse", "-q", "--verify", f"refs/heads/{candidate}") is not None:
            return candidate
    return None


def git_state(path: Path, *, git: str | None = None) -> GitState:
    """The state of the git work tree containing ``path``."""
    executable = git or shutil.which("git")
    if executable is None:
        return GitState()
    top = _git(executable, path, "rev-parse", "--show-toplevel")
    if not top:
        return GitState()
    root = Path(top)
    remote = _git(executable, root, "remote", "get-url", "origin")
    url = public_url(remote) if remote else None
    name = url.rstrip("/").rsplit("/", 1)[-1] if url else root.name
    sha = _git(executable, root, "rev-parse", "-q", "--verify", "HEAD^{commit}") or ""
    if not sha:
        return GitState(root=root, name=name, url=url)
    tags = (_git(executable, root, "tag", "--points-at", "HEAD", "--sort=-version:refname") or "").split()
    return GitState(
        root=root,
        sha=sha,
        commit_date=_git(executable, root, "show", "-s", "--format=%cI", "HEAD") or None,
        branch=_git(executable, root, "symbolic-ref", "-q", "--short", "HEAD") or None,
        tag=tags[0] if tags else None,
        default_branch=_default_branch(executable, root),
        name=name,
        url=url,
    )


def git_context(state: GitState, env: Mapping[str, str] | None = None) -> Context:
    """The tag-computation context for ``state``; ``DOCKER_METADATA_*`` settings come from ``env``."""
    environ = os.environ if env is None else env
    if state.tag:
        event, ref = "push", f"refs/tags/{state.tag}"
    elif state.branch:
        event, ref = "push", f"refs/heads/{state.branch}"
    else:
        event, ref = "workflow_dispatch", ""
    payload: dict[str, Any] = {}
    if state.default_branch:
        payload["repository"] = {"default_branch": state.default_branch}
    return Context.from_mapping(
        {
            "eventName": event,
            "ref": ref,
            "sha": state.sha,
            "payload": payload,
            "commitDate": state.commit_date,
            "defaultBranch": state.default_branch,
            "repo": {"name": state.name, "html_url": state.url},
            "env": metadata_env(environ),
        },
        source="local git context",
    )
