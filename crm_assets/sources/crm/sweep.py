"""Which records a CRM no longer lists, decided only where the absence is certain.

The API has no tombstones: a deleted record simply stops being listed. A full listing is not
proof, because it pages by position in ``(modifiedtime, id)`` order while the CRM changes:
when a record already listed changes or is deleted, every record behind it moves up one
place, and the record that was first on the next page is skipped.

The proof rests on two rules of the contract: a record that changes gets the CRM's present
as its ``modifiedtime`` (it moves to the end), and ``modified_since`` is inclusive. Let
``T0`` be a moment before the listing began, on the CRM's own clock (``deletions`` takes it
from the ``Date`` the CRM sent, never from this machine's clock). Then:

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
``T0``. The listing and its page edges are what dlt consumed (``Listing``), so a page fetched
twice, or a response dlt never loaded, cannot shift a gap. Only gaps that can hold a
candidate are read: a record's ``modifiedtime`` only grows, so a candidate can only be found
at or after the ``modifiedtime`` the warehouse holds for it.
The one case the proof cannot cover: more records sharing one ``modifiedtime`` than a page
holds, where reading by key cannot move on. Then nothing is confirmed for that resource, and
the sweep says so.
"""

from __future__ import annotations

import bisect
import itertools
import threading
from array import array
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Executor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar

from crm_assets.sources.crm.dlt_internals import ItemTransform
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
    """What one full listing returned, taken from the records dlt consumed, in their order.

    Pages hold ``limit`` records each but the last, so the record at position ``i`` of the
    listing was on page ``i // limit + 1``: the edges of every page follow from the order of
    the records dlt loaded, however the pages were fetched or batched. The paginator stops on
    the first page shorter than ``limit``; a listing whose length is a multiple of ``limit``
    ended on an empty page. The listing is complete once dlt's extraction succeeded.

    The ids listed are kept as 64-bit hashes (8 bytes each). Two ids sharing a hash could
    only make a record that is gone look listed, which leaves it unmarked.

    Args:
        cursor: The resource's cursor field.
        limit: Records in a full page.
    """

    def __init__(self, cursor: str, limit: int) -> None:
        self.cursor = cursor
        self.limit = limit
        self.count = 0
        """Records consumed so far."""
        self._pages: list[PageEdges] = []
        self._first: tuple[str, str] | None = None
        self._last: tuple[str, str] | None = None
        self._ties = 0
        self._ids = array("q")
        self._sorted = True

    def extend(self, records: Iterable[Mapping[str, Any]]) -> None:
        """Take the next records dlt consumed, as the CRM sent them."""
        limit, cursor = self.limit, self.cursor
        for record in records:
            key = str(record[PRIMARY_KEY])
            value = str(record[cursor])
            if self.count % limit == 0:
                self._close_page()
                self._first = (key, value)
            if self._last is not None and self._last[1] == value:
                self._ties += 1
            else:
                self._ties = 1
            self._last = (key, value)
            self.count += 1
            self._ids.append(hash(key))
        self._sorted = False

    def _close_page(self) -> None:
        if self._first is None or self._last is None:
            return
        count = (self.count - 1) % self.limit + 1
        first, last = (self._key(*edge) for edge in (self._first, self._last))
        self._pages.append(PageEdges(count, first, last, self._ties))
        self._first = self._last = None

    def _key(self, key: str, value: str) -> Key:
        return Key(parse_moment(value, self.cursor), key, value)

    def pages(self) -> list[PageEdges]:
        """Every page of the complete listing, the last one short or empty."""
        self._close_page()
        pages = list(self._pages)
        if self.count % self.limit == 0:
            pages.append(PageEdges(0, None, None, 0))
        return pages

    def gaps(self) -> list[Gap]:
        """The gaps between consecutive pages of the complete listing."""
        pages = self.pages()
        gaps = []
        for edges, following in itertools.pairwise(pages):
            assert edges.last is not None  # every page before the last is full
            gaps.append(Gap(edges.last, following.first, edges.ties))
        return gaps

    def listed(self, key: str) -> bool:
        """Whether the listing returned ``key`` (or one of the same 64-bit hash)."""
        if not self._sorted:
            self._ids = array("q", sorted(self._ids))
            self._sorted = True
        digest = hash(key)
        index = bisect.bisect_left(self._ids, digest)
        return index < len(self._ids) and self._ids[index] == digest


class ListingStep(ItemTransform[Any]):
    """The dlt step giving a listing every record the resource yields, first in its pipe.

    First, so it sees the records as the CRM sent them (later steps parse timestamps in
    place) and in their order.
    """

    placement_affinity: ClassVar[float] = -0.5

    def __init__(self, listing: Listing) -> None:
        super().__init__(lambda item: item)
        self.listing = listing

    def __call__(self, item: Any, meta: Any = None) -> Any:
        """Record the page(s) of records in ``item``; hand them on unchanged."""
        self.listing.extend(item if isinstance(item, list) else [item])
        return item


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
        horizon: ``T0``: a moment before the listing began, on the CRM's clock.
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
