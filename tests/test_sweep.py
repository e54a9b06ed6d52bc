"""Deletion sweeps against the sandbox: marked or removed exactly, never a live record."""

from __future__ import annotations

import threading
from collections.abc import Callable
from contextlib import closing
from pathlib import Path
from typing import Any

import duckdb
import psycopg2
import pytest
from dagster import (
    AssetCheckEvaluation,
    AssetKey,
    AssetSelection,
    DagsterInstance,
    materialize,
)

from crm_assets.checks import build_crm_checks
from crm_assets.deletions import DeletionSweep
from crm_assets.dlt_resource import CrmDltResource
from crm_assets.resources import CrmApiResource
from crm_assets.sources.crm import RESOURCE_NAMES, RESOURCES
from crm_assets.sources.crm.stats import SyncStats
from crm_sandbox.data import PATHS
from crm_sandbox.server import DEFAULT_TOKEN, CrmSandbox
from tests.conftest import (
    Warehouse,
    crm_assets,
    everything,
    load_all,
    materialized,
    on_every_destination,
    sync,
)
from tests.processes import kill_sync_process_when, start_sync_process
from tests.waiting import wait_for, wait_until

ACCOUNTS = AssetSelection.assets(AssetKey(["crm", "accounts"]))
DELETED_PER_PATH = 7


def delete_everywhere(crm: CrmSandbox) -> dict[str, set[str]]:
    """Delete records on every path; the deleted ids per table."""
    by_path = {path: set(crm.delete(path, DELETED_PER_PATH)) for path in PATHS}
    return {resource.name: by_path[resource.path] for resource in RESOURCES}


def assert_live_rows_equal_the_crm(crm: CrmSandbox, warehouse: Warehouse) -> None:
    for resource in RESOURCES:
        assert warehouse.live_ids(resource.name) == set(crm.truth(resource.path)), resource.name


def checks(result: Any) -> dict[tuple[str, str], AssetCheckEvaluation]:
    return {
        (evaluation.asset_key.path[-1], evaluation.check_name): evaluation
        for evaluation in result.get_asset_check_evaluations()
    }


@on_every_destination
def test_a_soft_sweep_marks_exactly_the_deleted_records(
    own_sandbox: CrmSandbox, warehouse: Warehouse
) -> None:
    crm = own_sandbox
    with DagsterInstance.ephemeral() as instance:
        load_all(crm, warehouse, instance=instance)
        deleted = delete_everywhere(crm)
        crm.modify("/cases", 3)

        result = sync(crm, warehouse, sweep=True, instance=instance)

    assert_live_rows_equal_the_crm(crm, warehouse)
    found = materialized(result)
    for name, ids in deleted.items():
        assert warehouse.deleted_ids(name) == ids, name
        assert warehouse.ids(name) >= ids, name
        assert found[name]["rows_marked_deleted"] == DELETED_PER_PATH
        assert found[name]["sweep_confirmed"] == DELETED_PER_PATH
        assert found[name]["rows_live"] == 120 - DELETED_PER_PATH
        assert found[name]["dagster/row_count"] == 120
    live_cases = {
        key: value
        for key, value in warehouse.cursors("cases").items()
        if key not in deleted["cases"]
    }
    assert live_cases == crm.truth("/cases")
    assert all(evaluation.passed for evaluation in checks(result).values())


@on_every_destination
def test_a_hard_sweep_removes_the_deleted_records_and_their_child_rows(
    own_sandbox: CrmSandbox, warehouse: Warehouse
) -> None:
    crm = own_sandbox
    with DagsterInstance.ephemeral() as instance:
        load_all(crm, warehouse, instance=instance)
        tagged = {
            key for key, record in crm.data.store("/accounts").records.items() if record["Tags"]
        }
        deleted = delete_everywhere(crm)
        assert deleted["accounts"] & tagged, "pick a seed that deletes an account with tags"

        result = sync(crm, warehouse, sweep=True, instance=instance, storage={"deletes": "hard"})

    for resource in RESOURCES:
        assert warehouse.ids(resource.name) == set(crm.truth(resource.path)), resource.name
    parents = warehouse.query(
        "select distinct p.id from crm.accounts__tags c "
        "join crm.accounts p on c._dlt_root_id = p._dlt_id"
    )
    orphans = warehouse.query(
        "select count(*) from crm.accounts__tags c "
        "where not exists (select 1 from crm.accounts p where p._dlt_id = c._dlt_root_id)"
    )
    assert {row[0] for row in parents} == tagged - deleted["accounts"]
    assert orphans == [(0,)]
    found = materialized(result)
    assert {found[name]["rows_marked_deleted"] for name in deleted} == {DELETED_PER_PATH}
    assert {found[name]["dagster/row_count"] for name in deleted} == {120 - DELETED_PER_PATH}
    assert all(evaluation.passed for evaluation in checks(result).values())


