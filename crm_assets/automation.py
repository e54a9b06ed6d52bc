"""Catch-up syncs by Declarative Automation: Dagster's freshness state decides, the UI shows why.

Dagster's freshness daemon evaluates each asset's freshness policy and records PASS, WARN or
FAIL. The condition below asks for a sync of an asset once for each stale state it enters (a
never-materialized asset is unknown to the freshness daemon, so ``missing`` counts as stale
too), never while a run that materializes it is queued or running, and again after such a run
if the asset is still stale. The automation condition sensor evaluates it every 30 seconds;
each evaluation, and why it requested a run, is shown on the asset's Automation tab.
"""

from __future__ import annotations

from dagster import (
    AssetKey,
    AssetSelection,
    AutomationCondition,
    AutomationConditionSensorDefinition,
    DefaultSensorStatus,
)

from crm_assets.constants import AUTOMATION_SENSOR_NAME, GROUP_NAME, TRIGGER_TAG


def catch_up_condition() -> AutomationCondition[AssetKey]:
    """Stale (missing, freshness WARN or FAIL), not in progress, not yet caught up for it."""
    missing = AutomationCondition.missing()
    warned = AutomationCondition.freshness_warned()
    failed = AutomationCondition.freshness_failed()
    stale = (missing | warned | failed).with_label("stale")
    became_stale = (missing.newly_true() | warned.newly_true() | failed.newly_true()).with_label(
        "became stale"
    )
    caught_up = AutomationCondition.newly_requested().since(became_stale)
    return (
        stale & ~AutomationCondition.in_progress() & ~caught_up.with_label("already caught up")
    ).with_label("catch up")


def build_automation_sensor() -> AutomationConditionSensorDefinition:
    """The sensor evaluating the CRM assets' automation conditions; running by default."""
    return AutomationConditionSensorDefinition(
        AUTOMATION_SENSOR_NAME,
        target=AssetSelection.groups(GROUP_NAME),
        default_status=DefaultSensorStatus.RUNNING,
        run_tags={TRIGGER_TAG: "automation"},
        description=(
            "Launches a catch-up sync of the CRM assets that are missing or past their "
            "freshness policy, once per stale state, never while one is syncing."
        ),
    )
