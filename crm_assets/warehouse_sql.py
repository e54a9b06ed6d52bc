"""Profiles of warehouse tables through dlt's SQL client, for any destination."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import dlt
from dlt.destinations.exceptions import DatabaseUndefinedRelation

from crm_assets.sources.crm.settings import PRIMARY_KEY


@dataclass(frozen=True)
class TableProfile:
    """Counts the asset checks judge a table by."""

    rows: int
    null_ids: int
    duplicate_ids: int
    null_cursors: int


EMPTY = TableProfile(rows=0, null_ids=0, duplicate_ids=0, null_cursors=0)


def profiles(pipeline: dlt.Pipeline, cursors: Mapping[str, str]) -> dict[str, TableProfile]:
    """Row, null-id, duplicate-id and null-cursor counts per table, over one connection.

    Args:
        pipeline: The pipeline whose destination holds the tables.
        cursors: Table name to its cursor column.

    A table that does not exist yet has only zeros.
    """
    found: dict[str, TableProfile] = {}
    with pipeline.sql_client() as client:
        for table, cursor in cursors.items():
            name = client.make_qualified_table_name(table)
            id_column = client.escape_column_name(PRIMARY_KEY)
            cursor_column = client.escape_column_name(cursor)
            query = (
                f"select count(*), count({id_column}), count(distinct {id_column}), "
                f"count({cursor_column}) from {name}"
            )
            try:
                rows = client.execute_sql(query)
            except DatabaseUndefinedRelation:
                rows = None
            found[table] = _profile(rows[0]) if rows else EMPTY
    return found


def _profile(row: Sequence[object]) -> TableProfile:
    total, with_id, distinct_ids, with_cursor = (int(str(value)) for value in row)
    return TableProfile(
        rows=total,
        null_ids=total - with_id,
        duplicate_ids=with_id - distinct_ids,
        null_cursors=total - with_cursor,
    )
