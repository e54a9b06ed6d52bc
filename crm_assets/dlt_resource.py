"""dagster-dlt's resource with materialization metadata that leaves dlt's schema intact."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from dagster import (
    AssetExecutionContext,
    MetadataValue,
    OpExecutionContext,
    TableColumn,
    TableColumnConstraints,
    TableSchema,
)
from dagster_dlt import DagsterDltResource
from dlt import Pipeline, Schema
from dlt.sources import DltResource

from crm_assets.sources.crm.dlt_internals import LoadInfo

TABLE_NAME_KEY = "dagster/table_name"
COLUMN_SCHEMA_KEY = "dagster/column_schema"
"""Dagster's documented metadata keys for where an asset's table is and its columns."""


def column_schema(schema: Schema, table: str) -> TableSchema:
    """The table's columns as Dagster metadata, read from a copy of the dlt schema.

    dagster-dlt's own version pops keys off the live schema, which breaks the next run in
    the same process (dagster issue 34052); this one never mutates it.
    """
    if table not in schema.tables:
        return TableSchema(columns=[])
    columns = copy.deepcopy(schema.get_table_columns(table))
    return TableSchema(
        columns=[
            TableColumn(
                name=name,
                type=str(column.get("data_type", "unknown")),
                constraints=TableColumnConstraints(
                    nullable=bool(column.get("nullable", True)),
                    unique=bool(column.get("unique", False)),
                    other=["primary_key"] if column.get("primary_key") else [],
                ),
            )
            for name, column in columns.items()
        ]
    )


def rows_loaded(pipeline: Pipeline, table: str) -> int:
    """Rows the last run normalized into ``table``; 0 when it loaded none."""
    trace = pipeline.last_trace
    info = trace.last_normalize_info if trace else None
    return int(info.row_counts.get(table, 0)) if info else 0


class CrmDltResource(DagsterDltResource):
    """Runs the dlt pipeline and records rows loaded, the table and its columns per asset.

    Its metadata replaces dagster-dlt's, which mutates dlt's live schema (dagster issue
    34052) and leaves ``rows_loaded`` out for a run that loaded none (PR 34158);
    ``tests/test_dlt_resource.py`` says when dagster-dlt has fixed them.
    """

    def extract_resource_metadata(
        self,
        context: OpExecutionContext | AssetExecutionContext,
        resource: DltResource,
        load_info: LoadInfo,
        dlt_pipeline: Pipeline,
    ) -> Mapping[str, Any]:
        """Metadata of one asset after a run; numbers are numbers so the UI can plot them."""
        schema = dlt_pipeline.default_schema
        table = schema.naming.normalize_table_identifier(str(resource.table_name))
        children = sorted(
            name for name in schema.data_table_names() if name.startswith(f"{table}__")
        )
        return {
            "rows_loaded": MetadataValue.int(rows_loaded(dlt_pipeline, table)),
            "destination": dlt_pipeline.destination.destination_name,
            "dataset_name": dlt_pipeline.dataset_name,
            "child_tables": MetadataValue.json(children),
            TABLE_NAME_KEY: MetadataValue.text(f"{dlt_pipeline.dataset_name}.{table}"),
            COLUMN_SCHEMA_KEY: MetadataValue.table_schema(column_schema(schema, table)),
        }
