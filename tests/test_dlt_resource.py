"""Materialization metadata never mutates dlt's live schema (dagster issue 34052)."""

from __future__ import annotations

import copy

from dagster_dlt import DagsterDltResource
from dlt.common.schema import Schema

from crm_assets.dlt_resource import column_schema


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


def test_dagster_dlts_own_version_mutates_the_schema() -> None:
    schema = _schema()

    DagsterDltResource()._extract_table_schema_metadata("accounts", schema)

    assert "name" not in schema.tables["accounts"]["columns"]["id"]
    assert "id" not in schema.get_table_columns("accounts")


def test_an_unknown_table_has_no_columns() -> None:
    assert column_schema(_schema(), "contacts").columns == []
