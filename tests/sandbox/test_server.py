"""The sandbox follows the API contract: auth, pages, ordering, filter, faults, admin API."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson
import pytest
import requests

from crm_sandbox.data import PATHS, CrmData
from crm_sandbox.faults import FaultPlan
from crm_sandbox.server import DEFAULT_TOKEN, CrmSandbox

AUTH = {"Authorization": f"Bearer {DEFAULT_TOKEN}"}


@pytest.fixture
def crm() -> Iterator[CrmSandbox]:
    with CrmSandbox(records=230, seed=3) as sandbox:
        yield sandbox


def get(crm: CrmSandbox, path: str, **params: Any) -> requests.Response:
    return requests.get(crm.url + path, params=params, headers=AUTH, timeout=5)


def records(response: requests.Response) -> list[dict[str, Any]]:
    return [item["record"] for item in response.json()["list"]]


def test_the_same_seed_gives_the_same_data() -> None:
    assert (
        CrmData(50, seed=5).store("/cases").truth() == CrmData(50, seed=5).store("/cases").truth()
    )
    assert (
        CrmData(50, seed=5).store("/cases").truth() != CrmData(50, seed=6).store("/cases").truth()
    )


def test_pages_cover_every_record_once_in_contract_order(crm: CrmSandbox) -> None:
    pages = [records(get(crm, "/accounts", page=page, limit=100)) for page in (1, 2, 3)]

    assert [len(page) for page in pages] == [100, 100, 30]
    flat = [record for page in pages for record in page]
    keys = [(record["modifiedtime"], record["id"]) for record in flat]
    assert keys == sorted(keys)
    assert {record["id"] for record in flat} == set(crm.truth("/accounts"))


def test_modified_since_is_inclusive(crm: CrmSandbox) -> None:
    every = records(get(crm, "/contacts", page=1, limit=100))
    since = every[40]["modifiedtime"]

    filtered = records(get(crm, "/contacts", page=1, limit=100, modified_since=since))

    assert filtered[0]["id"] == every[40]["id"]
    assert all(record["modifiedtime"] >= since for record in filtered)


def test_a_modified_record_moves_to_the_end(crm: CrmSandbox) -> None:
    [changed] = crm.modify("/cases", 1)

    last_page = records(get(crm, "/cases", page=3, limit=100))

    assert last_page[-1]["id"] == changed
    assert crm.truth("/cases")[changed] == last_page[-1]["modifiedtime"]


def test_records_have_mixed_case_nullable_and_nested_fields(crm: CrmSandbox) -> None:
    accounts = crm.data.store("/accounts").records.values()

    assert any(isinstance(record["BillingAddress"], dict) for record in accounts)
    assert any(isinstance(record["Tags"], list) for record in accounts)
    assert any(record["isActive"] is None for record in accounts)
    assert all(record["id"] and record["modifiedtime"] for record in accounts)


@pytest.mark.parametrize(
    ("headers", "path", "params", "status"),
    [
        ({}, "/accounts", {}, 401),
        ({"Authorization": "Bearer wrong"}, "/accounts", {}, 401),
        (AUTH, "/nope", {}, 404),
        (AUTH, "/accounts", {"limit": 101}, 400),
        (AUTH, "/accounts", {"page": 0}, 400),
        (AUTH, "/accounts", {"modified_since": "yesterday"}, 400),
    ],
)
def test_errors_follow_the_contract(
    crm: CrmSandbox, headers: dict[str, str], path: str, params: dict[str, Any], status: int
) -> None:
    response = requests.get(crm.url + path, params=params, headers=headers, timeout=5)

    assert response.status_code == status
    assert "error" in response.json()


def test_scripted_faults_come_in_order_then_stop(crm: CrmSandbox) -> None:
    crm.faults.script("/cases", ["429", "503", "html"])

    first, second, third, fourth = (get(crm, "/cases") for _ in range(4))

    assert (first.status_code, first.headers["Retry-After"]) == (429, "1")
    assert second.status_code == 503
    assert third.status_code == 200 and third.text.startswith("<html>")
    assert fourth.status_code == 200 and len(records(fourth)) == 100
    assert crm.stats()["statuses"] == {"429": 1, "503": 1, "200": 2}


def test_a_reset_closes_the_connection(crm: CrmSandbox) -> None:
    crm.faults.script("*", ["reset"])

    with pytest.raises(requests.ConnectionError):
        get(crm, "/accounts")


def test_random_faults_follow_the_rate() -> None:
    plan = FaultPlan(rate=0.25, seed=1)

    drawn = [plan.draw("/accounts") for _ in range(400)]

    assert 60 < sum(kind is not None for kind in drawn) < 140
    assert {kind for kind in drawn if kind} <= set(plan.kinds)


def test_the_admin_api_modifies_adds_and_reports(crm: CrmSandbox) -> None:
    modified = requests.post(
        f"{crm.url}/_sandbox/modify", json={"path": "/cases", "count": 2}, timeout=5
    ).json()["ids"]
    added = requests.post(
        f"{crm.url}/_sandbox/add", json={"path": "/cases", "count": 3}, timeout=5
    ).json()["ids"]
    truth = orjson.loads(requests.get(f"{crm.url}/_sandbox/truth?path=/cases", timeout=5).content)

    assert len(modified) == 2 and len(added) == 3
    assert len(truth["/cases"]) == 233
    assert set(added) <= set(truth["/cases"])
    assert set(requests.get(f"{crm.url}/_sandbox/truth", timeout=5).json()) == set(PATHS)


def test_a_deleted_record_is_no_longer_listed_and_the_rest_move_up(crm: CrmSandbox) -> None:
    first_page = records(get(crm, "/cases", page=1, limit=100))
    first_of_page_two = records(get(crm, "/cases", page=2, limit=100))[0]
    [gone] = crm.data.store("/cases").delete([first_page[10]["id"]])

    after = [record["id"] for record in records(get(crm, "/cases", page=1, limit=100))]

    assert gone not in crm.truth("/cases") and len(crm.truth("/cases")) == 229
    expected = [record["id"] for record in first_page if record["id"] != gone]
    assert after == [*expected, first_of_page_two["id"]]


def test_the_admin_api_deletes_and_restores_with_a_new_modifiedtime(crm: CrmSandbox) -> None:
    deleted = requests.post(
        f"{crm.url}/_sandbox/delete", json={"path": "/cases", "count": 3}, timeout=5
    ).json()["ids"]
    assert not set(deleted) & set(crm.truth("/cases"))
    old = crm.data.store("/cases").deleted[deleted[0]]["modifiedtime"]

    restored = requests.post(
        f"{crm.url}/_sandbox/restore", json={"path": "/cases", "ids": deleted[:1]}, timeout=5
    ).json()["ids"]

    truth = crm.truth("/cases")
    assert restored == deleted[:1] and len(truth) == 228
    assert truth[deleted[0]] > old
    assert records(get(crm, "/cases", page=3, limit=100))[-1]["id"] == deleted[0]
