"""Faults the sandbox injects: scripted per path, or at random with a seeded rate."""

from __future__ import annotations

import random
import threading
from collections import deque
from dataclasses import dataclass, field

TRANSIENT_KINDS: tuple[str, ...] = ("429", "500", "502", "503", "504", "reset")
"""What a random fault can be: the transient failures the contract names."""

KNOWN_KINDS: frozenset[str] = frozenset(
    {
        *TRANSIENT_KINDS,
        "ok",
        "429-no-retry-after",
        "400",
        "401",
        "403",
        "404",
        "slow",
        "html",
        "truncated",
        "no-list",
        "missing-id",
        "duplicate-id",
    }
)
"""Every fault kind, scripted or random."""


@dataclass
class FaultPlan:
    """Which requests fail, and how.

    Attributes:
        rate: Probability that a data request fails with one of ``kinds``.
        kinds: The fault kinds a random fault is drawn from.
        retry_after: The ``Retry-After`` seconds sent with a 429.
        slow_seconds: How long a ``slow`` response stalls before its body.
        seed: Seed of the random draw, so a fault sequence repeats.
    """

    rate: float = 0.0
    kinds: tuple[str, ...] = TRANSIENT_KINDS
    retry_after: int = 1
    slow_seconds: float = 5.0
    seed: int = 7
    _queues: dict[str, deque[str]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _rng: random.Random = field(init=False)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)
        self._check(self.kinds)

    @staticmethod
    def _check(kinds: tuple[str, ...] | list[str]) -> None:
        unknown = set(kinds) - KNOWN_KINDS
        if unknown:
            raise ValueError(f"unknown fault kinds {sorted(unknown)}; known: {sorted(KNOWN_KINDS)}")

    def script(self, path: str, kinds: list[str]) -> None:
        """Make the next requests to ``path`` (``*`` for any) fail with ``kinds`` in order."""
        self._check(kinds)
        with self._lock:
            self._queues.setdefault(path, deque()).extend(kinds)

    def clear(self) -> None:
        """Drop scripted faults and stop random ones."""
        with self._lock:
            self._queues.clear()
            self.rate = 0.0

    def draw(self, path: str) -> str | None:
        """The fault for this request to ``path``, or ``None`` to answer normally."""
        with self._lock:
            for key in (path, "*"):
                queue = self._queues.get(key)
                if queue:
                    return queue.popleft()
            if self.rate and self._rng.random() < self.rate:
                return self._rng.choice(self.kinds)
        return None
