"""A probe that shows blocking work stayed off the event loop: it counts loop ticks meanwhile."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass


@dataclass
class Ticks:
    count: int = 0


@contextlib.asynccontextmanager
async def loop_ticks(interval: float) -> AsyncIterator[Ticks]:
    """Counts how often the loop ran a task sleeping `interval` seconds, while the block runs."""
    ticks = Ticks()

    async def tick() -> None:
        while True:
            await asyncio.sleep(interval)
            ticks.count += 1

    task = asyncio.create_task(tick())
    try:
        yield ticks
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
