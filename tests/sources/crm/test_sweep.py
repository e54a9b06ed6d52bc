"""Confirming deletions: a listing's gaps and reads by key, on the sandbox's own store."""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from crm_assets.sources.crm.sweep import Confirmation, Listing, PageReader, confirm
from crm_sandbox.data import PathStore, format_time, parse_time

LIMIT = 100
CURSOR = "modifiedtime"
NOW = datetime(2026, 6, 1, tzinfo=UTC)


def store_of(records: int, clock: Callable[[], int] | None = None) -> PathStore:
    """A store of ``records`` over 2024-2025; changes made later are stamped from 2026-01-01."""
    ticks = itertools.count(parse_time("2026-01-01T00:00:00Z"))
    store = PathStore("/accounts", random.Random(5), clock or (lambda: next(ticks)))
    store.generate(records)
    return store


def change_at(store: PathStore, key: str, moment: int) -> None:
    """Record that ``key`` changed at ``moment`` (in the past): it takes that place in the order."""
    clock = store.clock
    store.clock = lambda: moment
    store.modify([key])
    store.clock = clock
    store.order.sort()


def reader(store: PathStore, calls: list[str] | None = None) -> PageReader:
    """Page 1 from ``modified_since``, as the sandbox serves it."""

    def read(since: str, limit: int) -> list[dict[str, Any]]:
        if calls is not None:
            calls.append(since)
        blobs = store.page(1, limit, parse_time(since))
        return [orjson.loads(blob)["record"] for blob in blobs]

    return read


def list_pages(
    store: PathStore, before_page: dict[int, Callable[[], object]]
) -> tuple[Listing, set[str]]:
    """Page through ``store`` by number as a sync does, running an action before some pages.

    Returns the listing's page edges and the ids it returned.
    """
    listing, ids = Listing(CURSOR, LIMIT), set()
    page = 1
    while True:
        if page in before_page:
            before_page[page]()
        records = [orjson.loads(blob)["record"] for blob in store.page(page, LIMIT, None)]
        listing.extend(records)
        ids.update(record["id"] for record in records)
        if len(records) < LIMIT:
            return listing, ids
        page += 1


def held(store: PathStore, ids: list[str]) -> dict[str, datetime]:
    """What the warehouse holds for ``ids``: their modifiedtime now."""
    return {key: _moment(store.records[key][CURSOR]) for key in ids}


def _moment(text: str) -> datetime:
    return datetime.fromisoformat(text)


def confirmed(
    candidates: dict[str, datetime], listing: Listing, read: PageReader, since: str
) -> Confirmation:
    with ThreadPoolExecutor(4) as pool:
        return confirm(candidates, listing, read, since, pool)


def horizon() -> str:
    return format_time(parse_time(NOW.isoformat()) - 300 * 10**6)


def test_records_skipped_by_more_than_a_page_of_drift_are_found_alive() -> None:
    store = store_of(600)
    gone = store.delete(store.pick(4))
    listed_early = [key for _, key in store.order[:200]]
    skipped = [key for _, key in store.order[200:350]]
    candidates = {
        **{key: _moment(store.deleted[key][CURSOR]) for key in gone},
        **held(store, skipped),
    }

    listing, ids = list_pages(store, {3: lambda: store.delete(listed_early[:150])})
    assert not ids & set(skipped)

    outcome = confirmed(candidates, listing, reader(store), horizon())
    assert outcome.uncertain is None
    assert outcome.confirmed == frozenset(gone)
    assert outcome.candidates == len(gone) + len(skipped)


def test_a_record_the_warehouse_holds_stale_is_found_where_it_is_now() -> None:
    store = store_of(400)
    stale = store.order[50][1]
    held_before = held(store, [stale])
    change_at(store, stale, store.order[300][0] + 1)  # a change the warehouse missed
    assert store.order[300][1] == stale  # now at the head of page 4
    first_page_record = store.order[10][1]

    listing, ids = list_pages(store, {4: lambda: store.delete([first_page_record])})

    assert stale not in ids, "the listing skipped the record"
    assert confirmed(held_before, listing, reader(store), horizon()).confirmed == frozenset()


