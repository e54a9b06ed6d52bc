"""Concurrent fetching of the pages a sync will ask for next.

dlt's REST client asks for one page at a time. Pages of the CRM are independent, so while
it works on page N, the following pages can already be on their way. :class:`Prefetcher`
wraps a session's ``send``: after a full page it sends the next pages in the background
(1, then 2, 4, ... at a time, up to the concurrency) and hands them over when the client
asks. A short page ends a path, so a sync that fits in one page makes one request, as
before, and a longer one at most the concurrency minus one past its last page.
Responses go through the same retry policy and checks; only their timing changes. Every
page is sent once: the consumer marks a page it sends itself as scheduled, under the lock
the prefetches' callbacks take to schedule more.

When the pages after the one asked for have already arrived, they are handed over with it
as one batch (see ``paginator.pages_in``): dlt's work per item, large for Arrow tables, is
then paid once per batch instead of once per page.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from requests import PreparedRequest, Response

from crm_assets.sources.crm.heap import HeapTrimmer
from crm_assets.sources.crm.pacing import RequestPacer
from crm_assets.sources.crm.paginator import PAGES_ATTRIBUTE

DEFAULT_CONCURRENCY = 32
"""Requests in flight at most, across the resources of one sync (``AdaptiveLimit``)."""

INITIAL_IN_FLIGHT = 4
"""Prefetches in flight at most when a sync starts."""
SLOW_START_SUCCESSES = 2
"""Successes per extra prefetch in flight until the first 429."""
PACED_AHEAD_SECONDS = 0.5
PACED_IN_FLIGHT = 2
"""Once requests are paced: prefetches in flight at most, half a second of the pace, and at
least this many."""

MAX_BATCH_PAGES = 50
"""Pages handed over together at most."""

_EXECUTOR_THREADS = 64
_executor: ThreadPoolExecutor | None = None
_executor_lock = threading.Lock()


def _shared_executor() -> ThreadPoolExecutor:
    """One pool per process; each sync's :class:`AdaptiveLimit` bounds its own share."""
    global _executor
    with _executor_lock:
        if _executor is None:
            _executor = ThreadPoolExecutor(_EXECUTOR_THREADS, thread_name_prefix="crm-prefetch")
        return _executor


class AdaptiveLimit:
    """How many prefetches may be in flight: a few at first, then up to the concurrency.

    It grows by half a request per success until the CRM first refuses one (429), then by one
    per round trip. What is in flight when a rate-limited CRM's allowance runs out is refused,
    all of it; growing by half the successes keeps that to about half the CRM's burst, and
    against a CRM without a cap the limit still reaches the concurrency within a few round
    trips. How fast requests start is the pacer's business (``pacing``); once it paces, pages
    are sent ahead no further than half a second of its rate, which covers round trips of up
    to half a second, since every page sent past the end of a path costs allowance.

    Args:
        maximum: The configured concurrency.
        pacer: The sync's pacer, whose rate bounds how far ahead pages are sent.
    """

    def __init__(
        self, maximum: int = DEFAULT_CONCURRENCY, pacer: RequestPacer | None = None
    ) -> None:
        if maximum < 1:
            raise ValueError(f"concurrency must be at least 1, got {maximum}")
        self.maximum = maximum
        self._pacer = pacer
        self.limit = min(maximum, INITIAL_IN_FLIGHT)
        self.in_flight = 0
        self._successes = 0
        self._slow_start = True
        self._lock = threading.Lock()

    def observe(self, status: int) -> None:
        """Adjust the limit to a response status."""
        with self._lock:
            if status == 429:
                self._slow_start = False
            elif status < 400 and self.limit < self.maximum:
                self._successes += 1
                if self._successes >= (SLOW_START_SUCCESSES if self._slow_start else self.limit):
                    self.limit += 1
                    self._successes = 0

    @property
    def allowed(self) -> int:
        """Prefetches in flight at most now."""
        rate = self._pacer.rate if self._pacer is not None else None
        if rate is None:
            return self.limit
        return min(self.limit, max(PACED_IN_FLIGHT, math.ceil(rate * PACED_AHEAD_SECONDS)))

    def acquire(self) -> bool:
        """Take a slot if one is free."""
        with self._lock:
            if self.in_flight >= self.allowed:
                return False
            self.in_flight += 1
            return True

    def release(self) -> None:
        """Give a slot back."""
        with self._lock:
            self.in_flight -= 1


@dataclass
class _Path:
    """Prefetch state of one paginated request (one resource)."""

    full_pages: int = 0
    consumed: int = 0
    scheduled: int = 0
    end: int | None = None
    pending: dict[int, Future[Response]] = field(default_factory=dict)


