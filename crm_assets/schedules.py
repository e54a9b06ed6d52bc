"""The schedule that keeps the warehouse current."""

from __future__ import annotations

from dagster import DefaultScheduleStatus, JobDefinition, ScheduleDefinition
from dagster._core.definitions.unresolved_asset_job_definition import (
    UnresolvedAssetJobDefinition,
)

from crm_assets.constants import SYNC_SCHEDULE_NAME, TRIGGER_TAG


def build_sync_schedule(
    job: JobDefinition | UnresolvedAssetJobDefinition, cron: str
) -> ScheduleDefinition:
    """Run the sync job on ``cron`` (UTC); on by default, so a new deployment stays current."""
    return ScheduleDefinition(
        name=SYNC_SCHEDULE_NAME,
        job=job,
        cron_schedule=cron,
        execution_timezone="UTC",
        default_status=DefaultScheduleStatus.RUNNING,
        tags={TRIGGER_TAG: "schedule"},
        description="Incremental sync of the nine CRM assets.",
    )
