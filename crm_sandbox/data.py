"""Deterministic CRM records: what the sandbox serves and what tests compare against.

Every path holds records ordered by ``(modifiedtime, id)``. Field names come in mixed
case, values are nullable, nested, unicode or decimals-as-strings, as the API contract
allows. The same seed and record count always produce the same records.
"""

from __future__ import annotations

import bisect
import random
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

PATHS: tuple[str, ...] = (
    "/accounts",
    "/contacts",
    "/opportunities",
    "/opportunity_lines",
    "/campaigns",
    "/cases",
    "/activities",
    "/opportunityhistories",
)

HISTORY_START = datetime(2024, 1, 1, tzinfo=UTC)
HISTORY_SPAN = timedelta(days=730)
_MICROS = 1_000_000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_USERS = ("u-ada", "u-grace", "u-linus", "u-zoë", None)
_WORDS = ("alpha", "Bär", "café", "delta", "エコー", "foxtrot", "golf", "hôtel", "india", "")

FieldMaker = Callable[[random.Random, int], Any]


def format_time(micros: int) -> str:
    """Format microseconds since the epoch as the contract's ISO-8601 UTC timestamp."""
    moment = _EPOCH + timedelta(microseconds=micros)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_time(text: str) -> int:
    """Parse an ISO-8601 timestamp into microseconds since the epoch (naive means UTC)."""
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return (moment - _EPOCH) // timedelta(microseconds=1)


def _maybe(rng: random.Random, value: Any, null_rate: float = 0.1) -> Any:
    return None if rng.random() < null_rate else value


def _text(rng: random.Random, _: int) -> Any:
    return _maybe(rng, " ".join(rng.choice(_WORDS) for _ in range(rng.randint(1, 4))))


def _decimal(rng: random.Random, _: int) -> Any:
    return _maybe(rng, f"{rng.randint(0, 10_000_000) / 100:.2f}")


def _flag(rng: random.Random, _: int) -> Any:
    return _maybe(rng, rng.random() < 0.5)


def _count(rng: random.Random, _: int) -> Any:
    return _maybe(rng, rng.randint(0, 500))


def _address(rng: random.Random, _: int) -> Any:
    city = rng.choice(("Zürich", "Lisbon", "Kraków", "Austin", "Ōsaka"))
    return _maybe(rng, {"Street": f"{rng.randint(1, 999)} Main St", "City": city, "Zip": None})


def _tags(rng: random.Random, _: int) -> Any:
    return _maybe(rng, [rng.choice(_WORDS[:-1]) for _ in range(rng.randint(0, 3))])


def _choice(*options: str) -> FieldMaker:
    return lambda rng, _: _maybe(rng, rng.choice(options))


def _ref(prefix: str) -> FieldMaker:
    return lambda rng, n: _maybe(rng, f"{prefix}_{rng.randint(0, max(n, 1)):08x}")


_FIELDS: dict[str, dict[str, FieldMaker]] = {
    "/accounts": {
        "Name": _text,
        "Industry": _choice("Retail", "Energy", "Software", "Health"),
        "AnnualRevenue": _decimal,
        "isActive": _flag,
        "BillingAddress": _address,
        "Tags": _tags,
    },
    "/contacts": {
        "FirstName": _text,
        "LastName": _text,
        "Email": _choice("a@example.com", "ß@example.de", ""),
        "AccountId": _ref("acc"),
        "isPrimary": _flag,
    },
    "/opportunities": {
        "Name": _text,
        "Amount": _decimal,
        "Stage": _choice("Prospecting", "Negotiation", "Closed Won", "Closed Lost"),
        "Probability": _count,
        "AccountId": _ref("acc"),
    },
    "/opportunity_lines": {
        "OpportunityId": _ref("opp"),
        "ProductName": _text,
        "Quantity": _count,
        "UnitPrice": _decimal,
    },
    "/campaigns": {
        "Name": _text,
        "Status": _choice("Planned", "Active", "Done"),
        "Budget": _decimal,
        "Channels": _tags,
    },
    "/cases": {
        "Subject": _text,
        "Priority": _choice("Low", "Medium", "High"),
        "isEscalated": _flag,
        "ContactId": _ref("con"),
    },
    "/activities": {
        "Type": _choice("Call", "Email", "Meeting"),
        "Subject": _text,
        "DurationMinutes": _count,
    },
    "/opportunityhistories": {
        "OpportunityId": _ref("opp"),
        "StageName": _choice("Prospecting", "Negotiation", "Closed Won"),
        "Amount": _decimal,
    },
}