def test_a_restored_record_is_live_again_after_the_next_sync(
    own_sandbox: CrmSandbox, warehouse: Warehouse
) -> None:
    crm = own_sandbox
    load_all(crm, warehouse, selection=ACCOUNTS)
    deleted = crm.delete("/accounts", 4)
    sync(crm, warehouse, selection=ACCOUNTS, sweep=True)
    assert warehouse.deleted_ids("accounts") == set(deleted)

    crm.restore("/accounts", deleted[:2])
    sync(crm, warehouse, selection=ACCOUNTS)

    assert warehouse.deleted_ids("accounts") == set(deleted[2:])
    assert warehouse.live_ids("accounts") == set(crm.truth("/accounts"))


def test_an_incremental_sync_after_a_sweep_keeps_the_marks(
    own_sandbox: CrmSandbox, warehouse: Warehouse
) -> None:
    crm = own_sandbox
    load_all(crm, warehouse, selection=ACCOUNTS)
    deleted = set(crm.delete("/accounts", 5))
    sync(crm, warehouse, selection=ACCOUNTS, sweep=True)
    marked_at = warehouse.query(
        "select id, _crm_deleted_at from crm.accounts where _crm_deleted_at is not null"
    )

    crm.modify("/accounts", 6)
    crm.add("/accounts", 2)
    crm.reset_stats()
    sync(crm, warehouse, selection=ACCOUNTS)

    assert crm.stats()["requests"] == {"/accounts": 1}, "the sweep kept the incremental cursor"

    assert warehouse.deleted_ids("accounts") == deleted
    assert (
        warehouse.query(
            "select id, _crm_deleted_at from crm.accounts where _crm_deleted_at is not null"
        )
        == marked_at
    )
    assert warehouse.live_ids("accounts") == set(crm.truth("/accounts"))


def drift(crm: CrmSandbox, change: Callable[[list[str]], object]) -> dict[str, str]:
    """Before page 2 of /accounts is answered, change a record of page 1.

    Returns the record of page 1 that was changed and the record then at the head of page 2,
    which the listing skips: it moves up onto page 1, already listed.
    """
    store = crm.data.store("/accounts")
    seen: dict[str, str] = {}

    def act() -> None:
        seen["changed"] = store.order[10][1]
        seen["skipped"] = store.order[100][1]
        change([seen["changed"]])

    crm.on_request("/accounts", 2, act)
    return seen


@pytest.mark.parametrize("kind", ["delete", "modify"])
@pytest.mark.parametrize("concurrency", [1, 32])
def test_a_record_skipped_by_drift_during_the_sweep_is_not_marked(
    own_sandbox: CrmSandbox, warehouse: Warehouse, kind: str, concurrency: int
) -> None:
    crm = own_sandbox
    store = crm.data.store("/accounts")
    load_all(crm, warehouse, selection=ACCOUNTS)
    deleted_before = set(crm.delete("/accounts", 3))
    seen = drift(crm, store.delete if kind == "delete" else store.modify)

    result = sync(crm, warehouse, selection=ACCOUNTS, sweep=True, concurrency=concurrency)

    found = materialized(result)["accounts"]
    assert found["sweep_candidates"] == len(deleted_before) + 1, "the listing skipped a record"
    assert seen["skipped"] in warehouse.live_ids("accounts")
    assert warehouse.deleted_ids("accounts") == deleted_before
    assert found["rows_marked_deleted"] == len(deleted_before)

    sync(crm, warehouse, selection=ACCOUNTS, sweep=True)
    gone = deleted_before | ({seen["changed"]} if kind == "delete" else set())
    assert warehouse.deleted_ids("accounts") == gone
    assert warehouse.live_ids("accounts") == set(crm.truth("/accounts"))


