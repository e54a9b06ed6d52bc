"""Load-time settings: defaults, overrides, and errors naming the variable."""

from __future__ import annotations

from datetime import timedelta

import pytest

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