_SENTENCE = (
    "Met the buying committee; they want a pilot in two regions before the renewal. "
    "Pricing was discussed at length, legal asked for the data processing annex, and the "
    "champion — a café chain's head of ops in Zürich — will present to the board. "
    "Follow up with the revised quote and the security questionnaire. "
)


def _notes(rng: random.Random, _: int) -> Any:
    start = rng.randrange(len(_SENTENCE))
    return _maybe(rng, (_SENTENCE * 3)[start : start + rng.randint(200, 400)])


def _emails(rng: random.Random, _: int) -> Any:
    names = ("ada", "grace", "linus", "zoë", "ёжик", "ana.maria")
    return [
        f"{rng.choice(names)}{rng.randint(1, 99)}@example.com" for _ in range(rng.randint(1, 3))
    ]


def _labels(rng: random.Random, _: int) -> Any:
    return [rng.choice(_WORDS[:-1]) for _ in range(rng.randint(1, 4))]


def _owner(rng: random.Random, number: int) -> Any:
    region = rng.choice(("EMEA", "AMER", "APAC"))
    return {
        "Id": f"usr_{rng.randint(0, 50):04x}",
        "Name": _text(rng, number),
        "Team": {"Name": rng.choice(("Enterprise", "Mid-market", "SMB")), "Region": region},
    }


_LIST_FIELDS: dict[str, FieldMaker] = {
    "Labels": _labels,
    "Emails": _emails,
    "Owner": _owner,
    "Notes": _notes,
}
"""Added to every path's fields in the ``lists`` shape: two non-empty lists on (almost)
every record, a nested object, and a few hundred characters of text."""

SHAPES: tuple[str, ...] = ("plain", "lists")
"""``plain``: flat records, about one in seven holding a list; ``lists``: most records hold
lists, a nested object and long text, as many CRMs' records do."""
DEFAULT_SHAPE = "plain"


def _prefix(path: str) -> str:
    return path.strip("/")[:3]


