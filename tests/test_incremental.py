"""Incremental syncs against the sandbox: only changes fetched, merged by id, nothing lost."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from dagster import AssetKey, AssetSelection, ExecuteInProcessResult, materialize

from crm_assets.dlt_resource import CrmDltResource
from crm_assets.resources import CrmApiResource, CrmWarehouseResource
from crm_assets.sources.crm import RESOURCES
from crm_sandbox.data import PATHS
from crm_sandbox.server import DEFAULT_TOKEN, CrmSandbox
from tests.conftest import (
    TIME_FORMAT,
    Warehouse,
    crm_assets,
    everything,
    load_all,
    materialized,
    on_every_destination,
    run_of,
    sync,
)
from tests.processes import kill_sync_process_when
from tests.waiting import wait_for, wait_until


def assert_equal_to_truth(crm: CrmSandbox, warehouse: Warehouse) -> None:
    for resource in RESOURCES:
        assert warehouse.cursors(resource.name) == crm.truth(resource.path), resource.name


def rows_loaded(result: ExecuteInProcessResult) -> dict[str, int]:
    events = (event.materialization for event in result.get_asset_materialization_events())
    return {event.asset_key.path[-1]: event.metadata["rows_loaded"].value for event in events}


def one_page_per_path() -> dict[str, int]:
    return {path: 2 if path == "/opportunity_lines" else 1 for path in PATHS}


@on_every_destination
def test_syncs_fetch_only_changes_and_keep_the_warehouse_equal(
    own_sandbox: CrmSandbox, warehouse: Warehouse
) -> None:
    crm = own_sandbox
    first = load_all(crm, warehouse)
    assert rows_loaded(first) == {resource.name: 120 for resource in RESOURCES}

    changed = crm.modify("/accounts", 5) + crm.add("/accounts", 3)
    crm.modify("/cases", 2)
    crm.reset_stats()
    second = sync(crm, warehouse)

    assert crm.stats()["requests"] == one_page_per_path()
    loaded = rows_loaded(second)
    assert loaded["accounts"] >= len(changed) and loaded["cases"] >= 2
    assert_equal_to_truth(crm, warehouse)

    crm.reset_stats()
    third = sync(crm, warehouse)

    assert third.success
    assert crm.stats()["requests"] == one_page_per_path()
    assert set(rows_loaded(third).values()) == {0}
    assert_equal_to_truth(crm, warehouse)


@on_every_destination
def test_a_failed_run_then_a_normal_run_leaves_the_warehouse_equal(
    own_sandbox: CrmSandbox, warehouse: Warehouse
) -> None:
    crm = own_sandbox
    load_all(crm, warehouse)
    crm.modify("/contacts", 4)
    crm.add("/cases", 150)
    crm.faults.script("/cases", ["ok", "401"])

    failed = sync(crm, warehouse, raise_on_error=False)

    assert not failed.success
    recovered = sync(crm, warehouse)
    assert recovered.success
    assert_equal_to_truth(crm, warehouse)


@on_every_destination
def test_a_subset_sync_leaves_the_other_cursors_alone(
    own_sandbox: CrmSandbox, warehouse: Warehouse
) -> None:
    crm = own_sandbox
    load_all(crm, warehouse)
    crm.modify("/accounts", 3)
    crm.modify("/cases", 3)

    sync(crm, warehouse, selection=AssetSelection.assets(AssetKey(["crm", "cases"])))
    assert warehouse.cursors("cases") == crm.truth("/cases")
    assert warehouse.cursors("accounts") != crm.truth("/accounts")

    sync(crm, warehouse)
    assert_equal_to_truth(crm, warehouse)


@on_every_destination
def test_the_newest_version_wins_when_a_batch_holds_an_id_twice(
    own_sandbox: CrmSandbox, warehouse: Warehouse
) -> None:
    crm = own_sandbox
    store = crm.data.store("/activities")
    first_id = store.order[0][1]
    crm.on_request("/activities", 2, lambda: store.modify([first_id]))

    load_all(crm, warehouse, selection=AssetSelection.assets(AssetKey(["crm", "activities"])))

    assert warehouse.cursors("activities")[first_id] == crm.truth("/activities")[first_id]


@on_every_destination
def test_a_run_killed_during_extraction_then_a_normal_run_is_equal(
    warehouse: Warehouse, tmp_path: Path
) -> None:
    with CrmSandbox(records=400, seed=5, latency=0.05) as crm:
        load_all(crm, warehouse)
        crm.modify("/accounts", 30)
        crm.add("/opportunities", 250)
        crm.reset_stats()

        fetching = threading.Event()
        crm.on_request("/opportunities", 2, fetching.set)  # the second page of a changed path

        def extracting() -> None:
            wait_for(fetching, 120, "the sync process did not fetch")

        kill_sync_process_when(extracting, crm, warehouse, tmp_path / "dagster_home")

        sync(crm, warehouse)
        assert_equal_to_truth(crm, warehouse)


@on_every_destination
def test_a_run_killed_while_loading_then_a_normal_run_is_equal(
    warehouse: Warehouse, tmp_path: Path
) -> None:
    with CrmSandbox(records=6000, seed=8) as crm:
        load_all(crm, warehouse, selection=AssetSelection.assets(AssetKey(["crm", "cases"])))
        crm.modify("/accounts", 500)
        crm.add("/cases", 400)

        normalized = warehouse.pipelines_dir / "crm" / "load" / "normalized"

        def loading() -> None:
            wait_until(
                lambda: normalized.is_dir() and any(normalized.iterdir()),
                120,
                "the sync process did not start loading",
            )

        kill_sync_process_when(
            loading, crm, warehouse, tmp_path / "dagster_home", partitions=everything()
        )

        load_all(crm, warehouse)
        assert_equal_to_truth(crm, warehouse)


@on_every_destination
def test_the_same_id_twice_in_a_page_loads_one_row(
    own_sandbox: CrmSandbox, warehouse: Warehouse
) -> None:
    own_sandbox.faults.script("/campaigns", ["duplicate-id"])

    load_all(
        own_sandbox, warehouse, selection=AssetSelection.assets(AssetKey(["crm", "campaigns"]))
    )

    assert warehouse.cursors("campaigns") == own_sandbox.truth("/campaigns")


def test_running_out_of_duckdb_memory_names_the_setting_and_the_next_sync_completes(
    tmp_path: Path,
) -> None:
    warehouse = Warehouse(tmp_path)

    def run(memory_limit: str) -> ExecuteInProcessResult:
        resources = {
            "dlt": CrmDltResource(),
            "crm_api": CrmApiResource(base_url=crm.url, access_token=DEFAULT_TOKEN),
            "warehouse": CrmWarehouseResource(
                duckdb_path=str(warehouse.path),
                pipelines_dir=str(warehouse.pipelines_dir),
                duckdb_memory_limit=memory_limit,
            ),
        }
        return materialize(
            [crm_assets()], resources=resources, raise_on_error=False, **run_of(everything(), None)
        )

    with CrmSandbox(records=3000, seed=3) as crm:
        starved = run("4MB")
        [failure] = [event for event in starved.all_events if event.is_step_failure]
        message = str(failure.step_failure_data.error)
        assert "CRM_DUCKDB_MEMORY_LIMIT: DuckDB ran out of its 4MB" in message

        assert run("256MB").success
        assert_equal_to_truth(crm, warehouse)


@pytest.mark.parametrize("headers", [False, True])
def test_a_sync_under_a_rate_limit_succeeds_equal_with_few_refusals(
    warehouse: Warehouse, headers: bool
) -> None:
    with CrmSandbox(records=150, seed=6, rate_limit=6, rate_limit_headers=headers) as crm:
        result = load_all(crm, warehouse)

        statuses = crm.stats()["statuses"]
        assert result.success
        assert_equal_to_truth(crm, warehouse)
    served, refused = int(statuses["200"]), int(statuses.get("429", 0))
    assert served >= 9 * 2, "two pages of every path"
    assert refused <= 9, f"{refused} refused of {served + refused}"
    paced = {meta["paced_requests_per_second"] for meta in materialized(result).values()}
    assert len(paced) == 1 and (refused == 0 or 0 < paced.pop() < 12)


ACCOUNTS = AssetSelection.assets(AssetKey(["crm", "accounts"]))


@on_every_destination
def test_a_record_stamped_in_the_future_does_not_hold_the_cursor_there(
    own_sandbox: CrmSandbox, warehouse: Warehouse
) -> None:
    crm = own_sandbox
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).strftime(TIME_FORMAT)
    [ahead] = crm.change("/accounts", [crm.data.store("/accounts").order[5][1]], at=tomorrow)
    load_all(crm, warehouse, selection=ACCOUNTS)  # up to the end of today: not that record

    first = sync(crm, warehouse, selection=ACCOUNTS)
    changed = crm.modify("/accounts", 4)
    crm.reset_stats()
    sync(crm, warehouse, selection=ACCOUNTS)

    assert warehouse.cursors("accounts") == crm.truth("/accounts")
    assert crm.stats()["requests"] == {"/accounts": 1}
    cursor = warehouse.cursor("accounts")
    assert cursor is not None and cursor < tomorrow
    assert cursor == max(crm.truth("/accounts")[key] for key in changed)
    found = materialized(first)["accounts"]
    assert found["future_dated_records"] == 1
    assert found["cursor_after"] < tomorrow
    assert warehouse.cursors("accounts")[ahead] == tomorrow


@on_every_destination
def test_a_second_change_within_one_modifiedtime_is_loaded(
    own_sandbox: CrmSandbox, warehouse: Warehouse
) -> None:
    crm = own_sandbox
    load_all(crm, warehouse, selection=ACCOUNTS)
    [key] = crm.modify("/accounts", 1, {"Name": "first"})
    sync(crm, warehouse, selection=ACCOUNTS)
    same_moment = crm.truth("/accounts")[key]

    crm.change("/accounts", [key], {"Name": "second"}, at=same_moment)
    sync(crm, warehouse, selection=ACCOUNTS)

    assert warehouse.query(f"select name from crm.accounts where id = '{key}'") == [("second",)]
    assert warehouse.cursors("accounts") == crm.truth("/accounts")
