"""Hand dlt the records it would only flatten as Arrow tables; the rest as dicts, as before.

dlt normalizes Python dicts row by row, in Python: flattening, naming, type inference,
coercion, writing, then reading it all back. Most CRM records need no more than
flattening and naming: their values are plain scalars of their column's type. This step
does that for them and yields one Arrow table per batch of pages, which dlt writes as parquet while
extracting and imports without reading a row again. A record holding a non-empty list
(a child table) or a value whose type differs from its column's goes to dlt's normalizer
as a dict, exactly as without this step.

Both routes give the same tables because the step follows dlt's rules: the same column
names (dlt's naming convention and path shortening), and for each column the type dlt
infers from its first non-null value in extraction order (type detections and preferred
types included), whichever route that value takes. Parent rows get a random ``_dlt_id``
and the load id, as dlt's relational normalizer gives them under the merge disposition.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, ClassVar, Final

import dlt
import pyarrow as pa
from dlt import Schema

from crm_assets.sources.crm.dlt_internals import (
    C_DLT_ID,
    C_DLT_LOAD_ID,
    EMPTY_KEY_IDENTIFIER,
    PY_TYPE_TO_SC_TYPE,
    ItemTransform,
    TTableSchemaColumns,
    autodetect_sc_type,
    generate_dlt_ids,
    get_root_row_id_type,
    normalize_identifier,
    normalize_table_identifier,
    py_type_to_sc_type,
)

ARROW_TYPES: Final[dict[str, pa.DataType]] = {
    "text": pa.string(),
    "bigint": pa.int64(),
    "double": pa.float64(),
    "bool": pa.bool_(),
    "timestamp": pa.timestamp("us", tz="UTC"),
}
"""dlt data types the Arrow route writes, as dlt reads them back from Arrow."""

DLT_COLUMN_HINTS: Final[TTableSchemaColumns] = {
    C_DLT_LOAD_ID: {"name": C_DLT_LOAD_ID, "data_type": "text", "nullable": False},
    C_DLT_ID: {
        "name": C_DLT_ID,
        "data_type": "text",
        "nullable": False,
        "unique": True,
        "row_key": True,
    },
}
"""The columns dlt's normalizer adds to parent rows, with the hints it gives them."""

_LOAD_ID_FIELD: Final = pa.field(C_DLT_LOAD_ID, pa.string(), nullable=False)
_ROW_ID_FIELD: Final = pa.field(C_DLT_ID, pa.string(), nullable=False)
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
_EXACT_FLOAT_INT = 2**53


def arrow_ready(schema: Schema, table: str) -> bool:
    """Whether dlt treats ``table`` in a way the Arrow route reproduces.

    Not when the user changed what the relational normalizer does for it: row ids other
    than random (scd2, upsert), a nesting limit, JSON columns, or column filters.
    """
    existing = schema.tables.get(table, {})
    columns = existing.get("columns", {})
    return (
        get_root_row_id_type(schema, table) == "random"
        and (existing.get("x-normalizer") or {}).get("max_nesting") is None
        and not existing.get("filters")
        and all(column.get("data_type") != "json" for column in columns.values())
    )


