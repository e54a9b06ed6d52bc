"""Asset checks run after each materialization of a CRM asset."""

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from dagster import (
    AssetCheckExecutionContext,
    AssetCheckKey,
    AssetCheckResult,
    AssetChecksDefinition,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetKey,
    AssetRecordsFilter,
    DagsterInstance,
    multi_asset_check,
)

from crm_assets.constants import DEFAULT_NAMES
from crm_assets.naming import CrmNames
from crm_assets.resources import CrmWarehouseResource
from crm_assets.sources.crm import RESOURCES
from crm_assets.warehouse_sql import TableProfile, profiles

ID_CHECK = "id_unique_and_not_null"
ROWS_CHECK = "row_count_did_not_drop"
CURSOR_CHECK = "cursor_not_null"
LIVE_ROWS_KEY = "rows_live"
MARKED_KEY = "rows_marked_deleted"
ROW_COUNT_KEY = "dagster/row_count"
_CURSORS = {resource.name: resource.cursor for resource in RESOURCES}
_DESCRIPTIONS = {
    ID_CHECK: "Every row has an id, and no id appears twice.",
    ROWS_CHECK: (
        "The table has at least as many live rows as after the previous materialization, "
        "less the rows a deletion sweep marked since."
    ),
    CURSOR_CHECK: "Every row has a cursor value (modifiedtime), which incremental syncs rely on.",
}


@dataclass(frozen=True)
class RowHistory:
    """What the last two materializations of an asset recorded."""

    previous_live: int | None
    """Live rows after the run before the latest; None if there was none."""
    marked: int
    """Rows the latest run marked deleted."""


def _number(metadata: Mapping[str, Any], *keys: str) -> int | None:
    for key in keys:
        value = metadata.get(key)
        if value is not None:
            return int(value.value)
    return None


def row_history(instance: DagsterInstance, key: AssetKey) -> RowHistory:
    """Live rows before the latest run that materialized ``key``, and the rows it marked.

    A run of several partitions records one materialization of the asset per partition, all
    with the table's figures after that run: the row count to compare with is that of the
    last materialization recorded before the latest run started.
    """
    latest = instance.fetch_materializations(key, limit=1).records
    if not latest or latest[0].asset_materialization is None:
        return RowHistory(previous_live=None, marked=0)
    marked = _number(latest[0].asset_materialization.metadata, MARKED_KEY) or 0
    run = instance.get_run_record_by_id(latest[0].run_id)
    if run is None:
        return RowHistory(previous_live=None, marked=marked)
    started = run.start_time or run.create_timestamp.timestamp()
    earlier = instance.fetch_materializations(
        AssetRecordsFilter(asset_key=key, before_timestamp=started), limit=1
    ).records
    event = earlier[0].asset_materialization if earlier else None
    previous = _number(event.metadata, LIVE_ROWS_KEY, ROW_COUNT_KEY) if event else None
    return RowHistory(previous_live=previous, marked=marked)


def _results(key: AssetKey, table: TableProfile, history: RowHistory) -> Iterator[AssetCheckResult]:
    yield AssetCheckResult(
        asset_key=key,
        check_name=ID_CHECK,
        passed=table.null_ids == 0 and table.duplicate_ids == 0,
        severity=AssetCheckSeverity.ERROR,
        metadata={"null_ids": table.null_ids, "duplicate_ids": table.duplicate_ids},
    )
    before = history.previous_live
    yield AssetCheckResult(
        asset_key=key,
        check_name=ROWS_CHECK,
        passed=before is None or table.live_rows >= before - history.marked,
        severity=AssetCheckSeverity.ERROR,
        metadata={
            "row_count": table.live_rows,
            "previous_row_count": before if before is not None else -1,
            "rows_marked_deleted": history.marked,
        },
    )
    yield AssetCheckResult(
        asset_key=key,
        check_name=CURSOR_CHECK,
        passed=table.null_cursors == 0,
        severity=AssetCheckSeverity.ERROR,
        metadata={"null_cursors": table.null_cursors},
    )


def build_crm_checks(
    keys: Iterable[AssetKey], names: CrmNames = DEFAULT_NAMES
) -> AssetChecksDefinition:
    """The three checks of every asset of one CRM, in one op that runs after the sync."""
    specs = [
        AssetCheckSpec(name, asset=key, description=description)
        for key in keys
        for name, description in _DESCRIPTIONS.items()
    ]

    @multi_asset_check(
        specs=specs,
        name=names.checks_op,
        can_subset=True,
        pool=names.pool,
        required_resource_keys={names.warehouse_resource},
    )
    def crm_table_checks(context: AssetCheckExecutionContext) -> Iterator[AssetCheckResult]:
        """Profile each synced table: ids, live rows, cursor values."""
        warehouse: CrmWarehouseResource = getattr(context.resources, names.warehouse_resource)
        selected: set[AssetCheckKey] = set(context.selected_asset_check_keys)
        keys = sorted({check.asset_key for check in selected})
        with warehouse.run_pipeline(context.log.info) as pipeline:
            tables = profiles(pipeline, {key.path[-1]: _CURSORS[key.path[-1]] for key in keys})
        for key in keys:
            history = row_history(context.instance, key)
            for result in _results(key, tables[key.path[-1]], history):
                if AssetCheckKey(key, result.check_name or "") in selected:
                    yield result

    return crm_table_checks
