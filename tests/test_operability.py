"""Asset checks, run metadata and progress: what an on-call engineer reads in the UI."""

from __future__ import annotations

import time
from typing import Any

import duckdb
import pytest
from dagster import (
    AssetKey,
    AssetSelection,
    DagsterInstance,
    ExecuteInProcessResult,
    PartitionKeyRange,
    materialize,
)

from crm_assets.checks import build_crm_checks
from crm_assets.dlt_resource import CrmDltResource
from crm_assets.resources import CrmApiResource
from crm_assets.sources.crm import RESOURCES
from crm_assets.sources.crm.stats import SyncStats
from crm_sandbox.server import DEFAULT_TOKEN, CrmSandbox
from tests.conftest import (
    Warehouse,
    crm_assets,
    load_all,
    materialized,
    partitions_for_tests,
    sync,
)

CASES = AssetKey(["crm", "cases"])


def evaluations(result: ExecuteInProcessResult) -> dict[tuple[str, str], Any]:
    return {
        (evaluation.asset_key.path[-1], evaluation.check_name): evaluation
        for evaluation in result.get_asset_check_evaluations()
    }


def check_again(crm: CrmSandbox, warehouse: Warehouse) -> ExecuteInProcessResult:
    """A run of the checks of ``crm/cases`` alone, as the UI's "Execute checks" launches it."""
    assets = crm_assets()
    return materialize(
        [assets, build_crm_checks(assets.keys)],
        selection=AssetSelection.checks_for_assets(CASES),
        resources={
            "dlt": CrmDltResource(),
            "crm_api": CrmApiResource(base_url=crm.url, access_token=DEFAULT_TOKEN),
            "warehouse": warehouse.resource(),
        },
    )


def change(warehouse: Warehouse, sql: str) -> None:
    with duckdb.connect(str(warehouse.path)) as connection:
        connection.execute(sql)


def test_every_check_passes_on_a_correct_load(sandbox: CrmSandbox, warehouse: Warehouse) -> None:
    found = evaluations(load_all(sandbox, warehouse))

    assert len(found) == 3 * len(RESOURCES)
    assert all(evaluation.passed for evaluation in found.values())


def test_a_duplicated_id_fails_its_check_with_the_count(
    own_sandbox: CrmSandbox, warehouse: Warehouse
) -> None:
    load_all(own_sandbox, warehouse, selection=AssetSelection.assets(CASES))
    change(warehouse, "insert into crm.cases select * from crm.cases limit 2")

    found = evaluations(check_again(own_sandbox, warehouse))

    failed = found[("cases", "id_unique_and_not_null")]
    assert not failed.passed
    assert failed.metadata["duplicate_ids"].value == 2
    assert found[("cases", "cursor_not_null")].passed


def test_a_null_cursor_fails_its_check_with_the_count(
    own_sandbox: CrmSandbox, warehouse: Warehouse
) -> None:
    load_all(own_sandbox, warehouse, selection=AssetSelection.assets(CASES))
    change(
        warehouse,
        "update crm.cases set modifiedtime = null where id in (select id from crm.cases limit 3)",
    )

    found = evaluations(check_again(own_sandbox, warehouse))

    assert not found[("cases", "cursor_not_null")].passed
    assert found[("cases", "cursor_not_null")].metadata["null_cursors"].value == 3


def test_a_dropped_row_count_fails_its_check(own_sandbox: CrmSandbox, warehouse: Warehouse) -> None:
    cases = AssetSelection.assets(CASES)
    with DagsterInstance.ephemeral() as instance:
        first = load_all(own_sandbox, warehouse, selection=cases, instance=instance)
        change(warehouse, "delete from crm.cases where id in (select id from crm.cases limit 10)")
        second = sync(own_sandbox, warehouse, selection=cases, instance=instance)

    assert evaluations(first)[("cases", "row_count_did_not_drop")].passed
    check = evaluations(second)[("cases", "row_count_did_not_drop")]
    assert not check.passed
    assert check.metadata["row_count"].value == 110
    assert check.metadata["previous_row_count"].value == 120


def test_run_metadata_equals_the_sandbox_counts(
    own_sandbox: CrmSandbox, warehouse: Warehouse, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(time, "sleep", lambda _: None)
    crm = own_sandbox
    crm.faults.script("/cases", ["503", "429"])

    found = materialized(load_all(crm, warehouse))

    served = crm.stats()
    for resource in RESOURCES:
        values = found[resource.name]
        assert values["rows_loaded"] == values["records_fetched"] == 120
        assert values["dagster/row_count"] == 120
        assert values["cursor_before"] == values["cursor_after"] == ""  # a window keeps it
        assert values["window_start"] == "1970-01-01T00:00:00.000000Z"  # the first partition
        assert values["bytes_fetched"] > 0 and values["duration_seconds"] > 0
    by_path: dict[str, int] = {}
    for resource in RESOURCES:
        by_path[resource.path] = by_path.get(resource.path, 0) + found[resource.name]["requests"]
    assert by_path == served["requests"]
    assert sum(values["records_fetched"] for values in found.values()) == served["records_served"]
    assert found["cases"]["retries_by_status"] == {"429": 1, "503": 1}
    assert found["cases"]["requests"] == found["cases"]["pages"] + 2
    assert found["accounts"]["retries"] == 0


def test_a_run_of_partitions_records_its_window(sandbox: CrmSandbox, warehouse: Warehouse) -> None:
    first, last, following = partitions_for_tests().get_partition_keys()[2:5]

    found = materialized(
        sync(
            sandbox,
            warehouse,
            partitions=PartitionKeyRange(first, last),
            selection=AssetSelection.assets(CASES),
        )
    )

    assert (found["cases"]["window_start"], found["cases"]["window_end"]) == (
        f"{first}T00:00:00.000000Z",
        f"{following}T00:00:00.000000Z",
    )


def test_progress_is_logged_at_most_once_per_interval() -> None:
    lines: list[str] = []
    clock = iter([0.0, 0.0, 1.0, 1.0, 5.0, 5.0, 10.5, 10.5, 11.0, 11.0])
    stats = SyncStats(log=lines.append, interval=10.0, clock=lambda: next(clock))

    for _ in range(5):
        stats.response("accounts", 200, 1000)
        stats.page("accounts", 100)

    assert lines == ["accounts: 4 pages, 400 records so far, 38 records/s"]
    assert stats.of("accounts").requests == 5
