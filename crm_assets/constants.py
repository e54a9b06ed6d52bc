"""Policy and defaults shared by every module of the code location.

The names of one CRM's definitions (asset keys, jobs, schedules, pools, ...) live in
``naming``; ``DEFAULT_NAMES`` are those of the default CRM.
"""

from __future__ import annotations

from crm_assets.naming import CrmNames

DEFAULT_NAMES = CrmNames()
"""The default CRM's names: ``crm/<resource>`` assets, ``crm_sync_job``, ``crm_warehouse``."""

DEFAULT_DESTINATION = "duckdb"
DEFAULT_DATASET = "crm"
DEFAULT_DUCKDB_PATH = "data/crm_warehouse.duckdb"
"""Relative to the working directory; its stem must differ from the dataset name."""
DEFAULT_DUCKDB_MEMORY_LIMIT = "1GB"
"""The most DuckDB may use while loading; DuckDB's own default is 80% of the machine's RAM.

Loads start within ``DUCKDB_START_MEMORY_LIMIT`` and a load job that runs out is retried
within twice as much, up to this (``duckdb_destination``). A table's staging copy needs
memory in proportion to its columns: 1GB stages tables of several hundred columns."""

DUCKDB_START_MEMORY_LIMIT = "64MB"
"""DuckDB's memory limit when a sync starts loading.

DuckDB fills what it is allowed with cached blocks and a sync holds one connection, so the
sync's peak follows this limit; a lower one costs no speed. It is the smallest that merges
the sandbox's largest tables; wider tables get more on retry (``duckdb_destination``)."""

DUCKDB_CHECKPOINT_THRESHOLD = "16MB"
"""DuckDB writes its log to the file once it grows past this (DuckDB's own default).

dlt sets 1GB on every connection it opens, relying on closing the file after each load job
to checkpoint it. A sync holds one connection, so with 1GB nothing reaches the file until
the sync ends and every row loaded stays in DuckDB's memory, leaving the merges of the last
tables to spill to disk; writing as it goes keeps them in memory
(``bench/duckdb_merge.py`` compares both)."""

DUCKDB_LOAD_THREADS = 1
"""DuckDB's threads on the connection a sync loads through (DuckDB's default: one per core).

Each thread of a merge holds its own buffers within the memory limit, so one thread merges
tables several times larger than two threads can within the same limit
(``bench/duckdb_merge.py --threads 0`` for one per core)."""

PARQUET_DESTINATIONS = frozenset({"duckdb", "motherduck"})
"""Destinations loaded from parquet files: far faster and leaner than dlt's default."""


DEFAULT_SYNC_CRON = "0 * * * *"
"""Hourly; override with CRM_SYNC_CRON."""

FRESHNESS_WARN_INTERVALS = 2
FRESHNESS_FAIL_INTERVALS = 3
"""Freshness windows in schedule intervals: hourly syncs warn after 2 h and fail after 3 h,
so one missed tick warns and two fail, whatever the cron."""

TRIGGER_TAG = "crm/trigger"
"""Run tag saying what launched a sync: schedule, sweep, automation (none from the UI)."""

DEFAULT_HISTORY_START = "2024-01-01T00:00:00Z"
"""The first partition's day; override with CRM_HISTORY_START."""

DEFAULT_RECONCILE_DAYS = 3
"""Partitions before today re-read daily to heal page drift; override with CRM_RECONCILE_DAYS."""

DEFAULT_RECONCILE_CRON = "20 2 * * *"
"""When the reconciliation (and a retry of missing history) is due; CRM_RECONCILE_CRON."""
