"""The one retry policy for registry operations (built on tenacity).

Retried: connection errors, timeouts, and responses the registry marks as transient
(408, 429, 500, 502, 503, 504), which :mod:`splitbuild.store.registry` turns into
``RegistryError(retryable=True)``. ``Retry-After`` is honoured (capped by ``max_delay``);
otherwise the wait is exponential with jitter. Attempts and total time are both bounded.
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, replace
from typing import TypeVar

from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt, stop_after_delay

from splitbuild.errors import ConfigError, RegistryError

__all__ = ["FAST_RETRY", "NO_RETRY", "RetryPolicy"]

T = TypeVar("T")


def _is_transient(exc: BaseException) -> bool:
    return isinstance(exc, RegistryError) and exc.retryable


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded exponential backoff with jitter; ``Retry-After`` wins when the server sends it."""

    attempts: int = 5
    initial: float = 0.5
    multiplier: float = 2.0
    max_delay: float = 30.0
    total: float = 120.0
    jitter: float = 0.25

    def wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, RegistryError) and exc.retry_after is not None:
            return min(max(exc.retry_after, 0.0), self.max_delay)
        base = min(self.initial * self.multiplier ** (state.attempt_number - 1), self.max_delay)
        return base * (1 + random.uniform(-self.jitter, self.jitter))

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> RetryPolicy:
        """The default policy, adjusted by ``SPLITBUILD_RETRY_ATTEMPTS`` and ``SPLITBUILD_RETRY_TOTAL``."""
        policy = cls()
        try:
            if "SPLITBUILD_RETRY_ATTEMPTS" in env:
                policy = replace(policy, attempts=max(1, int(env["SPLITBUILD_RETRY_ATTEMPTS"])))
            if "SPLITBUILD_RETRY_TOTAL" in env:
                policy = replace(policy, total=max(0.0, float(env["SPLITBUILD_RETRY_TOTAL"])))
        except ValueError:
            raise ConfigError("SPLITBUILD_RETRY_ATTEMPTS/SPLITBUILD_RETRY_TOTAL must be numbers") from None
        return policy

    async def call(self, fn: Callable[[], Awaitable[T]]) -> T:
        """Run ``fn`` until it succeeds, fails with a non-transient error, or the budget is spent."""
        if self.attempts <= 1:
            return await fn()
        retrying = AsyncRetrying(
            stop=stop_after_attempt(self.attempts) | stop_after_delay(self.total),
            wait=self.wait,
            retry=retry_if_exception(_is_transient),
            reraise=True,
        )
        async for attempt in retrying:
            with attempt:
                return await fn()
        raise AssertionError("unreachable")  # pragma: no cover


NO_RETRY = RetryPolicy(attempts=1)
FAST_RETRY = RetryPolicy(attempts=5, initial=0.01, max_delay=0.2, total=10.0)
