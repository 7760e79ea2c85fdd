"""Tags on a registry: the paginated ``/v2/<name>/tags/list``.

:class:`Tags` owns reading the tag list page by page (``n=`` the client's page size, following
``Link`` headers, within the page, entry and size caps) and checking that every page is a list of
valid tag names. Removing a tag is :mod:`.tag_deletion`'s part.
"""

from __future__ import annotations

import re
from urllib.parse import urlencode

import httpx

from splitbuild.errors import RegistryError
from splitbuild.store.registry.endpoint import Endpoint, next_page

__all__ = ["MAX_PAGE_SIZE", "Tags"]

_TAG_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")

MAX_PAGE_SIZE = 32 * 1024 * 1024
"""The most a page of tags may weigh (a million tags of 32 characters)."""


class Tags:
    """The tag list of one registry repository."""

    def __init__(self, endpoint: Endpoint) -> None:
        self.endpoint = endpoint

    async def list_tags(self) -> list[str]:
        """Every tag, page by page, in the registry's order."""
        tags: list[str] = []
        visited: set[str] = set()
        url: str | None = f"{self.endpoint.base}/tags/list?{urlencode({'n': self.endpoint.client.page_size})}"
        what = f"{self.endpoint.name} tags"
        while url is not None:
            self.endpoint.check_listing(what, len(visited), len(tags))
            response = await self.endpoint.call(
                "GET", url, what=what, max_body=MAX_PAGE_SIZE, too_large=RegistryError
            )
            assert response is not None
            visited.add(url)
            tags.extend(self._tag_page(response))
            url = next_page(response, visited, what)
        self.endpoint.check_listing(what, 0, len(tags))
        return tags

    def _tag_page(self, response: httpx.Response) -> list[str]:
        try:
            body = response.json()
        except ValueError:
            raise RegistryError(f"{self.endpoint.name} tags: the registry returned invalid JSON") from None
        page = body.get("tags") if isinstance(body, dict) else None
        if page is None:
            return []
        if not isinstance(page, list) or not all(isinstance(t, str) and _TAG_RE.fullmatch(t) for t in page):
            raise RegistryError(
                f"{self.endpoint.name} tags: the registry returned something that is not a list of tags"
            )
        return page
