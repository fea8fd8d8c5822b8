"""Retries and the circuit breaker (agents/runtime/retry.py)."""

from __future__ import annotations

import asyncio
import random

import pytest

from agents.core.errors import PermanentError, RetryableError
from agents.runtime.retry import (
    Backoff,
    BreakerState,
    CircuitBreaker,
    CircuitOpenError,
    DeadlineExceededError,
    is_retryable,
    retry,
)


class FakeTime:
    """A clock that `sleep` advances: backoff schedules are checked without waiting them out."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def _failing(times: int, error: BaseException) -> tuple[list[int], object]:
    calls: list[int] = []

    async def call() -> str:
        calls.append(1)
        if len(calls) <= times:
            raise error
        return "ok"

    return calls, call


def test_retryable_failures_are_retried_with_jittered_growing_waits():
    time = FakeTime()
    calls, call = _failing(4, ConnectionError("502"))
    result = asyncio.run(
        retry(call, Backoff(base=0.1, cap=1.0), rng=random.Random(1), clock=time.clock, sleep=time.sleep)  # type: ignore[arg-type]
    )
    assert result == "ok" and len(calls) == 5
    assert all(0 <= wait <= min(1.0, 0.1 * 2**n) for n, wait in enumerate(time.sleeps))
    assert len(set(time.sleeps)) == 4  # jittered, not a fixed schedule


@pytest.mark.parametrize("error", [PermanentError("execution reverted"), ValueError("bad input"), KeyError("x")])
def test_a_revert_or_bad_input_is_never_retried(error: BaseException):
    calls, call = _failing(1, error)
    with pytest.raises(type(error)):
        asyncio.run(retry(call))  # type: ignore[arg-type]
    assert len(calls) == 1


def test_retries_stop_at_the_deadline_with_the_last_failure_as_cause():
    time = FakeTime()
    calls, call = _failing(10_000, TimeoutError("rpc timeout"))
    with pytest.raises(DeadlineExceededError, match="gave up") as raised:
        asyncio.run(retry(call, Backoff(base=1, cap=4, deadline=30), clock=time.clock, sleep=time.sleep))  # type: ignore[arg-type]
    assert isinstance(raised.value.__cause__, TimeoutError)
    assert time.now <= 30 and len(calls) > 3


def test_retries_stop_after_max_attempts():
    calls, call = _failing(10, RetryableError("429"))
    time = FakeTime()
    with pytest.raises(DeadlineExceededError, match="3 attempts"):
        asyncio.run(retry(call, Backoff(max_attempts=3), clock=time.clock, sleep=time.sleep))  # type: ignore[arg-type]
    assert len(calls) == 3


def test_classification():
    assert is_retryable(TimeoutError()) and is_retryable(ConnectionResetError()) and is_retryable(RetryableError())
    assert not is_retryable(PermanentError()) and not is_retryable(ValueError())


def test_breaker_opens_fails_fast_then_half_opens_and_closes():
    time = FakeTime()
    breaker = CircuitBreaker("rpc", threshold=3, cool_down=10, clock=time.clock)
    calls, failing = _failing(10**6, ConnectionError("down"))

    async def run(call: object) -> object:
        return await breaker.call(call)  # type: ignore[arg-type]

    for _ in range(3):
        with pytest.raises(ConnectionError):
            asyncio.run(run(failing))
    assert breaker.state is BreakerState.OPEN
    with pytest.raises(CircuitOpenError, match="rpc failed 3 times"):
        asyncio.run(run(failing))
    assert len(calls) == 3  # failed fast: the dependency was not called
    time.now += 10
    assert breaker.state is BreakerState.HALF_OPEN
    with pytest.raises(ConnectionError):  # the trial fails: open again at once
        asyncio.run(run(failing))
    assert breaker.state is BreakerState.OPEN
    time.now += 10
    _, healthy = _failing(0, ConnectionError())
    assert asyncio.run(run(healthy)) == "ok"
    assert breaker.state is BreakerState.CLOSED and breaker.failures == 0


def test_breaker_ignores_reverts():
    breaker = CircuitBreaker("rpc", threshold=1)
    _, revert = _failing(10, PermanentError("execution reverted"))
    for _ in range(3):
        with pytest.raises(PermanentError):
            asyncio.run(breaker.call(revert))  # type: ignore[arg-type]
    assert breaker.state is BreakerState.CLOSED
