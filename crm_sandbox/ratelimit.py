"""The sandbox's rate limit: a token bucket per server, as CRMs cap requests per token.

A request takes a token; tokens refill at ``rate`` per second up to ``burst``. A request that
finds none is refused with ``429`` and ``Retry-After`` in whole seconds until the next token.
The bucket can also describe itself in rate-limit headers, which some CRMs send and the
contract allows but does not require.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable


class TokenBucket:
    """Requests admitted at ``rate`` per second, with bursts of up to ``burst`` (default: rate).

    Args:
        rate: Tokens added per second.
        burst: Tokens the bucket holds at most; it starts full.
        clock: Monotonic seconds.
    """

    def __init__(
        self, rate: float, burst: float | None = None, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if rate <= 0:
            raise ValueError(f"the rate limit must be positive, got {rate}")
        self.rate = rate
        self.burst = burst if burst is not None else rate
        self._clock = clock
        self._tokens = self.burst
        self._at = clock()
        self._lock = threading.Lock()

    def _refill(self) -> None:
        now = self._clock()
        self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate)
        self._at = now

    def take(self) -> int | None:
        """Admit a request (None), or the whole seconds to wait before a token is there."""
        with self._lock:
            self._refill()
            if self._tokens >= 1:
                self._tokens -= 1
                return None
            return max(1, math.ceil((1 - self._tokens) / self.rate))

    def headers(self) -> dict[str, str]:
        """``RateLimit-*`` headers: the limit, the tokens left, seconds until the bucket is full."""
        with self._lock:
            self._refill()
            reset = math.ceil((self.burst - self._tokens) / self.rate)
            return {
                "RateLimit-Limit": str(math.floor(self.burst)),
                "RateLimit-Remaining": str(math.floor(self._tokens)),
                "RateLimit-Reset": str(reset),
            }
