"""Records stamped beyond the CRM's present: loaded as sent, but never moving the cursor there.

dlt's incremental step keeps the largest cursor value it has seen. One record whose
``modifiedtime`` lies a day ahead (a CRM bug, an import with a wrong clock) would put the
cursor there, and every real change until then would be missed. The two steps below sit
around the incremental step: the first hands it the CRM's present instead of such a value,
and the second puts the value the CRM sent back before anything else sees the record. The
record is loaded as the CRM sent it, and the cursor stops at the CRM's present, so the next
sync reads the real changes from there (and that record again, until its stamp has passed).
"""

from __future__ import annotations

from typing import Any, ClassVar

from crm_assets.sources.crm.clock import DATE_RESOLUTION, CrmClock
from crm_assets.sources.crm.dlt_internals import ItemTransform
from crm_assets.sources.crm.settings import PRIMARY_KEY
from crm_assets.sources.crm.stats import SyncStats
from crm_assets.sources.crm.window import format_moment, parse_moment

SENT_CURSOR_KEY = "_crm_cursor_as_sent"
"""Where the value the CRM sent waits while the incremental step sees the present."""


def _records(item: Any) -> list[Any]:
    return item if isinstance(item, list) else [item]


class HoldBackFutureCursors(ItemTransform[Any]):
    """The step before dlt's incremental one: future cursor values become the CRM's present.

    A value counts as future when it lies beyond the CRM's present (the latest ``Date`` it
    sent, rounded down) by more than that rounding; each is counted in ``stats``.

    Args:
        resource: Resource name, for ``stats``.
        cursor: Cursor field.
        clock: The CRM's present, as its responses state it.
        stats: Counts the records held back.
    """

    placement_affinity: ClassVar[float] = 0.95
    """Right before dlt's incremental step (1)."""

    def __init__(self, resource: str, cursor: str, clock: CrmClock, stats: SyncStats) -> None:
        super().__init__(lambda item: item)
        self.resource = resource
        self.cursor = cursor
        self._clock = clock
        self._stats = stats

    def __call__(self, item: Any, meta: Any = None) -> Any:
        """Hold back the future cursor values of ``item``'s records."""
        present = self._clock.present()
        threshold = format_moment(present + DATE_RESOLUTION)
        for record in _records(item):
            value = record.get(self.cursor)
            # The contract's format compares as text; a value past the text test is parsed.
            if isinstance(value, str) and value > threshold and self._future(value):
                record[SENT_CURSOR_KEY] = value
                record[self.cursor] = format_moment(present)
                self._stats.future(self.resource, str(record[PRIMARY_KEY]), value)
        return item

    def _future(self, value: str) -> bool:
        try:
            return self._clock.is_future(parse_moment(value, self.cursor))
        except ValueError:
            return False


class RestoreSentCursors(ItemTransform[Any]):
    """The step right after dlt's incremental one: the cursor values as the CRM sent them."""

    placement_affinity: ClassVar[float] = 1.01
    """After the incremental step (1), before the timestamps are parsed (1.05)."""

    def __init__(self, cursor: str) -> None:
        super().__init__(lambda item: item)
        self.cursor = cursor

    def __call__(self, item: Any, meta: Any = None) -> Any:
        """Put back the values :class:`HoldBackFutureCursors` held back."""
        for record in _records(item):
            if isinstance(record, dict) and SENT_CURSOR_KEY in record:
                record[self.cursor] = record.pop(SENT_CURSOR_KEY)
        return item
