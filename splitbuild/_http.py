"""Reading registry HTTP responses for error reports: redacted URLs, ``Retry-After``, error bodies.

Shared by the registry store and the auth flows, so that every error names a request the same way
and never carries a query string (upload state, tokens) or user info.
"""

from __future__ import annotations

import json
import time
from email.utils import parsedate_to_datetime

import httpx

from splitbuild.errors import ErrorDetail

__all__ = ["error_details", "redact_url", "retry_after"]


def redact_url(url: httpx.URL | str) -> str:
    """The URL without query, fragment or user info (which may carry secrets)."""
    try:
        parsed = httpx.URL(url) if isinstance(url, str) else url
        return str(parsed.copy_with(query=None, fragment=None, username=None, password=None))
    except (httpx.InvalidURL, TypeError, ValueError):
        return "<invalid URL>"


def retry_after(response: httpx.Response) -> float | None:
    """``Retry-After`` in seconds (delta or HTTP date), or None."""
    value = response.headers.get("Retry-After")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


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
