"""Declarative Automation of the CRM assets: today's catch-up, history, reconciliation.

One condition per asset, evaluated per partition by the automation condition sensor, which
emits a backfill (Dagster's Backfills page, one status per partition) whenever more than
one partition of an asset is requested in a tick:

- **Today** (the latest partition): Dagster's freshness daemon evaluates each asset's
  freshness policy and records PASS, WARN or FAIL. When today's partition is missing, or the
  asset turns WARN or FAIL, one sync of today's partition is requested for that state, never
  while a run of it is queued or running. That run is the incremental sync.
- **History** (every earlier partition): a partition that is missing is requested once, and
  again after each reconciliation tick while still missing (a failed backfill is retried
  daily; the Backfills page retries it at once).
- **Reconciliation**: at each tick of ``CRM_RECONCILE_CRON`` the ``CRM_RECONCILE_DAYS``
  partitions before today are re-read, healing records a sync skipped while the CRM
  changed (see docs/crm-api.md).

Freshness is evaluated per asset, not per partition (Dagster 1.12+): a run of any partition
counts as a materialization of the asset, so a backfill of history keeps an asset fresh as
well as today's sync does. The schedule keeps today's partition current either way.
"""

from __future__ import annotations

from datetime import timedelta
from typing import cast

from dagster import (
    AssetCheckKey,
    AssetKey,
    AssetSelection,
    AutomationCondition,
    AutomationConditionSensorDefinition,
    DefaultSensorStatus,
)

from crm_assets.constants import TRIGGER_TAG
from crm_assets.naming import CrmNames

Condition = AutomationCondition[AssetKey]


def _once_per(due: Condition, label: str) -> Condition:
    """Not requested since ``due`` last became true: requested once each time it does."""
    requested: Condition = AutomationCondition.newly_requested().since(due)
    return (~requested).with_label(label)


def catch_up_condition() -> Condition:
    """Today's partition: stale (missing, freshness WARN or FAIL), not in progress, once."""
    missing = AutomationCondition.missing()
    warned = AutomationCondition.freshness_warned()
    failed = AutomationCondition.freshness_failed()
    stale = (missing | warned | failed).with_label("stale")
    became_stale = (missing.newly_true() | warned.newly_true() | failed.newly_true()).with_label(
        "became stale"
    )
    return (
        AutomationCondition.in_latest_time_window()
        & stale
        & ~AutomationCondition.in_progress()
        & _once_per(became_stale, "not yet caught up")
    ).with_label("today: catch up")


def history_condition(reconcile_cron: str) -> Condition:
    """An earlier partition that is missing: requested once, again at each reconcile tick."""
    missing = AutomationCondition.missing()
    due = (missing.newly_true() | AutomationCondition.cron_tick_passed(reconcile_cron)).with_label(
        "became missing, or a reconciliation tick"
    )
    return (
        ~AutomationCondition.in_latest_time_window()
        & missing
        & ~AutomationCondition.in_progress()
        & _once_per(due, "not yet requested")
    ).with_label("history: backfill what is missing")


def reconcile_condition(reconcile_cron: str, days: int) -> Condition:
    """The ``days`` partitions before today, once per tick of ``reconcile_cron``."""
    recent = AutomationCondition.in_latest_time_window(timedelta(days=days + 1))
    tick: AutomationCondition[AssetKey | AssetCheckKey]
    tick = AutomationCondition.cron_tick_passed(reconcile_cron)
    condition = (
        recent
        & ~AutomationCondition.in_latest_time_window()
        & tick.since_last_handled()
        & ~AutomationCondition.in_progress()
    ).with_label(f"reconcile the {days} days before today")
    return cast(Condition, condition)


def sync_condition(reconcile_cron: str, reconcile_days: int) -> Condition:
    """What the automation requests of a CRM asset: today's catch-up, history, reconciliation."""
    return (
        catch_up_condition()
        | history_condition(reconcile_cron)
        | reconcile_condition(reconcile_cron, reconcile_days)
    ).with_label("keep current")


def build_automation_sensor(names: CrmNames) -> AutomationConditionSensorDefinition:
    """The sensor evaluating one CRM's conditions; running by default, emitting backfills."""
    return AutomationConditionSensorDefinition(
        names.automation_sensor,
        target=AssetSelection.groups(names.group),
        default_status=DefaultSensorStatus.RUNNING,
        run_tags={TRIGGER_TAG: "automation"},
        emit_backfills=True,
        description=(
            "Syncs today's partition of the CRM assets when missing or past their freshness "
            "policy; backfills missing history and re-reads the last days once a day, as "
            "backfills on the Backfills page."
        ),
    )
