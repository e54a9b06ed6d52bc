"""Load-time settings: defaults, overrides, and errors naming the variable."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from dagster import BackfillPolicy, build_schedule_context

from crm_assets.definitions import build_definitions
from crm_assets.settings import InvalidSettingError, LocationSettings, longest_interval


def test_defaults_are_duckdb_and_hourly() -> None:
    settings = LocationSettings.from_env({})

    assert (settings.destination, settings.sync_cron) == ("duckdb", "0 * * * *")
    policy = settings.freshness_policy
    assert policy.warn_window.to_timedelta() == timedelta(hours=2)
    assert policy.fail_window.to_timedelta() == timedelta(hours=3)


def test_freshness_windows_follow_an_overridden_cron() -> None:
    settings = LocationSettings.from_env({"CRM_SYNC_CRON": "30 6 * * 1-5"})

    assert longest_interval(settings.sync_cron) == timedelta(days=3)
    assert settings.freshness_policy.warn_window.to_timedelta() == timedelta(days=6)


@pytest.mark.parametrize(
    ("environ", "variable", "problem"),
    [
        ({"CRM_SYNC_CRON": "every hour"}, "CRM_SYNC_CRON", "not a cron expression"),
        ({"CRM_DESTINATION": "dbase3"}, "CRM_DESTINATION", "not a dlt destination"),
        ({"CRM_BASE_URL": "crm.example.com"}, "CRM_BASE_URL", "must be an http"),
        ({"CRM_BASE_URL": "http://crm.example.com"}, "CRM_BASE_URL", "plain HTTP"),
        ({"CRM_DUCKDB_PATH": "w/crm.duckdb"}, "CRM_DUCKDB_PATH", "stem of CRM_DATASET"),
        ({"CRM_DUCKDB_MEMORY_LIMIT": "lots"}, "CRM_DUCKDB_MEMORY_LIMIT", "not a size"),
        ({"CRM_DUCKDB_MEMORY_LIMIT": "0MB"}, "CRM_DUCKDB_MEMORY_LIMIT", "no memory at all"),
        ({"CRM_BACKFILL_WINDOW_DAYS": "-3"}, "CRM_BACKFILL_WINDOW_DAYS", "at least 1 day"),
        ({"CRM_BACKFILL_WINDOW_DAYS": "a month"}, "CRM_BACKFILL_WINDOW_DAYS", "whole number"),
        ({"CRM_RECONCILE_DAYS": "0"}, "CRM_RECONCILE_DAYS", "at least 1 day"),
        ({"CRM_HISTORY_START": "last year"}, "CRM_HISTORY_START", "ISO-8601"),
        ({"CRM_SYNC_START": "2024-13-01"}, "CRM_SYNC_START", "ISO-8601"),
        ({"CRM_DELETES": "archive"}, "CRM_DELETES", "not one of soft, hard, off"),
        ({"CRM_DUCKDB_LOCK_WAIT_SECONDS": "ten"}, "CRM_DUCKDB_LOCK_WAIT_SECONDS", "whole number"),
        ({"CRM_FRESHNESS_WARN_MINUTES": "0"}, "CRM_FRESHNESS_WARN_MINUTES", "at least 1 minute"),
        (
            {"CRM_FRESHNESS_WARN_MINUTES": "200", "CRM_FRESHNESS_FAIL_MINUTES": "100"},
            "CRM_FRESHNESS_WARN_MINUTES",
            "must be shorter than the fail window",
        ),
        ({"CRM_SWEEP_CRON": "weekly"}, "CRM_SWEEP_CRON", "not a cron expression"),
        ({"CRM_SWEEP_MAX_SHARE": "half"}, "CRM_SWEEP_MAX_SHARE", "a number such as 0.5"),
        ({"CRM_SWEEP_MAX_SHARE": "0"}, "CRM_SWEEP_MAX_SHARE", "above 0 and at most 1"),
        (
            {"CRM_DUCKDB_PATH": "w/sales.duckdb", "CRM_DATASET": "sales"},
            "CRM_DUCKDB_PATH",
            "stem of CRM_DATASET 'sales'",
        ),
    ],
)
def test_a_bad_setting_fails_the_load_naming_it(
    environ: dict[str, str], variable: str, problem: str
) -> None:
    with pytest.raises(InvalidSettingError, match=problem) as raised:
        build_definitions(environ)

    assert raised.value.variable == variable
    assert str(raised.value).startswith(f"{variable}: ")


def test_backfill_settings_are_normalised() -> None:
    settings = LocationSettings.from_env(
        {
            "CRM_HISTORY_START": "2023-05-01",
            "CRM_SYNC_START": "2024-02-01T08:00:00+02:00",
            "CRM_BACKFILL_WINDOW_DAYS": "10",
            "CRM_RECONCILE_DAYS": "2",
            "CRM_RECONCILE_CRON": "0 5 * * *",
        }
    )

    assert settings.history_start == "2023-05-01T00:00:00.000000Z"
    assert settings.partitions.get_first_partition_key() == "2023-05-01"
    assert settings.sync_start == "2024-02-01T06:00:00.000000Z"
    assert settings.backfill_policy == BackfillPolicy.multi_run(max_partitions_per_run=10)
    assert (settings.reconcile_days, settings.reconcile_cron) == (2, "0 5 * * *")
    assert LocationSettings.from_env({}).backfill_policy == BackfillPolicy.single_run()


@pytest.mark.parametrize(
    ("variable", "value", "problem"),
    [
        ("CRM_BACKFILL_WINDOW_DAYS", "0", "at least 1 day"),
        ("CRM_RECONCILE_DAYS", "three", "whole number of days"),
        ("CRM_RECONCILE_CRON", "daily", "not a cron expression"),
        ("CRM_HISTORY_START", "2024-13-01", "ISO-8601"),
    ],
)
def test_a_bad_backfill_setting_is_refused(variable: str, value: str, problem: str) -> None:
    with pytest.raises(InvalidSettingError, match=problem) as raised:
        LocationSettings.from_env({variable: value})

    assert raised.value.variable == variable


def test_the_sweep_schedule_is_weekly_and_follows_its_settings() -> None:
    default = build_definitions({}).resolve_schedule_def("crm_sweep_schedule")
    custom = build_definitions({"CRM_SWEEP_CRON": "0 2 1 * *", "CRM_DELETES": "hard"})

    assert default.cron_schedule == "30 3 * * 0"
    assert default.execution_timezone == "UTC"
    assert default.job_name == "crm_sync_job"
    tick = datetime(2026, 3, 1, 3, 30, tzinfo=UTC)
    defs = build_definitions({})
    context = build_schedule_context(
        scheduled_execution_time=tick, repository_def=defs.get_repository_def()
    )
    [request] = default.evaluate_tick(context).run_requests or []
    assert request.run_config == {"ops": {"crm_dlt_assets": {"config": {"sweep_deletes": True}}}}
    assert request.tags["crm/trigger"] == "sweep"
    assert request.partition_key == "2026-03-01"
    assert custom.resolve_schedule_def("crm_sweep_schedule").cron_schedule == "0 2 1 * *"
    off = build_definitions({"CRM_DELETES": "off"})
    assert [schedule.name for schedule in off.schedules or []] == ["crm_sync_schedule"]
