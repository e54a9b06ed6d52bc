"""Which records a CRM no longer lists, decided only where the absence is certain.

The API has no tombstones: a deleted record simply stops being listed. A full listing is not
proof, because it pages by position in ``(modifiedtime, id)`` order while the CRM changes:
when a record already listed changes or is deleted, every record behind it moves up one
place, and the record that was first on the next page is skipped.

The proof rests on two rules of the contract: a record that changes gets the current time as
its ``modifiedtime`` (it moves to the end), and ``modified_since`` is inclusive. Let ``T0``
be a time before the listing began (its start minus the clock-skew lookback). Then:

- A record that changed since ``T0`` has ``modifiedtime >= T0``. Reading from ``T0`` by key
  (each request ``modified_since=<last modifiedtime seen>``, page 1) lists every such record:
  one request is one snapshot, and a record moving to the end is met again further on.
- A record alive now that did not change since ``T0`` kept its place in the order all along,
  and no record arrived before it (arrivals get ``modifiedtime >= T0``). If the listing
  missed it, it lay between the last record of some page ``p`` and the first of page
  ``p + 1`` when ``p + 1`` was fetched. One request ``modified_since=<modifiedtime of the
  last record of p>`` shows everything now in that gap; reading on by key covers the gap
  however large it has grown.

So a record is alive if and only if it is in the listing, in a gap read, or read from
``T0``. Only gaps that can hold a candidate are read: a record's ``modifiedtime`` only grows,
so a candidate can only be found at or after the ``modifiedtime`` the warehouse holds for it.
The one case the proof cannot cover: more records sharing one ``modifiedtime`` than a page
holds, where reading by key cannot move on. Then nothing is confirmed for that resource, and
the sweep says so.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Executor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from crm_assets.sources.crm.settings import PRIMARY_KEY
from crm_assets.sources.crm.window import parse_moment

PageReader = Callable[[str, int], list[dict[str, Any]]]
"""Reads page 1 of ``modified_since=<first argument>`` with ``limit=<second argument>``."""


class UncertainListingError(Exception):
    """The records cannot be proven absent; nothing is confirmed."""


@dataclass(frozen=True)
class Key:
    """A record's place in the listing order."""

    modified: datetime
    id: str
    cursor: str
    """``modifiedtime`` as the CRM sent it: what ``modified_since`` is given."""


def key_of(record: Mapping[str, Any], cursor: str) -> Key:
    """The key of a record as the CRM sent it."""
    text = str(record[cursor])
    return Key(parse_moment(text, cursor), str(record[PRIMARY_KEY]), text)


@dataclass(frozen=True)
class PageEdges:
    """What the proof needs of one page: its size and its first and last records."""

    count: int
    first: Key | None
    last: Key | None
    ties: int
    """Records of the page sharing the last record's ``modifiedtime``."""


@dataclass(frozen=True)
class Gap:
    """Where a listing may have skipped records: between two consecutive pages."""

    after: Key
    before: Key | None
    """First record of the next page; None when the next page was empty."""
    ties: int


class Listing:
    """The edges of every page of one full listing, as its pages arrive (any thread).

    Args:
        cursor: The resource's cursor field.
        limit: Records in a full page.
    """

    def __init__(self, cursor: str, limit: int) -> None:
        self.cursor = cursor
        self.limit = limit
        self._pages: dict[int, PageEdges] = {}
        self._lock = threading.Lock()

    def record(self, page: int, records: list[dict[str, Any]]) -> None:
        """Remember the edges of page ``page``."""
        if not records:
            edges = PageEdges(0, None, None, 0)
        else:
            first, last = key_of(records[0], self.cursor), key_of(records[-1], self.cursor)
            ties = sum(1 for record in records if record[self.cursor] == last.cursor)
            edges = PageEdges(len(records), first, last, ties)
        with self._lock:
            self._pages[page] = edges

    def gaps(self) -> list[Gap]:
        """The gaps between consecutive pages, up to the first short page.

        Raises:
            UncertainListingError: A page of the listing was not seen, or none was short.
        """
        with self._lock:
            pages = dict(self._pages)
        short = [number for number, edges in pages.items() if edges.count < self.limit]
        if not short:
            raise UncertainListingError("the listing did not reach its last page")
        end = min(short)
        missing = sorted(set(range(1, end + 1)) - set(pages))
        if missing:
            raise UncertainListingError(f"pages {missing} of the listing were not seen")
        gaps = []
        for number in range(1, end):
            edges, following = pages[number], pages[number + 1]
            assert edges.last is not None  # a full page has records
            gaps.append(Gap(edges.last, following.first, edges.ties))
        return gaps


