"""Requests per client, limited by a token bucket per client address (bounded memory: the least
recently seen clients are forgotten first, which only ever gives them a full bucket back)."""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable

from aiohttp import web
from aiohttp.typedefs import Middleware

from agents.api.errors import ApiError, Handler


class RateLimiter:
    def __init__(
        self,
        rate_per_s: float,
        burst: int,
        *,
        max_clients: int = 65_536,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if rate_per_s <= 0 or burst < 1:
            raise ValueError("rate_per_s must be > 0 and burst >= 1")
        self.rate, self.burst, self.max_clients = rate_per_s, burst, max_clients
        self._clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def take(self, client: str) -> float:
        """0 if the client may go on now, else the seconds until it may."""
        now = self._clock()
        tokens, at = self._buckets.pop(client, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - at) * self.rate)
        wait = 0.0
        if tokens >= 1.0:
            tokens -= 1.0
        else:
            wait = (1.0 - tokens) / self.rate
        self._buckets[client] = (tokens, now)
        while len(self._buckets) > self.max_clients:
            self._buckets.popitem(last=False)
        return wait

    def middleware(self, exempt: frozenset[str] = frozenset()) -> Middleware:
        @web.middleware
        async def limit(request: web.Request, handler: Handler) -> web.StreamResponse:
            if request.path not in exempt:
                wait = self.take(request.remote or "unknown")
                if wait > 0:
                    raise ApiError(
                        429,
                        f"too many requests from this client; retry in {wait:.2f} s",
                        headers={"Retry-After": str(max(1, math.ceil(wait)))},
                    )
            return await handler(request)

        return limit
