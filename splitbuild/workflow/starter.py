"""The commented starter ``splitbuild.toml`` that ``splitbuild init`` writes.

Detects the Dockerfile (``Dockerfile`` or ``Containerfile``, at the top or a level or two below)
and, from the git remote ``origin``, the image name: ``ghcr.io/OWNER/REPO`` for a GitHub
repository, ``registry.gitlab.com/GROUP/PROJECT`` for a GitLab.com one. The remote URL itself is
never printed (it may carry a token).
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Sequence
from pathlib import Path

__all__ = [
    "PLACEHOLDER_IMAGE",
    "detect_build",
    "detect_dockerfile",
    "git_remote_url",
    "image_from_remote",
    "starter_config",
]

PLACEHOLDER_IMAGE = "ghcr.io/OWNER/REPO"
DEFAULT_PLATFORMS = ("linux/amd64", "linux/arm64")
_DOCKERFILE_NAMES = ("Dockerfile", "Containerfile")
_SKIP_DIRS = frozenset({".git", "node_modules", ".venv", "venv", "vendor", "__pycache__"})
_REMOTE = re.compile(
    r"""^(?:
        [a-z][a-z0-9+.-]*://(?:[^@/]+@)?(?P<host1>[^/:]+)(?::\d+)?/(?P<path1>.+?)  # scheme://host/path
      | (?:[^@/]+@)?(?P<host2>[^/:]+):(?P<path2>[^/].*?)                         # scp-like host:path
    )(?:\.git)?/?$""",
    re.VERBOSE,
)
_REGISTRY_FOR_HOST = {"github.com": "ghcr.io", "gitlab.com": "registry.gitlab.com"}
_COMPONENT = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$")


def detect_dockerfile(root: Path) -> str | None:
    """The Dockerfile path relative to ``root``: at the top first, then up to two levels down
    (first in sorted order)."""
    for name in _DOCKERFILE_NAMES:
        if (root / name).is_file():
            return name
    for depth in (1, 2):
        found = sorted(
            path.relative_to(root).as_posix()
            for name in _DOCKERFILE_NAMES
            for path in root.glob("/".join(["*"] * depth + [name]))
            if path.is_file() and not _SKIP_DIRS.intersection(path.relative_to(root).parts)
        )
        if found:
            return found[0]
    return None


def detect_build(root: Path) -> tuple[str, str | None]:
    """``(context, dockerfile)`` for the starter: a Dockerfile found in a subdirectory makes that
    directory the context (its ``COPY`` lines are relative to it), and ``dockerfile`` stays
    ``None`` when it is the context's default ``Dockerfile``; paths are relative to ``root``."""
    found = detect_dockerfile(root)
    if found is None:
        return ".", None
    directory, _, name = found.rpartition("/")
    return directory or ".", None if name == "Dockerfile" else found


