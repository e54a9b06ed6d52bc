"""Run the CRM source on its own into DuckDB, without Dagster.

``python -m crm_assets.sources.crm [--duckdb PATH] [--dataset NAME]``. The URL and token are
dlt settings: ``sources.crm.base_url`` in ``.dlt/config.toml`` (or ``SOURCES__CRM__BASE_URL``)
and ``access_token`` in ``.dlt/secrets.toml`` (or ``ACCESS_TOKEN``), as in the seed.
"""

from __future__ import annotations

import argparse
import sys

import dlt

from crm_assets.sources.crm.dlt_defaults import use_sync_defaults
from crm_assets.sources.crm.source import SyncOptions, crm_source

STANDALONE_PIPELINE = "crm_standalone"


def main(argv: list[str] | None = None) -> int:
    """Load every resource into a DuckDB file and print the row counts."""
    parser = argparse.ArgumentParser(prog="python -m crm_assets.sources.crm", description=__doc__)
    parser.add_argument("--duckdb", default="data/crm_standalone.duckdb", help="DuckDB file")
    parser.add_argument("--dataset", default="crm", help="dataset (schema) name")
    args = parser.parse_args(argv)
    use_sync_defaults(STANDALONE_PIPELINE)
    pipeline = dlt.pipeline(
        pipeline_name=STANDALONE_PIPELINE,
        destination=dlt.destinations.duckdb(credentials=args.duckdb),
        dataset_name=args.dataset,
    )
    source = crm_source(options=SyncOptions(columnar=True))
    pipeline.run(source, loader_file_format="parquet")
    trace = pipeline.last_trace
    info = trace.last_normalize_info if trace else None
    for table, rows in sorted((info.row_counts if info else {}).items()):
        print(f"{table:32} {rows:>10}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
