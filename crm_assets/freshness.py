"""Freshness-driven catch-up: sync the stale CRM assets once, when nothing else is syncing."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterable, Mapping
from typing import Any

from dagster import (
    AssetKey,
    DagsterInstance,
    DagsterRunStatus,
    DefaultSensorStatus,
    JobDefinition,
    RunRequest,
    RunsFilter,
    SensorDefinition,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    sensor,
)
from dagster._core.definitions.assets.graph.base_asset_graph import BaseAssetGraph
from dagster._core.definitions.unresolved_asset_job_definition import (
    UnresolvedAssetJobDefinition,
)

from crm_assets.constants import (
    FRESHNESS_SENSOR_INTERVAL_SECONDS,
    FRESHNESS_SENSOR_NAME,
    SYNC_JOB_NAME,
    TRIGGER_TAG,
)

ACTIVE_STATUSES = [
    DagsterRunStatus.QUEUED,
    DagsterRunStatus.NOT_STARTED,
    DagsterRunStatus.STARTING,
    DagsterRunStatus.STARTED,
    DagsterRunStatus.CANCELING,
]


def now() -> float:
    """The sensor's clock (seconds since the epoch); tests move it."""
    return time.time()


def sync_in_progress(instance: DagsterInstance) -> bool:
    """True while any run of the sync job (scheduled, catch-up or backfill) is queued or running."""
    active = RunsFilter(job_name=SYNC_JOB_NAME, statuses=ACTIVE_STATUSES)
    return bool(instance.get_run_ids(filters=active, limit=1))


def stale_assets(
    instance: DagsterInstance, graph: BaseAssetGraph[Any], keys: Iterable[AssetKey], at: float
) -> dict[AssetKey, float | None]:
    """Assets past their freshness policy's warn window, with their last materialization time.

    An asset never materialized is stale.
    """
    keys = list(keys)
    latest = instance.get_latest_materialization_events(keys)
    stale: dict[AssetKey, float | None] = {}
    for key in keys:
        policy = graph.get(key).freshness_policy
        window = getattr(policy, "warn_window", None) or getattr(policy, "fail_window", None)
        if window is None:
            continue
        event = latest.get(key)
        last = event.timestamp if event else None
        if last is None or at - last > window.to_timedelta().total_seconds():
            stale[key] = last
    return stale


def _signature(stale: Mapping[AssetKey, float | None]) -> str:
    return ";".join(f"{key.to_user_string()}@{stale[key]}" for key in sorted(stale))


def build_freshness_sensor(job: JobDefinition | UnresolvedAssetJobDefinition) -> SensorDefinition:
    """A sensor launching one catch-up sync of the assets whose freshness turned WARN or FAIL."""

    @sensor(
        name=FRESHNESS_SENSOR_NAME,
        job=job,
        minimum_interval_seconds=FRESHNESS_SENSOR_INTERVAL_SECONDS,
        default_status=DefaultSensorStatus.RUNNING,
    )
    def crm_freshness_sensor(context: SensorEvaluationContext) -> SensorResult | SkipReason:
        """Catch up on CRM assets past their freshness warn window.

        Covers a missed tick, a failed run or a stopped daemon: one run per stale state,
        never while a sync is queued or running.
        """
        if sync_in_progress(context.instance):
            return SkipReason("a CRM sync is queued or running")
        if context.repository_def is None:
            raise RuntimeError("the freshness sensor needs its code location's definitions")
        graph = context.repository_def.asset_graph
        keys = graph.get_all_asset_keys()
        stale = stale_assets(context.instance, graph, keys, now())
        if not stale:
            return SkipReason("every CRM asset is within its freshness window")
        signature = _signature(stale)
        if signature == context.cursor:
            return SkipReason(f"a catch-up was already launched for {len(stale)} stale assets")
        run_key = "catch-up-" + hashlib.sha256(signature.encode()).hexdigest()[:16]
        request = RunRequest(
            run_key=run_key, asset_selection=sorted(stale), tags={TRIGGER_TAG: "freshness"}
        )
        return SensorResult(run_requests=[request], cursor=signature)

    return crm_freshness_sensor