def test_a_sweep_that_fails_marks_nothing_and_keeps_the_cursor(
    own_sandbox: CrmSandbox, warehouse: Warehouse
) -> None:
    crm = own_sandbox
    load_all(crm, warehouse, selection=ACCOUNTS)
    cursor = warehouse.cursor("accounts")
    crm.delete("/accounts", 4)
    crm.on_request("/accounts", 3, lambda: crm.faults.script("/accounts", ["401"]))

    failed = sync(crm, warehouse, selection=ACCOUNTS, sweep=True, raise_on_error=False)

    assert not failed.success
    assert crm.stats()["statuses"]["401"] == 1
    assert warehouse.deleted_ids("accounts") == set()
    assert warehouse.cursor("accounts") == cursor


def test_a_sweep_refuses_to_mark_most_of_a_table(
    own_sandbox: CrmSandbox, warehouse: Warehouse
) -> None:
    crm = own_sandbox
    load_all(crm, warehouse, selection=ACCOUNTS)
    deleted = set(crm.delete("/accounts", 70))

    refused = sync(crm, warehouse, selection=ACCOUNTS, sweep=True, raise_on_error=False)

    [failure] = [event for event in refused.all_events if event.is_step_failure]
    message = str(failure.step_failure_data.error)
    assert (
        "CRM_SWEEP_MAX_SHARE: the sweep would mark 70 of the 120 live rows of accounts" in message
    )
    assert warehouse.deleted_ids("accounts") == set()

    sync(crm, warehouse, selection=ACCOUNTS, sweep=True, storage={"sweep_max_share": "1"})
    assert warehouse.deleted_ids("accounts") == deleted


def test_a_sweep_with_deletes_off_is_refused(own_sandbox: CrmSandbox, warehouse: Warehouse) -> None:
    load_all(own_sandbox, warehouse, selection=ACCOUNTS)
    own_sandbox.delete("/accounts", 2)

    refused = sync(
        own_sandbox,
        warehouse,
        selection=ACCOUNTS,
        sweep=True,
        storage={"deletes": "off"},
        raise_on_error=False,
    )

    [failure] = [event for event in refused.all_events if event.is_step_failure]
    assert "CRM_DELETES is off" in str(failure.step_failure_data.error)
    assert warehouse.deleted_ids("accounts") == set()


def test_the_row_count_check_allows_exactly_the_rows_the_sweep_marked(
    own_sandbox: CrmSandbox, warehouse: Warehouse
) -> None:
    crm = own_sandbox
    checks_only = AssetSelection.checks_for_assets(AssetKey(["crm", "accounts"]))
    with DagsterInstance.ephemeral() as instance:
        load_all(crm, warehouse, selection=ACCOUNTS, instance=instance)
        crm.delete("/accounts", 6)
        swept = sync(crm, warehouse, selection=ACCOUNTS, sweep=True, instance=instance)
        assert checks(swept)[("accounts", "row_count_did_not_drop")].passed
        with duckdb.connect(str(warehouse.path)) as connection:
            connection.execute(
                "delete from crm.accounts where id in "
                "(select id from crm.accounts where _crm_deleted_at is null limit 1)"
            )

        rechecked = materialize(
            [crm_assets(), build_crm_checks(crm_assets().keys)],
            selection=checks_only,
            instance=instance,
            resources={
                "dlt": CrmDltResource(),
                "crm_api": CrmApiResource(base_url=crm.url, access_token=DEFAULT_TOKEN),
                "warehouse": warehouse.resource(),
            },
        )

    check = checks(rechecked)[("accounts", "row_count_did_not_drop")]
    assert not check.passed
    assert check.metadata["row_count"].value == 120 - 6 - 1
    assert check.metadata["previous_row_count"].value == 120
    assert check.metadata["rows_marked_deleted"].value == 6


