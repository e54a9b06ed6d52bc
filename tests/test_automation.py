"""The sync schedule and the freshness catch-up sensor, through Dagster's test contexts."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from dagster import (
    AssetKey,
    AssetMaterialization,
    DagsterInstance,
    DagsterRunStatus,
    DefaultScheduleStatus,
    DefaultSensorStatus,
    Definitions,
    RunRequest,
    SensorResult,
    SkipReason,
    build_schedule_context,
    build_sensor_context,
)
from dagster._core.test_utils import create_run_for_test

from crm_assets import freshness
from crm_assets.constants import FRESHNESS_SENSOR_NAME, SYNC_JOB_NAME, SYNC_SCHEDULE_NAME
from crm_assets.definitions import build_definitions
from crm_assets.sources.crm import RESOURCE_NAMES

NINE = {AssetKey(["crm", name]) for name in RESOURCE_NAMES}
HOUR = 3600.0


@pytest.fixture
def defs() -> Definitions:
    return build_definitions({})


@pytest.fixture
def instance() -> Iterator[DagsterInstance]:
    with DagsterInstance.ephemeral() as ephemeral:
        yield ephemeral


def tick(defs: Definitions, instance: DagsterInstance, cursor: str | None = None):  # type: ignore[no-untyped-def]
    sensor = defs.resolve_sensor_def(FRESHNESS_SENSOR_NAME)
    context = build_sensor_context(instance=instance, definitions=defs, cursor=cursor)
    return sensor(context)


def materialize_all(instance: DagsterInstance) -> None:
    for key in NINE:
        instance.report_runless_asset_event(AssetMaterialization(asset_key=key))


def test_the_schedule_requests_a_sync_of_the_nine(defs: Definitions) -> None:
    schedule = defs.resolve_schedule_def(SYNC_SCHEDULE_NAME)

    [request] = schedule.evaluate_tick(build_schedule_context()).run_requests or []

    assert schedule.cron_schedule == "0 * * * *"
    assert schedule.default_status == DefaultScheduleStatus.RUNNING
    assert schedule.job_name == SYNC_JOB_NAME
    assert request.tags["crm/trigger"] == "schedule"
    job = defs.resolve_job_def(SYNC_JOB_NAME)
    assert set(job.asset_layer.executable_asset_keys) == NINE


def test_the_schedule_cron_is_overridable() -> None:
    defs = build_definitions({"CRM_SYNC_CRON": "*/15 * * * *"})

    assert defs.resolve_schedule_def(SYNC_SCHEDULE_NAME).cron_schedule == "*/15 * * * *"


def test_every_asset_has_the_freshness_policy(defs: Definitions) -> None:
    graph = defs.resolve_asset_graph()

    for key in NINE:
        policy = graph.get(key).freshness_policy
        assert policy is not None
        assert policy.warn_window.to_timedelta().total_seconds() == 2 * HOUR
        assert policy.fail_window.to_timedelta().total_seconds() == 3 * HOUR


def test_fresh_assets_need_no_catch_up(defs: Definitions, instance: DagsterInstance) -> None:
    materialize_all(instance)

    result = tick(defs, instance)

    assert isinstance(result, SkipReason)
    assert "within its freshness window" in (result.skip_message or "")
    assert defs.resolve_sensor_def(FRESHNESS_SENSOR_NAME).default_status == (
        DefaultSensorStatus.RUNNING
    )


def test_a_stale_asset_gets_exactly_one_catch_up(
    defs: Definitions, instance: DagsterInstance
) -> None:
    cases = AssetKey(["crm", "cases"])
    for key in NINE - {cases}:
        instance.report_runless_asset_event(AssetMaterialization(asset_key=key))

    first = tick(defs, instance)
    assert isinstance(first, SensorResult)
    [request] = first.run_requests or []
    assert isinstance(request, RunRequest)
    assert request.asset_selection == [cases]
    assert request.tags["crm/trigger"] == "freshness"
    assert request.run_key

    second = tick(defs, instance, cursor=first.cursor)
    assert isinstance(second, SkipReason)
    assert "already launched" in (second.skip_message or "")


def test_assets_past_the_warn_window_are_caught_up(
    defs: Definitions, instance: DagsterInstance, monkeypatch: pytest.MonkeyPatch
) -> None:
    materialize_all(instance)
    synced_at = freshness.now()

    monkeypatch.setattr(freshness, "now", lambda: synced_at + 1.5 * HOUR)
    assert isinstance(tick(defs, instance), SkipReason)

    monkeypatch.setattr(freshness, "now", lambda: synced_at + 2.5 * HOUR)
    result = tick(defs, instance)
    assert isinstance(result, SensorResult)
    [request] = result.run_requests or []
    assert set(request.asset_selection or []) == NINE


@pytest.mark.parametrize(
    "status",
    [DagsterRunStatus.NOT_STARTED, DagsterRunStatus.STARTED, DagsterRunStatus.CANCELING],
)
def test_no_catch_up_while_a_sync_is_queued_or_running(
    defs: Definitions, instance: DagsterInstance, status: DagsterRunStatus
) -> None:
    create_run_for_test(instance, job_name=SYNC_JOB_NAME, status=status)
    assert DagsterRunStatus.QUEUED in freshness.ACTIVE_STATUSES

    result = tick(defs, instance)

    assert isinstance(result, SkipReason)
    assert "queued or running" in (result.skip_message or "")


def test_a_finished_sync_does_not_block_the_catch_up(
    defs: Definitions, instance: DagsterInstance
) -> None:
    create_run_for_test(instance, job_name=SYNC_JOB_NAME, status=DagsterRunStatus.FAILURE)

    assert isinstance(tick(defs, instance), SensorResult)
