"""Reading registry HTTP responses: bounded bodies, redacted URLs, ``Retry-After``, error bodies.

Shared by the registry store and the auth flows, so that every error names a request the same way
and never carries a query string (upload state, tokens) or user info.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from datetime import UTC
from email.utils import parsedate_to_datetime

import anyio
import httpx

from splitbuild.errors import ErrorDetail

__all__ = ["error_details", "read_bounded", "redact_url", "retry_after"]


def redact_url(url: httpx.URL | str) -> str:
    """The URL without query, fragment or user info (which may carry secrets)."""
    try:
        parsed = httpx.URL(url) if isinstance(url, str) else url
        return str(parsed.copy_with(query=None, fragment=None, username=None, password=None))
    except (httpx.InvalidURL, TypeError, ValueError):
        return "<invalid URL>"


RETRY_AFTER_MAX = 24 * 3600.0
"""A longer ``Retry-After`` is read as this (the retry policy caps every wait far below it)."""


def retry_after(response: httpx.Response) -> float | None:
    """``Retry-After`` in seconds, read by RFC 9110: delta-seconds (ASCII digits only) or an
    HTTP-date (a past date is 0). Anything else (``nan``, ``-5``, ``1_0``, ``1.5``) is ignored: None."""
    value = response.headers.get("Retry-After", "").strip(" \t")
    if not value:
        return None
    if value.isascii() and value.isdigit():
        return float(int(value)) if len(value) <= 6 else RETRY_AFTER_MAX
    if not value.isascii() or not value[:1].isalpha():
        return None  # an HTTP-date starts with the day name (IMF-fixdate, RFC 850 or asctime)
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return min(max(0.0, moment.timestamp() - time.time()), RETRY_AFTER_MAX)


TRUNCATED = "splitbuild.truncated"
"""``response.extensions[TRUNCATED]``: the body read was cut at its limit (the answer was longer)."""


def _keep(response: httpx.Response, body: bytes, more: bool) -> None:
    """Make ``body`` what ``response.content`` returns (the stream itself is closed)."""
    response._content = body
    response.extensions[TRUNCATED] = more


async def read_bounded(
    response: httpx.Response, limit: int, *, deadline: float | None = None
) -> tuple[bytes, bool]:
    """At most ``limit`` bytes of a streamed body, read as it arrives (never the whole of a larger
    one), and whether there was more. The response is closed; ``response.content`` is what was read.

    ``deadline`` (:func:`anyio.current_time`): no read ends later (``TimeoutError``).
    Transport errors are httpx's (the caller translates them).
    """
    declared = response.headers.get("Content-Length", "")
    body = bytearray()
    more = declared.isdigit() and int(declared) > limit
    try:
        if not more:
            async for chunk in _until(response.aiter_bytes(), deadline):
                body += chunk
                if len(body) > limit:
                    more = True
                    break
    finally:
        await response.aclose()
    kept = bytes(body[:limit])
    _keep(response, kept, more)
    return kept, more


async def _until(chunks: AsyncIterator[bytes], deadline: float | None) -> AsyncIterator[bytes]:
    """``chunks``, each awaited under ``deadline`` (a trickling server cannot stretch the read)."""
    iterator = aiter(chunks)
    while True:
        try:
            if deadline is None:
                chunk = await anext(iterator)
            else:
                with anyio.fail_after(max(0.0, deadline - anyio.current_time())):
                    chunk = await anext(iterator)
        except StopAsyncIteration:
            return
        yield chunk


def error_details(response: httpx.Response) -> tuple[ErrorDetail, ...]:
    """The ``errors`` list of a registry error body, when the body was read and is JSON."""
    try:
        document = json.loads(response.content)
    except (httpx.ResponseNotRead, ValueError):
        return ()
    errors = document.get("errors") if isinstance(document, dict) else None
    if not isinstance(errors, list):
        return ()
    details = []
    for item in errors:
        if isinstance(item, dict) and isinstance(item.get("code"), str):
            message = item.get("message")
            details.append(ErrorDetail(item["code"], message if isinstance(message, str) else ""))
    return tuple(details)
