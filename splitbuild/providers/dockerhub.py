"""Docker Hub: tags through the Hub API (``hub.docker.com``), manifests through the registry API.

Endpoints::

    POST   /v2/auth/token {"identifier": USERNAME, "secret": PAT-or-password} -> {"access_token"}
    GET    /v2/namespaces/{namespace}/repositories/{repository}/tags?page_size=100  (``next`` links)
    DELETE /v2/repositories/{namespace}/{repository}/tags/{tag}/
    DELETE /v2/{namespace}/{repository}/manifests/{digest}        (the registry API, by digest)

The first two are in Docker's published Hub API reference; the tag ``DELETE`` is the endpoint the Hub
web UI and Docker's ``hub-tool`` use (the Hub API reference lists no deletion). The manifest
``DELETE`` is in Docker's published registry API reference for Hub: by digest only (a tag answers
405), only for a manifest no tag and no other image (an index listing it) references (else 403), and
a 500 means Hub finishes the deletion in the background. The credential is the one for
``docker.io`` (``docker login``: username and a personal access token with the Delete scope).

So a manifest is deleted by removing its tags through the Hub API, then the manifest by digest; the
deletion runs parents first, so an index's children are unreferenced by the time their turn comes.
Hub's published APIs list tags, not untagged images: ``prune --untagged`` cannot find the ones no
tag reaches (:attr:`DockerHubProvider.untagged_help`). Each tag's ``tag_last_pushed`` is its push
time. A 429 waits for ``Retry-After`` (seconds; older references: ``X-Retry-After``, a Unix time),
bounded by the retry policy.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from typing import Any
from urllib.parse import quote

import httpx

from splitbuild._http import redact_url, retry_after
from splitbuild._version import __version__
from splitbuild.errors import AuthError, NotFound, Refused, RegistryError, SplitbuildError
from splitbuild.providers.base import Provider, Version
from splitbuild.reference import Reference
from splitbuild.retry import RetryPolicy
from splitbuild.store.base import Repository
from splitbuild.timestamps import parse_rfc3339

__all__ = ["DEFAULT_HUB_URL", "DockerHubProvider"]

DEFAULT_HUB_URL = "https://hub.docker.com"


class DockerHubProvider(Provider):
    name = "dockerhub"
    records_push_time = True
    lists_untagged = False
    untagged_help = (
        "Docker Hub's published APIs list tags, not untagged images, so the untagged ones no tag "
        "reaches cannot be found there"
    )

    def __init__(
        self,
        ref: Reference,
        username: str | None,
        secret: str | None,
        *,
        retry: RetryPolicy,
        api_url: str = DEFAULT_HUB_URL,
        timeout: float = 30.0,
        page_size: int = 100,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.ref = ref.repo()
        self.namespace, _, self.repository = ref.repository.partition("/")
        self.retry = retry
        self.api_url = api_url.rstrip("/")
        self.page_size = page_size
        self.requests = 0
        self._username = username
        self._secret = secret
        self.records_push_time = bool(username and secret)
        self._token: str | None = None
        self._tags: dict[str, Version] | None = None
        self._http = httpx.AsyncClient(
            timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),
            transport=transport,
            follow_redirects=False,
            headers={"Accept": "application/json", "User-Agent": f"splitbuild/{__version__}"},
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    def _error(self, response: httpx.Response, what: str) -> SplitbuildError:
        status = response.status_code
        method = response.request.method
        url = redact_url(response.request.url)
        try:
            doc: Any = json.loads(response.content)
        except ValueError:
            doc = None
        detail = ""
        if isinstance(doc, dict):
            for key in ("message", "detail", "details"):
                if isinstance(doc.get(key), str):
                    detail = doc[key][:300]
                    break
        shown = f"{what}: Docker Hub API {method} {url}: {status}" + (f" ({detail})" if detail else "")
        if status == 429:
            wait = retry_after(response)
            if wait is None:  # older references: X-Retry-After, a Unix time
                at = response.headers.get("X-Retry-After", "")
                wait = max(0.0, float(at) - time.time()) if at.isascii() and at.isdigit() else 60.0
            return RegistryError(
                f"{shown}; rate limited for {wait:.0f} s", status=status, retryable=True, retry_after=wait
            )
        if status in (401, 403):
            return AuthError(
                f"{shown}: the Hub token was refused or may not delete in {self.namespace}",
                status=status,
                method=method,
                url=url,
                hint="docker login with a personal access token that has the Read, Write & Delete scope",
            )
        if status == 404:
            return NotFound(shown)
        return RegistryError(shown, status=status, method=method, url=url, retryable=status >= 500)

    async def _send(self, method: str, url: str, *, what: str, **kwargs: Any) -> httpx.Response:
        async def once() -> httpx.Response:
            try:
                response = await self._http.request(method, url, **kwargs)
            except httpx.TransportError as exc:
                raise RegistryError(
                    f"{what}: Docker Hub API {method} {redact_url(url)}: {type(exc).__name__}",
                    retryable=True,
                ) from None
            finally:
                self.requests += 1
            if response.status_code in (200, 201, 204):
                return response
            raise self._error(response, what)

        return await self.retry.call(once)

    async def _authorization(self) -> dict[str, str]:
        if self._token is None:
            if not self._username or not self._secret:
                raise AuthError(
                    f"{self.ref.name}: no Docker Hub credential (username and token)",
                    hint="docker login with your Hub username and a personal access token",
                )
            response = await self._send(
                "POST",
                f"{self.api_url}/v2/auth/token",
                what=f"{self.ref.name}: Hub login",
                json={"identifier": self._username, "secret": self._secret},
            )
            token = response.json().get("access_token") if response.content else None
            if not isinstance(token, str) or not token:
                raise AuthError(f"{self.ref.name}: Hub login answered without an access_token")
            self._token = token
        return {"Authorization": f"Bearer {self._token}"}

    async def _list(self) -> dict[str, Version]:
        ns, repo = quote(self.namespace, safe=""), quote(self.repository, safe="")
        url: str | None = f"{self.api_url}/v2/namespaces/{ns}/repositories/{repo}/tags"
        params: dict[str, str] | None = {"page_size": str(self.page_size)}
        tags: dict[str, Version] = {}
        headers = await self._authorization()
        while url:
            response = await self._send("GET", url, what=self.ref.name, params=params, headers=headers)
            doc = response.json()
            for item in doc.get("results") or []:
                if isinstance(item, dict) and isinstance(item.get("name"), str):
                    images = item.get("images")
                    digest = item.get("digest") or (
                        images.get("digest") if isinstance(images, dict) else None
                    )
                    tags[item["name"]] = Version(
                        id=item["name"],
                        digest=str(digest or ""),
                        tags=(item["name"],),
                        created=parse_rfc3339(item.get("last_updated")),
                        pushed=parse_rfc3339(item.get("tag_last_pushed")),
                    )
            url = doc.get("next") or None
            params = None
        return tags

    async def versions(self) -> list[Version]:
        if self._tags is None:
            self._tags = await self._list()
        return list(self._tags.values())

    async def pushed(self) -> dict[str, dt.datetime]:
        await self.versions()
        assert self._tags is not None
        return {t: v.pushed for t, v in self._tags.items() if v.pushed is not None}

    async def _delete(self, tag: str) -> None:
        ns, repo = quote(self.namespace, safe=""), quote(self.repository, safe="")
        headers = await self._authorization()
        await self._send(
            "DELETE",
            f"{self.api_url}/v2/repositories/{ns}/{repo}/tags/{quote(tag, safe='')}/",
            what=f"{self.ref.name}:{tag}",
            headers=headers,
        )
        if self._tags is not None:
            self._tags.pop(tag, None)

    async def delete_manifest(self, digest: str, repo: Repository) -> None:
        """Remove every tag on ``digest`` through the Hub API, then the manifest by digest through
        the registry API (``repo``); NotFound when it is not there."""
        for version in await self.versions():
            if version.digest == digest:
                await self._delete(version.id)
        what = f"{self.ref.name}@{digest}"
        try:
            await repo.delete_manifest(digest)
        except RegistryError as exc:
            if exc.status == 500:
                return  # Hub's reference: the deletion is finished in the background
            if exc.status != 403:
                raise
            raise Refused(
                f"{what}: Docker Hub refused to delete the manifest (403): a tag or another image "
                "(an index, perhaps an untagged one) still references it, or the token may not delete "
                "(its tags, if any, were removed)",
                hint="a personal access token needs the Read, Write & Delete scope; "
                "an untagged index that lists it must be deleted first",
            ) from None

    async def delete_tag(self, tag: str, repo: Repository) -> str:
        await self._delete(tag)
        return "tag"
