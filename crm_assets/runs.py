"""Whether a run that touches the CRM assets is queued or running, whatever launched it."""

from __future__ import annotations

from collections.abc import Collection

from dagster import AssetKey, DagsterInstance, DagsterRun, DagsterRunStatus, RunsFilter

from crm_assets.constants import SYNC_JOB_NAME

ACTIVE_STATUSES = [
    DagsterRunStatus.QUEUED,
    DagsterRunStatus.NOT_STARTED,
    DagsterRunStatus.STARTING,
    DagsterRunStatus.STARTED,
    DagsterRunStatus.CANCELING,
]


def touches(run: DagsterRun, keys: Collection[AssetKey]) -> bool:
    """Whether ``run`` materializes or checks any of ``keys`` (all of the sync job does)."""
    if run.job_name == SYNC_JOB_NAME and not run.asset_selection:
        return True
    selected = set(run.asset_selection or ())
    checked = {check.asset_key for check in run.asset_check_selection or ()}
    return bool((selected | checked) & set(keys))


def crm_run_in_progress(instance: DagsterInstance, keys: Collection[AssetKey]) -> bool:
    """True while a run touching the CRM assets is queued or running.

    Any run counts: the sync job (scheduled, sweep or backfill), a catch-up the automation
    sensor launched, or a materialization started from the UI (``__ASSET_JOB``).
    """
    runs = instance.get_runs(filters=RunsFilter(statuses=ACTIVE_STATUSES))
    return any(touches(run, keys) for run in runs)
