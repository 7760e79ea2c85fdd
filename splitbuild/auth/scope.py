"""Token scopes: ``resourcetype[(class)]:resourcename:action[,action]*`` (distribution scope.md).

A resource name may itself contain ``:`` (``host:port/repo``), so the type is what precedes the
first colon and the actions what follows the last one. Strings that do not have that shape (some
token services use opaque scopes) are carried through verbatim.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

import httpx

__all__ = [
    "Scope",
    "add_challenge_scopes",
    "merge_scopes",
    "parse_scope",
    "repository_scope",
    "required_scope",
]

_REPO_PATH = re.compile(r"^/v2/(?P<name>.+?)/(?:manifests|blobs|tags|referrers)(?:/|$)")


@dataclass(frozen=True)
class Scope:
    resource_type: str
    name: str
    actions: tuple[str, ...]

    def __str__(self) -> str:
        return f"{self.resource_type}:{self.name}:{','.join(self.actions)}"

    @property
    def kind(self) -> str:
        """The resource type without a ``(class)`` suffix: ``repository(plugin)`` -> ``repository``."""
        return self.resource_type.split("(", 1)[0]


def parse_scope(text: str) -> Scope | None:
    first = text.find(":")
    last = text.rfind(":")
    if first <= 0 or last <= first + 1:
        return None
    actions = tuple(a for a in text[last + 1 :].split(",") if a)
    if not actions:
        return None
    return Scope(text[:first], text[first + 1 : last], actions)


def repository_scope(repository: str, *actions: str) -> str:
    """``repository_scope("acme/app", "pull", "push")`` -> ``"repository:acme/app:pull,push"``."""
    return str(Scope("repository", repository, actions or ("pull",)))


def merge_scopes(*groups: Iterable[str]) -> tuple[str, ...]:
    """Union of scope strings: actions on one resource are merged, first-seen order is kept."""
    order: list[tuple[str, str] | str] = []
    actions: dict[tuple[str, str], list[str]] = {}
    for group in groups:
        for text in group:
            scope = parse_scope(text)
            if scope is None:
                if text and text not in order:
                    order.append(text)
                continue
            key = (scope.resource_type, scope.name)
            if key not in actions:
                actions[key] = []
                order.append(key)
            for action in scope.actions:
                if action not in actions[key]:
                    actions[key].append(action)
    out: list[str] = []
    for item in order:
        if isinstance(item, str):
            out.append(item)
        else:
            out.append(str(Scope(item[0], item[1], tuple(actions[item]))))
    return tuple(out)


def _resource(text: str) -> tuple[str, str] | str:
    scope = parse_scope(text)
    return text if scope is None else (scope.resource_type, scope.name)


def add_challenge_scopes(requested: Iterable[str], challenge: Iterable[str]) -> tuple[str, ...]:
    """Requested scopes plus what a 401 challenge asked for.

    Resources the challenge names that were not requested go first (as go-containerregistry
    does: some registries only look at the first scope); actions it adds to requested resources
    are appended to them, so ``pull,push`` stays ``pull,push``.
    """
    requested = merge_scopes(requested)
    known = {_resource(text) for text in requested}
    new = [text for text in challenge if _resource(text) not in known]
    return merge_scopes(new, requested, challenge)


def required_scope(method: str, url: httpx.URL) -> Scope | None:
    """The repository scope a distribution-API request needs (pull for reads, push for writes)."""
    match = _REPO_PATH.match(url.path)
    if match is None:
        return None
    method = method.upper()
    if method in ("GET", "HEAD"):
        action = "pull"
    elif method == "DELETE":
        action = "delete"
    else:
        action = "push"
    return Scope("repository", match.group("name"), (action,))
