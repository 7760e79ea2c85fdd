"""GHCR through the GitHub Packages REST API (container packages, org- or user-owned).

Every manifest of ``ghcr.io/OWNER/NAME`` is a *package version* whose ``name`` is its digest and
whose ``metadata.container.tags`` are its tags. Deleting a version deletes the manifest and its tags.
Endpoints (API version 2022-11-28)::

    GET    /orgs/{org}/packages/container/{name}/versions?per_page=100&page=N   (Link: rel="next")
    DELETE /orgs/{org}/packages/container/{name}/versions/{id}
    (the same under /users/{username}/... for a user-owned package)

The owner is tried as an organisation first, then as a user. Token: the credential for the
registry host (``docker login ghcr.io``: the password is the token), else ``GH_TOKEN`` or
``GITHUB_TOKEN``. Listing needs ``read:packages``, deleting ``read:packages`` and ``delete:packages``.

Rate limits: a 403/429 with ``x-ratelimit-remaining: 0`` (primary) waits until
``x-ratelimit-reset``; one with ``Retry-After`` (secondary) waits that long, else a minute, as
GitHub documents. The waits go through the client's :class:`~splitbuild.retry.RetryPolicy`, so they
are bounded: a limit that resets past the budget ends the run with an error (nothing half done).
Mutations are serialised and spaced ``mutation_interval`` apart (GitHub asks for at least a second).

GitHub refuses to delete a version of a public package with more than 5,000 downloads: that
refusal is :class:`~splitbuild.errors.Refused`, naming the version.

Removing one tag and keeping its manifest has no endpoint: the tag is pointed (registry API push)
at a unique placeholder manifest, whose version is then deleted; on failure the tag is put back.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

import anyio
import httpx

from splitbuild._http import redact_url, retry_after
from splitbuild._version import __version__
from splitbuild.auth.credentials import Keychain
from splitbuild.errors import AuthError, NotFound, Refused, RegistryError, SplitbuildError, UsageError
from splitbuild.providers.base import Provider, Version
from splitbuild.reference import Reference
from splitbuild.retry import RetryPolicy
from splitbuild.store.base import Repository
from splitbuild.timestamps import parse_rfc3339

__all__ = ["DEFAULT_API_URL", "GhcrProvider", "github_token"]

DEFAULT_API_URL = "https://api.github.com"
API_VERSION = "2022-11-28"
SECONDARY_DEFAULT_WAIT = 60.0
_DOWNLOADS = re.compile(r"5,?000")


def github_token(keychain: Keychain, ref: Reference, env: Mapping[str, str]) -> str | None:
    """The token for GHCR: the registry credential's secret, else ``GH_TOKEN``/``GITHUB_TOKEN``."""
    credential = keychain.resolve(ref.registry, ref.repository)
    if credential is not None:
        for secret in (credential.password, credential.registry_token, credential.identity_token):
            if secret:
                return secret
    return env.get("GH_TOKEN") or env.get("GITHUB_TOKEN") or None


def _message(response: httpx.Response) -> str:
    try:
        doc = json.loads(response.content)
    except (ValueError, httpx.ResponseNotRead):
        return ""
    message = doc.get("message") if isinstance(doc, dict) else None
    return message[:300] if isinstance(message, str) else ""


