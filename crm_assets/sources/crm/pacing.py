"""Pacing a sync's requests to the rate the CRM allows, learned from how it answers.

A CRM may cap requests per second without announcing the cap, answer ``429`` beyond it, and
throttle a client that keeps hitting it. Requests in flight are not a rate, so every request
of a sync (pages, prefetches, retries, a sweep's confirmation reads) waits its turn here:

- Until the first ``429`` nothing is paced: a CRM without a cap is fetched at full speed.
- A ``429`` pauses every request for its ``Retry-After`` (1 s without one) and sets the
  ceiling: the rate the CRM allows. A CRM refuses when its allowance is used up, so the
  requests it admitted between two refusals, over the time between them, is the rate it
  refills at, whatever burst it allows; before a second refusal, the ceiling is what it
  admitted over the last second. The pace drops under it (``DECREASE``), once per pause.
  A refusal with nothing admitted before it says nothing about the rate: it only pauses.
- While requests succeed, the pace climbs back to just under the ceiling within seconds
  (``RECOVERY``, ``HOLD``), then probes beyond it slowly (``PROBE``), faster the longer
  nothing is refused: a raised cap, or a 429 that was only a passing fault, is outgrown, at
  the cost of a ``429`` now and then.
- Where a CRM says how many requests are left (``RateLimit-Remaining`` or
  ``X-RateLimit-Remaining``) and when the quota resets (``...-Reset``), requests pause at
  zero until the reset instead of being refused.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any

from requests import PreparedRequest, Response
from requests.adapters import HTTPAdapter

DECREASE = 0.85
"""The pace after a refusal, as a share of the rate it came at."""
RECOVERY = 0.5
"""Share of the way back to ``HOLD`` of the ceiling the pace climbs per second."""
HOLD = 0.95
"""Where the recovery stops, as a share of the ceiling: a little under the rate that was
refused, so that requests arriving unevenly do not empty the CRM's allowance at once."""
PROBE = 0.005
"""Share the pace grows by per second beyond ``HOLD``, at first."""
PROBE_DOUBLING_SECONDS = 20.0
"""Every this many seconds without a refusal beyond the ceiling, the probe grows by one more
``PROBE`` per second."""
MIN_RATE = 0.2
"""Requests per second at least, whatever the refusals."""
DEFAULT_PAUSE = 1.0
"""Seconds to pause after a 429 without ``Retry-After``."""
MAX_PAUSE = 120.0
"""Seconds a single pause lasts at most, whatever the CRM says."""
_WINDOW = 1.0
_EPOCH_SECONDS = 1_000_000_000
"""A reset larger than this is a Unix time (``X-RateLimit-Reset``), not seconds from now."""


def _seconds(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


class RequestPacer:
    """When each request of one sync may start.

    Args:
        clock: Monotonic seconds (``time.monotonic`` when the time is read).
        sleep: Waits a number of seconds (``time.sleep`` when the wait happens).
        wall_clock: Unix seconds, for resets given as a Unix time.
    """

    def __init__(
        self,
        clock: Callable[[], float] | None = None,
        sleep: Callable[[float], object] | None = None,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self._clock = clock
        self._sleep = sleep
        self._wall_clock = wall_clock
        self._lock = threading.Lock()
        self.rate: float | None = None
        """Requests per second allowed now; None until the CRM first refused one."""
        self.ceiling = 0.0
        """The rate the last refusal came at."""
        self.refused = 0
        self._paused_until = 0.0
        self._next_slot = 0.0
        self._grown_at = 0.0
        self._probing_since: float | None = None
        self._refused_at: float | None = None
        self._since_refusal = 0
        self._admitted: deque[float] = deque()

    def _now(self) -> float:
        return (self._clock or time.monotonic)()

    def wait_turn(self) -> None:
        """Wait until the next request may start, and take its turn."""
        with self._lock:
            now = self._now()
            start = max(now, self._paused_until, self._next_slot)
            if self.rate is not None:
                self._next_slot = start + 1.0 / self.rate
        if start > now:
            (self._sleep or time.sleep)(start - now)

    def observe(self, status: int, headers: Mapping[str, str]) -> None:
        """Learn from a response's status and headers."""
        with self._lock:
            now = self._now()
            if status == 429:
                self._refusal(now, _seconds(headers.get("Retry-After")))
                return
            if status < 400:
                self._admission(now)
            self._quota(now, headers)

    def _refusal(self, now: float, retry_after: float | None) -> None:
        self.refused += 1
        pause = min(retry_after if retry_after is not None else DEFAULT_PAUSE, MAX_PAUSE)
        already_paused = now < self._paused_until
        self._paused_until = max(self._paused_until, now + pause)
        self._grown_at = self._paused_until
        self._probing_since = None
        if already_paused and self.rate is not None:
            return
        if self._refused_at is None:
            admitted, seconds = len(self._recent(now)), _WINDOW
        else:
            admitted, seconds = self._since_refusal, max(now - self._refused_at, _WINDOW)
        if admitted == 0:
            return
        measured = admitted / seconds
        self._refused_at, self._since_refusal = now, 0
        self.ceiling = max(MIN_RATE, measured)
        self.rate = max(MIN_RATE, self.ceiling * DECREASE)

    def _admission(self, now: float) -> None:
        self._since_refusal += 1
        self._admitted.append(now)
        self._recent(now)
        if self.rate is None or now <= self._grown_at:
            return
        seconds, self._grown_at = now - self._grown_at, now
        hold = self.ceiling * HOLD
        if self.rate < hold:
            self.rate += (hold - self.rate) * min(1.0, RECOVERY * seconds)
            if self.rate >= hold * 0.99:
                self.rate, self._probing_since = hold, now
            return
        probing = now - (self._probing_since or now)
        self.rate *= 1 + PROBE * (1 + probing / PROBE_DOUBLING_SECONDS) * seconds

    def _recent(self, now: float) -> deque[float]:
        while self._admitted and self._admitted[0] < now - _WINDOW:
            self._admitted.popleft()
        return self._admitted

    def _quota(self, now: float, headers: Mapping[str, str]) -> None:
        for prefix in ("RateLimit-", "X-RateLimit-"):
            remaining = _seconds(headers.get(f"{prefix}Remaining"))
            reset = _seconds(headers.get(f"{prefix}Reset"))
            if remaining is None or reset is None:
                continue
            if remaining <= 0:
                if reset > _EPOCH_SECONDS:
                    reset -= self._wall_clock()
                self._paused_until = max(self._paused_until, now + min(max(reset, 0.0), MAX_PAUSE))
            return


class PacedAdapter(HTTPAdapter):
    """requests' transport adapter, every request (retries included) waiting for its turn.

    Args:
        pacer: The sync's pacer.
        **kwargs: ``HTTPAdapter``'s settings (the connection pool's size).
    """

    def __init__(self, pacer: RequestPacer, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.pacer = pacer

    def send(self, request: PreparedRequest, *args: Any, **kwargs: Any) -> Response:
        """Send ``request`` in its turn, and let the pacer learn from the answer."""
        self.pacer.wait_turn()
        response = super().send(request, *args, **kwargs)
        self.pacer.observe(response.status_code, response.headers)
        return response