class TableShape:
    """Names and types of one table's columns during one sync, as dlt decides them.

    Args:
        schema: The schema being extracted into (``dlt.current.source_schema()``).
        table: Normalized name of the parent table.
        not_null: Normalized names of columns declared not nullable (the primary key).
    """

    def __init__(self, schema: Schema, table: str, not_null: Sequence[str] = ()) -> None:
        self._schema = schema
        self._naming = schema.naming
        self._detections = schema.settings.get("detections") or []
        self._not_null = set(not_null)
        self.types: dict[str, str] = {
            name: str(column["data_type"])
            for name, column in schema.tables.get(table, {}).get("columns", {}).items()
            if column.get("data_type") and name not in DLT_COLUMN_HINTS
        }
        self._names: dict[tuple[str, ...], dict[str, str]] = {}
        self._parts: dict[str, str] = {}
        self._row_struct = pa.struct([])
        self._arrow_schema = pa.schema([_LOAD_ID_FIELD, _ROW_ID_FIELD])

    def _part(self, key: str) -> str:
        """A key normalized as dlt's relational normalizer does (``_empty`` for blank)."""
        part = self._parts.get(key)
        if part is None:
            empty = not key or key.isspace()
            part = (
                EMPTY_KEY_IDENTIFIER
                if empty
                else normalize_identifier(self._schema, self._naming, key)
            )
            self._parts[key] = part
        return part

    def _name(self, path: tuple[str, ...], key: str) -> str:
        part = self._part(key)
        name = self._naming.shorten_fragments(*path, part) if path else part
        self._names.setdefault(path, {})[key] = name
        return name

    def flatten(self, record: dict[str, Any]) -> tuple[dict[str, Any], bool]:
        """The record's columns, and whether the Arrow route can write it unchanged.

        It cannot when the record holds a non-empty list or a value dlt would coerce or
        put in a variant column. Types of new columns are established either way.
        """
        row: dict[str, Any] = {}
        fits = True
        types, kinds = self.types, PY_TYPE_TO_SC_TYPE
        stack: list[tuple[dict[str, Any], tuple[str, ...]]] = [(record, ())]
        while stack:
            current, path = stack.pop()
            names = self._names.get(path) or {}
            for key, value in current.items():
                kind = type(value)
                if kind is dict:
                    stack.append((value, (*path, self._part(key))))
                    continue
                if kind is list:
                    fits = fits and not value
                    continue
                name = names.get(key) or self._name(path, key)
                row[name] = value
                if value is None or (
                    kinds.get(kind) == types.get(name)
                    and (kind is not int or _INT64_MIN <= value <= _INT64_MAX)
                ):
                    continue
                fits = self._admit(row, name, value) and fits
        return row, fits

    def _admit(self, row: dict[str, Any], name: str, value: Any) -> bool:
        """Whether a value off the fast path fits its column (an int is widened to double)."""
        kind = type(value)
        expected = self.types.get(name) or self._establish(name, value)
        if expected not in ARROW_TYPES:
            return False
        if kind is int and not _INT64_MIN <= value <= _INT64_MAX:
            return False
        if PY_TYPE_TO_SC_TYPE.get(kind) == expected:
            return True
        if kind is int and expected == "double" and abs(value) <= _EXACT_FLOAT_INT:
            row[name] = float(value)
            return True
        return False

    def _establish(self, name: str, value: Any) -> str:
        """The type dlt infers for a new column from its first non-null value."""
        kind = type(value)
        detected = autodetect_sc_type(self._detections, kind, value)
        inferred = self._schema.get_preferred_type(name) or detected or py_type_to_sc_type(kind)
        self.types[name] = str(inferred)
        return self.types[name]

    def table(self, rows: list[dict[str, Any]], load_id: str) -> pa.Table:
        """The rows as an Arrow table: every column typed so far, then dlt's two columns."""
        count = len(rows)
        columns = pa.array(rows, type=self._row_type()).flatten()
        load_ids, row_ids = pa.array([load_id] * count), pa.array(generate_dlt_ids(count))
        return pa.Table.from_arrays([*columns, load_ids, row_ids], schema=self._arrow_schema)

    def _row_type(self) -> pa.StructType:
        """Every column typed so far that Arrow carries, rebuilt only when one is added.

        Rows are converted as one struct array, in C++, which is faster than
        ``Table.from_pylist``. Their values already have their column's type.
        """
        names = [name for name, kind in self.types.items() if kind in ARROW_TYPES]
        if self._row_struct.names != names:
            fields = [
                pa.field(name, ARROW_TYPES[self.types[name]], nullable=name not in self._not_null)
                for name in names
            ]
            self._row_struct = pa.struct(fields)
            self._arrow_schema = pa.schema([*fields, _LOAD_ID_FIELD, _ROW_ID_FIELD])
        return self._row_struct


class ColumnarPages(ItemTransform[Any]):
    """A dlt step splitting each batch of pages into an Arrow table and dicts for dlt.

    Placed after the incremental step and the timestamp parsing, so the cursor and the
    unchanged-record filter work on the records as the CRM sent them.

    Args:
        table: The resource's table name.
        primary_key: The primary key field, declared not nullable.
    """

    placement_affinity: ClassVar[float] = 1.06

    def __init__(self, table: str, primary_key: str) -> None:
        super().__init__(lambda item: item)
        self.table_name = table
        self.primary_key = primary_key
        self._shape: TableShape | None = None
        self._ready: bool | None = None

    def _table_shape(self) -> TableShape | None:
        if self._ready is None:
            schema = dlt.current.source_schema()
            table = normalize_table_identifier(schema, schema.naming, self.table_name)
            self._ready = arrow_ready(schema, table)
            key = normalize_identifier(schema, schema.naming, self.primary_key)
            self._shape = TableShape(schema, table, not_null=[key]) if self._ready else None
        return self._shape

    def __call__(self, item: Any, meta: Any = None) -> Any:
        """Split a page into an Arrow table and the records left to dlt's normalizer."""
        shape = self._table_shape()
        records = item if isinstance(item, list) else [item]
        if shape is None or not all(type(record) is dict for record in records):
            return item
        return self._split(shape, records)

    def _split(self, shape: TableShape, records: list[dict[str, Any]]) -> Iterator[Any]:
        rows: list[dict[str, Any]] = []
        rest: list[dict[str, Any]] = []
        for record in records:
            row, fits = shape.flatten(record)
            if fits:
                rows.append(row)
            else:
                rest.append(record)
        if rows:
            yield shape.table(rows, dlt.current.load_package_state()["load_id"])
        if rest:
            yield rest
