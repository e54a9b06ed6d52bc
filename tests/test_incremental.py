"""Incremental syncs against the sandbox: only changes fetched, merged by id, nothing lost."""

from __future__ import annotations

from dagster import AssetKey, AssetSelection, ExecuteInProcessResult

from crm_assets.sources.crm import RESOURCES
from crm_sandbox.data import PATHS
from crm_sandbox.server import CrmSandbox
from tests.conftest import Warehouse, sync


def assert_equal_to_truth(crm: CrmSandbox, warehouse: Warehouse) -> None:
    for resource in RESOURCES:
        assert warehouse.cursors(resource.name) == crm.truth(resource.path), resource.name


def rows_loaded(result: ExecuteInProcessResult) -> dict[str, int]:
    events = (event.materialization for event in result.get_asset_materialization_events())
    return {event.asset_key.path[-1]: event.metadata["rows_loaded"].value for event in events}


def one_page_per_path() -> dict[str, int]:
    return {path: 2 if path == "/opportunity_lines" else 1 for path in PATHS}


def test_syncs_fetch_only_changes_and_keep_the_warehouse_equal(
    own_sandbox: CrmSandbox, warehouse: Warehouse
) -> None:
    crm = own_sandbox
    first = sync(crm, warehouse)
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


def test_a_failed_run_then_a_normal_run_leaves_the_warehouse_equal(
    own_sandbox: CrmSandbox, warehouse: Warehouse
) -> None:
    crm = own_sandbox
    sync(crm, warehouse)
    crm.modify("/contacts", 4)
    crm.add("/cases", 150)
    crm.faults.script("/cases", ["ok", "401"])

    failed = sync(crm, warehouse, raise_on_error=False)

    assert not failed.success
    recovered = sync(crm, warehouse)
    assert recovered.success
    assert_equal_to_truth(crm, warehouse)


def test_a_subset_sync_leaves_the_other_cursors_alone(
    own_sandbox: CrmSandbox, warehouse: Warehouse
) -> None:
    crm = own_sandbox
    sync(crm, warehouse)
    crm.modify("/accounts", 3)
    crm.modify("/cases", 3)

    sync(crm, warehouse, selection=AssetSelection.assets(AssetKey(["crm", "cases"])))
    assert warehouse.cursors("cases") == crm.truth("/cases")
    assert warehouse.cursors("accounts") != crm.truth("/accounts")

    sync(crm, warehouse)
    assert_equal_to_truth(crm, warehouse)


def test_the_newest_version_wins_when_a_batch_holds_an_id_twice(
    own_sandbox: CrmSandbox, warehouse: Warehouse
) -> None:
    crm = own_sandbox
    store = crm.data.store("/activities")
    first_id = store.order[0][1]
    crm.on_request("/activities", 2, lambda: store.modify([first_id]))

    sync(crm, warehouse, selection=AssetSelection.assets(AssetKey(["crm", "activities"])))

    assert warehouse.cursors("activities")[first_id] == crm.truth("/activities")[first_id]