@dataclass(frozen=True)
class Confirmation:
    """The outcome of confirming the candidates of one resource."""

    candidates: int
    confirmed: frozenset[str]
    requests: int
    uncertain: str | None = None
    """Why nothing was confirmed, when the absence could not be proven."""


class _CountingReader:
    def __init__(self, read: PageReader) -> None:
        self._read = read
        self.requests = 0
        self._lock = threading.Lock()

    def __call__(self, since: str, limit: int) -> list[dict[str, Any]]:
        with self._lock:
            self.requests += 1
        return self._read(since, limit)


def _covers(
    records: list[dict[str, Any]], limit: int, gap_end: Key | None, horizon: datetime, cursor: str
) -> bool:
    """Whether a page read from a gap's start reaches past its end (or to ``horizon``)."""
    if len(records) < limit:
        return True
    keys = [key_of(record, cursor) for record in records]
    newest = max(key.modified for key in keys)
    if newest >= horizon:
        return True
    return gap_end is not None and (
        newest > gap_end.modified or any(key.id == gap_end.id for key in keys)
    )


def read_on(
    read: PageReader,
    start: Key | str,
    cursor: str,
    limit: int,
    until: Callable[[list[dict[str, Any]], int], bool],
    first_limit: int | None = None,
) -> set[str]:
    """Read by key from ``start`` until ``until(page, size)`` holds; the ids read.

    Each request asks for ``modified_since=<modifiedtime of the last record read>``, so a
    record that did not change cannot be skipped however the records before it move.

    Raises:
        UncertainListingError: A full page of records sharing one ``modifiedtime``.
    """
    since = start.cursor if isinstance(start, Key) else start
    size = min(first_limit or limit, limit)
    seen: set[str] = set()
    while True:
        page = read(since, size)
        seen.update(str(record[PRIMARY_KEY]) for record in page)
        if until(page, size):
            return seen
        last = key_of(page[-1], cursor)
        if last.modified > parse_moment(since, "modified_since"):
            since, size = last.cursor, limit
        elif size < limit:
            size = limit
        else:
            raise UncertainListingError(
                f"more than {limit} records share the modifiedtime {since}: a listing cannot "
                "page through them with certainty"
            )


def confirm(
    candidates: Mapping[str, datetime],
    listing: Listing,
    read: PageReader,
    horizon: str,
    pool: Executor,
) -> Confirmation:
    """Which ``candidates`` (id to the ``modifiedtime`` held for it) the CRM certainly lacks.

    Args:
        candidates: Records the warehouse holds as live that the listing did not return.
        listing: The listing's page edges.
        read: Reads one page by ``modified_since`` (with the sync's retries and checks).
        horizon: ``T0``: a time before the listing began (its start minus the lookback).
        pool: Runs the gap reads, which are independent of each other.
    """
    if not candidates:
        return Confirmation(0, frozenset(), 0)
    counting = _CountingReader(read)
    try:
        alive = _alive(candidates, listing, counting, horizon, pool)
    except UncertainListingError as exc:
        return Confirmation(len(candidates), frozenset(), counting.requests, str(exc))
    confirmed = frozenset(key for key in candidates if key not in alive)
    return Confirmation(len(candidates), confirmed, counting.requests)


def _alive(
    candidates: Mapping[str, datetime],
    listing: Listing,
    read: PageReader,
    horizon: str,
    pool: Executor,
) -> set[str]:
    """Ids of the records found in the gaps that can hold a candidate, then from ``T0`` on."""
    cursor, limit = listing.cursor, listing.limit
    until_moment = parse_moment(horizon, "horizon")
    earliest = min(candidates.values())
    gaps = [gap for gap in listing.gaps() if gap.before is None or gap.before.modified >= earliest]

    def read_gap(gap: Gap) -> set[str]:
        def until(page: list[dict[str, Any]], size: int) -> bool:
            return _covers(page, size, gap.before, until_moment, cursor)

        return read_on(read, gap.after, cursor, limit, until, first_limit=gap.ties + 2)

    alive: set[str] = set()
    for found in pool.map(read_gap, gaps):
        alive |= found

    def until_end(page: list[dict[str, Any]], size: int) -> bool:
        return len(page) < size

    return alive | read_on(read, horizon, cursor, limit, until_end)


def candidates_of(rows: Iterable[tuple[Any, Any]]) -> dict[str, datetime]:
    """Candidates from warehouse rows of ``(id, modifiedtime)``, times as aware UTC."""
    found: dict[str, datetime] = {}
    for key, moment in rows:
        if not isinstance(moment, datetime):
            moment = parse_moment(str(moment), "modifiedtime")
        found[str(key)] = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return found
