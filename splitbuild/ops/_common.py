"""Helpers the maintenance operations share: references in, bounded concurrency."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import TypeVar

import anyio

from splitbuild._tasks import task_group
from splitbuild.errors import InvalidInput, UsageError
from splitbuild.reference import AnyReference, parse_reference

__all__ = [
    "DEFAULT_JOBS",
    "RefLike",
    "as_reference",
    "bounded",
    "compile_pattern",
    "identifier",
    "short",
]

T = TypeVar("T")
R = TypeVar("R")

RefLike = str | AnyReference
"""A reference as text (``ghcr.io/acme/app:1.2``, ``oci:./out:v1``) or already parsed."""

DEFAULT_JOBS = 8
"""Operations in flight at once (the registry client also limits requests per host)."""


def as_reference(ref: RefLike) -> AnyReference:
    return parse_reference(ref) if isinstance(ref, str) else ref


def identifier(ref: AnyReference) -> str:
    """The digest, else the tag, else ``latest`` (as docker defaults)."""
    return ref.identifier or "latest"


def short(digest: str) -> str:
    """``sha256:`` and the first 12 hex digits, for messages."""
    return digest[: digest.index(":") + 13] if ":" in digest else digest


def compile_pattern(pattern: str | None, option: str) -> re.Pattern[str] | None:
    """A regular expression matched against whole tags (anchored, like ``regctl tag ls``)."""
    if pattern is None:
        return None
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise InvalidInput(f"invalid {option} pattern {pattern!r}: {exc}") from None


async def bounded(items: Iterable[T], fn: Callable[[T], Awaitable[R]], jobs: int) -> list[R]:
    """``fn`` over ``items`` with at most ``jobs`` running at once; results in input order."""
    if jobs < 1:
        raise UsageError(f"jobs must be at least 1 (got {jobs})")
    work: Sequence[T] = list(items)
    results: list[R | None] = [None] * len(work)
    limiter = anyio.CapacityLimiter(jobs)

    async def one(i: int, item: T) -> None:
        async with limiter:
            results[i] = await fn(item)

    async with task_group() as tg:
        for i, item in enumerate(work):
            tg.start_soon(one, i, item)
    return results  # type: ignore[return-value]
