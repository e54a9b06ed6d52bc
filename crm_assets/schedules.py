"""The schedules of the sync job: the incremental sync, and the weekly deletion sweep."""

from __future__ import annotations

from typing import Any

from dagster import DefaultScheduleStatus, ScheduleDefinition

from crm_assets.constants import (
    ASSETS_OP_NAME,
    SWEEP_SCHEDULE_NAME,
    SYNC_JOB_NAME,
    SYNC_SCHEDULE_NAME,
    TRIGGER_TAG,
)


def build_sync_schedule(cron: str) -> ScheduleDefinition:
    """Run the sync job on ``cron`` (UTC); on by default, so a new deployment stays current."""
    return _sync_job_schedule(
        SYNC_SCHEDULE_NAME, cron, "schedule", "Incremental sync of the nine CRM assets."
    )


def build_sweep_schedule(cron: str) -> ScheduleDefinition:
    """Run a deletion sweep of the nine assets on ``cron`` (UTC); on by default.

    A schedule rather than a sensor: a sweep is due by the calendar, not by an event, and a
    schedule shows its next tick in the UI. Its run is an ordinary run of the sync job, so the
    warehouse pool keeps it from overlapping any other sync.
    """
    return _sync_job_schedule(
        SWEEP_SCHEDULE_NAME,
        cron,
        "sweep",
        "Deletion sweep of the nine CRM assets: list every record, merge them, mark the "
        "rows the CRM no longer lists (CRM_DELETES).",
        run_config={"ops": {ASSETS_OP_NAME: {"config": {"sweep_deletes": True}}}},
    )


def _sync_job_schedule(
    name: str,
    cron: str,
    trigger: str,
    description: str,
    run_config: dict[str, Any] | None = None,
) -> ScheduleDefinition:
    """A running-by-default UTC schedule of the sync job, tagged with what launched it."""
    return ScheduleDefinition(
        name=name,
        job_name=SYNC_JOB_NAME,
        cron_schedule=cron,
        execution_timezone="UTC",
        default_status=DefaultScheduleStatus.RUNNING,
        run_config=run_config,
        tags={TRIGGER_TAG: trigger},
        description=description,
    )
