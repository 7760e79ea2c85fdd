"""Structured concurrency that reports errors the way the CLI needs them.

anyio task groups raise an ``ExceptionGroup``; splitbuild's callers want the error itself (one
line, one exit code). :func:`task_group` re-raises the first library error of the group (the
others are siblings cancelled because of it, or further instances of the same failure).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
from anyio.abc import TaskGroup

from splitbuild.errors import SplitbuildError

__all__ = ["first_error", "task_group"]


def first_error(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """The first :class:`SplitbuildError` in ``group`` (depth first), else its first leaf."""
    leaves: list[BaseException] = []

    def walk(exc: BaseException) -> None:
        if isinstance(exc, BaseExceptionGroup):
            for inner in exc.exceptions:
                walk(inner)
        else:
            leaves.append(exc)

    walk(group)
    for leaf in leaves:
        if isinstance(leaf, SplitbuildError):
            return leaf
    for leaf in leaves:
        if not isinstance(leaf, anyio.get_cancelled_exc_class()):
            return leaf
    return leaves[0]


@asynccontextmanager
async def task_group() -> AsyncIterator[TaskGroup]:
    try:
        async with anyio.create_task_group() as tg:
            yield tg
    except BaseExceptionGroup as group:
        raise first_error(group) from None
