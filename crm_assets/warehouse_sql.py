"""The SQL the code location runs on warehouse tables, through dlt's clients, for any destination.

Profiles for the asset checks and the deletion marks of a sweep. Every statement goes
through dlt's SQL client, with values as query parameters.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import dlt

from crm_assets.sources.crm.dlt_internals import (
    C_DLT_LOAD_ID,
    DatabaseUndefinedRelation,
    SqlClientBase,
    SqlJobClientBase,
    TTableSchema,
    get_first_column_name_with_prop,
    get_nested_tables,
    new_table,
)
from crm_assets.sources.crm.settings import DELETED_COLUMN, DELETED_HINT, PRIMARY_KEY

DeleteMode = Literal["soft", "hard"]

_IDS_PER_STATEMENT = 500
"""Ids bound in one ``IN (...)`` list: well within every destination's parameter limit."""


@dataclass(frozen=True)
class TableProfile:
    """Counts the asset checks judge a table by."""

    rows: int
    live_rows: int
    """Rows the CRM still lists: ``_crm_deleted_at`` is null."""
    null_ids: int
    duplicate_ids: int
    null_cursors: int


EMPTY = TableProfile(rows=0, live_rows=0, null_ids=0, duplicate_ids=0, null_cursors=0)


def storage_columns(pipeline: dlt.Pipeline, tables: Collection[str]) -> dict[str, set[str]]:
    """The columns each of ``tables`` has in the destination; none if it does not exist."""
    with pipeline.destination_client() as client:
        assert isinstance(client, SqlJobClientBase), "the warehouse must be a SQL destination"
        return {name: set(columns) for name, columns in client.get_storage_tables(tables)}


def profiles(
    pipeline: dlt.Pipeline,
    cursors: Mapping[str, str],
    columns: Mapping[str, set[str]] | None = None,
) -> dict[str, TableProfile]:
    """Row, live-row, null-id, duplicate-id and null-cursor counts per table, over one connection.

    Args:
        pipeline: The pipeline whose destination holds the tables.
        cursors: Table name to its cursor column.
        columns: The tables' columns in the destination, if already known
            (``storage_columns``).

    A table that does not exist yet has only zeros; in one without ``_crm_deleted_at`` (no
    sync since it was introduced), every row is live.
    """
    existing = columns if columns is not None else storage_columns(pipeline, cursors)
    found = {table: EMPTY for table in cursors if not existing.get(table)}
    with pipeline.sql_client() as client:
        for table, cursor in cursors.items():
            if table in found:
                continue
            id_column = client.escape_column_name(PRIMARY_KEY)
            deleted = client.escape_column_name(DELETED_COLUMN)
            live = (
                f"sum(case when {deleted} is null then 1 else 0 end)"
                if DELETED_COLUMN in existing[table]
                else "count(*)"
            )
            query = (
                f"select count(*), {live}, count({id_column}), count(distinct {id_column}), "
                f"count({client.escape_column_name(cursor)}) "
                f"from {client.make_qualified_table_name(table)}"
            )
            [row] = client.execute_sql(query) or [(0, 0, 0, 0, 0)]
            found[table] = _profile(row)
    return found


def _profile(row: Sequence[object]) -> TableProfile:
    total, live, with_id, distinct_ids, with_cursor = (int(str(value or 0)) for value in row)
    return TableProfile(
        rows=total,
        live_rows=live,
        null_ids=total - with_id,
        duplicate_ids=with_id - distinct_ids,
        null_cursors=total - with_cursor,
    )


