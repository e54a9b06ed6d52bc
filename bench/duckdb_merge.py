"""Whether DuckDB merges a table of a given width within a memory limit, as JSON.

``python bench/duckdb_merge.py --memory-limit 64MB --columns 40 --rows 111112`` writes a
parquet file of ``rows`` records (an id, a row key and ``columns`` text columns of 64 random
characters, row groups of 5,000 as dlt writes them), then loads it twice the way dlt loads a
merge table into DuckDB through the sync's held connection: into a staging table, then a
delete of the matching ids and an insert keeping the newest version of each id, with the
sync's checkpoint threshold and threads unless given, within the memory a sync starts
loading within (64MB) unless given. With ``--unique`` the insert takes the staged rows as
they are, as dlt does for rows declared unique by id (its ``deduplicated`` merge option).
A sync retries a load job that runs out within twice the memory, up to
``CRM_DUCKDB_MEMORY_LIMIT``: this tells how much a table of a given shape needs.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Final

import duckdb

from crm_assets.constants import (
    DUCKDB_CHECKPOINT_THRESHOLD,
    DUCKDB_LOAD_THREADS,
    DUCKDB_START_MEMORY_LIMIT,
)


def write_records(path: Path, columns: int, rows: int) -> None:
    """``rows`` records of ``columns`` random 64-character texts, as parquet."""
    texts = [f"md5((i * {n})::varchar) || md5(i::varchar) AS c{n}" for n in range(columns)]
    select = ", ".join(["'id-' || i::varchar AS id", "md5(i::varchar) AS _dlt_id", *texts])
    with duckdb.connect() as connection:
        connection.execute(
            f"COPY (SELECT {select} FROM range({rows}) t(i)) TO '{path}' "
            "(FORMAT parquet, ROW_GROUP_SIZE 5000)"
        )


INSERT_UNIQUE: Final = "INSERT INTO dataset.{t} SELECT * FROM staging.{t}"
"""dlt's insert for staged rows declared unique by id."""

INSERT_DEDUPLICATED: Final = (
    "INSERT INTO dataset.{t} SELECT * EXCLUDE (_dlt_dedup_rn) FROM (SELECT ROW_NUMBER() "
    "OVER (PARTITION BY id ORDER BY c0 DESC) AS _dlt_dedup_rn, * "
    "FROM staging.{t}) WHERE _dlt_dedup_rn = 1"
)
"""dlt's insert keeping the newest version of each id, as the sync merges (``dedup_sort``)."""


def merge_twice(database: Path, records: Path, args: argparse.Namespace) -> None:
    """Stage and merge ``records`` twice into each of ``args.tables`` tables, as dlt does."""
    insert = INSERT_UNIQUE if args.unique else INSERT_DEDUPLICATED
    with duckdb.connect(str(database)) as connection:
        connection.execute(f"SET GLOBAL memory_limit = '{args.memory_limit}'")
        connection.execute(f"SET GLOBAL checkpoint_threshold = '{args.checkpoint_threshold}'")
        if args.threads:
            connection.execute(f"SET GLOBAL threads = {args.threads}")
        connection.execute("CREATE SCHEMA staging; CREATE SCHEMA dataset")
        for table in range(args.tables):
            for statement in _statements(records, insert.format(t=f"t{table}"), f"t{table}"):
                connection.execute(statement)


def _statements(records: Path, insert: str, table: str) -> list[str]:
    """Create ``table``, then stage and merge ``records`` into it twice."""
    stage = (
        f"BEGIN; DELETE FROM staging.{table} WHERE 1=1; "
        f"INSERT INTO staging.{table} BY NAME FROM read_parquet('{records}'); COMMIT"
    )
    merge = (
        f"BEGIN; DELETE FROM dataset.{table} AS d WHERE EXISTS "
        f"(SELECT 1 FROM staging.{table} AS s WHERE d.id = s.id); {insert}; COMMIT"
    )
    return [
        f"CREATE TABLE staging.{table} AS FROM read_parquet('{records}') LIMIT 0",
        f"CREATE TABLE dataset.{table} AS FROM staging.{table}",
        *[stage, merge] * 2,
    ]


def main() -> int:
    """Print ``{"merged": bool, "seconds": float, "error": str | null}``."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--memory-limit",
        default=DUCKDB_START_MEMORY_LIMIT,
        help="DuckDB's memory limit; by default the one a sync starts loading within",
    )
    parser.add_argument("--columns", type=int, default=40)
    parser.add_argument("--rows", type=int, default=111_112)
    parser.add_argument(
        "--checkpoint-threshold",
        default=DUCKDB_CHECKPOINT_THRESHOLD,
        help="the sync's by default; 1GB is what dlt sets on the connections it opens",
    )
    parser.add_argument(
        "--unique",
        action="store_true",
        help="insert the staged rows as they are, as dlt does for rows declared unique by id",
    )
    parser.add_argument(
        "--tables", type=int, default=1, help="tables merged in turn on one connection"
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=DUCKDB_LOAD_THREADS,
        help="DuckDB threads, the sync's by default; 0: DuckDB's default, one per core",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        records = Path(scratch) / "records.parquet"
        write_records(records, args.columns, args.rows)
        started = time.perf_counter()
        error = None
        try:
            merge_twice(Path(scratch) / "merge.duckdb", records, args)
        except duckdb.OutOfMemoryException as exc:
            error = str(exc).splitlines()[0]
        seconds = round(time.perf_counter() - started, 1)
    print(json.dumps({"merged": error is None, "seconds": seconds, "error": error}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
