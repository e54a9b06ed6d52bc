"""The CRM's present, as its own responses state it, not as this machine's clock says.

A record that changes gets the CRM's present as its ``modifiedtime``. Whatever the sync
decides from time, it decides on that clock: where a deletion sweep may start reading
changes, and how far the incremental cursor may go. This machine's clock can be minutes
away from the CRM's; every HTTP response carries the server's ``Date`` (RFC 9110 asks it of
every server with a clock), to the second, rounded down.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime

DATE_RESOLUTION = timedelta(seconds=1)
"""The ``Date`` header's precision: the server's present lies within a second after it."""


def _date_of(headers: Mapping[str, str]) -> datetime | None:
    text = headers.get("Date")
    if not text:
        return None
    try:
        moment = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


class CrmClock:
    """The ``Date`` headers of one sync's responses (any thread), earliest and latest.

    Args:
        local: This machine's clock, used only while the CRM has sent no ``Date``.
    """

    def __init__(self, local: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self._local = local
        self._lock = threading.Lock()
        self.earliest: datetime | None = None
        """The first moment the CRM stated: at or before it answered any of this sync."""
        self.latest: datetime | None = None

    def observe(self, headers: Mapping[str, str]) -> None:
        """Take the ``Date`` of a response, if it has a valid one."""
        moment = _date_of(headers)
        if moment is None:
            return
        with self._lock:
            if self.earliest is None or moment < self.earliest:
                self.earliest = moment
            if self.latest is None or moment > self.latest:
                self.latest = moment

    @property
    def known(self) -> bool:
        """Whether the CRM has stated its time."""
        return self.latest is not None

    def present(self) -> datetime:
        """The CRM's present as last stated (rounded down), else this machine's."""
        latest = self.latest
        return latest if latest is not None else self._local()

    def is_future(self, moment: datetime) -> bool:
        """Whether no real change can carry ``moment``: past the present and its rounding."""
        return moment > self.present() + DATE_RESOLUTION
