"""The Arrow route loads exactly the tables dlt's normalizer loads, sync after sync."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from dagster import materialize
from dlt.common.schema import Schema

from crm_assets.dlt_resource import CrmDltResource
from crm_assets.resources import CrmApiResource
from crm_assets.sources.crm.columnar import TableShape
from crm_sandbox.server import DEFAULT_TOKEN, CrmSandbox
from tests.conftest import Warehouse, crm_assets, everything, run_of, snapshot


def load(crm: CrmSandbox, warehouse: Warehouse, columnar: bool) -> None:
    api = CrmApiResource(base_url=crm.url, access_token=DEFAULT_TOKEN, columnar=columnar)
    resources = {"dlt": CrmDltResource(), "crm_api": api, "warehouse": warehouse.resource()}
    assert materialize([crm_assets()], resources=resources, **run_of(everything(), None)).success


def awkward_changes(crm: CrmSandbox) -> None:
    """Values that make dlt coerce, add variant columns, detect types or nest."""
    crm.modify("/accounts", 3, {"isActive": "not sure"})
    crm.modify("/contacts", 2, {"Score": 5})
    crm.modify("/contacts", 1, {"Score": 7.5})
    crm.modify("/opportunities", 2, {"Weight": 2.5})
    crm.modify("/opportunities", 2, {"Weight": 3})
    crm.modify("/cases", 1, {"ClosedOn": "2024-03-01T10:00:00Z"})
    crm.modify("/cases", 1, {"ClosedOn": "never"})
    crm.modify("/campaigns", 2, {"Meta": {"Owner": {"Name": "Ada", "Since": 3}, "Empty": {}}})
    crm.modify("/activities", 2, {"Big": 12})
    crm.modify("/activities", 1, {"Big": 1.5})
    crm.modify("/activities", 1, {"": "blank key", "Weird Key!": True})
    crm.modify("/accounts", 2, {"Tags": []})


def later_changes(crm: CrmSandbox) -> None:
    """A second sync: lists emptied and filled, a type turned, new records."""
    crm.modify("/accounts", 4, {"Tags": None})
    crm.modify("/accounts", 2, {"Tags": ["fresh"]})
    crm.modify("/contacts", 2, {"Score": "high"})
    crm.modify("/opportunities", 1, {"Weight": 4})
    crm.add("/cases", 3)
    crm.add("/campaigns", 2)


def test_arrow_and_dict_routes_load_the_same_tables(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    arrow_rows: list[int] = []
    to_arrow = TableShape.table

    def counting(shape: TableShape, rows: list[dict[str, Any]], load_id: str) -> pa.Table:
        arrow_rows.append(len(rows))
        return to_arrow(shape, rows, load_id)

    monkeypatch.setattr(TableShape, "table", counting)
    arrow, plain = Warehouse(tmp_path / "arrow"), Warehouse(tmp_path / "plain")
    with CrmSandbox(records=450, seed=21) as crm:
        awkward_changes(crm)
        load(crm, arrow, columnar=True)
        assert sum(arrow_rows) > 9 * 450 / 2
        load(crm, plain, columnar=False)
        first = snapshot(arrow)
        assert first == snapshot(plain)

        later_changes(crm)
        load(crm, arrow, columnar=True)
        load(crm, plain, columnar=False)
        second = snapshot(arrow)
        assert second == snapshot(plain)

    assert ("score__v_double", "DOUBLE") in first["contacts columns"]
    assert ("closed_on", "TIMESTAMP WITH TIME ZONE") in first["cases columns"]
    assert ("meta__owner__since", "BIGINT") in first["campaigns columns"]
    assert ("score__v_text", "VARCHAR") in second["contacts columns"]
    assert first != second


def test_a_page_of_plain_records_becomes_one_arrow_table() -> None:
    shape = TableShape(Schema("crm"), "accounts", not_null=["id"])
    records = [
        {"id": "a1", "Name": "Ada", "Address": {"City": "Zürich"}, "Tags": []},
        {"id": "a2", "Name": None, "Score": 3, "Tags": ["x"]},
        {"id": "a3", "Name": "Bo", "Score": 2.5},
    ]

    flattened = [shape.flatten(record) for record in records]
    table = shape.table([row for row, fits in flattened if fits], "load-1")

    assert [fits for _, fits in flattened] == [True, False, False]
    assert table.column_names == ["id", "name", "address__city", "score", "_dlt_load_id", "_dlt_id"]
    assert table.schema.field("score").type == pa.int64()
    assert table.column("id").to_pylist() == ["a1"]
    assert table.column("_dlt_load_id").to_pylist() == ["load-1"]
    assert not table.schema.field("id").nullable
