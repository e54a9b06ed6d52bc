"""One sync run: build the source and pipeline, run dagster-dlt, and describe what happened."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import dlt
from dagster import AssetExecutionContext, MaterializeResult, MetadataValue
from dagster._record import copy

from crm_assets.dlt_resource import CrmDltResource
from crm_assets.resources import CrmApiResource, CrmWarehouseResource
from crm_assets.sources.crm import RESOURCES
from crm_assets.sources.crm.stats import ResourceStats, SyncStats
from crm_assets.sources.crm.window import Window
from crm_assets.warehouse_sql import TableProfile, profiles

_CURSORS = {resource.name: resource.cursor for resource in RESOURCES}


def cursors(pipeline: dlt.Pipeline) -> dict[str, str | None]:
    """The incremental cursor of every resource as the pipeline's state holds it."""
    saved = pipeline.state.get("sources", {}).get("crm", {}).get("resources", {})
    return {
        name: saved.get(name, {}).get("incremental", {}).get(cursor, {}).get("last_value")
        for name, cursor in _CURSORS.items()
    }


def _duration(pipeline: dlt.Pipeline) -> float:
    trace = pipeline.last_trace
    if trace is None or trace.finished_at is None:
        return 0.0
    return float((trace.finished_at - trace.started_at).total_seconds())


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
    }
    if window is not None:
        metadata["window_start"] = MetadataValue.text(window.start)
        metadata["window_end"] = MetadataValue.text(window.end)
    return metadata


def run_sync(
    context: AssetExecutionContext,
    dlt_resource: CrmDltResource,
    crm_api: CrmApiResource,
    warehouse: CrmWarehouseResource,
    window: Window | None,
) -> Iterator[Any]:
    """Sync the selected resources and yield one materialization per asset, with metadata."""
    with warehouse.run_pipeline() as pipeline:
        yield from _sync(context, pipeline, dlt_resource, crm_api, warehouse, window)


def _sync(
    context: AssetExecutionContext,
    pipeline: dlt.Pipeline,
    dlt_resource: CrmDltResource,
    crm_api: CrmApiResource,
    warehouse: CrmWarehouseResource,
    window: Window | None,
) -> Iterator[Any]:
    """One sync through ``pipeline``: dagster-dlt's run, then metadata per asset."""
    stats = SyncStats(log=context.log.info)
    pipeline.sync_destination()
    before = cursors(pipeline)
    loader_file_format = warehouse.loader_file_format()
    results = dlt_resource.run(
        context=context,
        dlt_source=crm_api.build_source(window, stats, loader_file_format),
        dlt_pipeline=pipeline,
        loader_file_format=loader_file_format,
    )
    selected = [key.path[-1] for key in context.selected_asset_keys]
    after: dict[str, str | None] = {}
    row_counts: dict[str, TableProfile] = {}
    for result in results:
        if not isinstance(result, MaterializeResult) or result.asset_key is None:
            yield result
            continue
        if not row_counts:
            after = cursors(pipeline)
            row_counts = profiles(pipeline, {table: _CURSORS[table] for table in selected})
        name = result.asset_key.path[-1]
        extra = sync_metadata(
            stats.of(name), _duration(pipeline), before[name], after[name], window
        )
        extra["dagster/row_count"] = MetadataValue.int(row_counts[name].rows)
        yield copy(result, metadata={**(result.metadata or {}), **extra})
