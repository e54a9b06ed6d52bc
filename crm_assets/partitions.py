"""The CRM assets' time partitions, and what a run of some of them reads from the CRM.

One partition per UTC day of the records' ``modifiedtime``, from ``CRM_HISTORY_START`` to
today. A day is the grain a data engineer re-syncs by; the API's ``modified_since`` makes a
window of any size one read, so finer partitions would only multiply the partitions the UI
and the automation handle (an hour is 24 times as many: 26,000 over three years), and
coarser ones would make the daily reconciliation re-read weeks. The first partition also
holds every record modified before it, so that no record lies outside every partition.

A run reads what its partitions cover, ``modified_since=<start>`` and paging stops once
records pass the end, leaving the incremental cursor alone, with one exception: the run
the schedule or the automation launches for the latest partition alone is the incremental
sync, which reads from the saved cursor (less the lookback) and moves it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from dagster import (
    DailyPartitionsDefinition,
    PartitionKeyRange,
    TimeWindow,
    partition_loading_context,
)

from crm_assets.sources.crm.settings import INITIAL_CURSOR
from crm_assets.sources.crm.window import Window, format_moment, parse_moment

PARTITION_FORMAT = "%Y-%m-%d"

INCREMENTAL_TRIGGERS = frozenset({"schedule", "automation"})
"""Values of the trigger tag whose run of the latest partition is the incremental sync."""

RANGE_START_TAG = "dagster/asset_partition_range_start"
RANGE_END_TAG = "dagster/asset_partition_range_end"
"""The tags by which a run request names a range of partitions for one run."""


def crm_partitions(history_start: str) -> DailyPartitionsDefinition:
    """Daily UTC partitions from the day of ``history_start`` through today."""
    day = parse_moment(history_start, "CRM_HISTORY_START").strftime(PARTITION_FORMAT)
    return DailyPartitionsDefinition(
        start_date=day, timezone="UTC", fmt=PARTITION_FORMAT, end_offset=1
    )


def latest_key(partitions: DailyPartitionsDefinition, now: datetime) -> str:
    """The key of the latest partition at ``now``: that of today."""
    with partition_loading_context(effective_dt=now):
        last = partitions.get_last_partition_key()
    assert last is not None, "today's partition always exists (end_offset=1)"
    return last


def whole_range(partitions: DailyPartitionsDefinition, now: datetime) -> PartitionKeyRange:
    """Every partition that exists at ``now``: the first through today's."""
    last = latest_key(partitions, now)
    return PartitionKeyRange(partitions.get_first_partition_key() or last, last)


def range_tags(keys: PartitionKeyRange) -> dict[str, str]:
    """Run tags asking for one run of the partitions ``keys``."""
    return {RANGE_START_TAG: keys.start, RANGE_END_TAG: keys.end}


@dataclass(frozen=True)
class Reading:
    """What one run reads: a window of records, or the incremental sync.

    Attributes:
        window: ``[start, end)`` of ``modifiedtime``; None for the incremental sync.
        first_cursor: Where the incremental sync starts when no cursor was saved yet.
    """

    window: Window | None
    first_cursor: str

    @property
    def incremental(self) -> bool:
        """Whether the run reads from the saved cursor and moves it."""
        return self.window is None


def reading(
    partitions: DailyPartitionsDefinition,
    keys: PartitionKeyRange,
    trigger: str | None,
    now: datetime,
    sync_start: str | None = None,
) -> Reading:
    """What a run of the partitions ``keys``, launched by ``trigger``, reads at ``now``.

    Args:
        partitions: The assets' partitions.
        keys: The first and last partition of the run.
        trigger: The run's trigger tag (schedule, automation, sweep; None from the UI).
        now: The present, which says which partition is the latest.
        sync_start: ``CRM_SYNC_START``: where the first incremental sync may start instead
            of the latest partition's start, if earlier.
    """
    time_window: TimeWindow = partitions.time_window_for_partition_key(keys.start)
    first = keys.start == partitions.get_first_partition_key()
    start = INITIAL_CURSOR if first else format_moment(time_window.start)
    end = format_moment(partitions.time_window_for_partition_key(keys.end).end)
    if keys.start == keys.end == latest_key(partitions, now) and trigger in INCREMENTAL_TRIGGERS:
        first_cursor = min(start, sync_start) if sync_start else start
        return Reading(window=None, first_cursor=first_cursor)
    return Reading(window=Window(start, end), first_cursor=start)
