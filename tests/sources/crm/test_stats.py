"""A sync's counters, updated from many fetching threads at once, lose no update."""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator

import pytest

from crm_assets.sources.crm.stats import SyncStats

THREADS, RESPONSES = 8, 5000


@pytest.fixture
def switching_often() -> Iterator[None]:
    """Threads switch every microsecond, so an unguarded read-modify-write interleaves."""
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    yield
    sys.setswitchinterval(interval)


def test_counters_updated_from_many_threads_add_up(switching_often: None) -> None:
    stats = SyncStats()
    start = threading.Barrier(THREADS)

    def fetch() -> None:
        start.wait()
        for _ in range(RESPONSES):
            stats.response("accounts", 200, 10)
            stats.page("accounts", 100)

    workers = [threading.Thread(target=fetch) for _ in range(THREADS)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()

    counted = stats.of("accounts")
    total = THREADS * RESPONSES
    assert (counted.requests, counted.pages, counted.bytes) == (total, total, 10 * total)
    assert (counted.records, counted.statuses[200]) == (100 * total, total)
