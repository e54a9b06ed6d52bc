"""One sync run: build the source and pipeline, run dagster-dlt, and describe what happened."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

import dlt
from dagster import (
    AssetExecutionContext,
    DailyPartitionsDefinition,
    MaterializeResult,
    MetadataValue,
)

from crm_assets.config import CrmSyncConfig
from crm_assets.constants import TRIGGER_TAG
from crm_assets.deletions import DeletionSweep, TableSweep
from crm_assets.dlt_resource import CrmDltResource
from crm_assets.partitions import Reading, reading
from crm_assets.resources import CrmApiResource, CrmWarehouseResource
from crm_assets.sources.crm.clock import CrmClock
from crm_assets.sources.crm.pacing import RequestPacer
from crm_assets.sources.crm.stats import ResourceStats, SyncStats
from crm_assets.sources.crm.window import Window
from crm_assets.warehouse_sql import (
    TableProfile,
    ensure_deleted_column,
    profiles,
    storage_columns,
)


def cursors(pipeline: dlt.Pipeline, names: Mapping[str, str]) -> dict[str, str | None]:
    """The incremental cursor of each resource (name to cursor field) in the pipeline's state."""
    saved = pipeline.state.get("sources", {}).get("crm", {}).get("resources", {})
    return {
        name: saved.get(name, {}).get("incremental", {}).get(cursor, {}).get("last_value")
        for name, cursor in names.items()
    }


def _duration(pipeline: dlt.Pipeline) -> float:
    trace = pipeline.last_trace
    if trace is None or trace.finished_at is None:
        return 0.0
    return float((trace.finished_at - trace.started_at).total_seconds())


def _load_id(pipeline: dlt.Pipeline) -> str | None:
    trace = pipeline.last_trace
    info = trace.last_load_info if trace else None
    return info.loads_ids[-1] if info and info.loads_ids else None


def sync_metadata(
    stats: ResourceStats,
    seconds: float,
    before: str | None,
    after: str | None,
    window: Window | None,
) -> dict[str, Any]:
    """Run metadata of one asset; numbers stay numbers so the UI can plot them."""
    metadata: dict[str, Any] = {
        "requests": MetadataValue.int(stats.requests),
        "pages": MetadataValue.int(stats.pages),
        "records_fetched": MetadataValue.int(stats.records),
        "bytes_fetched": MetadataValue.int(stats.bytes),
        "retries": MetadataValue.int(sum(stats.retries_by_status.values())),
        "retries_by_status": MetadataValue.json(stats.retries_by_status),
        "duration_seconds": MetadataValue.float(round(seconds, 3)),
        "records_per_second": MetadataValue.float(
            round(stats.records / seconds, 1) if seconds else 0.0
        ),
        "cursor_before": MetadataValue.text(before or ""),
        "cursor_after": MetadataValue.text(after or ""),
        "future_dated_records": MetadataValue.int(stats.future_dated),
    }
    if stats.future_examples:
        metadata["future_dated_examples"] = MetadataValue.json(stats.future_examples)
    if window is not None:
        metadata["window_start"] = MetadataValue.text(window.start)
        metadata["window_end"] = MetadataValue.text(window.end)
    return metadata


def table_metadata(profile: TableProfile, swept: TableSweep | None) -> dict[str, Any]:
    """Row counts after the run, and what a sweep found."""
    metadata: dict[str, Any] = {
        "dagster/row_count": MetadataValue.int(profile.rows),
        "rows_live": MetadataValue.int(profile.live_rows),
        "rows_marked_deleted": MetadataValue.int(0),
    }
    if swept is not None:
        metadata.update({key: MetadataValue.int(value) for key, value in swept.counts().items()})
        metadata["sweep_changes_since"] = MetadataValue.text(swept.changes_since)
        if swept.uncertain:
            metadata["sweep_unconfirmed_because"] = MetadataValue.text(swept.uncertain)
    return metadata


def run_sync(
    context: AssetExecutionContext,
    dlt_resource: CrmDltResource,
    crm_api: CrmApiResource,
    warehouse: CrmWarehouseResource,
    config: CrmSyncConfig,
) -> Iterator[Any]:
    """Sync the selected resources and yield one materialization per asset, with metadata."""
    plan = _reading(context, crm_api)
    clock = CrmClock()
    sweep = _sweep(context, crm_api, warehouse, clock) if config.sweep_deletes else None
    if sweep is None:
        context.log.info(_describe(plan))
    with warehouse.run_pipeline(context.log.info) as pipeline:
        yield from _sync(context, pipeline, dlt_resource, crm_api, warehouse, plan, sweep, clock)


def _reading(context: AssetExecutionContext, crm_api: CrmApiResource) -> Reading:
    """What the run's partitions (and what launched it) ask the sync to read."""
    partitions = context.assets_def.partitions_def
    assert isinstance(partitions, DailyPartitionsDefinition), "the CRM assets are daily"
    trigger = context.run.tags.get(TRIGGER_TAG)
    keys = context.partition_key_range
    return reading(partitions, keys, trigger, datetime.now(UTC), crm_api.first_cursor())


