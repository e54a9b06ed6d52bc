"""The daily partitions, and what a run of some of them reads from the CRM."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from dagster import PartitionKeyRange

from crm_assets.partitions import crm_partitions, latest_key, reading, whole_range
from crm_assets.sources.crm.window import Window

NOW = datetime(2026, 3, 10, 14, 30, tzinfo=UTC)
PARTITIONS = crm_partitions("2026-03-01T06:00:00Z")
EPOCH = "1970-01-01T00:00:00.000000Z"


def day(key: str) -> str:
    return f"{key}T00:00:00.000000Z"


def test_one_partition_per_utc_day_from_the_history_start_through_today() -> None:
    keys = whole_range(PARTITIONS, NOW)

    assert (keys.start, keys.end) == ("2026-03-01", "2026-03-10")
    assert latest_key(PARTITIONS, NOW) == "2026-03-10"
    window = PARTITIONS.time_window_for_partition_key("2026-03-10")
    assert (window.start, window.end) == (
        datetime(2026, 3, 10, tzinfo=UTC),
        datetime(2026, 3, 11, tzinfo=UTC),
    )


@pytest.mark.parametrize("trigger", ["schedule", "automation"])
def test_todays_partition_from_the_schedule_or_the_automation_is_the_incremental_sync(
    trigger: str,
) -> None:
    today = PartitionKeyRange("2026-03-10", "2026-03-10")

    plan = reading(PARTITIONS, today, trigger, NOW)

    assert plan.incremental and plan.first_cursor == day("2026-03-10")


def test_crm_sync_start_moves_the_first_incremental_sync_earlier_never_later() -> None:
    today = PartitionKeyRange("2026-03-10", "2026-03-10")

    earlier = reading(PARTITIONS, today, "schedule", NOW, "2026-03-08T12:00:00.000000Z")
    later = reading(PARTITIONS, today, "schedule", NOW, "2026-03-10T12:00:00.000000Z")

    assert earlier.first_cursor == "2026-03-08T12:00:00.000000Z"
    assert later.first_cursor == day("2026-03-10")


@pytest.mark.parametrize(
    ("keys", "trigger", "window"),
    [
        (("2026-03-10", "2026-03-10"), None, (day("2026-03-10"), day("2026-03-11"))),
        (("2026-03-09", "2026-03-09"), "schedule", (day("2026-03-09"), day("2026-03-10"))),
        (("2026-03-04", "2026-03-10"), "automation", (day("2026-03-04"), day("2026-03-11"))),
        (("2026-03-01", "2026-03-01"), None, (EPOCH, day("2026-03-02"))),
        (("2026-03-01", "2026-03-10"), "sweep", (EPOCH, day("2026-03-11"))),
    ],
    ids=["today from the UI", "yesterday", "a backfill", "the first partition", "everything"],
)
def test_every_other_run_reads_its_partitions_window(
    keys: tuple[str, str], trigger: str | None, window: tuple[str, str]
) -> None:
    plan = reading(PARTITIONS, PartitionKeyRange(*keys), trigger, NOW)

    assert not plan.incremental
    assert plan.window == Window(*window)


def test_when_today_is_the_first_partition_the_first_sync_reads_everything() -> None:
    partitions = crm_partitions("2026-03-10T00:00:00Z")
    today = PartitionKeyRange("2026-03-10", "2026-03-10")

    assert reading(partitions, today, "schedule", NOW).first_cursor == EPOCH
