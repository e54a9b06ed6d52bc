"""Pagination, data selector and auth of the source, against ``responses`` mocks."""

from __future__ import annotations

import pytest
import responses
from requests import Request, Response
from responses import matchers

from crm_assets.sources.crm.paginator import PAGES_ATTRIBUTE, PageLimitPaginator
from crm_assets.sources.crm.settings import INITIAL_CURSOR
from crm_assets.sources.crm.window import Window
from tests.sources.crm.conftest import ACCOUNTS, ACCOUNTS_URL, TOKEN, fetch, page_body

pytestmark = pytest.mark.usefixtures("waits")


@responses.activate
def test_sends_page_and_limit_and_stops_on_a_short_page() -> None:
    for page, count in ((1, 100), (2, 100), (3, 37)):
        responses.get(
            ACCOUNTS_URL,
            body=page_body((page - 1) * 100, count),
            match=[
                matchers.query_param_matcher(
                    {"page": str(page), "limit": "100", "modified_since": INITIAL_CURSOR}
                )
            ],
        )

    records = fetch(resources=[ACCOUNTS])

    assert len(records) == 237
    assert [call.request.params["page"] for call in responses.calls] == ["1", "2", "3"]


@responses.activate
def test_a_full_last_page_is_followed_by_one_empty_page_only() -> None:
    responses.get(ACCOUNTS_URL, body=page_body(0, 100))
    responses.get(ACCOUNTS_URL, body=page_body(100, 0))

    assert len(fetch(resources=[ACCOUNTS])) == 100
    assert len(responses.calls) == 2


@responses.activate
def test_the_page_size_is_the_limit_sent() -> None:
    responses.get(ACCOUNTS_URL, body=page_body(0, 20))
    responses.get(ACCOUNTS_URL, body=page_body(20, 3))

    assert len(fetch(resources=[ACCOUNTS], page_size=20)) == 23
    assert [call.request.params["limit"] for call in responses.calls] == ["20", "20"]


@responses.activate
def test_records_come_from_list_star_record_with_the_bearer_header() -> None:
    responses.get(
        ACCOUNTS_URL,
        body=page_body(0, 2),
        match=[matchers.header_matcher({"Authorization": f"Bearer {TOKEN}"})],
    )

    records = fetch(resources=[ACCOUNTS])

    assert [record["id"] for record in records] == ["a0", "a1"]
    assert "record" not in records[0]


@responses.activate
def test_documents_reads_the_seeds_path() -> None:
    responses.get("https://crm.test/opportunity_lines", body=page_body(0, 1))

    assert [record["id"] for record in fetch("documents")] == ["a0"]


@responses.activate
def test_a_window_filters_from_its_start_and_stops_paging_past_its_end() -> None:
    window = Window(start="2024-01-01T00:00:10.000000Z", end="2024-01-01T00:00:50.000000Z")
    responses.get(ACCOUNTS_URL, body=page_body(0, 100))
    responses.get(ACCOUNTS_URL, body=page_body(100, 100))

    records = fetch(resources=[ACCOUNTS], window=window)

    assert {f"{record['modifiedtime']:%Y-%m-%dT%H:%M:%S}" for record in records} == {
        f"2024-01-01T00:00:{second:02d}" for second in range(10, 50)
    }
    assert len(responses.calls) == 1
    assert responses.calls[0].request.params["modified_since"] == window.start


def test_a_joined_response_advances_the_page_past_all_its_pages() -> None:
    paginator = PageLimitPaginator(limit=100)
    request = Request("GET", ACCOUNTS_URL)
    paginator.init_request(request)
    joined = Response()
    setattr(joined, PAGES_ATTRIBUTE, 3)

    paginator.update_state(joined, [{}] * 300)
    paginator.update_request(request)
    assert request.params["page"] == 4 and paginator.has_next_page

    paginator.update_state(joined, [{}] * 250)
    assert not paginator.has_next_page