@dataclass
class PathStore:
    """The records of one path, kept in the contract's ``(modifiedtime, id)`` order."""

    path: str
    rng: random.Random
    clock: Callable[[], int]
    records: dict[str, dict[str, Any]] = field(default_factory=dict)
    blobs: dict[str, bytes] = field(default_factory=dict)
    order: list[tuple[int, str]] = field(default_factory=list)
    deleted: dict[str, dict[str, Any]] = field(default_factory=dict)
    created: int = 0
    shape: str = DEFAULT_SHAPE

    def _new_record(self, modified: int) -> dict[str, Any]:
        number = self.created
        self.created += 1
        rng = self.rng
        created = modified - rng.randint(0, 30 * 86_400) * _MICROS
        record: dict[str, Any] = {
            "id": f"{_prefix(self.path)}_{number:08x}{rng.getrandbits(16):04x}",
            "createdtime": _maybe(rng, format_time(created)),
            "modifiedtime": format_time(modified),
            "createdby": rng.choice(_USERS),
            "modifiedby": rng.choice(_USERS),
        }
        extra = _LIST_FIELDS if self.shape == "lists" else {}
        for name, make in {**_FIELDS[self.path], **extra}.items():
            record[name] = make(rng, number)
        return record

    def _store(self, record: dict[str, Any]) -> None:
        self.records[record["id"]] = record
        self.blobs[record["id"]] = b'{"record":' + orjson.dumps(record) + b"}"

    def generate(self, count: int) -> None:
        """Create ``count`` records spread over the fixed history span."""
        start = int((HISTORY_START - _EPOCH).total_seconds()) * _MICROS
        span = int(HISTORY_SPAN.total_seconds()) * _MICROS
        times = sorted(start + self.rng.randrange(span) for _ in range(count))
        for moment in times:
            record = self._new_record(moment)
            self._store(record)
            self.order.append((moment, record["id"]))
        self.order.sort()

    def add(self, count: int) -> list[str]:
        """Create ``count`` new records, modified now; return their ids."""
        ids = []
        for _ in range(count):
            moment = self.clock()
            record = self._new_record(moment)
            self._store(record)
            bisect.insort(self.order, (moment, record["id"]))
            ids.append(record["id"])
        return ids

    def modify(
        self, ids: Iterable[str], fields: dict[str, Any] | None = None, at: str | None = None
    ) -> list[str]:
        """Change the given records: a new ``modifiedtime``, and ``fields`` if given.

        A changed record moves to the end of the ``(modifiedtime, id)`` order. ``at`` stamps
        the change with that ``modifiedtime`` instead of the CRM's present, as a CRM with a
        bug would: a moment in the future, or the one the record already has.
        """
        changed = []
        for record_id in ids:
            record = self.records[record_id]
            self._unlist(record)
            moment = self.clock() if at is None else parse_time(at)
            updated = {
                **record,
                **(fields or {}),
                "modifiedtime": format_time(moment),
                "modifiedby": self.rng.choice(_USERS),
            }
            self._store(updated)
            bisect.insort(self.order, (moment, record_id))
            changed.append(record_id)
        return changed

    def _unlist(self, record: dict[str, Any]) -> None:
        """Take a record out of the listing order; the records behind it move up one place."""
        key = (parse_time(record["modifiedtime"]), record["id"])
        del self.order[bisect.bisect_left(self.order, key)]

    def delete(self, ids: Iterable[str]) -> list[str]:
        """Delete the given records: they are no longer listed, as the contract says.

        They are kept aside, so that :meth:`restore` can bring them back.
        """
        removed = []
        for record_id in ids:
            record = self.records.pop(record_id)
            del self.blobs[record_id]
            self._unlist(record)
            self.deleted[record_id] = record
            removed.append(record_id)
        return removed

    def restore(self, ids: Iterable[str]) -> list[str]:
        """Bring deleted records back; each reappears with a new ``modifiedtime``."""
        restored = []
        for record_id in ids:
            record = {**self.deleted.pop(record_id), "modifiedtime": format_time(self.clock())}
            self._store(record)
            bisect.insort(self.order, (parse_time(record["modifiedtime"]), record_id))
            restored.append(record_id)
        return restored

    def pick(self, count: int) -> list[str]:
        """Choose ``count`` distinct existing ids, deterministically."""
        return self.rng.sample(sorted(self.records), count)

    def page(self, page: int, limit: int, since: int | None) -> list[bytes]:
        """The serialized records of one page, optionally from ``since`` on."""
        first = 0 if since is None else bisect.bisect_left(self.order, (since, ""))
        begin = first + (page - 1) * limit
        return [self.blobs[record_id] for _, record_id in self.order[begin : begin + limit]]

    def truth(self) -> dict[str, str]:
        """Every record id with its current ``modifiedtime``."""
        return {record_id: record["modifiedtime"] for record_id, record in self.records.items()}


class CrmData:
    """All paths of the sandbox CRM, with one monotonic clock for changes.

    Args:
        records: Records generated per path.
        seed: Seed of the generated data.
        shape: What records look like (``SHAPES``).
        clock_offset: Seconds the CRM's clock runs ahead of this machine's (negative:
            behind); changes are stamped, and responses dated, by the CRM's clock.
    """

    def __init__(
        self, records: int, seed: int = 7, shape: str = DEFAULT_SHAPE, clock_offset: float = 0.0
    ) -> None:
        if shape not in SHAPES:
            raise ValueError(f"unknown shape {shape!r}; known: {', '.join(SHAPES)}")
        self.lock = threading.RLock()
        self.clock_offset = clock_offset
        self._last_change = 0
        self.paths: dict[str, PathStore] = {}
        for path in PATHS:
            rng = random.Random(f"{seed}:{path}")
            store = PathStore(path, rng, self._tick, shape=shape)
            store.generate(records)
            self.paths[path] = store
        self._last_change = max(
            (store.order[-1][0] for store in self.paths.values() if store.order), default=0
        )

    def now(self) -> datetime:
        """The CRM's present: this machine's clock moved by ``clock_offset``."""
        return datetime.now(UTC) + timedelta(seconds=self.clock_offset)

    def _tick(self) -> int:
        now = (self.now() - _EPOCH) // timedelta(microseconds=1)
        self._last_change = max(now, self._last_change + 1)
        return self._last_change

    def store(self, path: str) -> PathStore:
        """The store of ``path``; ``KeyError`` for a path the CRM does not have."""
        return self.paths[path]
