"""Materialization metadata that leaves dlt's schema intact, and dagster-dlt's bugs it avoids.

The last two tests pin dagster-dlt's behaviour that ``CrmDltResource`` works around; when
one fails, dagster-dlt has fixed it and ``CrmDltResource.extract_resource_metadata`` may
defer to dagster-dlt's again.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import dlt
from dagster import build_asset_context
from dagster_dlt import DagsterDltResource
from dlt.common.schema import Schema

from crm_assets.dlt_resource import CrmDltResource, column_schema


def _schema() -> Schema:
    schema = Schema("crm")
    schema.update_table(
        {
            "name": "accounts",
            "columns": {
                "id": {"name": "id", "data_type": "text", "nullable": False, "primary_key": True},
                "amount": {"name": "amount", "data_type": "text", "nullable": True},
            },
        }
    )
    return schema


def test_column_schema_reads_a_copy() -> None:
    schema = _schema()
    before = copy.deepcopy(schema.get_table_columns("accounts"))

    columns = column_schema(schema, "accounts").columns

    assert [(c.name, c.type, c.constraints.nullable) for c in columns] == [
        ("id", "text", False),
        ("amount", "text", True),
    ]
    assert columns[0].constraints.other == ["primary_key"]
    assert schema.get_table_columns("accounts") == before


def test_an_unknown_table_has_no_columns() -> None:
    assert column_schema(_schema(), "contacts").columns == []


def run_tiny_pipeline(tmp_path: Path, rows: list[dict[str, Any]]) -> tuple[Any, Any, Any]:
    """A pipeline that loaded ``rows`` into ``accounts``; its resource, load info, pipeline."""

    @dlt.resource(name="accounts", primary_key="id", write_disposition="merge")
    def accounts() -> Any:
        yield from rows

    pipeline = dlt.pipeline(
        "tiny",
        destination=dlt.destinations.duckdb(str(tmp_path / "tiny.duckdb")),
        dataset_name="crm",
        pipelines_dir=str(tmp_path / "pipelines"),
    )
    resource = accounts()
    return resource, pipeline.run(resource), pipeline


def test_our_metadata_leaves_the_schema_and_counts_zero_rows(tmp_path: Path) -> None:
    resource, info, pipeline = run_tiny_pipeline(tmp_path, [{"id": "1", "amount": "3.50"}])
    before = copy.deepcopy(pipeline.default_schema.get_table_columns("accounts"))

    metadata = CrmDltResource().extract_resource_metadata(
        build_asset_context(), resource, info, pipeline
    )

    assert pipeline.default_schema.get_table_columns("accounts") == before
    assert metadata["rows_loaded"].value == 1
    assert metadata["dagster/table_name"].value == "crm.accounts"
    assert {column.name for column in metadata["dagster/column_schema"].schema.columns} >= {
        "id",
        "amount",
    }


def test_dagster_dlt_still_mutates_the_live_schema_issue_34052(tmp_path: Path) -> None:
    resource, info, pipeline = run_tiny_pipeline(tmp_path, [{"id": "1", "amount": "3.50"}])
    before = copy.deepcopy(pipeline.default_schema.get_table_columns("accounts"))

    DagsterDltResource().extract_resource_metadata(build_asset_context(), resource, info, pipeline)

    assert pipeline.default_schema.get_table_columns("accounts") != before, (
        "dagster-dlt no longer mutates dlt's schema (issue 34052 fixed): "
        "CrmDltResource may use its column metadata again"
    )


def test_dagster_dlt_still_leaves_out_rows_loaded_when_none_were(tmp_path: Path) -> None:
    resource, info, pipeline = run_tiny_pipeline(tmp_path, [])

    ours = CrmDltResource().extract_resource_metadata(
        build_asset_context(), resource, info, pipeline
    )
    theirs = DagsterDltResource().extract_resource_metadata(
        build_asset_context(), resource, info, pipeline
    )

    assert ours["rows_loaded"].value == 0
    assert "rows_loaded" not in theirs, (
        "dagster-dlt now records rows_loaded for a run that loaded none (PR 34158)"
    )