def git_remote_url(root: Path, remote: str = "origin") -> str | None:
    """The URL of ``remote`` in the git repository at ``root``, or ``None``."""
    try:
        result = subprocess.run(
            ["git", "-C", str(root), "config", "--get", f"remote.{remote}.url"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    url = result.stdout.strip()
    return url if result.returncode == 0 and url else None


def image_from_remote(url: str) -> str | None:
    """``ghcr.io/owner/repo`` for a GitHub remote (any URL form), the GitLab registry for
    GitLab.com, else ``None``."""
    match = _REMOTE.match(url.strip())
    if not match:
        return None
    host = (match.group("host1") or match.group("host2") or "").lower()
    path = (match.group("path1") or match.group("path2") or "").lower().removesuffix(".git")
    registry = _REGISTRY_FOR_HOST.get(host)
    components = path.strip("/").split("/")
    if registry is None or len(components) < 2:
        return None
    if registry == "ghcr.io" and len(components) != 2:
        return None
    if not all(_COMPONENT.match(part) for part in components):
        return None
    return f"{registry}/{'/'.join(components)}"


def _toml_string(value: str) -> str:
    return json.dumps(value)  # a JSON string is a valid TOML basic string


def _toml_list(values: Sequence[str]) -> str:
    return "[" + ", ".join(_toml_string(v) for v in values) + "]"


def _line(code: str, comment: str | None = None, width: int = 38) -> str:
    return code if comment is None else f"{code:<{width}} # {comment}"


_LOGINS = '# [ci.logins."docker.io"]'
_IBM = '# "linux/ppc64le" = "ubuntu-24.04-ppc64le"'
# The lines of the starter that differ per CI provider.
_PROVIDER_LINES = {
    "github": {
        "secrets": _line("# [image.secrets]", "build secret id = Actions secret that holds it"),
        "provider": _line('# provider = "github"', '"gitlab", "forgejo" (or: splitbuild generate --ci ...)'),
        "runner": _line(_IBM, "IBM's native runners (GitHub App)", 54),
        "cache": _line('# cache = "gha"', '"gha", "registry" or "none"'),
        "merge": _line('# merge-runner = "ubuntu-24.04"'),
        "logins": _line(_LOGINS, "ghcr.io uses GITHUB_TOKEN; docker.io defaults to these"),
        "signing": _line('# sign = "cosign"', "the merge job signs the index (keyless, by digest)")
        + "\n"
        + _line("# attest = true", "GitHub build provenance attestation of the index"),
    },
    "gitlab": {
        "secrets": _line("# [image.secrets]", "build secret id = CI/CD variable that holds it"),
        "provider": _line('provider = "gitlab"', "GitLab CI: splitbuild generate writes .gitlab-ci.yml"),
        "runner": _line('# "linux/ppc64le" = "ppc64le"', "a self-managed runner's tag", 54),
        "cache": _line('# cache = "registry"', '"registry" or "none"'),
        "merge": _line('# merge-runner = "saas-linux-small-amd64"'),
        "logins": _line(_LOGINS, "the GitLab registry uses the job token; Docker Hub these"),
        "signing": _line('# sign = "cosign"', "a job signs the index (keyless; GitLab.com only)"),
    },
    "forgejo": {
        "secrets": _line("# [image.secrets]", "build secret id = Actions secret that holds it"),
        "provider": _line('provider = "forgejo"', "Forgejo/Gitea Actions: .forgejo/workflows/splitbuild.yml"),
        "runner": _line('# "linux/arm64" = "arm64"', "your runners' labels", 54),
        "cache": _line('# cache = "registry"', '"registry", "gha" or "none"'),
        "merge": _line('# merge-runner = "ubuntu-latest"'),
        "logins": _line(_LOGINS, "Docker Hub defaults to these; other registries need one"),
        "signing": "# (sign and attest need GitHub Actions or GitLab.com OIDC identities)",
    },
}


def starter_config(
    *,
    image: str,
    dockerfile: str | None,
    platforms: Sequence[str] = DEFAULT_PLATFORMS,
    context: str = ".",
    provider: str = "github",
) -> str:
    """The text of a commented starter config for ``provider``; optional keys are shown
    commented out with their defaults."""
    lines = _PROVIDER_LINES[provider]
    dockerfile_line = (
        f"dockerfile = {_toml_string(dockerfile)}"
        if dockerfile is not None
        else '# dockerfile = "Dockerfile"         # default: <context>/Dockerfile'
    )
    return f"""\
# splitbuild.toml: what `splitbuild generate` turns into a split multi-platform build workflow.
# One build per platform on a runner that is native where possible, each pushed by digest, then
# one merge job that publishes the multi-platform index under every name and tag.
# See what runs where with `splitbuild plan`; write the workflow with `splitbuild generate`.

[image]
# Every repository the final index is pushed to (no tags here: tags come from [tags]).
names = [{_toml_string(image)}]
# Platforms to build; anything GitHub has no native runner for is built under QEMU.
platforms = {_toml_list(platforms)}
# optional-platforms = ["linux/riscv64"]   # a failed build of these leaves them out of the index
context = {_toml_string(context)}
{dockerfile_line}
# target = "runtime"                   # build stage
# annotations = ["index:org.opencontainers.image.description=My app"]   # passed to splitbuild merge

# [image.build-args]                   # --build-arg NAME=value on every platform
# VERSION = "1.0"

# [image.build-contexts]               # named build contexts
# base = "docker-image://alpine:3.20"

{lines["secrets"]}
# npm_token = "NPM_TOKEN"              # RUN --mount=type=secret,id=npm_token

# [image.labels]                       # static labels, identical on every platform
# "org.opencontainers.image.licenses" = "Apache-2.0"

[tags]
# docker/metadata-action tag rules, same syntax and meaning; computed in the merge job.
rules = ["type=ref,event=branch", "type=semver,pattern={{{{version}}}}", "type=sha"]
flavor = ["latest=auto"]
# labels = ["org.opencontainers.image.vendor=Acme"]   # metadata-action label rules

# [runners]                            # platform (or prefix like "linux/arm", or "default") = runner
{lines["runner"]}
# "linux/riscv64" = {{ labels = ["self-hosted", "riscv64"], arch = "riscv64" }}

[ci]
{lines["provider"]}
branches = ["main"]                    # pushes to these branches publish
tags = ["v*"]                          # pushes of these tags publish
pull-requests = true                   # pull requests build every platform, push nothing
# previews = false                    # true: pull requests of this repository also publish pr-<N>
# workflow-dispatch = true
# schedule = ["0 4 * * 1"]
{lines["cache"]}
# cache-mode = "max"
# provenance = "min"                   # "min", "max" or false
# sbom = false
{lines["signing"]}
# timeout-minutes = 60                 # native legs
# qemu-timeout-minutes = 180           # emulated legs
{lines["merge"]}
# install = "splitbuild==<version>"    # what the merge job installs
# python-version = "3.12"

{lines["logins"]}
# username-var = "DOCKERHUB_USERNAME"
# password-secret = "DOCKERHUB_TOKEN"
"""
