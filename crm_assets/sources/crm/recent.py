"""Drop records an incremental sync re-fetches only because of the lookback window."""

from __future__ import annotations

from collections import deque
from datetime import datetime, timedelta
from typing import Any

import dlt

from crm_assets.sources.crm.settings import PRIMARY_KEY

STATE_KEY = "recent"


def _moment(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


class SkipUnchanged:
    """A dlt filter passing a record unless it was loaded before with the same cursor value.

    Incremental syncs ask for records modified since the last cursor minus a lookback
    (for clock skew), so they fetch again the records of that window. A record whose
    ``(id, cursor)`` was already loaded has not changed (the cursor changes whenever the
    record does) and is dropped. The ``(id, cursor)`` pairs of the last lookback window
    are kept in the resource's dlt state, which is stored in the destination with the data.

    Args:
        resource: Resource name, whose dlt state holds the window.
        cursor: Cursor field of the resource.
        lookback_seconds: Width of the window kept.
    """

    def __init__(self, resource: str, cursor: str, lookback_seconds: float) -> None:
        self.resource = resource
        self.cursor = cursor
        self.lookback = timedelta(seconds=lookback_seconds)
        self._latest: datetime | None = None
        self._state: dict[str, str] | None = None
        self._order: deque[tuple[datetime, str, str]] = deque()

    def _recent(self) -> dict[str, str]:
        """The window in the resource's state, looked up once per sync."""
        if self._state is None:
            state = dlt.current.resource_state(self.resource)
            self._state = state.setdefault(STATE_KEY, {})
            self._order.extend((_moment(value), key, value) for key, value in self._state.items())
        return self._state

    def __call__(self, record: dict[str, Any]) -> bool:
        """True if the record is new or changed since it was last loaded."""
        key, value = str(record[PRIMARY_KEY]), record.get(self.cursor)
        if not isinstance(value, str):
            return True
        recent = self._recent()
        if recent.get(key) == value:
            return False
        moment = _moment(value)
        recent.pop(key, None)
        recent[key] = value
        self._order.append((moment, key, value))
        self._forget_older(recent, moment)
        return True

    def _forget_older(self, recent: dict[str, str], moment: datetime) -> None:
        """Drop entries older than the lookback before the latest cursor seen."""
        if self._latest is None or moment > self._latest:
            self._latest = moment
        horizon = self._latest - self.lookback
        order = self._order
        while order and order[0][0] < horizon:
            _, key, value = order.popleft()
            if recent.get(key) == value:
                del recent[key]
