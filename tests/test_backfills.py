"""The backfill sensor, one tick per scenario."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from dagster import (
    AssetKey,
    DagsterInstance,
    DagsterRunStatus,
    DefaultSensorStatus,
    RunRequest,
    SensorResult,
    build_sensor_context,
)

from crm_assets.backfills import evaluate
from crm_assets.constants import BACKFILL_KEY_TAG, BACKFILL_SENSOR_NAME, SYNC_JOB_NAME
from crm_assets.definitions import build_definitions
from crm_assets.settings import LocationSettings
from tests.runs import NINE, add_run, materialize_all

NOW = datetime(2024, 4, 15, 12, 0, tzinfo=UTC)
SYNC_START = {"CRM_SYNC_START": "2024-04-15T12:00:00Z"}
SETTINGS = LocationSettings.from_env(SYNC_START)
"""The first sync started at NOW: history from 2024-01-01 (CRM_HISTORY_START) up to it."""


@pytest.fixture
def instance() -> Iterator[DagsterInstance]:
    with DagsterInstance.ephemeral() as ephemeral:
        yield ephemeral


def only_request(result: SensorResult) -> RunRequest:
    [request] = result.run_requests or []
    assert isinstance(request, RunRequest)
    return request


def window_of(request: RunRequest) -> tuple[str, str]:
    config = request.run_config["ops"]["crm_dlt_assets"]["config"]
    return config["window_start"], config["window_end"]


def finish(instance: DagsterInstance, request: RunRequest, status: DagsterRunStatus) -> None:
    tags = {BACKFILL_KEY_TAG: request.tags[BACKFILL_KEY_TAG]}
    add_run(instance, SYNC_JOB_NAME, status, tags)
    if status == DagsterRunStatus.SUCCESS:
        materialize_all(instance)


def tick(instance: DagsterInstance, cursor: str | None, now: datetime = NOW) -> SensorResult:
    return evaluate(instance, cursor, SETTINGS, now, NINE)


def test_the_first_tick_requests_the_first_history_window(instance: DagsterInstance) -> None:
    defs = build_definitions(SYNC_START)
    sensor = defs.resolve_sensor_def(BACKFILL_SENSOR_NAME)

    result = sensor(build_sensor_context(instance=instance, definitions=defs))

    assert sensor.default_status == DefaultSensorStatus.RUNNING
    request = only_request(result)
    assert window_of(request) == ("2024-01-01T00:00:00.000000Z", "2024-01-31T00:00:00.000000Z")
    assert request.run_key == "history:2024-01-01T00:00:00.000000Z/2024-01-31T00:00:00.000000Z#1"
    assert request.tags["crm/trigger"] == "history"
    assert request.tags["crm/window_start"] == "2024-01-01T00:00:00.000000Z"
    assert json.loads(result.cursor or "")["pending"]["kind"] == "history"


def test_a_window_in_progress_requests_nothing_new(instance: DagsterInstance) -> None:
    first = tick(instance, None)
    finish(instance, only_request(first), DagsterRunStatus.STARTED)

    second = tick(instance, first.cursor)

    assert not second.run_requests
    assert "is STARTED" in str(second.skip_reason)
    assert second.cursor == first.cursor


def test_a_finished_window_is_followed_by_the_next(instance: DagsterInstance) -> None:
    first = tick(instance, None)
    finish(instance, only_request(first), DagsterRunStatus.SUCCESS)

    second = tick(instance, first.cursor)

    assert window_of(only_request(second)) == (
        "2024-01-31T00:00:00.000000Z",
        "2024-03-01T00:00:00.000000Z",
    )


@pytest.mark.parametrize("status", [DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED])
def test_a_failed_window_is_requested_again(
    instance: DagsterInstance, status: DagsterRunStatus
) -> None:
    first = tick(instance, None)
    finish(instance, only_request(first), status)

    retry = only_request(tick(instance, first.cursor))

    assert window_of(retry) == window_of(only_request(first))
    assert retry.run_key and retry.run_key.endswith("#2")


def test_a_restart_resumes_from_the_saved_cursor(instance: DagsterInstance) -> None:
    saved = json.dumps(
        {
            "history_end": "2024-04-15T12:00:00.000000Z",
            "next_start": "2024-03-31T00:00:00.000000Z",
            "pending": None,
            "reconciled_on": None,
        }
    )

    request = only_request(tick(instance, saved, NOW + timedelta(days=9)))

    assert window_of(request) == ("2024-03-31T00:00:00.000000Z", "2024-04-15T12:00:00.000000Z")


def test_complete_history_leaves_only_a_daily_reconciliation(instance: DagsterInstance) -> None:
    cursor: str | None = None
    windows = []
    for _ in range(10):
        result = tick(instance, cursor)
        if not result.run_requests:
            break
        request = only_request(result)
        windows.append((request.tags["crm/trigger"], window_of(request)))
        finish(instance, request, DagsterRunStatus.SUCCESS)
        cursor = result.cursor

    assert [kind for kind, _ in windows] == ["history"] * 4 + ["reconcile"]
    assert windows[3][1][1] == "2024-04-15T12:00:00.000000Z"
    assert windows[4][1] == ("2024-04-12T12:00:00.000000Z", "2024-04-15T12:00:00.000000Z")
    assert "or ran today" in str(tick(instance, cursor).skip_reason)

    tomorrow = only_request(tick(instance, cursor, NOW + timedelta(days=1)))
    assert tomorrow.tags["crm/trigger"] == "reconcile"


@pytest.mark.parametrize(
    ("job_name", "selection"),
    [(SYNC_JOB_NAME, None), ("__ASSET_JOB", NINE), ("__ASSET_JOB", {AssetKey(["crm", "cases"])})],
)
def test_nothing_is_requested_while_any_run_of_the_crm_assets_is_active(
    instance: DagsterInstance, job_name: str, selection: frozenset[AssetKey] | None
) -> None:
    add_run(instance, job_name, DagsterRunStatus.STARTING, asset_selection=selection)

    result = tick(instance, None)

    assert not result.run_requests
    assert "queued or running" in str(result.skip_reason)


def test_a_run_of_other_assets_does_not_hold_the_backfill(instance: DagsterInstance) -> None:
    add_run(instance, "__ASSET_JOB", DagsterRunStatus.STARTED, asset_selection={AssetKey("x")})

    assert tick(instance, None).run_requests


def test_without_a_sync_start_there_is_no_history_and_reconciliation_waits_for_a_sync(
    instance: DagsterInstance,
) -> None:
    settings = LocationSettings.from_env({})

    before = evaluate(instance, None, settings, NOW, NINE)
    assert not before.run_requests
    assert "waits for the first sync" in str(before.skip_reason)
    materialize_all(instance)

    request = only_request(evaluate(instance, before.cursor, settings, NOW, NINE))
    assert request.tags["crm/trigger"] == "reconcile"


def test_history_ends_at_the_first_incremental_cursor_when_set(instance: DagsterInstance) -> None:
    settings = LocationSettings.from_env(
        {"CRM_SYNC_START": "2024-02-10T00:00:00Z", "CRM_BACKFILL_WINDOW_DAYS": "7"}
    )

    request = only_request(evaluate(instance, None, settings, NOW, NINE))

    assert window_of(request) == ("2024-01-01T00:00:00.000000Z", "2024-01-08T00:00:00.000000Z")
    assert json.loads(evaluate(instance, None, settings, NOW, NINE).cursor or "")[
        "history_end"
    ] == ("2024-02-10T00:00:00.000000Z")