class Prefetcher:
    """A ``send`` that prefetches the pages following a full one.

    Args:
        send: The session's ``send`` (with its retries and hooks).
        limit: Bounds concurrent prefetches; shared by the resources of one sync.
        page_size: Records in a full page.
        page_param: Query parameter of the page number.
        heap: Gives the heap the fetching threads leave free back as pages are handed over.
    """

    def __init__(
        self,
        send: Callable[..., Response],
        limit: AdaptiveLimit,
        page_size: int,
        page_param: str = "page",
        heap: HeapTrimmer | None = None,
    ) -> None:
        self._send = send
        self._heap = heap or HeapTrimmer()
        self._limit = limit
        self._page_size = page_size
        self._page_param = page_param
        self._paths: dict[str, _Path] = {}
        # Re-entrant: a future that is already done runs its callback at once, in the
        # thread adding it, which holds this lock inside _fill.
        self._lock = threading.RLock()

    def _split(self, request: PreparedRequest) -> tuple[str, int] | None:
        """The stream a paginated request belongs to, and its page number.

        Two resources can read the same path (``documents`` and ``opportunity_lines``), so
        a stream is the URL without its page number plus the request's response hooks,
        which are the resource's own.
        """
        parts = urlsplit(request.url or "")
        query = parse_qsl(parts.query, keep_blank_values=True)
        pages = [value for key, value in query if key == self._page_param]
        if request.method != "GET" or len(pages) != 1 or not pages[0].isdigit():
            return None
        rest = urlencode([(key, value) for key, value in query if key != self._page_param])
        hooks = ",".join(str(id(hook)) for hook in (request.hooks or {}).get("response", []))
        return f"{urlunsplit(parts._replace(query=rest))}#{hooks}", int(pages[0])

    def _page_request(self, request: PreparedRequest, page: int) -> PreparedRequest:
        parts = urlsplit(request.url or "")
        query = [
            (key, str(page) if key == self._page_param else value)
            for key, value in parse_qsl(parts.query, keep_blank_values=True)
        ]
        copy = request.copy()
        copy.url = urlunsplit(parts._replace(query=urlencode(query)))
        return copy

    def __call__(self, request: PreparedRequest, **kwargs: Any) -> Response:
        """Send ``request``, or hand over its prefetched response."""
        split = self._split(request)
        if split is None:
            return self._send(request, **kwargs)
        key, page = split
        with self._lock:
            state = self._paths.setdefault(key, _Path())
            future = state.pending.pop(page, None)
            # Sent by the consumer itself: a prefetch finishing meanwhile must not send it too.
            state.scheduled = max(state.scheduled, page)
        response = future.result() if future is not None else self._send(request, **kwargs)
        with self._lock:
            batch = self._take_arrived(state, page, response)
            last = page + len(batch) - 1
            state.consumed = last
            state.scheduled = max(state.scheduled, last)
            if _records(batch[-1]) >= self._page_size:
                state.full_pages += len(batch)
                self._fill(state, request, kwargs)
            else:
                self._end(state, last)
        self._heap.pages(len(batch))
        return _joined(batch)

    def _take_arrived(self, state: _Path, page: int, response: Response) -> list[Response]:
        """The response, followed by the next pages that arrived, while each one is full."""
        batch = [response]
        while len(batch) < MAX_BATCH_PAGES and _records(batch[-1]) >= self._page_size:
            future = state.pending.get(page + len(batch))
            if future is None or not future.done() or future.exception() is not None:
                break
            batch.append(state.pending.pop(page + len(batch)).result())
        return batch

    def _end(self, state: _Path, page: int) -> None:
        """A short page: nothing after it exists; cancel what was sent for later pages."""
        state.end = page if state.end is None else min(state.end, page)
        for later in [number for number in state.pending if number > page]:
            state.pending.pop(later).cancel()

    def _fill(self, state: _Path, request: PreparedRequest, kwargs: dict[str, Any]) -> None:
        """Send pages ahead of the consumer: 1 after its first full page, then 2, 4, ...

        Doubling keeps a sync of a few pages from sending many requests past its last page;
        a long one soon has the concurrency's worth of pages ahead.
        """
        window = min(2 ** (state.full_pages - 1), self._limit.maximum)
        while state.scheduled < state.consumed + window:
            page = state.scheduled + 1
            if state.end is not None and page > state.end:
                return
            if not self._limit.acquire():
                return
            future = _shared_executor().submit(
                self._send, self._page_request(request, page), **kwargs
            )
            state.pending[page] = future
            state.scheduled = page
            future.add_done_callback(partial(self._done, state, request, page, kwargs))

    def _done(
        self,
        state: _Path,
        request: PreparedRequest,
        page: int,
        kwargs: dict[str, Any],
        future: Future[Response],
    ) -> None:
        """A prefetch finished: free its slot, and keep the path busy if the page was full."""
        self._limit.release()
        if future.cancelled() or future.exception() is not None:
            return
        with self._lock:
            if _records(future.result()) < self._page_size:
                self._end(state, page)
            else:
                self._fill(state, request, kwargs)


def _joined(batch: list[Response]) -> Response:
    """One response holding the records of consecutive checked pages, marked with their count."""
    first = batch[0]
    if len(batch) == 1:
        return first
    records = [record for response in batch for record in response.json()]
    first.json = lambda **_: records  # type: ignore[method-assign]
    setattr(first, PAGES_ATTRIBUTE, len(batch))
    return first


def _records(response: Response) -> int:
    """Records in a checked page (the page check hands over the record list)."""
    records = response.json()
    return len(records) if isinstance(records, list) else 0