@pytest.mark.parametrize("warehouse", ["postgres"], indirect=True)
def test_a_sweep_failing_while_it_marks_leaves_every_table_unmarked(
    own_sandbox: CrmSandbox, warehouse: Warehouse
) -> None:
    """The sixth table swept refuses its marks; the five marked before it are rolled back."""
    crm = own_sandbox
    load_all(crm, warehouse)
    delete_everywhere(crm)
    warehouse.execute(
        "alter table crm.cases add constraint refuses_marks check (_crm_deleted_at is null)"
    )

    failed = sync(crm, warehouse, sweep=True, raise_on_error=False)

    [failure] = [event for event in failed.all_events if event.is_step_failure]
    assert "refuses_marks" in str(failure.step_failure_data.error)
    assert {name: warehouse.deleted_ids(name) for name in RESOURCE_NAMES} == {
        name: set() for name in RESOURCE_NAMES
    }


def test_a_sweep_killed_while_confirming_marks_nothing_and_keeps_the_cursor(
    own_sandbox: CrmSandbox, warehouse: Warehouse, tmp_path: Path
) -> None:
    crm = own_sandbox
    load_all(crm, warehouse, selection=ACCOUNTS)
    cursor = warehouse.cursor("accounts")
    deleted = set(crm.delete("/accounts", 5))
    confirming, killed = threading.Event(), threading.Event()

    def hold() -> None:
        confirming.set()
        killed.wait(timeout=120)

    listing_requests = 2  # two pages of /accounts; the third request confirms
    crm.on_request("/accounts", listing_requests + 1, hold)
    config = tmp_path / "sweep.yaml"
    config.write_text("ops:\n  crm_dlt_assets:\n    config:\n      sweep_deletes: true\n")
    try:
        kill_sync_process_when(
            lambda: wait_for(confirming, 120, "the sweep did not confirm"),
            crm,
            warehouse,
            tmp_path / "home",
            config,
            partitions=everything(),
        )
    finally:
        killed.set()

    assert warehouse.deleted_ids("accounts") == set()
    assert warehouse.cursor("accounts") == cursor
    sync(crm, warehouse, selection=ACCOUNTS, sweep=True)
    assert warehouse.deleted_ids("accounts") == deleted


def test_a_crm_clock_behind_this_machine_marks_no_record_changed_after_the_listing(
    warehouse: Warehouse,
) -> None:
    """The CRM's clock 600 s behind: a record the listing skipped changes while the sweep
    confirms; its new modifiedtime is the CRM's present, which this machine's clock minus the
    lookback would put after the start of the sweep."""
    with CrmSandbox(records=120, seed=11, clock_offset=-600) as crm:
        store = crm.data.store("/accounts")
        load_all(crm, warehouse, selection=ACCOUNTS)
        deleted_before = set(crm.delete("/accounts", 3))
        seen = drift(crm, store.modify)
        listing_requests = 2
        crm.on_request("/accounts", listing_requests + 1, lambda: store.modify([seen["skipped"]]))

        result = sync(crm, warehouse, selection=ACCOUNTS, sweep=True, concurrency=1)

        assert seen["skipped"] in warehouse.live_ids("accounts")
        assert warehouse.deleted_ids("accounts") == deleted_before
        assert materialized(result)["accounts"]["rows_marked_deleted"] == len(deleted_before)
        assert warehouse.live_ids("accounts") == set(crm.truth("/accounts"))


def test_the_sweep_starts_from_the_crms_clock_before_its_listing_not_after(
    warehouse: Warehouse,
) -> None:
    """Pages fetched at once: the short last page is answered before page 4. A record of
    page 4 changes in between, so neither lists it, and an hour of the CRM's clock passes
    before page 4 is answered. Only a start taken before the listing began finds it."""
    with CrmSandbox(records=452, seed=4) as crm:
        load_all(crm, warehouse, selection=ACCOUNTS)
        deleted_before = set(crm.delete("/accounts", 2))  # 450: four full pages, then 50
        changed = crm.data.store("/accounts").order[350][1]
        last_page_answered = threading.Event()

        def change_then_an_hour_passes() -> None:
            wait_for(last_page_answered, 60, "the last page was not fetched before page 4")
            crm.change("/accounts", [changed])
            crm.advance_clock(3600)

        crm.after_page("/accounts", 5, last_page_answered.set)
        crm.before_page("/accounts", 4, change_then_an_hour_passes)

        result = sync(crm, warehouse, selection=ACCOUNTS, sweep=True)

        assert materialized(result)["accounts"]["sweep_candidates"] == 3, "page 4 missed it"
        assert changed in warehouse.live_ids("accounts")
        assert warehouse.deleted_ids("accounts") == deleted_before
        assert warehouse.live_ids("accounts") == set(crm.truth("/accounts"))


