"""What a sync did per resource: requests, pages, records, bytes, retried statuses, progress."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from crm_assets.sources.crm.settings import RETRY_STATUSES

PROGRESS_INTERVAL_SECONDS = 10.0
"""At most one progress line per resource in this many seconds."""
FUTURE_EXAMPLES = 5
"""Future-dated records named per resource at most."""


@dataclass
class ResourceStats:
    """Counters of one resource during one sync."""

    requests: int = 0
    pages: int = 0
    records: int = 0
    bytes: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    future_dated: int = 0
    """Records whose cursor value lay beyond the CRM's present."""
    future_examples: list[str] = field(default_factory=list)
    """A few of them, as ``id at modifiedtime``."""
    started: float | None = None
    logged: float = 0.0

    @property
    def retries_by_status(self) -> dict[str, int]:
        """Responses that were retried, by status."""
        return {str(code): n for code, n in sorted(self.statuses.items()) if code in RETRY_STATUSES}


class SyncStats:
    """Collects :class:`ResourceStats` from the response hook and logs progress.

    Responses arrive on many fetching threads at once; every update holds one lock.

    Args:
        log: Where progress lines go (for example a Dagster context's ``log.info``).
        interval: Seconds between progress lines of one resource.
        clock: Monotonic clock, in seconds.
    """

    def __init__(
        self,
        log: Callable[[str], Any] | None = None,
        interval: float = PROGRESS_INTERVAL_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.resources: dict[str, ResourceStats] = {}
        self._log = log
        self._interval = interval
        self._clock = clock
        self._lock = threading.Lock()

    def of(self, resource: str) -> ResourceStats:
        """The counters of ``resource`` (zero if it made no request)."""
        with self._lock:
            return self.resources.setdefault(resource, ResourceStats())

    def response(self, resource: str, status: int, size: int) -> None:
        """Count one response of ``resource``."""
        now = self._clock()
        with self._lock:
            stats = self.resources.setdefault(resource, ResourceStats())
            if stats.started is None:
                stats.started = stats.logged = now
            stats.requests += 1
            stats.bytes += size
            stats.statuses[status] += 1

    def page(self, resource: str, records: int) -> None:
        """Count one well-formed page of ``records`` and maybe log progress."""
        now = self._clock()
        with self._lock:
            stats = self.resources.setdefault(resource, ResourceStats())
            stats.pages += 1
            stats.records += records
            if self._log is None or now - stats.logged < self._interval:
                return
            stats.logged = now
            started = stats.started if stats.started is not None else now
            line = (
                f"{resource}: {stats.pages} pages, {stats.records} records so far, "
                f"{stats.records / max(now - started, 1e-9):.0f} records/s"
            )
        self._log(line)

    def future(self, resource: str, key: str, value: str) -> None:
        """Count a record of ``resource`` whose cursor value lay beyond the CRM's present."""
        stats = self.of(resource)
        with self._lock:
            stats.future_dated += 1
            if len(stats.future_examples) < FUTURE_EXAMPLES:
                stats.future_examples.append(f"{key} at {value}")
