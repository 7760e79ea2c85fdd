"""The one retry policy for registry operations (built on tenacity).

Retried: connection errors, timeouts, and responses the registry marks as transient
(408, 429, 500, 502, 503, 504), which :mod:`splitbuild.store.registry` turns into
``RegistryError(retryable=True)``. Not retried: connection refused and unknown host names (the
registry is down or misnamed: the error comes at once). ``Retry-After`` (delta-seconds or an HTTP
date, :func:`splitbuild._http.retry_after`) is honoured: the next attempt waits that long (at
least the backoff, at most ``max_delay``), and when the server asks for more time than is left of
the budget the retries end at once; otherwise the wait is exponential with jitter.
Both attempts and total time are bounded: no wait is started that would end after ``total``
seconds from the first attempt. The error that ends the retries says how many attempts were made.
"""

from __future__ import annotations

import copy
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, replace
from typing import TypeVar

import anyio
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    stop_before_delay,
)
from tenacity.stop import stop_base

from splitbuild.errors import ConfigError, RegistryError

__all__ = ["FAST_RETRY", "NO_RETRY", "RetryPolicy"]

T = TypeVar("T")

_RETRYING: ContextVar[bool] = ContextVar("splitbuild_retrying", default=False)

ATTEMPTS_ENV = "SPLITBUILD_RETRY_ATTEMPTS"
TOTAL_ENV = "SPLITBUILD_RETRY_TOTAL"


def _is_transient(exc: BaseException) -> bool:
    return isinstance(exc, RegistryError) and exc.retryable


_GAVE_UP = "; gave up after "


def _gave_up(exc: RegistryError, attempts: int, elapsed: float) -> RegistryError:
    """``exc`` (same type and fields) saying how many attempts were made, in how long.

    An error that already says so (an inner retry inside an outer one) gets the outer figures.
    """
    base = exc.message if exc.attempts is None else exc.message.rsplit(_GAVE_UP, 1)[0]
    asked = f" (Retry-After: {exc.retry_after:g} s)" if exc.retry_after is not None else ""
    final = copy.copy(exc)
    final.attempts = attempts
    plural = "attempt" if attempts == 1 else "attempts"
    final.message = f"{base}{_GAVE_UP}{attempts} {plural} in {elapsed:.1f} s{asked}"
    return final


class _RetryAfterPastBudget(stop_base):
    """Stop when the server's ``Retry-After`` ends past the budget: retrying sooner is pointless."""

    def __init__(self, total: float) -> None:
        self.total = total

    def __call__(self, retry_state: RetryCallState) -> bool:
        exc = retry_state.outcome.exception() if retry_state.outcome else None
        if not isinstance(exc, RegistryError) or exc.retry_after is None:
            return False
        return (retry_state.seconds_since_start or 0.0) + exc.retry_after >= self.total


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded exponential backoff with jitter; a longer ``Retry-After`` wins when the server sends it.

    ``attempts``: requests at most (1: no retry). ``initial``, ``multiplier``, ``jitter``: the
    backoff (0.5 s, 1 s, 2 s... each +-25%). ``max_delay``: the longest single wait, also for
    ``Retry-After``. ``total``: the time budget in seconds from the first attempt; a wait that
    would end past it is not started, nor is one the server asks to last past it (the last error
    is raised instead).
    """

    attempts: int = 5
    initial: float = 0.5
    multiplier: float = 2.0
    max_delay: float = 30.0
    total: float = 120.0
    jitter: float = 0.25

    def wait(self, state: RetryCallState) -> float:
        base = min(self.initial * self.multiplier ** (state.attempt_number - 1), self.max_delay)
        backoff = base * (1 + random.uniform(-self.jitter, self.jitter))
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, RegistryError) and exc.retry_after is not None:
            # The server may ask for longer, never for less than the backoff (Retry-After: 0).
            return min(max(exc.retry_after, backoff), self.max_delay)
        return backoff

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> RetryPolicy:
        """The default policy, adjusted by ``SPLITBUILD_RETRY_ATTEMPTS`` and ``SPLITBUILD_RETRY_TOTAL``."""
        policy = cls()
        try:
            if env.get(ATTEMPTS_ENV):
                policy = replace(policy, attempts=max(1, int(env[ATTEMPTS_ENV])))
            if env.get(TOTAL_ENV):
                policy = replace(policy, total=max(0.0, float(env[TOTAL_ENV])))
        except ValueError:
            raise ConfigError(
                f"{ATTEMPTS_ENV} must be a whole number and {TOTAL_ENV} a number of seconds"
            ) from None
        return policy

    async def call(self, fn: Callable[[], Awaitable[T]]) -> T:
        """Run ``fn`` until it succeeds, fails with a non-transient error, or the budget is spent.

        Inside another ``call`` (reading a blob inside a retried upload, say) ``fn`` runs once:
        the outer loop retries, so attempts and time stay bounded as documented, not multiplied.
        """
        if self.attempts <= 1 or _RETRYING.get():
            return await fn()
        token = _RETRYING.set(True)
        try:
            return await self._call(fn)
        finally:
            _RETRYING.reset(token)

    async def _call(self, fn: Callable[[], Awaitable[T]]) -> T:
        retrying = AsyncRetrying(
            stop=stop_after_attempt(self.attempts)
            | stop_before_delay(self.total)
            | _RetryAfterPastBudget(self.total),
            wait=self.wait,
            retry=retry_if_exception(_is_transient),
            reraise=True,
            # tenacity's own sleep looks for trio, which the CLI marks absent (see cli.app)
            sleep=anyio.sleep,
        )
        start = time.monotonic()
        try:
            async for attempt in retrying:
                with attempt:
                    return await fn()
        except RegistryError as exc:
            if not exc.retryable:
                raise
            made = int(retrying.statistics.get("attempt_number", 1))
            raise _gave_up(exc, made, time.monotonic() - start) from None
        raise AssertionError("unreachable")  # pragma: no cover


NO_RETRY = RetryPolicy(attempts=1)
FAST_RETRY = RetryPolicy(attempts=5, initial=0.01, max_delay=0.2, total=10.0)