def test_a_skipped_record_that_is_the_only_candidate_is_found_in_its_gap() -> None:
    """The gap's first edge lies before the candidate, its second after: it is read."""
    store = store_of(300)
    skipped, on_first_page = store.order[100][1], store.order[10][1]
    candidates = held(store, [skipped])

    listing, ids = list_pages(store, {2: lambda: store.delete([on_first_page])})

    assert skipped not in ids
    outcome = confirmed(candidates, listing, reader(store), horizon())
    assert (outcome.candidates, outcome.confirmed) == (1, frozenset())


def test_only_gaps_after_the_oldest_candidate_are_read() -> None:
    store = store_of(1000)
    listing, _ = list_pages(store, {})
    [late] = store.delete([store.order[850][1]])
    calls: list[str] = []

    outcome = confirmed(
        {late: _moment(store.deleted[late][CURSOR])}, listing, reader(store, calls), horizon()
    )

    assert outcome.confirmed == frozenset({late})
    assert outcome.requests == len(calls) == 3  # the gaps after pages 9 and 10, then T0 on


def test_more_records_sharing_a_modifiedtime_than_a_page_holds_confirm_nothing() -> None:
    moment = parse_time("2025-01-01T00:00:00Z")
    store = store_of(0, clock=lambda: moment)
    store.add(2 * LIMIT + 50)
    [gone] = store.delete([store.order[220][1]])
    listing, _ = list_pages(store, {})

    outcome = confirmed(
        {gone: _moment(store.deleted[gone][CURSOR])}, listing, reader(store), horizon()
    )

    assert outcome.confirmed == frozenset()
    assert outcome.uncertain is not None and "share the modifiedtime" in outcome.uncertain


def test_ties_longer_than_a_page_are_confirmed_where_a_gap_read_gets_past_them() -> None:
    moment = parse_time("2025-01-01T00:00:00Z")
    store = store_of(50, clock=lambda: moment)
    store.add(LIMIT + 30)
    store.order.sort()
    [gone] = store.delete([store.order[120][1]])
    listing, _ = list_pages(store, {})

    outcome = confirmed(
        {gone: _moment(store.deleted[gone][CURSOR])}, listing, reader(store), horizon()
    )

    assert (outcome.confirmed, outcome.uncertain) == (frozenset({gone}), None)


def test_no_candidates_need_no_requests() -> None:
    store = store_of(300)
    calls: list[str] = []

    outcome = confirmed({}, list_pages(store, {})[0], reader(store, calls), horizon())

    assert (outcome.candidates, outcome.requests, calls) == (0, 0, [])


def test_pages_follow_from_the_order_of_the_records_whatever_their_batches() -> None:
    store = store_of(250)
    records = [orjson.loads(blob)["record"] for blob in store.page(1, 250, None)]
    listing = Listing(CURSOR, LIMIT)

    for batch in (records[:130], [], records[130:131], records[131:]):
        listing.extend(batch)

    pages = listing.pages()
    assert [page.count for page in pages] == [100, 100, 50]
    assert [page.first.id for page in pages if page.first] == [
        records[n]["id"] for n in (0, 100, 200)
    ]
    assert [page.last.id for page in pages if page.last] == [
        records[n]["id"] for n in (99, 199, 249)
    ]
    assert [(gap.after.id, gap.before.id) for gap in listing.gaps() if gap.before] == [
        (records[99]["id"], records[100]["id"]),
        (records[199]["id"], records[200]["id"]),
    ]
    assert all(listing.listed(record["id"]) for record in records)
    assert not listing.listed("acc_not_listed")


def test_a_listing_of_whole_pages_ended_on_an_empty_one() -> None:
    store = store_of(200)
    listing = Listing(CURSOR, LIMIT)

    listing.extend(orjson.loads(blob)["record"] for blob in store.page(1, 200, None))

    assert [page.count for page in listing.pages()] == [100, 100, 0]


def test_an_empty_last_page_leaves_a_gap_to_the_end() -> None:
    store = store_of(200)
    listing, _ = list_pages(store, {})

    gaps = listing.gaps()

    assert [gap.before is None for gap in gaps] == [False, True]
    assert gaps[-1].after.id == store.order[-1][1]
    assert NOW - timedelta(days=3650) < gaps[0].after.modified < NOW