class GhcrProvider(Provider):
    name = "ghcr"
    records_push_time = True
    lists_untagged = True

    def __init__(
        self,
        ref: Reference,
        token: str | None,
        *,
        retry: RetryPolicy,
        api_url: str = DEFAULT_API_URL,
        timeout: float = 30.0,
        mutation_interval: float = 1.0,
        per_page: int = 100,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        owner, _, package = ref.repository.partition("/")
        if not package:
            raise UsageError(f"{ref.name}: a GHCR image is ghcr.io/OWNER/NAME")
        self.ref = ref.repo()
        self.owner = owner
        self.package = package
        self.retry = retry
        self.api_url = api_url.rstrip("/")
        self.mutation_interval = mutation_interval
        self.per_page = per_page
        self.requests = 0
        self._token = token
        # Without a token there is no listing: ages come from the images (an anonymous dry run works)
        self.records_push_time = bool(token)
        self._http = httpx.AsyncClient(
            timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),
            transport=transport,
            follow_redirects=False,
            headers={
                "Accept": "application/vnd.github+json",
                "X-GitHub-Api-Version": API_VERSION,
                "User-Agent": f"splitbuild/{__version__}",
            },
        )
        self._owner_kind: str | None = None
        self._versions: dict[str, Version] | None = None
        self._mutations = anyio.Lock()
        self._last_mutation = 0.0

    async def aclose(self) -> None:
        await self._http.aclose()

    # -- HTTP --------------------------------------------------------------------------------------

    def _headers(self) -> dict[str, str]:
        if not self._token:
            raise AuthError(
                f"{self.ref.name}: no GitHub token for {self.ref.registry}",
                hint=f"docker login {self.ref.registry} with a token (read:packages, delete:packages), "
                "or set GITHUB_TOKEN",
            )
        return {"Authorization": f"Bearer {self._token}"}

    def _error(self, response: httpx.Response, what: str, scopes: str) -> SplitbuildError:
        status = response.status_code
        method = response.request.method
        url = redact_url(response.request.url)
        message = _message(response)
        shown = f"{what}: GitHub API {method} {url}: {status}" + (f" ({message})" if message else "")
        remaining = response.headers.get("x-ratelimit-remaining")
        asked = retry_after(response)
        if status in (403, 429) and (
            remaining == "0" or asked is not None or "rate limit" in message.lower()
        ):
            if asked is not None:
                wait, which = asked, "secondary rate limit"
            elif remaining == "0":
                reset = response.headers.get("x-ratelimit-reset", "")
                wait = max(0.0, float(reset) - time.time()) if reset.isdigit() else SECONDARY_DEFAULT_WAIT
                which = "rate limit (x-ratelimit-remaining: 0)"
            else:
                wait, which = SECONDARY_DEFAULT_WAIT, "secondary rate limit"
            return RegistryError(
                f"{what}: GitHub API {which}: {method} {url}: {status}; resets in {wait:.0f} s",
                status=status,
                method=method,
                url=url,
                retryable=True,
                retry_after=wait,
                hint="run the same command again later: what was deleted stays deleted, nothing else changed",
            )
        if status in (400, 403) and method == "DELETE" and _DOWNLOADS.search(message):
            return Refused(
                f"{what}: GitHub does not delete a version of a public package with more than "
                f"5,000 downloads ({status}: {message})",
                hint="ask GitHub Support to delete it, or exclude its tags from the policy",
            )
        if status == 401:
            return AuthError(
                f"{shown}: the token for {self.ref.registry} was refused",
                status=status,
                method=method,
                url=url,
            )
        if status == 403:
            has = response.headers.get("X-OAuth-Scopes")
            having = f"; the token has: {has or 'no scopes'}" if has is not None else ""
            return AuthError(
                f"{shown}: the token needs the {scopes} scope{'s' if ' and ' in scopes else ''}{having}",
                status=status,
                method=method,
                url=url,
                hint="create a token with those scopes (a classic personal access token), or give the "
                "workflow `packages: write` and admin access to the package",
            )
        if status == 404:
            return NotFound(shown)
        return RegistryError(shown, status=status, method=method, url=url, retryable=status >= 500)

    async def _call(
        self, method: str, url: str, *, what: str, scopes: str, params: dict[str, str] | None = None
    ) -> httpx.Response | None:
        """One API request under the retry policy; None for a DELETE whose retry found it gone."""
        headers = self._headers()
        attempts = 0

        async def once() -> httpx.Response | None:
            nonlocal attempts
            attempts += 1
            try:
                response = await self._http.request(method, url, params=params, headers=headers)
            except httpx.TimeoutException as exc:
                raise RegistryError(
                    f"{what}: GitHub API {method} {redact_url(url)}: timed out ({type(exc).__name__})",
                    retryable=True,
                ) from None
            except httpx.TransportError as exc:
                raise RegistryError(
                    f"{what}: GitHub API {method} {redact_url(url)}: {type(exc).__name__}", retryable=True
                ) from None
            finally:
                self.requests += 1
            if response.status_code in (200, 204):
                return response
            if response.status_code == 404 and method == "DELETE" and attempts > 1:
                return None
            raise self._error(response, what, scopes)

        return await self.retry.call(once)

    def _versions_url(self, kind: str) -> str:
        name = quote(self.package, safe="")
        return f"{self.api_url}/{kind}/{quote(self.owner, safe='')}/packages/container/{name}/versions"

    # -- versions ----------------------------------------------------------------------------------

    async def _pages(self, stop_at: str | None = None) -> dict[str, Version]:
        """Versions page by page (newest first); stops early once ``stop_at`` (a digest) is seen."""
        found: dict[str, Version] = {}
        kinds = [self._owner_kind] if self._owner_kind else ["orgs", "users"]
        for kind in kinds:
            url: str | None = self._versions_url(kind)
            params: dict[str, str] | None = {"per_page": str(self.per_page), "state": "active"}
            try:
                while url is not None:
                    response = await self._call(
                        "GET", url, what=self.ref.name, scopes="read:packages", params=params
                    )
                    assert response is not None
                    for version in self._parse(response):
                        found[version.digest] = version
                    self._owner_kind = kind
                    if stop_at is not None and stop_at in found:
                        return found
                    url = response.links.get("next", {}).get("url")
                    params = None  # the next link carries them
            except NotFound:
                if kind == kinds[-1]:
                    raise NotFound(
                        f"{self.ref.name}: no container package {self.package!r} owned by "
                        f"{self.owner!r} on GitHub (as an organisation or a user)"
                    ) from None
                continue
            return found
        return found

    def _parse(self, response: httpx.Response) -> list[Version]:
        try:
            items: Any = response.json()
        except ValueError:
            raise RegistryError(f"{self.ref.name}: GitHub API: package versions are not JSON") from None
        if not isinstance(items, list):
            raise RegistryError(f"{self.ref.name}: GitHub API: package versions are not a list")
        versions = []
        for item in items:
            if not isinstance(item, dict) or not isinstance(item.get("name"), str) or "id" not in item:
                raise RegistryError(f"{self.ref.name}: GitHub API: a package version without id or name")
            container = (item.get("metadata") or {}).get("container") or {}
            tags = container.get("tags") or []
            versions.append(
                Version(
                    id=str(item["id"]),
                    digest=item["name"],
                    tags=tuple(t for t in tags if isinstance(t, str)),
                    created=parse_rfc3339(item.get("created_at")),
                    pushed=parse_rfc3339(item.get("updated_at")),
                )
            )
        return versions

    async def versions(self) -> list[Version]:
        if self._versions is None:
            self._versions = await self._pages()
        return list(self._versions.values())

    async def _find(self, digest: str) -> Version | None:
        if self._versions is None:
            await self.versions()
        assert self._versions is not None
        if digest not in self._versions:
            # Pushed since the listing (a placeholder): it is on the first page, newest first.
            self._versions.update(await self._pages(stop_at=digest))
        return self._versions.get(digest)

    # -- deleting ----------------------------------------------------------------------------------

    async def delete_manifest(self, digest: str, repo: Repository) -> None:
        what = f"{self.ref.name}@{digest}"
        version = await self._find(digest)
        if version is None:
            raise NotFound(f"{what}: no such package version")
        async with self._mutations:
            pause = self._last_mutation + self.mutation_interval - time.monotonic()
            if pause > 0:
                await anyio.sleep(pause)
            try:
                await self._call(
                    "DELETE",
                    f"{self._versions_url(self._owner_kind or 'orgs')}/{version.id}",
                    what=what,
                    scopes="read:packages and delete:packages",
                )
            finally:
                self._last_mutation = time.monotonic()
        assert self._versions is not None
        self._versions.pop(digest, None)

    async def delete_tag(self, tag: str, repo: Repository) -> str:
        from splitbuild.store.registry import EMPTY_JSON, placeholder_manifest

        what = f"{self.ref.name}:{tag}"
        current = await repo.head_manifest(tag)
        if current is None:
            raise NotFound(f"{what}: tag not found")
        original = await repo.get_manifest(current.digest)
        placeholder = placeholder_manifest(tag)
        empty = placeholder.image().config
        if not await repo.has_blob(empty.digest):
            await repo.put_blob(empty, EMPTY_JSON)
        await repo.put_manifest(placeholder, tag)
        try:
            await self.delete_manifest(placeholder.digest, repo)
        except BaseException as exc:
            with anyio.CancelScope(shield=True):
                await repo.put_manifest(original, tag)
            if isinstance(exc, SplitbuildError):
                exc.message = f"{exc.message}; {what} points at {current.digest} again"
                exc.args = (exc.message,)
            raise
        if self._versions is not None and current.digest in self._versions:
            kept = self._versions[current.digest]
            self._versions[current.digest] = Version(
                kept.id, kept.digest, tuple(t for t in kept.tags if t != tag), kept.created, kept.pushed
            )
        return "placeholder"
