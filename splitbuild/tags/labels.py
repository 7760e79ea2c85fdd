"""Labels and annotations: the ``org.opencontainers.image.*`` base set plus custom entries.

Entries are ``key=value`` (split at the first ``=``; an entry without ``=`` is dropped); a later
entry replaces an earlier one with the same key, which is how custom entries override the base set;
the result is sorted by key like JavaScript's ``localeCompare``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime

from splitbuild.errors import ConfigError
from splitbuild.tags.collate import locale_key
from splitbuild.tags.jsvalues import js_object_order
from splitbuild.tags.resolve import iso_utc
from splitbuild.tags.schema import RepoInfo
from splitbuild.tags.template import Scope, TemplateError, render

__all__ = ["base_entries", "entries_to_object", "finalize_entries", "render_entries"]

_JSON_ENTRY = re.compile(r"([^=]*)=([^\n\r\u2028\u2029]*)")


def base_entries(repo: RepoInfo, version: str | None, created: datetime, revision: str) -> list[str]:
    """The eight OCI entries metadata-action always starts from (``""`` for what is unknown)."""
    html_url = repo.html_url or ""
    return [
        f"org.opencontainers.image.title={repo.name or ''}",
        f"org.opencontainers.image.description={repo.description or ''}",
        f"org.opencontainers.image.url={html_url}",
        f"org.opencontainers.image.source={html_url}",
        f"org.opencontainers.image.version={version or ''}",
        f"org.opencontainers.image.created={iso_utc(created)}",
        f"org.opencontainers.image.revision={revision}",
        f"org.opencontainers.image.licenses={(repo.license.spdx_id if repo.license else None) or ''}",
    ]


def render_entries(entries: Sequence[str], scope: Scope, *, kind: str) -> list[str]:
    """Render each custom entry as a template (expression output is HTML-escaped)."""
    rendered: list[str] = []
    for entry in entries:
        try:
            rendered.append(render(entry, scope))
        except TemplateError as exc:
            raise ConfigError(f"{kind} {entry!r}: {exc}") from None
    return rendered


def finalize_entries(entries: Sequence[str]) -> list[str]:
    """Drop entries without ``=``, keep the last value per key, sort by key."""
    pairs: dict[str, str] = {}
    for entry in entries:
        key, sep, value = entry.partition("=")
        if sep:
            pairs[key] = value
    ordered = sorted(pairs.items(), key=lambda pair: locale_key(pair[0]))
    return [f"{key}={value}" for key, value in ordered]


def entries_to_object(entries: Sequence[str]) -> dict[str, str]:
    """The ``json`` output's object: a value ends at a line break, keys in JavaScript object order."""
    found: dict[str, str] = {}
    for entry in entries:
        match = _JSON_ENTRY.search(entry)
        if match:
            found[match.group(1)] = match.group(2)
    return {key: found[key] for key in js_object_order(list(found))}
