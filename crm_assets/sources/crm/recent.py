"""Drop records an incremental sync re-fetches only because of the lookback window."""

from __future__ import annotations

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

    def _recent(self) -> dict[str, str]:
        state = dlt.current.resource_state(self.resource)
        recent: dict[str, str] = state.setdefault(STATE_KEY, {})
        return recent

    def __call__(self, record: dict[str, Any]) -> bool:
        """True if the record is new or changed since it was last loaded."""
        key, value = str(record[PRIMARY_KEY]), record.get(self.cursor)
        if not isinstance(value, str):
            return True
        recent = self._recent()
        if recent.get(key) == value:
            return False
        recent.pop(key, None)
        recent[key] = value
        self._forget_older(recent, _moment(value))
        return True

    def _forget_older(self, recent: dict[str, str], moment: datetime) -> None:
        if self._latest is None or moment > self._latest:
            self._latest = moment
        horizon = self._latest - self.lookback
        while recent:
            oldest = next(iter(recent))
            if _moment(recent[oldest]) >= horizon:
                break
            del recent[oldest]
