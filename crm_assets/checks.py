"""Asset checks run after each materialization of a CRM asset."""

from collections.abc import Iterable, Iterator

from dagster import (
    AssetCheckExecutionContext,
    AssetCheckKey,
    AssetCheckResult,
    AssetChecksDefinition,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetKey,
    DagsterInstance,
    multi_asset_check,
)

from crm_assets.constants import WAREHOUSE_POOL
from crm_assets.resources import CrmWarehouseResource
from crm_assets.sources.crm import RESOURCES
from crm_assets.warehouse_sql import TableProfile, profiles

ID_CHECK = "id_unique_and_not_null"
ROWS_CHECK = "row_count_did_not_drop"
CURSOR_CHECK = "cursor_not_null"
ROW_COUNT_KEY = "dagster/row_count"
_CURSORS = {resource.name: resource.cursor for resource in RESOURCES}
_DESCRIPTIONS = {
    ID_CHECK: "Every row has an id, and no id appears twice.",
    ROWS_CHECK: "The table has at least as many rows as after the previous materialization.",
    CURSOR_CHECK: "Every row has a cursor value (modifiedtime), which incremental syncs rely on.",
}


def previous_row_count(instance: DagsterInstance, key: AssetKey) -> int | None:
    """Row count recorded by the materialization before the latest one."""
    records = instance.fetch_materializations(key, limit=2).records
    if len(records) < 2:
        return None
    materialization = records[1].asset_materialization
    value = materialization.metadata.get(ROW_COUNT_KEY) if materialization else None
    return int(value.value) if value is not None else None  # type: ignore[arg-type]


def _results(key: AssetKey, table: TableProfile, before: int | None) -> Iterator[AssetCheckResult]:
    yield AssetCheckResult(
        asset_key=key,
        check_name=ID_CHECK,
        passed=table.null_ids == 0 and table.duplicate_ids == 0,
        severity=AssetCheckSeverity.ERROR,
        metadata={"null_ids": table.null_ids, "duplicate_ids": table.duplicate_ids},
    )
    yield AssetCheckResult(
        asset_key=key,
        check_name=ROWS_CHECK,
        passed=before is None or table.rows >= before,
        severity=AssetCheckSeverity.ERROR,
        metadata={
            "row_count": table.rows,
            "previous_row_count": before if before is not None else -1,
        },
    )
    yield AssetCheckResult(
        asset_key=key,
        check_name=CURSOR_CHECK,
        passed=table.null_cursors == 0,
        severity=AssetCheckSeverity.ERROR,
        metadata={"null_cursors": table.null_cursors},
    )


def build_crm_checks(keys: Iterable[AssetKey]) -> AssetChecksDefinition:
    """The three checks of every CRM asset, in one op that runs after the sync."""
    specs = [
        AssetCheckSpec(name, asset=key, description=description)
        for key in keys
        for name, description in _DESCRIPTIONS.items()
    ]

    @multi_asset_check(specs=specs, name="crm_table_checks", can_subset=True, pool=WAREHOUSE_POOL)
    def crm_table_checks(
        context: AssetCheckExecutionContext, warehouse: CrmWarehouseResource
    ) -> Iterator[AssetCheckResult]:
        """Profile each synced table: ids, row count, cursor values."""
        selected: set[AssetCheckKey] = set(context.selected_asset_check_keys)
        keys = sorted({check.asset_key for check in selected})
        tables = profiles(
            warehouse.build_pipeline(), {key.path[-1]: _CURSORS[key.path[-1]] for key in keys}
        )
        for key in keys:
            before = previous_row_count(context.instance, key)
            for result in _results(key, tables[key.path[-1]], before):
                if AssetCheckKey(key, result.check_name or "") in selected:
                    yield result

    return crm_table_checks
