"""Tell dlt a resource's rows are unique by id while they are, so its merge skips deduplication.

dlt's merge into a SQL warehouse first deduplicates the staged rows by primary key with a
window over the whole staging table, which holds every column of every row at once. Most
syncs fetch each id once, and then that step only costs memory: within DuckDB's 128MB a
table of 333,336 rows of 40 text columns merged without it and ran out of memory with it;
within 64MB, the same for 111,112 rows (``bench/duckdb_merge.py``).

So every resource declares its staged rows deduplicated (dlt's ``deduplicated`` merge
option) and this step watches the ids going to the warehouse. The first time an id comes
a second time in one sync (a record that moved between pages while they were fetched),
the step withdraws the declaration for that resource's table and asks for the newest
version of each id (``dedup_sort`` on the cursor), as dlt does without the declaration.
The next sync starts declared again.
"""

from __future__ import annotations

from array import array
from collections.abc import Callable, Hashable
from typing import Any, ClassVar, Final

import dlt
import pyarrow as pa
import pyarrow.compute as pc
from dlt.common.schema.typing import TColumnSchema, TDeleteInsertStrategyDict
from dlt.extract.items_transform import ItemTransform

DEDUPLICATED_HINT: Final = "x-stage-data-deduplicated"
"""The table hint behind dlt's ``deduplicated`` merge option."""


class SeenKeys:
    """Hashes of the keys seen so far, 8 bytes a key, to tell whether one came twice.

    Two keys with the same hash count as a repeat: the answer errs only toward
    deduplicating, which is always correct.
    """

    def __init__(self) -> None:
        self._hashes = array("q")

    def add(self, keys: list[Hashable]) -> bool:
        """Remember ``keys``; whether any of them was seen before or comes twice in them."""
        batch = array("q", [hash(key) for key in keys])
        candidates = _int64s(batch)
        if pc.count_distinct(candidates).as_py() < len(batch):
            return True
        if self._hashes and pc.any(pc.is_in(_int64s(self._hashes), value_set=candidates)).as_py():
            return True
        self._hashes.extend(batch)
        return False


def _int64s(values: array[int]) -> pa.Array:
    """An Arrow view of ``values``, without copying them."""
    return pa.Array.from_buffers(pa.int64(), len(values), [None, pa.py_buffer(values)])


class UniqueKeys(ItemTransform[Any]):
    """A dlt step that withdraws the resource's ``deduplicated`` declaration on a repeated id.

    Placed after the incremental step and the lookback filter, so it sees exactly the
    records that are staged, and before the Arrow route, whose items carry its hints.

    Args:
        primary_key: The field identifying a record.
        cursor: The field whose newest value wins among the versions of an id.
        on_repeat: Called once, when an id first comes twice.
    """

    placement_affinity: ClassVar[float] = 1.055

    def __init__(
        self, primary_key: str, cursor: str, on_repeat: Callable[[], Any] | None = None
    ) -> None:
        super().__init__(lambda item: item)
        self.primary_key = primary_key
        self.cursor = cursor
        self._on_repeat = on_repeat
        self._seen: SeenKeys | None = SeenKeys()

    @property
    def repeated(self) -> bool:
        """Whether an id came twice in this sync."""
        return self._seen is None

    def __call__(self, item: Any, meta: Any = None) -> Any:
        """Pass the records on; with dlt's hints to deduplicate if one of their ids repeats."""
        if self._seen is None:
            return item
        records = item if isinstance(item, list) else [item]
        if not self._repeats(self._seen, records):
            return item
        self._seen = None
        if self._on_repeat is not None:
            self._on_repeat()
        hints = dlt.mark.make_hints(
            columns={self.cursor: {"name": self.cursor, "dedup_sort": "desc"}},
            additional_table_hints={DEDUPLICATED_HINT: False},
        )
        return dlt.mark.with_hints(item, hints)

    def _repeats(self, seen: SeenKeys, records: list[Any]) -> bool:
        """Whether an id repeats; anything but a record counts as one (dlt then deduplicates)."""
        if not all(type(record) is dict for record in records):
            return True
        return seen.add([record.get(self.primary_key) for record in records])


DECLARED_UNIQUE: Final[TDeleteInsertStrategyDict] = {
    "disposition": "merge",
    "strategy": "delete-insert",
    "deduplicated": True,
}
"""The seed's merge, its staged rows declared unique by id (dlt's default strategy)."""

NO_VERSION_ORDER: Final[TColumnSchema] = {"dedup_sort": None}
"""The cursor's hint a sync starts from: a warehouse keeps the hints of earlier syncs, and
dlt warns when ``dedup_sort`` is set on a table declared deduplicated."""
