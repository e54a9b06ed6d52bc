"""Retries with backoff, Retry-After, and errors that fail at once with a clear message."""

from __future__ import annotations

import pytest
import responses
from requests.exceptions import ConnectionError, ReadTimeout

from crm_assets.sources.crm import (
    CrmMalformedPageError,
    CrmRecordError,
    CrmStatusError,
    CrmUnreachableError,
    crm_source,
)
from crm_assets.sources.crm.source import SyncOptions
from tests.postgres import free_port as closed_port
from tests.sources.crm.conftest import (
    ACCOUNTS_URL,
    TOKEN,
    crm_error_behind,
    failure,
    fetch,
    page_body,
)

RETRIED = (429, 500, 502, 503, 504)


@pytest.mark.parametrize("status", RETRIED)
@responses.activate
def test_retried_statuses_get_three_retries_with_backoff(status: int, waits: list[float]) -> None:
    responses.get(ACCOUNTS_URL, status=status, json={"error": "busy"})

    error = failure()

    assert len(responses.calls) == 4
    assert waits == [2, 4, 8]
    assert isinstance(error, CrmStatusError)
    assert error.resource == "accounts"
    assert error.page == "1"
    assert f"HTTP {status}: busy" in str(error)


@pytest.mark.parametrize("status", RETRIED)
@responses.activate
def test_a_transient_status_then_success_loads_the_page(status: int, waits: list[float]) -> None:
    responses.get(ACCOUNTS_URL, status=status)
    responses.get(ACCOUNTS_URL, status=status)
    responses.get(ACCOUNTS_URL, body=page_body(0, 3))

    assert len(fetch()) == 3
    assert waits == [2, 4]


@responses.activate
def test_retry_after_is_honoured(waits: list[float]) -> None:
    responses.get(ACCOUNTS_URL, status=429, headers={"Retry-After": "7"})
    responses.get(ACCOUNTS_URL, body=page_body(0, 1))

    assert len(fetch()) == 1
    assert waits == [7]


@pytest.mark.parametrize("fault", [ConnectionError("reset by peer"), ReadTimeout("read timed out")])
@responses.activate
def test_transport_faults_are_retried(fault: Exception, waits: list[float]) -> None:
    responses.get(ACCOUNTS_URL, body=fault)
    responses.get(ACCOUNTS_URL, body=page_body(0, 2))

    assert len(fetch()) == 2
    assert waits == [2]


@pytest.mark.parametrize(
    ("status", "hint"),
    [
        (401, "check CRM_ACCESS_TOKEN"),
        (403, "permissions"),
        (404, "check CRM_BASE_URL"),
        (400, "rejected the query"),
    ],
)
@responses.activate
def test_client_errors_fail_at_once_without_the_token(
    status: int, hint: str, waits: list[float]
) -> None:
    responses.get(ACCOUNTS_URL, status=status, json={"error": f"denied for Bearer {TOKEN}"})

    error = failure()

    assert len(responses.calls) == 1
    assert waits == []
    message = str(error)
    assert message.startswith(f"CRM resource 'accounts', page 1: HTTP {status}: denied")
    assert hint in message
    assert TOKEN not in message
    assert TOKEN not in repr(error.args)


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (b"<html>proxy error</html>", "not valid JSON"),
        (b'{"list": [{"record": {"id": "a0"}}', "not valid JSON"),
        (b'{"data": []}', "no 'list' array"),
        (b'{"list": [{"rec": {}}]}', "no 'record' object"),
    ],
)
@responses.activate
def test_a_malformed_page_is_retried_then_reported(
    body: bytes, problem: str, waits: list[float]
) -> None:
    responses.get(ACCOUNTS_URL, body=body)

    error = failure()

    assert isinstance(error, CrmMalformedPageError)
    assert len(responses.calls) == 4
    assert problem in str(error)
    assert "page 1" in str(error)


@responses.activate
def test_a_record_without_id_fails_at_once_naming_the_record(waits: list[float]) -> None:
    responses.get(
        ACCOUNTS_URL, body=b'{"list": [{"record": {"id": "a"}}, {"record": {"id": null}}]}'
    )

    error = failure()

    assert isinstance(error, CrmRecordError)
    assert len(responses.calls) == 1
    assert "record 1 has no 'id'" in str(error)


@pytest.mark.parametrize(
    ("base_url", "problem"),
    [
        ("https://crm.invalid", "cannot reach crm.invalid (name does not resolve)"),
        ("http://127.0.0.1:{port}", "cannot reach 127.0.0.1:{port} (connection refused)"),
    ],
)
def test_a_crm_out_of_reach_fails_after_the_retries_naming_resource_host_and_setting(
    base_url: str, problem: str, waits: list[float]
) -> None:
    port = str(closed_port())
    source = crm_source(
        base_url=base_url.format(port=port),
        access_token=TOKEN,
        options=SyncOptions(concurrency=1),
    )

    with pytest.raises(Exception) as raised:
        list(source.resources["cases"])

    error = crm_error_behind(raised.value)
    assert isinstance(error, CrmUnreachableError)
    assert str(error) == (
        f"CRM resource 'cases', page 1: {problem.format(port=port)} "
        "(check CRM_BASE_URL, and that this machine can reach the CRM)"
    )
    assert waits == [2, 4, 8]
