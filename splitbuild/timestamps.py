"""Timestamps as registries and APIs write them: RFC 3339 / ISO 8601 text to aware datetimes.

One parser for image ``created`` fields and annotations (nanosecond fractions, as Go writes them),
GitHub and Docker Hub API times, and the order of published indexes; one formatter for what
splitbuild writes (UTC, ``Z``).
"""

from __future__ import annotations

import datetime as dt
import re

__all__ = ["format_rfc3339", "parse_rfc3339"]

_FRACTION = re.compile(r"(\.\d{6})\d+")


def parse_rfc3339(text: object) -> dt.datetime | None:
    """``text`` as an aware datetime (no zone: UTC); None when absent, not a string or invalid."""
    if not isinstance(text, str) or not text:
        return None
    value = _FRACTION.sub(r"\1", text.strip()).replace("Z", "+00:00").replace("z", "+00:00")
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=dt.UTC)


def format_rfc3339(moment: dt.datetime) -> str:
    """``moment`` in UTC as ``2026-12-03T22:22:20Z`` (fractions of a second kept when present)."""
    utc = moment.astimezone(dt.UTC) if moment.tzinfo is not None else moment.replace(tzinfo=dt.UTC)
    return utc.isoformat().replace("+00:00", "Z")
