"""The nine assets materialized over real HTTP against the sandbox into DuckDB."""

from __future__ import annotations

import time

import pytest
from dagster import AssetKey, AssetSelection, TableSchema, materialize

from crm_assets.dlt_resource import CrmDltResource
from crm_assets.resources import CrmApiResource
from crm_assets.sources.crm import RESOURCES
from crm_sandbox.server import CrmSandbox
from tests.conftest import (
    SANDBOX_RECORDS,
    Warehouse,
    crm_assets,
    load_all,
    on_every_destination,
    run_of,
)
from tests.postgres import free_port


def _materializations(result) -> dict[str, dict]:  # type: ignore[no-untyped-def]
    return {
        event.asset_key.path[-1]: event.metadata
        for event in (e.materialization for e in result.get_asset_materialization_events())
    }


@on_every_destination
def test_every_table_equals_the_sandbox(sandbox: CrmSandbox, warehouse: Warehouse) -> None:
    result = load_all(sandbox, warehouse)

    assert result.success
    for resource in RESOURCES:
        truth = sandbox.truth(resource.path)
        assert len(truth) == SANDBOX_RECORDS
        assert warehouse.ids(resource.name) == set(truth), resource.name
    assert warehouse.ids("documents") == warehouse.ids("opportunity_lines")


@on_every_destination
def test_columns_are_snake_case_and_values_survive(
    sandbox: CrmSandbox, warehouse: Warehouse
) -> None:
    load_all(sandbox, warehouse, selection=AssetSelection.assets(AssetKey(["crm", "accounts"])))

    columns = {
        row[0]
        for row in warehouse.query(
            "select column_name from information_schema.columns where table_name = 'accounts'"
        )
    }
    assert {"id", "modifiedtime", "annual_revenue", "is_active", "billing_address__city"} <= columns
    assert not {name for name in columns if name != name.lower()}
    record = next(iter(sandbox.data.store("/accounts").records.values()))
    [(revenue,)] = warehouse.query(
        f"select annual_revenue from crm.accounts where id = '{record['id']}'"
    )
    assert revenue == record["AnnualRevenue"]
    tag_rows = warehouse.query("select count(*) from crm.accounts__tags")[0][0]
    assert tag_rows == sum(
        len(r["Tags"] or []) for r in sandbox.data.store("/accounts").records.values()
    )


@on_every_destination
def test_metadata_records_rows_table_and_columns(sandbox: CrmSandbox, warehouse: Warehouse) -> None:
    metadata = _materializations(load_all(sandbox, warehouse))

    assert set(metadata) == {resource.name for resource in RESOURCES}
    for name, values in metadata.items():
        assert values["rows_loaded"].value == SANDBOX_RECORDS
        assert values["dagster/table_name"].value == f"crm.{name}"
        schema: TableSchema = values["dagster/column_schema"].schema
        assert "id" in {column.name for column in schema.columns}
    assert metadata["accounts"]["child_tables"].value == ["accounts__tags"]


def test_a_second_run_in_the_same_process_succeeds(
    sandbox: CrmSandbox, warehouse: Warehouse
) -> None:
    first = _materializations(load_all(sandbox, warehouse))
    second = _materializations(load_all(sandbox, warehouse))

    assert first["contacts"]["dagster/column_schema"] == second["contacts"]["dagster/column_schema"]
    assert warehouse.query("select count(*) from crm.contacts") == [(SANDBOX_RECORDS,)]


def test_subset_materializes_only_the_selection(sandbox: CrmSandbox, warehouse: Warehouse) -> None:
    selection = AssetSelection.assets(AssetKey(["crm", "cases"]), AssetKey(["crm", "campaigns"]))
    result = load_all(sandbox, warehouse, selection=selection)

    assert set(_materializations(result)) == {"cases", "campaigns"}
    assert {"cases", "campaigns"} <= warehouse.tables()
    assert not {"accounts", "contacts", "documents"} & warehouse.tables()


def test_an_empty_crm_loads_zero_rows_and_succeeds(warehouse: Warehouse) -> None:
    with CrmSandbox(records=0) as empty:
        result = load_all(empty, warehouse)

    assert result.success
    metadata = _materializations(result)
    assert len(metadata) == len(RESOURCES)
    assert {values["rows_loaded"].value for values in metadata.values()} == {0}
    assert sum(empty.stats()["requests"].values()) == len(RESOURCES)


def test_a_rejected_token_fails_clearly_and_keeps_loaded_data(
    sandbox: CrmSandbox, warehouse: Warehouse
) -> None:
    load_all(sandbox, warehouse)
    wrong = "wrong-token-5d1c"

    result = load_all(sandbox, warehouse, token=wrong, raise_on_error=False)

    assert not result.success
    [failure] = [event for event in result.all_events if event.is_step_failure]
    message = failure.step_failure_data.error.to_string()
    assert "CRM resource '" in message
    assert "page 1: HTTP 401" in message
    assert "check CRM_ACCESS_TOKEN" in message
    assert wrong not in message
    for resource in RESOURCES:
        assert warehouse.ids(resource.name) == set(sandbox.truth(resource.path))


def test_transient_faults_are_retried_over_http(
    own_sandbox: CrmSandbox, warehouse: Warehouse, waits: list[float]
) -> None:
    own_sandbox.faults.retry_after = 3
    own_sandbox.faults.script("/accounts", ["503", "429", "reset"])
    own_sandbox.faults.script("/cases", ["truncated"])

    result = load_all(own_sandbox, warehouse)

    assert result.success
    accounts_waits, cases_waits = [2, 3, 8], [2]  # backoff 2, Retry-After 3, backoff 2*2**2
    assert sorted(waits) == sorted(accounts_waits + cases_waits)
    assert warehouse.ids("accounts") == set(own_sandbox.truth("/accounts"))
    assert warehouse.ids("cases") == set(own_sandbox.truth("/cases"))


def test_a_read_timeout_is_retried(
    own_sandbox: CrmSandbox, warehouse: Warehouse, waits: list[float]
) -> None:
    own_sandbox.faults.slow_seconds = 120  # never answers before the client gives up
    own_sandbox.faults.script("/cases", ["slow"])

    result = load_all(
        own_sandbox,
        warehouse,
        selection=AssetSelection.assets(AssetKey(["crm", "cases"])),
        timeout_seconds=0.5,
    )

    assert result.success
    assert waits == [2]
    assert warehouse.ids("cases") == set(own_sandbox.truth("/cases"))


def test_a_crm_out_of_reach_fails_the_run_naming_resource_host_and_setting(
    warehouse: Warehouse, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(time, "sleep", lambda _: None)
    port = free_port()
    resources = {
        "dlt": CrmDltResource(),
        "crm_api": CrmApiResource(base_url=f"http://127.0.0.1:{port}", access_token="t"),
        "warehouse": warehouse.resource(),
    }

    result = materialize(
        [crm_assets()],
        selection=AssetSelection.assets(AssetKey(["crm", "cases"])),
        resources=resources,
        raise_on_error=False,
        **run_of(None, "schedule"),
    )

    [failure] = [event for event in result.all_events if event.is_step_failure]
    message = failure.step_failure_data.error.to_string()
    assert (
        f"CRM resource 'cases', page 1: cannot reach 127.0.0.1:{port} (connection refused) "
        "(check CRM_BASE_URL, and that this machine can reach the CRM)"
    ) in message