def _describe(plan: Reading) -> str:
    if plan.window is None:
        return (
            f"Incremental sync from the saved cursor (the first one starts at {plan.first_cursor})"
        )
    return f"Reading the records modified in {plan.window.start} .. {plan.window.end}"


def _sweep(
    context: AssetExecutionContext,
    crm_api: CrmApiResource,
    warehouse: CrmWarehouseResource,
    clock: CrmClock,
) -> DeletionSweep:
    mode = warehouse.delete_mode()
    if mode is None:
        raise ValueError("sweep_deletes was asked for, but CRM_DELETES is off: nothing is swept")
    selected = {key.path[-1] for key in context.selected_asset_keys}
    resources = [resource for resource in crm_api.resources() if resource.name in selected]
    context.log.info(
        f"Sweeping deletions ({mode}) from {len(resources)} resources: listing every record"
    )
    return DeletionSweep(
        resources,
        crm_api.page_size,
        crm_api.lookback_seconds,
        mode,
        warehouse.max_share(),
        threads=crm_api.concurrency,
        clock=clock,
    )


def _sync(
    context: AssetExecutionContext,
    pipeline: dlt.Pipeline,
    dlt_resource: CrmDltResource,
    crm_api: CrmApiResource,
    warehouse: CrmWarehouseResource,
    plan: Reading,
    sweep: DeletionSweep | None,
    clock: CrmClock,
) -> Iterator[Any]:
    """One sync through ``pipeline``: dagster-dlt's run, a sweep's marks, metadata per asset."""
    stats, pacer = SyncStats(log=context.log.info), RequestPacer()
    names = {resource.name: resource.cursor for resource in crm_api.resources()}
    selected = {name: names[name] for name in (key.path[-1] for key in context.selected_asset_keys)}
    pipeline.sync_destination()
    before = cursors(pipeline, names)
    loader_file_format = warehouse.loader_file_format()
    results = dlt_resource.run(
        context=context,
        dlt_source=crm_api.build_source(
            plan, stats, loader_file_format, sweep.listings if sweep else None, pacer, clock
        ),
        dlt_pipeline=pipeline,
        loader_file_format=loader_file_format,
    )
    after: dict[str, str | None] = {}
    tables: dict[str, TableProfile] = {}
    swept: dict[str, TableSweep] = {}
    for result in results:
        if not isinstance(result, MaterializeResult) or result.asset_key is None:
            yield result
            continue
        if not tables:
            columns = ensure_deleted_column(pipeline, storage_columns(pipeline, selected))
            if sweep is not None:
                readers = crm_api.page_readers(selected, stats, pacer, clock)
                swept = sweep.finish(pipeline, readers, _load_id(pipeline), before)
                _log_sweep(context, swept)
            after = cursors(pipeline, names)
            tables = profiles(pipeline, selected, columns)
        name = result.asset_key.path[-1]
        extra = sync_metadata(
            stats.of(name),
            _duration(pipeline),
            before[name],
            after[name],
            None if sweep else plan.window,  # a sweep lists every record, whatever its days
        )
        extra.update(table_metadata(tables[name], swept.get(name)))
        extra["paced_requests_per_second"] = MetadataValue.float(round(pacer.rate or 0.0, 2))
        context.log.info(_summary(name, stats.of(name), result, tables[name]))
        if stats.of(name).future_dated:
            context.log.warning(_future_warning(name, stats.of(name)))
        yield MaterializeResult(
            asset_key=result.asset_key,
            metadata={**(result.metadata or {}), **extra},
            check_results=result.check_results,
            data_version=result.data_version,
            tags=result.tags,
        )


def _summary(
    name: str, stats: ResourceStats, result: MaterializeResult[Any], table: TableProfile
) -> str:
    """One line a person reads for one asset: fetched, merged, and what the table holds."""
    loaded = (result.metadata or {}).get("rows_loaded")
    merged = loaded.value if isinstance(loaded, MetadataValue) else loaded
    return (
        f"{name}: {stats.records} records fetched in {stats.pages} pages "
        f"({stats.requests} requests), {merged or 0} rows merged; "
        f"{table.live_rows} live of {table.rows} rows"
    )


def _future_warning(name: str, stats: ResourceStats) -> str:
    return (
        f"{name}: {stats.future_dated} records carry a modifiedtime beyond the CRM's present "
        f"(e.g. {', '.join(stats.future_examples)}); loaded as sent, the cursor stops at the "
        "CRM's present. Report them to the CRM's owner"
    )


def _log_sweep(context: AssetExecutionContext, swept: Mapping[str, TableSweep]) -> None:
    for name, table in sorted(swept.items()):
        line = (
            f"{name}: {table.candidates} rows not listed, {table.confirmed} confirmed gone, "
            f"{table.marked} marked, {table.requests} confirmation requests "
            f"(changes read since {table.changes_since}, the CRM's clock)"
        )
        if table.uncertain:
            line += f"; nothing confirmed: {table.uncertain}"
        context.log.info(line)
