"""Concurrent page fetching: the same data as one page at a time, under faults and 429s."""

from __future__ import annotations

import platform
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from dagster import materialize
from requests import PreparedRequest, Request, Response

from crm_assets.dlt_resource import CrmDltResource
from crm_assets.resources import CrmApiResource
from crm_assets.sources.crm.heap import HeapTrimmer
from crm_assets.sources.crm.paginator import pages_in
from crm_assets.sources.crm.prefetch import AdaptiveLimit, Prefetcher
from crm_sandbox.faults import TRANSIENT_KINDS, FaultPlan
from crm_sandbox.server import DEFAULT_TOKEN, CrmSandbox
from tests.conftest import Warehouse, crm_assets, everything, run_of, snapshot

PAGES = 10


def load(crm: CrmSandbox, root: Path, concurrency: int) -> Warehouse:
    warehouse = Warehouse(root)
    resources = {
        "dlt": CrmDltResource(),
        "crm_api": CrmApiResource(
            base_url=crm.url, access_token=DEFAULT_TOKEN, concurrency=concurrency
        ),
        "warehouse": warehouse.resource(),
    }
    assert materialize([crm_assets()], resources=resources, **run_of(everything(), None)).success
    return warehouse


def test_concurrent_and_sequential_syncs_load_the_same_tables_under_faults(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(time, "sleep", lambda _: None)
    faults = FaultPlan(rate=0.03, kinds=TRANSIENT_KINDS, retry_after=1, seed=3)
    with CrmSandbox(records=PAGES * 100 - 30, seed=9, faults=faults) as crm:
        scripted = {"/accounts": ["429"], "/cases": ["429", "503"], "/contacts": ["reset"]}
        for path, kinds in scripted.items():
            crm.faults.script(path, kinds)
        concurrent = snapshot(load(crm, tmp_path / "concurrent", concurrency=8))
        crm.faults.script("/campaigns", ["429", "502"])
        sequential = snapshot(load(crm, tmp_path / "sequential", concurrency=1))
        statuses = crm.stats()["statuses"]

    assert concurrent == sequential
    assert len(concurrent["accounts"]) == PAGES * 100 - 30
    assert int(statuses["429"]) >= 3


def test_prefetching_sends_few_requests_past_the_last_page(tmp_path: Path) -> None:
    with CrmSandbox(records=PAGES * 100 - 30, seed=9) as crm:
        load(crm, tmp_path, concurrency=8)
        requests = crm.stats()["requests"]

    wasted_at_most = 8 - 1
    assert all(
        PAGES <= count <= PAGES + wasted_at_most
        for path, count in requests.items()
        if path != "/opportunity_lines"
    )


def test_the_limit_starts_small_grows_by_half_the_successes_then_one_per_round_trip() -> None:
    limit = AdaptiveLimit(8)
    assert limit.limit == 4
    for _ in range(4):
        limit.observe(200)
    assert limit.limit == 6

    limit.observe(429)
    assert limit.limit == 6
    for _ in range(5):
        limit.observe(200)
    assert limit.limit == 6
    limit.observe(200)
    assert limit.limit == 7
    assert [limit.acquire() for _ in range(8)] == [True] * 7 + [False]
    limit.release()
    assert limit.acquire()
    for _ in range(100):
        limit.observe(200)
    assert limit.limit == 8


def test_a_concurrency_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        AdaptiveLimit(0)


def test_instant_responses_do_not_deadlock_the_prefetcher() -> None:
    sent: list[int] = []

    def send(request: PreparedRequest, **_: object) -> Response:
        page = int(parse_qs(urlsplit(request.url or "").query)["page"][0])
        sent.append(page)
        response = Response()
        records = [{"id": n} for n in range(100 if page < 40 else 3)]
        response.json = lambda **_: records  # type: ignore[method-assign]
        return response

    prefetcher = Prefetcher(send, AdaptiveLimit(16), page_size=100)
    first = Request("GET", "https://crm.test/accounts", params={"page": 1}).prepare()
    pages: list[int] = []

    def consume() -> None:
        page = 1
        while True:
            request = first.copy()
            request.url = f"https://crm.test/accounts?page={page}"
            response = prefetcher(request)
            count = pages_in(response)
            records = response.json()
            pages.extend(len(records[n * 100 : (n + 1) * 100]) for n in range(count))
            if len(records) < 100 * count:
                return
            page += count

    worker = threading.Thread(target=consume, daemon=True)
    worker.start()
    worker.join(timeout=10)

    assert not worker.is_alive(), "the prefetcher deadlocked"
    assert len(pages) == 40 and pages[-1] == 3
    assert max(sent) <= 40 + 15


class CountingLimit(AdaptiveLimit):
    """An adaptive limit that tells when every prefetch it let start has finished.

    The prefetcher takes a slot to start a prefetch and releases it in the callback of the
    finished request, so when the counts match, every page sent ahead has arrived.
    """

    def __init__(self, maximum: int) -> None:
        super().__init__(maximum)
        self.started = self.finished = 0
        self.changed = threading.Condition()

    def acquire(self) -> bool:
        taken = super().acquire()
        with self.changed:
            self.started += taken
        return taken

    def release(self) -> None:
        super().release()
        with self.changed:
            self.finished += 1
            self.changed.notify_all()

    def wait_for_arrivals(self) -> None:
        with self.changed:
            assert self.changed.wait_for(lambda: self.finished == self.started, timeout=30)


def test_pages_that_arrived_are_handed_over_together_in_order() -> None:
    def send(request: PreparedRequest, **_: object) -> Response:
        page = int(parse_qs(urlsplit(request.url or "").query)["page"][0])
        response = Response()
        records = [{"id": f"{page}-{n}"} for n in range(100 if page < 12 else 30)]
        response.json = lambda **_: records  # type: ignore[method-assign]
        return response

    heap = HeapTrimmer(every_pages=1)
    limit = CountingLimit(4)
    prefetcher = Prefetcher(send, limit, page_size=100, heap=heap)
    first = Request("GET", "https://crm.test/accounts", params={"page": 1}).prepare()
    counts, ids, page = [], [], 1
    while True:
        request = first.copy()
        request.url = f"https://crm.test/accounts?page={page}"
        limit.wait_for_arrivals()
        response = prefetcher(request)
        counts.append(pages_in(response))
        ids.extend(record["id"] for record in response.json())
        if len(response.json()) < 100 * counts[-1]:
            break
        page += counts[-1]

    assert ids == [f"{p}-{n}" for p in range(1, 13) for n in range(100 if p < 12 else 30)]
    assert max(counts) > 1 and sum(counts) == 12
    assert heap.trims == len(counts)  # every hand-over passed a multiple of one page


def test_the_heap_is_trimmed_each_time_a_multiple_of_its_pages_passes() -> None:
    heap = HeapTrimmer(every_pages=200)

    for count in (50, 50, 50, 49):
        heap.pages(count)
    assert heap.trims == 0
    heap.pages(1)
    assert heap.trims == 1
    heap.pages(150)
    heap.pages(60)
    assert heap.trims == 2
    assert heap.available == (platform.libc_ver()[0] == "glibc")
    with pytest.raises(ValueError, match="at least 1"):
        HeapTrimmer(every_pages=0)


class CallbacksOnRequest(Future[Response]):
    """A future whose done-callbacks run when the test says, not when its result is set."""

    def __init__(self) -> None:
        super().__init__()
        self.callbacks: list[Callable[[Future[Response]], object]] = []

    def add_done_callback(self, fn: Callable[[Future[Response]], object]) -> None:
        self.callbacks.append(fn)

    def run_callbacks(self) -> None:
        for callback in self.callbacks:
            callback(self)


class StepExecutor:
    """An executor that runs a submitted request only when the test steps it."""

    def __init__(self) -> None:
        self.queued: list[tuple[Callable[..., Response], tuple[Any, ...], CallbacksOnRequest]] = []

    def submit(self, fn: Callable[..., Response], *args: Any, **kwargs: Any) -> Future[Response]:
        future = CallbacksOnRequest()
        self.queued.append((partial(fn, **kwargs), args, future))
        return future

    def run(self, index: int) -> CallbacksOnRequest:
        fn, args, future = self.queued[index]
        future.set_result(fn(*args))
        return future


def test_a_page_sent_by_the_consumer_is_never_prefetched_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The consumer asks for page 3 while no slot was free to prefetch it, and sends it
    itself; the late callback of page 2 frees a slot meanwhile. Page 3 goes out once."""
    executor = StepExecutor()
    monkeypatch.setattr("crm_assets.sources.crm.prefetch._shared_executor", lambda: executor)
    sent: list[int] = []
    late: list[CallbacksOnRequest] = []

    def send(request: PreparedRequest, **_: object) -> Response:
        page = int(parse_qs(urlsplit(request.url or "").query)["page"][0])
        sent.append(page)
        if page == 3 and late:
            late.pop().run_callbacks()  # page 2's callback runs while page 3 is on its way
        response = Response()
        records = [{"id": f"{page}-{n}"} for n in range(100 if page < 3 else 30)]
        response.json = lambda **_: records  # type: ignore[method-assign]
        return response

    prefetcher = Prefetcher(send, AdaptiveLimit(1), page_size=100)

    def ask(page: int) -> int:
        request = Request("GET", "https://crm.test/accounts", params={"page": page}).prepare()
        return len(prefetcher(request).json())

    assert ask(1) == 100
    late.append(executor.run(0))  # page 2 arrived; its callback has not run yet
    assert ask(2) == 100
    assert ask(3) == 30
    for index in range(1, len(executor.queued)):
        executor.run(index)

    assert sorted(sent) == [1, 2, 3], f"pages sent: {sent}"
