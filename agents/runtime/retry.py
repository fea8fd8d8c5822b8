"""Retries with jittered exponential backoff inside a deadline, and a circuit breaker.

Only failures the classifier calls retryable are retried (by default: `RetryableError`,
`TimeoutError`, `ConnectionError`); a contract revert or bad input is raised at once, never
retried. A circuit breaker in front of a dependency (an RPC, a prover) opens after repeated
failures, fails calls fast while open, and lets one trial call through after a cool-down.
"""

from __future__ import annotations

import asyncio
import functools
import json
import random
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import Executor
from dataclasses import dataclass
from enum import Enum
from typing import Any, Final, TypeVar

from agents.core.errors import PermanentError, RetryableError

T = TypeVar("T")


class DeadlineExceededError(RetryableError, TimeoutError):
    """The retries ran out of time; the last failure is the cause."""


class CircuitOpenError(RetryableError):
    """A dependency failed repeatedly; calls fail fast until the breaker's cool-down ends."""


def is_retryable(error: BaseException) -> bool:
    """The default classification: retry what the world may fix, never what the input breaks."""
    if isinstance(error, PermanentError):
        return False
    return isinstance(error, RetryableError | TimeoutError | ConnectionError)


#: Substrings of node error messages that say "try again later" (rate limits, overload, restarts).
_TRANSIENT_RPC = (
    "429",
    "too many requests",
    "rate limit",
    "502",
    "503",
    "504",
    "bad gateway",
    "timeout",
    "timed out",
    "temporarily unavailable",
    "header not found",
    "connection reset",
)


REVERTS = frozenset({"ContractLogicError", "ContractCustomError", "ContractPanicError", "TransactionFailed"})
"""How a reverted call surfaces: web3's errors, and eth-tester's on the embedded chain."""


def is_revert(error: BaseException) -> bool:
    """Whether a node call failed because the contract reverted (permanent: never retried)."""
    return type(error).__name__ in REVERTS


def is_retryable_rpc(error: BaseException) -> bool:
    """For calls to a node: network failures, HTTP 429/5xx, timeouts and undecodable answers are
    retried; a revert, an invalid transaction or bad input is not."""
    if isinstance(error, PermanentError):
        return False
    if is_retryable(error) or isinstance(error, OSError):  # requests' and aiohttp's network errors
        return True
    if isinstance(error, json.JSONDecodeError | UnicodeDecodeError):  # garbage from a proxy
        return True
    name = type(error).__name__
    if is_revert(error) or name == "TransactionNotFound":
        return False
    if name in ("ProviderConnectionError", "TimeExhausted", "BadResponseFormat"):
        return True
    message = str(error).lower()
    return any(marker in message for marker in _TRANSIENT_RPC)


@dataclass(frozen=True)
class Backoff:
    """Full-jitter exponential backoff: the n-th wait is uniform in [0, min(cap, base * 2**n)]."""

    base: float = 0.1
    cap: float = 5.0
    deadline: float = 30.0
    max_attempts: int | None = None

    def delay(self, attempt: int, rng: random.Random) -> float:
        return rng.uniform(0.0, min(self.cap, self.base * 2.0**attempt))


async def retry(
    call: Callable[[], Awaitable[T]],
    backoff: Backoff = Backoff(),  # frozen: sharing the default is safe
    *,
    retryable: Callable[[BaseException], bool] = is_retryable,
    rng: random.Random | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    on_retry: Callable[[int, BaseException, float], None] | None = None,
) -> T:
    """`await call()` until it succeeds, a failure is not retryable, attempts run out, or the
    next wait would cross the deadline (then `DeadlineExceededError` from the last failure)."""
    rng = rng or random.Random()
    started = clock()
    attempt = 0
    while True:
        try:
            return await call()
        except BaseException as error:
            if isinstance(error, asyncio.CancelledError) or not retryable(error):
                raise
            attempt += 1
            wait = backoff.delay(attempt - 1, rng)
            if backoff.max_attempts is not None and attempt >= backoff.max_attempts:
                raise DeadlineExceededError(f"gave up after {attempt} attempts: {error}") from error
            if clock() - started + wait > backoff.deadline:
                message = f"gave up after {attempt} attempts in {backoff.deadline}s: {error}"
                raise DeadlineExceededError(message) from error
            if on_retry is not None:
                on_retry(attempt, error, wait)
            await sleep(wait)


async def call_node(
    function: Callable[..., T],
    *args: Any,
    backoff: Backoff,
    breaker: CircuitBreaker | None = None,
    executor: Executor | None = None,
) -> T:
    """One synchronous node call (web3) in a worker thread (`executor`'s, when given: see
    `agents.runtime.inprocess`), off the event loop, retried as an RPC call
    (`is_retryable_rpc`) inside `backoff`'s deadline, behind `breaker` when given."""

    def run() -> Awaitable[T]:
        return asyncio.get_running_loop().run_in_executor(executor, functools.partial(function, *args))

    def attempt() -> Awaitable[T]:
        if breaker is None:
            return run()
        return breaker.call(run)

    return await retry(attempt, backoff, retryable=is_retryable_rpc)


class BreakerState(Enum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half-open"


class CircuitBreaker:
    """Opens after `threshold` consecutive retryable failures; after `cool_down` seconds one
    trial call is let through (half-open): success closes it, failure opens it again.
    Permanent failures (a revert) say nothing about the dependency's health and do not count."""

    FAIL_FAST_MESSAGE: Final = "{name} failed {count} times in a row; retrying in {wait:.1f}s"

    def __init__(
        self,
        name: str,
        *,
        threshold: int = 5,
        cool_down: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
        retryable: Callable[[BaseException], bool] = is_retryable,
    ) -> None:
        self.name, self.threshold, self.cool_down = name, threshold, cool_down
        self._clock, self._retryable = clock, retryable
        self.failures = 0
        self._opened_at: float | None = None
        self._trial_running = False

    @property
    def state(self) -> BreakerState:
        if self._opened_at is None:
            return BreakerState.CLOSED
        if self._clock() - self._opened_at >= self.cool_down:
            return BreakerState.HALF_OPEN
        return BreakerState.OPEN

    async def call(self, call: Callable[[], Awaitable[T]]) -> T:
        state = self.state
        if state is BreakerState.OPEN or (state is BreakerState.HALF_OPEN and self._trial_running):
            wait = self.cool_down - (self._clock() - (self._opened_at or 0.0))
            raise CircuitOpenError(
                self.FAIL_FAST_MESSAGE.format(name=self.name, count=self.failures, wait=max(0.0, wait))
            )
        trial = state is BreakerState.HALF_OPEN
        self._trial_running = trial
        try:
            result = await call()
        except BaseException as error:
            if not isinstance(error, asyncio.CancelledError) and self._retryable(error):
                self.failures += 1
                if trial or self.failures >= self.threshold:
                    self._opened_at = self._clock()
            raise
        finally:
            if trial:
                self._trial_running = False
        self.failures = 0
        self._opened_at = None
        return result
