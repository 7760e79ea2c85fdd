"""The secrets and variables a generated workflow reads, derived from the config, so that
``generate`` can say what to create in the CI system before the first run.

GitHub and Forgejo: repository (or environment) *secrets* and *variables* named by
``[ci.logins."HOST"]`` (``password-secret``, ``username-secret``, ``username-var``), Docker Hub's
defaults (variable ``DOCKERHUB_USERNAME``, secret ``DOCKERHUB_TOKEN``), the build secrets of
``[image.secrets]``; ``GITHUB_TOKEN`` for ghcr.io and cosign's OIDC token are provided by the
runner. GitLab: CI/CD variables (the same names), the job token for the GitLab registry.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from splitbuild.config import DOCKER_HUB, GHCR, Config, LoginConfig

__all__ = ["Setting", "needed_settings"]

Kind = Literal["secret", "variable"]


@dataclass(frozen=True)
class Setting:
    """One value to create: a secret or a (non-secret) variable, and what reads it."""

    kind: Kind
    name: str
    why: str


def _login_settings(config: Config) -> list[Setting]:
    out: list[Setting] = []
    gitlab = config.ci.provider == "gitlab"
    for registry in config.registries:
        login = config.ci.logins.get(registry)
        if login is False:
            continue
        why = f"log in to {registry}"
        if isinstance(login, LoginConfig):
            if login.username_var is not None:
                out.append(Setting("variable", login.username_var, f"{why} (user name)"))
            if login.username_secret is not None:
                out.append(Setting("secret", login.username_secret, f"{why} (user name)"))
            out.append(Setting("secret", login.password_secret, f"{why} (password or token)"))
        elif registry == DOCKER_HUB:
            out.append(Setting("variable", "DOCKERHUB_USERNAME", f"{why} (user name)"))
            out.append(Setting("secret", "DOCKERHUB_TOKEN", f"{why} (access token)"))
        elif registry == GHCR and not gitlab:
            continue  # GITHUB_TOKEN, provided by the runner
        # else: the GitLab registry with the job token, provided by the runner
    return out


def needed_settings(config: Config) -> list[Setting]:
    """What the workflow for ``config``'s provider reads, each name once, in first-use order."""
    settings = _login_settings(config)
    for name in dict.fromkeys(config.image.secrets.values()):
        settings.append(Setting("secret", name, "a build secret of [image.secrets]"))
    seen: dict[str, Setting] = {}
    for setting in settings:
        seen.setdefault(setting.name, setting)
    return list(seen.values())
