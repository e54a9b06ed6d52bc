"""The sync schedule, freshness policies and Declarative Automation's catch-up syncs."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from dagster import (
    AssetKey,
    AutomationConditionSensorDefinition,
    DagsterInstance,
    DagsterRun,
    DagsterRunStatus,
    DefaultScheduleStatus,
    DefaultSensorStatus,
    Definitions,
    EvaluateAutomationConditionsResult,
    build_schedule_context,
    evaluate_automation_conditions,
)

from crm_assets.definitions import build_definitions
from tests.conftest import history_start, partitions_for_tests, today
from tests.runs import NINE, materialize_all

HOUR = 3600.0
CASES = AssetKey(["crm", "cases"])


@pytest.fixture
def defs(monkeypatch: pytest.MonkeyPatch) -> Definitions:
    monkeypatch.setenv("CRM_BASE_URL", "https://crm.test")  # runs recorded for the job
    return build_definitions({"CRM_HISTORY_START": history_start()})


def days() -> list[str]:
    """Every partition key, the first through today's."""
    return list(partitions_for_tests().get_partition_keys())


def history() -> list[str]:
    """Every partition key but today's."""
    return days()[:-1]


@pytest.fixture
def instance() -> Iterator[DagsterInstance]:
    with DagsterInstance.ephemeral() as ephemeral:
        yield ephemeral


def requested(result: EvaluateAutomationConditionsResult) -> set[AssetKey]:
    return {key for key in NINE if result.get_num_requested(key)}


def start_run(defs: Definitions, instance: DagsterInstance, keys: set[AssetKey]) -> DagsterRun:
    """A run of today's partition of ``keys`` that has started, as the schedule launches one."""
    job = defs.resolve_implicit_global_asset_job_def()
    return instance.create_run_for_job(
        job_def=job,
        status=DagsterRunStatus.STARTED,
        asset_selection=keys,
        tags={"dagster/partition": today()},
    )


def test_the_schedule_requests_todays_partition_of_the_nine(defs: Definitions) -> None:
    schedule = defs.resolve_schedule_def("crm_sync_schedule")
    tick = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)

    context = build_schedule_context(
        scheduled_execution_time=tick, repository_def=defs.get_repository_def()
    )
    [request] = schedule.evaluate_tick(context).run_requests or []

    assert schedule.cron_schedule == "0 * * * *"
    assert schedule.default_status == DefaultScheduleStatus.RUNNING
    assert schedule.job_name == "crm_sync_job"
    assert request.tags["crm/trigger"] == "schedule"
    assert request.partition_key == today()
    job = defs.resolve_job_def("crm_sync_job")
    assert set(job.asset_layer.executable_asset_keys) == NINE


def test_the_schedule_cron_is_overridable() -> None:
    defs = build_definitions({"CRM_SYNC_CRON": "*/15 * * * *"})

    assert defs.resolve_schedule_def("crm_sync_schedule").cron_schedule == "*/15 * * * *"


def test_every_asset_has_the_freshness_policy(defs: Definitions) -> None:
    graph = defs.resolve_asset_graph()

    for key in NINE:
        policy = graph.get(key).freshness_policy
        assert policy is not None
        assert policy.warn_window.to_timedelta().total_seconds() == 2 * HOUR
        assert policy.fail_window.to_timedelta().total_seconds() == 3 * HOUR


def test_the_freshness_windows_can_be_set_apart_from_the_cron() -> None:
    defs = build_definitions(
        {"CRM_FRESHNESS_WARN_MINUTES": "90", "CRM_FRESHNESS_FAIL_MINUTES": "240"}
    )
    policy = defs.resolve_asset_graph().get(AssetKey(["crm", "cases"])).freshness_policy

    assert policy.warn_window.to_timedelta().total_seconds() == 1.5 * HOUR
    assert policy.fail_window.to_timedelta().total_seconds() == 4 * HOUR


def test_every_asset_is_automated_and_the_sensor_emits_backfills(defs: Definitions) -> None:
    graph = defs.resolve_asset_graph()
    sensor = defs.resolve_sensor_def("crm_automation_sensor")

    assert isinstance(sensor, AutomationConditionSensorDefinition)
    assert sensor.default_status == DefaultSensorStatus.RUNNING
    assert sensor.run_tags == {"crm/trigger": "automation"}
    assert sensor.emit_backfills
    for key in NINE:
        condition = graph.get(key).automation_condition
        assert condition is not None and condition.get_label() == "keep current"


def test_missing_partitions_are_requested_once(
    defs: Definitions, instance: DagsterInstance
) -> None:
    first = evaluate_automation_conditions(defs=defs, instance=instance)
    second = evaluate_automation_conditions(defs=defs, instance=instance, cursor=first.cursor)

    assert requested(first) == NINE
    assert first.get_requested_partitions(CASES) == set(days())
    assert requested(second) == set()


def test_synced_assets_need_nothing(defs: Definitions, instance: DagsterInstance) -> None:
    materialize_all(instance, partitions=days())

    assert evaluate_automation_conditions(defs=defs, instance=instance).total_requested == 0


def test_missing_history_is_backfilled_and_today_is_left_to_its_sync(
    defs: Definitions, instance: DagsterInstance
) -> None:
    gaps = history()[1:3]
    materialize_all(instance, partitions=[day for day in days() if day not in gaps])

    result = evaluate_automation_conditions(defs=defs, instance=instance)

    assert {key: result.get_requested_partitions(key) for key in NINE} == {
        key: set(gaps) for key in NINE
    }


def test_the_days_before_today_are_reconciled_once_per_tick(
    defs: Definitions, instance: DagsterInstance
) -> None:
    materialize_all(instance, partitions=days())
    midnight = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    before = evaluate_automation_conditions(defs, instance, evaluation_time=midnight)

    at_tick = evaluate_automation_conditions(
        defs, instance, evaluation_time=midnight.replace(hour=2, minute=21), cursor=before.cursor
    )
    after = evaluate_automation_conditions(
        defs, instance, evaluation_time=midnight.replace(hour=2, minute=22), cursor=at_tick.cursor
    )

    assert before.total_requested == 0
    assert at_tick.get_requested_partitions(CASES) == set(history()[-3:])
    assert after.total_requested == 0


def test_no_catch_up_while_a_run_of_today_is_in_progress_and_one_after_it_failed(
    defs: Definitions, instance: DagsterInstance
) -> None:
    cases = CASES
    materialize_all(instance, NINE - {cases}, partitions=days())
    materialize_all(instance, {cases}, partitions=history())
    run = start_run(defs, instance, {cases})

    during = evaluate_automation_conditions(defs=defs, instance=instance)
    instance.report_run_failed(run)
    after = evaluate_automation_conditions(defs=defs, instance=instance, cursor=during.cursor)
    again = evaluate_automation_conditions(defs=defs, instance=instance, cursor=after.cursor)

    assert requested(during) == set()
    assert requested(after) == {cases}
    assert after.get_requested_partitions(cases) == {today()}
    assert requested(again) == set()
