"""The schedules of one CRM's sync job: today's incremental sync, and the weekly sweep."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from dagster import (
    DailyPartitionsDefinition,
    DefaultScheduleStatus,
    RunRequest,
    ScheduleDefinition,
    ScheduleEvaluationContext,
    schedule,
)

from crm_assets.constants import TRIGGER_TAG
from crm_assets.naming import CrmNames
from crm_assets.partitions import latest_key


def _tick_time(context: ScheduleEvaluationContext) -> datetime:
    moment = context.scheduled_execution_time
    return moment.astimezone(UTC) if moment is not None else datetime.now(UTC)


def build_sync_schedule(
    cron: str, partitions: DailyPartitionsDefinition, names: CrmNames
) -> ScheduleDefinition:
    """Sync today's partition on ``cron`` (UTC): the incremental sync from the saved cursor."""

    def request(context: ScheduleEvaluationContext) -> RunRequest:
        latest = latest_key(partitions, _tick_time(context))
        return RunRequest(partition_key=latest, tags={TRIGGER_TAG: "schedule"})

    return _sync_job_schedule(
        names.sync_schedule,
        names.job,
        cron,
        "Incremental sync of the CRM assets: today's partition, from the saved cursor.",
        request,
    )


def build_sweep_schedule(
    cron: str, partitions: DailyPartitionsDefinition, names: CrmNames
) -> ScheduleDefinition:
    """Sweep deletions on ``cron`` (UTC): a run of today's partition that lists every record.

    A sweep lists every record, whatever partitions its run names; the schedule names today's
    alone, since Dagster records every partition of a run as materialized, one event each
    (about 9,000 for three years of days). A run of any range, launched by hand, sweeps the
    same. A schedule rather than a sensor: a sweep is due by the calendar, and a schedule
    shows its next tick in the UI. The warehouse pool and lock keep it from overlapping any
    other sync.
    """

    def request(context: ScheduleEvaluationContext) -> RunRequest:
        return RunRequest(
            partition_key=latest_key(partitions, _tick_time(context)),
            tags={TRIGGER_TAG: "sweep"},
            run_config={"ops": {names.assets_op: {"config": {"sweep_deletes": True}}}},
        )

    return _sync_job_schedule(
        names.sweep_schedule,
        names.job,
        cron,
        "Deletion sweep of the CRM assets: list every record, merge them, mark the rows the "
        "CRM no longer lists (CRM_DELETES).",
        request,
    )


def _sync_job_schedule(
    name: str,
    job_name: str,
    cron: str,
    description: str,
    request: Callable[[ScheduleEvaluationContext], RunRequest],
) -> ScheduleDefinition:
    """A running-by-default UTC schedule of the sync job."""
    return schedule(
        name=name,
        job_name=job_name,
        cron_schedule=cron,
        execution_timezone="UTC",
        default_status=DefaultScheduleStatus.RUNNING,
        description=description,
    )(request)
