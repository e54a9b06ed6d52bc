"""Drop records an incremental sync re-fetches only because of the lookback window."""

from __future__ import annotations

import hashlib
from collections import deque
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any, ClassVar

import dlt
import orjson

from crm_assets.sources.crm.clock import CrmClock
from crm_assets.sources.crm.dlt_internals import ItemTransform
from crm_assets.sources.crm.settings import PRIMARY_KEY

STATE_KEY = "recent"

Entry = list[Any]
"""``[cursor value, content digest or None]``: what the state keeps of one record."""


def _moment(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def content_digest(record: Mapping[str, Any]) -> str:
    """A 64-bit digest of a record as the CRM sent it (its fields in the order sent)."""
    return hashlib.blake2b(orjson.dumps(record), digest_size=8).hexdigest()


class SkipUnchanged(ItemTransform[Any]):
    """A dlt step dropping the records loaded before exactly as they are now.

    Incremental syncs ask for records modified since the last cursor minus a lookback (for
    clock skew), so they fetch the records of that window again. A record is dropped only
    if its id, its cursor value and its content are the same as when it was loaded: a CRM
    that changes a record twice within one tick of its clock leaves the cursor value as it
    was, but not the content. What the state keeps is the ``(id, cursor, digest)`` of the
    records within the lookback of the newest cursor seen; it is stored in the destination
    with the data.

    Hashing costs about a microsecond a record, so a record is hashed only if it is still
    within the window when its page has passed (in a full load, few are), or when the same
    id and cursor value come again within one page. A cursor value beyond the CRM's present
    (``clock``) counts as the present, so one record stamped in the future cannot push every
    other record out of the window.

    Args:
        resource: Resource name, whose dlt state holds the window.
        cursor: Cursor field of the resource.
        lookback_seconds: Width of the window kept.
        clock: The CRM's present, as its responses state it.
    """

    placement_affinity: ClassVar[float] = 0

    def __init__(
        self, resource: str, cursor: str, lookback_seconds: float, clock: CrmClock | None = None
    ) -> None:
        super().__init__(lambda item: item)
        self.resource = resource
        self.cursor = cursor
        self.lookback = timedelta(seconds=lookback_seconds)
        self._clock = clock or CrmClock()
        self._latest: datetime | None = None
        self._state: dict[str, Entry] | None = None
        self._order: deque[tuple[datetime, str, str]] = deque()
        self._unhashed: dict[str, Mapping[str, Any]] = {}

    def _recent(self) -> dict[str, Entry]:
        """The window in the resource's state, looked up once per sync.

        Entries written before digests were kept hold the cursor value alone; they get no
        digest, so such a record is loaded once more rather than dropped.
        """
        if self._state is None:
            state = dlt.current.resource_state(self.resource)
            recent: dict[str, Any] = state.setdefault(STATE_KEY, {})
            for key, entry in recent.items():
                if not isinstance(entry, list):
                    recent[key] = [entry, None]
                self._order.append((_moment(recent[key][0]), key, recent[key][0]))
            self._state = recent
        return self._state

    def __call__(self, item: Any, meta: Any = None) -> Any:
        """The records of ``item`` (a page, or a batch of pages) that are new or changed."""
        records = item if isinstance(item, list) else [item]
        recent = self._recent()
        present = self._clock.present()
        kept = [record for record in records if self._changed(record, recent, present)]
        self._forget_older(recent)
        self._hash_the_rest(recent)
        if not isinstance(item, list):
            return kept[0] if kept else None
        return kept or None

    def _changed(
        self, record: Mapping[str, Any], recent: dict[str, Entry], present: datetime
    ) -> bool:
        key, value = str(record[PRIMARY_KEY]), record.get(self.cursor)
        if not isinstance(value, str):
            return True
        entry = recent.get(key)
        if entry is not None and entry[0] == value:
            earlier = self._unhashed.get(key)
            digest = content_digest(earlier) if earlier is not None else entry[1]
            if digest is not None and digest == content_digest(record):
                return False
        recent.pop(key, None)
        recent[key] = [value, None]
        self._unhashed[key] = record
        moment = min(_moment(value), present)
        self._order.append((moment, key, value))
        if self._latest is None or moment > self._latest:
            self._latest = moment
        return True

    def _forget_older(self, recent: dict[str, Entry]) -> None:
        """Drop entries older than the lookback before the latest cursor seen."""
        if self._latest is None:
            return
        horizon = self._latest - self.lookback
        order = self._order
        while order and order[0][0] < horizon:
            _, key, value = order.popleft()
            entry = recent.get(key)
            if entry is not None and entry[0] == value:
                del recent[key]
                self._unhashed.pop(key, None)

    def _hash_the_rest(self, recent: dict[str, Entry]) -> None:
        """Digest the records of the page that stay in the window, while still as sent."""
        for key, record in self._unhashed.items():
            entry = recent.get(key)
            if entry is not None and entry[1] is None:
                entry[1] = content_digest(record)
        self._unhashed.clear()
