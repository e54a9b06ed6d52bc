"""Runs of partitions against the sandbox: windows exact, today incremental, upgrades clean."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from dagster import AssetKey, AssetSelection, PartitionKeyRange

from crm_assets.resources import CrmApiResource
from crm_assets.sources.crm import RESOURCES
from crm_sandbox.data import PATHS
from crm_sandbox.faults import TRANSIENT_KINDS, FaultPlan
from crm_sandbox.server import DEFAULT_TOKEN, CrmSandbox
from tests.conftest import (
    TIME_FORMAT,
    Warehouse,
    everything,
    load_all,
    materialized,
    on_every_destination,
    partitions_for_tests,
    sync,
    today,
)

ACCOUNTS = AssetSelection.assets(AssetKey(["crm", "accounts"]))


def one_page_per_path() -> dict[str, int]:
    """What today's incremental sync asks after a few changes: one page of each path."""
    return {path: 2 if path == "/opportunity_lines" else 1 for path in PATHS}


def assert_equal_to_truth(crm: CrmSandbox, warehouse: Warehouse) -> None:
    for resource in RESOURCES:
        assert warehouse.cursors(resource.name) == crm.truth(resource.path), resource.name


def days() -> list[str]:
    return list(partitions_for_tests().get_partition_keys())


@on_every_destination
def test_a_run_of_every_partition_equals_the_crm_under_faults_then_today_brings_changes(
    warehouse: Warehouse, waits: list[float]
) -> None:
    faults = FaultPlan(rate=0.03, kinds=TRANSIENT_KINDS, retry_after=1, seed=13)
    with CrmSandbox(records=450, seed=12, faults=faults) as crm:
        backfill = load_all(crm, warehouse)

        assert backfill.success
        assert sum(int(n) for code, n in crm.stats()["statuses"].items() if code != "200") > 0
        assert_equal_to_truth(crm, warehouse)
        assert warehouse.cursor("accounts") is None, "a window leaves the cursor alone"

        crm.faults.rate = 0.0
        crm.modify("/accounts", 6)
        crm.add("/cases", 4)
        crm.reset_stats()
        sync(crm, warehouse)

        assert crm.stats()["requests"] == one_page_per_path()
        assert_equal_to_truth(crm, warehouse)


@on_every_destination
def test_a_partition_reads_exactly_its_day_and_a_record_on_a_boundary_lands_once(
    own_sandbox: CrmSandbox, warehouse: Warehouse
) -> None:
    crm = own_sandbox
    before, boundary = days()[2], days()[3]
    moment = f"{boundary}T00:00:00.000000Z"
    [on_boundary] = crm.change("/accounts", [crm.data.store("/accounts").order[7][1]], at=moment)
    [inside] = crm.change(
        "/accounts", [crm.data.store("/accounts").order[8][1]], at=f"{before}T12:00:00.000000Z"
    )

    sync(crm, warehouse, partitions=PartitionKeyRange(before, before), selection=ACCOUNTS)
    assert warehouse.ids("accounts") == {inside}

    sync(crm, warehouse, partitions=PartitionKeyRange(boundary, boundary), selection=ACCOUNTS)
    assert warehouse.ids("accounts") == {inside, on_boundary}

    sync(crm, warehouse, partitions=PartitionKeyRange(before, boundary), selection=ACCOUNTS)
    assert warehouse.query(f"select count(*) from crm.accounts where id = '{on_boundary}'") == [
        (1,)
    ]
    assert warehouse.cursors("accounts")[on_boundary] == moment


@on_every_destination
def test_a_run_of_partitions_leaves_the_incremental_cursor_as_it_was(
    own_sandbox: CrmSandbox, warehouse: Warehouse
) -> None:
    crm = own_sandbox
    load_all(crm, warehouse, selection=ACCOUNTS)
    crm.modify("/accounts", 2)
    sync(crm, warehouse, selection=ACCOUNTS)
    cursor = warehouse.cursor("accounts")
    assert cursor == max(crm.truth("/accounts").values())
    crm.modify("/accounts", 3)

    sync(crm, warehouse, selection=ACCOUNTS, partitions=PartitionKeyRange(today(), today()))

    assert warehouse.cursor("accounts") == cursor
    assert warehouse.cursors("accounts") == crm.truth("/accounts")


@on_every_destination
def test_reconciling_the_last_days_heals_a_record_skipped_by_page_drift(
    own_sandbox: CrmSandbox, warehouse: Warehouse
) -> None:
    crm = own_sandbox
    load_all(crm, warehouse, selection=ACCOUNTS)
    changed = crm.modify("/accounts", 120)
    store = crm.data.store("/accounts")
    first_of_page_two = changed[100]
    moved = changed[3]
    crm.on_request("/accounts", 2, lambda: store.modify([moved]))

    sync(crm, warehouse, selection=ACCOUNTS)

    stale = {
        key
        for key, moment in warehouse.cursors("accounts").items()
        if moment != crm.truth("/accounts")[key]
    }
    assert stale == {first_of_page_two}, "the incremental sync should miss exactly one record"

    last_days = PartitionKeyRange(days()[-4], today())
    found = materialized(
        sync(crm, warehouse, selection=ACCOUNTS, partitions=last_days, trigger="automation")
    )

    assert found["accounts"]["window_start"] == f"{days()[-4]}T00:00:00.000000Z"
    assert warehouse.cursors("accounts") == crm.truth("/accounts")


@on_every_destination
def test_a_warehouse_loaded_before_partitions_keeps_its_rows_and_cursors(
    own_sandbox: CrmSandbox, warehouse: Warehouse
) -> None:
    """The unpartitioned sync loaded everything from the start of time and kept cursors:
    today's sync goes on from them, and the backfill of history adds no row twice."""
    crm = own_sandbox
    api = CrmApiResource(base_url=crm.url, access_token=DEFAULT_TOKEN)
    with warehouse.resource().run_pipeline() as pipeline:
        pipeline.sync_destination()
        pipeline.run(api.build_source())
    cursors = {resource.name: warehouse.cursor(resource.name) for resource in RESOURCES}
    assert cursors["cases"] == max(crm.truth("/cases").values())
    crm.modify("/cases", 5)
    crm.add("/accounts", 3)
    crm.reset_stats()

    sync(crm, warehouse)
    assert crm.stats()["requests"] == one_page_per_path()
    history = PartitionKeyRange(days()[0], days()[-2])
    sync(crm, warehouse, partitions=history, trigger="automation")

    assert_equal_to_truth(crm, warehouse)  # also: no id twice
    assert warehouse.cursor("cases") == max(crm.truth("/cases").values())
    assert warehouse.cursor("contacts") == cursors["contacts"]


def test_a_partition_before_the_crm_has_records_loads_none(
    own_sandbox: CrmSandbox, warehouse: Warehouse
) -> None:
    yesterday = (datetime.now(UTC) - timedelta(days=1)).strftime(TIME_FORMAT)[:10]

    result = sync(own_sandbox, warehouse, partitions=PartitionKeyRange(yesterday, yesterday))

    assert result.success
    assert {values["rows_loaded"] for values in materialized(result).values()} == {0}
    assert everything().end == today()
