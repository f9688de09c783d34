"""Pacing for outgoing messages: token buckets per key (workspace, channel, conversation)."""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Callable


class TokenBucket:
    """Allows `rate` acquisitions per second on average, with bursts of up to `burst`."""

    def __init__(self, rate: float, burst: float, *, clock: Callable[[], float] = time.monotonic):
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._tokens = burst
        self._stamp = clock()
        self._lock = asyncio.Lock()

    def _refill(self) -> None:
        now = self._clock()
        self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
        self._stamp = now

    async def acquire(self) -> None:
        async with self._lock:
            while True:
                self._refill()
                if self._tokens >= 1:
                    self._tokens -= 1
                    return
                await asyncio.sleep((1 - self._tokens) / self.rate)

    def hold(self, seconds: float) -> None:
        """Spend the bucket for `seconds` (a 429 said to wait)."""
        self._refill()
        self._tokens = min(self._tokens, 1 - seconds * self.rate)


class KeyedLimiter:
    """One bucket per key, keeping the most recently used `capacity` keys."""

    def __init__(self, rate: float, burst: float, capacity: int = 10_000):
        self.rate, self.burst, self.capacity = rate, burst, capacity
        self._buckets: OrderedDict[str, TokenBucket] = OrderedDict()

    def bucket(self, key: str) -> TokenBucket:
        bucket = self._buckets.pop(key, None) or TokenBucket(self.rate, self.burst)
        self._buckets[key] = bucket
        if len(self._buckets) > self.capacity:
            self._buckets.popitem(last=False)
        return bucket

    async def acquire(self, key: str) -> None:
        await self.bucket(key).acquire()
