"""Pull request previews (``[ci] previews = true``): what decides who pushes on GitHub and Forgejo,
the preview's tag rules, and the clean-up script (GitLab's rules are in :mod:`.gitlab_rules`, its
jobs in :mod:`.gitlab`: merge requests of the project publish ``mr-<iid>``, deleted by the stop job
of their review-app environment).

A pull request whose head branch is in the repository itself builds and pushes every platform by
digest, then a ``preview`` job merges them into one index tagged ``pr-<N>`` (the ``type=ref,event=pr``
rule of docker/metadata-action, in every image repository). A pull request from a fork never logs in
and never pushes: on ``pull_request`` its jobs get no secrets and a read-only token anyway, and the
conditions here keep every login and push off for it. When the pull request closes (merged or not),
``preview-cleanup`` deletes ``pr-<N>`` with what only it uses (children, attestations, referrers) by
``splitbuild delete``, the reachability-checked delete, tolerating a preview that was never pushed.
"""

from __future__ import annotations

from splitbuild.config import Config, TagsConfig

__all__ = [
    "CLEANUP_SCRIPT",
    "NOT_CLOSED",
    "PREVIEW_RULES",
    "PULL_REQUEST_TYPES",
    "SAME_REPOSITORY",
    "cleanup_condition",
    "cleanup_script",
    "preview_condition",
    "preview_config",
    "pushes",
]

NOT_PR = "github.event_name != 'pull_request'"
SAME_REPOSITORY = "github.event.pull_request.head.repo.full_name == github.repository"
"""A pull request from a branch of this repository (a fork's head repository is another one)."""
NOT_CLOSED = "github.event.action != 'closed'"
"""Every event but a closed pull request (push events have no action)."""
PREVIEW_RULES = ("type=ref,event=pr",)
GITLAB_PREVIEW_RULES = ("type=ref,event=pr,prefix=mr-",)
"""On GitLab the preview of merge request N is ``mr-<N>``."""
PULL_REQUEST_TYPES = ("opened", "synchronize", "reopened", "closed")
# One `splitbuild delete` per image repository; a preview never pushed (its build failed, or the
# pull request was opened before previews were on) is not found (exit 4), which is not an error.
CLEANUP_SCRIPT = """\
status=0
for image in "$@"; do
  code=0
  splitbuild delete "$image:$PREVIEW_TAG" || code=$?
  if [ "$code" -eq 4 ]; then
    echo "no preview $image:$PREVIEW_TAG: nothing to delete"
  elif [ "$code" -ne 0 ]; then
    status=$code
  fi
done
exit "$status"
"""


def pushes(config: Config) -> str:
    """When a build job logs in and pushes: never on pull requests, or, with previews, on those from
    this repository."""
    if not config.ci.previews:
        return NOT_PR
    return f"({NOT_PR} || {SAME_REPOSITORY})"


def preview_condition() -> str:
    """When the ``preview`` job runs: an open same-repository pull request."""
    return f"github.event_name == 'pull_request' && {NOT_CLOSED} && {SAME_REPOSITORY}"


def cleanup_condition() -> str:
    """When ``preview-cleanup`` runs: a same-repository pull request closing."""
    return f"github.event_name == 'pull_request' && github.event.action == 'closed' && {SAME_REPOSITORY}"


def preview_config(config: Config) -> Config:
    """``config`` with the preview's tag rules: ``pr-<N>`` (GitLab: ``mr-<N>``) only, no flavor (no
    ``latest``, no prefix), the same labels."""
    rules = GITLAB_PREVIEW_RULES if config.ci.provider == "gitlab" else PREVIEW_RULES
    tags = TagsConfig(rules=list(rules), flavor=[], labels=list(config.tags.labels))
    return config.model_copy(update={"tags": tags})


def cleanup_script(images: int, tag: str | None = None, prefix: str = "") -> str:
    """The clean-up: ``set --`` with every ``<prefix>IMAGE_<i>`` variable, ``PREVIEW_TAG`` set to
    ``tag`` (a double-quoted shell word) unless the step's environment gives it, then
    :data:`CLEANUP_SCRIPT` (POSIX ``sh``)."""
    words = " ".join(f'"${prefix}IMAGE_{index}"' for index in range(1, images + 1))
    tag_line = "" if tag is None else f'PREVIEW_TAG="{tag}"\n'
    return f"set -- {words}\n{tag_line}" + CLEANUP_SCRIPT
