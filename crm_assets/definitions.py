"""The code location's one ``Definitions``: assets, job, schedules, sensors, resources, policy."""

from __future__ import annotations

from collections.abc import Mapping

from dagster import (
    AssetSelection,
    Definitions,
    define_asset_job,
    definitions,
    in_process_executor,
)

from crm_assets.assets import build_crm_assets
from crm_assets.automation import build_automation_sensor, sync_condition
from crm_assets.checks import build_crm_checks
from crm_assets.constants import GROUP_NAME, SYNC_JOB_NAME
from crm_assets.dlt_resource import CrmDltResource
from crm_assets.resources import resources_from_env
from crm_assets.schedules import build_sweep_schedule, build_sync_schedule
from crm_assets.settings import LocationSettings


def build_definitions(environ: Mapping[str, str] | None = None) -> Definitions:
    """Build the definitions for an environment (``os.environ`` by default).

    Settings are checked here, so a bad value fails the load naming its variable. Values
    a run uses are resolved from ``EnvVar`` bindings when it starts: loading needs no secret.
    """
    settings = LocationSettings.from_env(environ)
    partitions = settings.partitions
    sync_job = define_asset_job(
        SYNC_JOB_NAME,
        selection=AssetSelection.groups(GROUP_NAME),
        description=(
            "Sync the CRM assets' partitions into the warehouse (all nine unless a subset is "
            "given): a day of records' modifiedtime each; today's from the schedule is the "
            "incremental sync."
        ),
    )
    crm_assets = build_crm_assets(
        settings.destination,
        partitions,
        settings.backfill_policy,
        settings.freshness_policy,
        sync_condition(settings.reconcile_cron, settings.reconcile_days),
    )
    schedules = [build_sync_schedule(settings.sync_cron, partitions)]
    if settings.deletes != "off":
        schedules.append(build_sweep_schedule(settings.sweep_cron, partitions))
    return Definitions(
        assets=[crm_assets],
        asset_checks=[build_crm_checks(crm_assets.keys)],
        jobs=[sync_job],
        schedules=schedules,
        sensors=[build_automation_sensor()],
        resources={"dlt": CrmDltResource(), **resources_from_env(environ)},
        executor=in_process_executor,
    )


@definitions
def defs() -> Definitions:
    """Loaded by Dagster when the code location starts, not when this module is imported."""
    return build_definitions()
