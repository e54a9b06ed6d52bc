"""The tests' PostgreSQL server: the one ``CRM_TEST_POSTGRES_URL`` names, else a throwaway one."""

from __future__ import annotations

import os

import psycopg2
import pytest

from tests.conftest import strip_crm_settings
from tests.postgres import URL_VARIABLE, postgres_server

ELSEWHERE = "postgresql://me:pw@127.0.0.1:5999/postgres"


def test_the_setting_names_the_server_and_survives_the_clean_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(URL_VARIABLE, ELSEWHERE)
    monkeypatch.setenv("CRM_BASE_URL", "https://crm.example.com")

    strip_crm_settings(monkeypatch)

    assert "CRM_BASE_URL" not in os.environ
    with postgres_server() as url:
        assert url == ELSEWHERE


def test_the_session_server_is_a_real_postgres(postgres_admin_url: str) -> None:
    with psycopg2.connect(postgres_admin_url) as connection, connection.cursor() as cursor:
        cursor.execute("select current_setting('server_version_num')::int")
        [(version,)] = cursor.fetchall()

    assert version >= 150000
