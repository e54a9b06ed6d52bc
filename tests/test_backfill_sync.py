"""Window backfills against the sandbox: exactly the window, cursor untouched, drift healed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from dagster import AssetKey, AssetSelection

from crm_assets.sources.crm import RESOURCES
from crm_sandbox.server import CrmSandbox
from tests.conftest import TIME_FORMAT, Warehouse, on_every_destination, sync

START, END = "2024-06-01T00:00:00.000000Z", "2024-09-01T00:00:00.000000Z"
ACCOUNTS = AssetSelection.assets(AssetKey(["crm", "accounts"]))


@on_every_destination
def test_a_window_loads_exactly_its_records(sandbox: CrmSandbox, warehouse: Warehouse) -> None:
    result = sync(sandbox, warehouse, window=(START, END))

    assert result.success
    for resource in RESOURCES:
        truth = sandbox.truth(resource.path)
        inside = {key for key, moment in truth.items() if START <= moment < END}
        assert inside and len(inside) < len(truth)
        assert warehouse.ids(resource.name) == inside, resource.name
    assert warehouse.cursor("accounts") is None


@on_every_destination
def test_a_window_leaves_the_incremental_cursor_as_it_was(
    own_sandbox: CrmSandbox, warehouse: Warehouse
) -> None:
    sync(own_sandbox, warehouse, selection=ACCOUNTS)
    cursor = warehouse.cursor("accounts")
    assert cursor == max(own_sandbox.truth("/accounts").values())
    own_sandbox.modify("/accounts", 3)

    sync(own_sandbox, warehouse, selection=ACCOUNTS, window=(START, END))

    assert warehouse.cursor("accounts") == cursor


@on_every_destination
def test_reconciliation_heals_a_record_skipped_by_page_drift(
    own_sandbox: CrmSandbox, warehouse: Warehouse
) -> None:
    crm = own_sandbox
    sync(crm, warehouse, selection=ACCOUNTS)
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

    now = datetime.now(UTC)
    window = (
        (now - timedelta(days=3)).strftime(TIME_FORMAT),
        (now + timedelta(minutes=1)).strftime(TIME_FORMAT),
    )
    sync(crm, warehouse, selection=ACCOUNTS, window=window)

    assert warehouse.cursors("accounts") == crm.truth("/accounts")