def ensure_deleted_column(
    pipeline: dlt.Pipeline, columns: Mapping[str, set[str]]
) -> dict[str, set[str]]:
    """Add ``_crm_deleted_at`` to the tables that exist without it; the columns after.

    Args:
        pipeline: The pipeline whose destination holds the tables.
        columns: The tables' columns in the destination (``storage_columns``).

    dlt adds a column its resource declares only to tables that get rows in a run, so a
    table with no new rows since the column was introduced lacks it. It is added through
    dlt's schema, so dlt knows the table has it.
    """
    missing = [name for name, found in columns.items() if found and DELETED_COLUMN not in found]
    if not missing:
        return dict(columns)
    schema = pipeline.default_schema
    for name in missing:
        schema.update_table(new_table(name, columns=list(DELETED_HINT.values())))
    pipeline.schemas.save_schema(schema)
    with pipeline.destination_client() as client:
        client.update_stored_schema(only_tables=missing, force=True)
    return {
        name: found | {DELETED_COLUMN} if name in missing else found
        for name, found in columns.items()
    }


def unlisted_live_rows(
    pipeline: dlt.Pipeline, table: str, cursor: str, load_id: str | None
) -> list[tuple[Any, Any]]:
    """``(id, cursor)`` of the live rows that load ``load_id`` did not write.

    A sweep merges every record its listing returns, which rewrites that record's row with
    the load's id, so the live rows it did not rewrite are the records it did not list.
    """
    with pipeline.sql_client() as client:
        columns = ", ".join(client.escape_column_name(name) for name in (PRIMARY_KEY, cursor))
        query = (
            f"select {columns} from {client.make_qualified_table_name(table)} "
            f"where {client.escape_column_name(DELETED_COLUMN)} is null"
        )
        args: list[Any] = []
        if load_id is not None:
            query += f" and {client.escape_column_name(C_DLT_LOAD_ID)} <> %s"
            args.append(load_id)
        try:
            return [tuple(row) for row in client.execute_sql(query, *args) or []]
        except DatabaseUndefinedRelation:
            return []


def mark_deleted(
    pipeline: dlt.Pipeline, marks: Mapping[str, Collection[str]], mode: DeleteMode, at: datetime
) -> dict[str, int]:
    """Mark the given ids of each table deleted, all tables in one transaction.

    ``soft`` sets ``_crm_deleted_at`` to ``at`` on live rows; ``hard`` removes the rows and
    their nested-table rows. Returns the live rows marked per table.
    """
    marked: dict[str, int] = {}
    tables = pipeline.default_schema.tables
    with pipeline.sql_client() as client, client.begin_transaction():
        for table, ids in marks.items():
            nested = get_nested_tables(tables, table)
            marked[table] = 0
            for chunk in _chunks(sorted(ids), _IDS_PER_STATEMENT):
                marked[table] += _mark_chunk(client, nested, chunk, mode, at)
    return marked


def _chunks(items: Sequence[str], size: int) -> Iterator[Sequence[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _mark_chunk(
    client: SqlClientBase[Any],
    tables: Sequence[TTableSchema],
    ids: Sequence[str],
    mode: DeleteMode,
    at: datetime,
) -> int:
    """Mark ``ids`` in the root of ``tables`` (the root, then its nested tables)."""
    root, nested = tables[0], tables[1:]
    name = client.make_qualified_table_name(str(root["name"]))
    deleted = client.escape_column_name(DELETED_COLUMN)
    in_ids = f"{client.escape_column_name(PRIMARY_KEY)} in ({', '.join(['%s'] * len(ids))})"
    [(live,)] = client.execute_sql(
        f"select count(*) from {name} where {deleted} is null and {in_ids}", *ids
    ) or [(0,)]
    if mode == "soft":
        client.execute_sql(
            f"update {name} set {deleted} = %s where {deleted} is null and {in_ids}", at, *ids
        )
        return int(live)
    row_key = get_first_column_name_with_prop(root, "row_key")
    for child in nested:
        root_key = get_first_column_name_with_prop(child, "root_key")
        if row_key is None or root_key is None:
            raise RuntimeError(f"nested table {child['name']} has no root key to delete by")
        client.execute_sql(
            f"delete from {client.make_qualified_table_name(str(child['name']))} "
            f"where {client.escape_column_name(root_key)} in "
            f"(select {client.escape_column_name(row_key)} from {name} where {in_ids})",
            *ids,
        )
    client.execute_sql(f"delete from {name} where {in_ids}", *ids)
    return int(live)