@pytest.mark.parametrize("warehouse", ["postgres"], indirect=True)
def test_a_load_landing_between_a_sweeps_listing_and_its_marks_marks_only_the_deleted(
    own_sandbox: CrmSandbox, warehouse: Warehouse
) -> None:
    """Another run merges every row after the sweep loaded its listing: the rows it rewrote
    were listed by the sweep, so none of them is a candidate."""
    crm = own_sandbox
    load_all(crm, warehouse, selection=ACCOUNTS)
    deleted = set(crm.delete("/accounts", 3))
    api = CrmApiResource(base_url=crm.url, access_token=DEFAULT_TOKEN)
    [accounts] = [resource for resource in api.resources() if resource.name == "accounts"]
    sweep = DeletionSweep([accounts], api.page_size, api.lookback_seconds, "soft", 1.0, 4)
    pipeline = warehouse.resource().build_pipeline()
    pipeline.sync_destination()
    source = api.build_source(listings=sweep.listings).with_resources("accounts")
    listed = pipeline.run(source)

    sync(crm, warehouse, selection=ACCOUNTS, partitions=everything())
    readers = api.page_readers(["accounts"], SyncStats())
    sweep.finish(
        pipeline, readers, listed.loads_ids[-1], {"accounts": warehouse.cursor("accounts")}
    )

    assert warehouse.deleted_ids("accounts") == deleted
    assert warehouse.live_ids("accounts") == set(crm.truth("/accounts"))


def advisory_lock_waiters(url: str) -> int:
    """Sessions of the server waiting for an advisory lock."""
    with closing(psycopg2.connect(url)) as connection, connection.cursor() as cursor:
        cursor.execute(
            "select count(*) from pg_stat_activity "
            "where wait_event_type = 'Lock' and wait_event = 'advisory'"
        )
        [(count,)] = cursor.fetchall()
        return int(count)


@pytest.mark.parametrize("warehouse", ["postgres"], indirect=True)
def test_two_sweeps_at_once_on_postgres_take_turns_and_mark_only_the_deleted(
    own_sandbox: CrmSandbox, warehouse: Warehouse, tmp_path: Path
) -> None:
    """Two sweep processes, each with its own dlt folder, CRM_SWEEP_MAX_SHARE=1: the second
    waits for the warehouse while the first confirms, then both mark exactly the deleted."""
    crm = own_sandbox
    assert warehouse.postgres_url is not None
    load_all(crm, warehouse)
    deleted = delete_everywhere(crm)
    confirming, released = threading.Event(), threading.Event()

    def hold() -> None:
        confirming.set()
        released.wait(timeout=180)

    listing_requests = 2
    crm.on_request("/accounts", listing_requests + 1, hold)
    config = tmp_path / "sweep.yaml"
    config.write_text("ops:\n  crm_dlt_assets:\n    config:\n      sweep_deletes: true\n")
    share = {"CRM_SWEEP_MAX_SHARE": "1"}
    sweep = {"partitions": everything(), "trigger": "sweep"}
    first = start_sync_process(crm, warehouse, tmp_path / "first", config, share, **sweep)
    try:
        wait_for(confirming, 180, "the first sweep did not confirm")
        second = start_sync_process(
            crm,
            warehouse,
            tmp_path / "second",
            config,
            {**share, "CRM_PIPELINES_DIR": str(tmp_path / "second-pipelines")},
            **sweep,
        )
        wait_until(
            lambda: advisory_lock_waiters(warehouse.postgres_url or "") > 0,
            180,
            "the second sweep did not wait for the warehouse",
        )
    finally:
        released.set()

    assert first.wait(timeout=300) == 0
    assert second.wait(timeout=300) == 0
    for name, ids in deleted.items():
        assert warehouse.deleted_ids(name) == ids, name
    assert_live_rows_equal_the_crm(crm, warehouse)
