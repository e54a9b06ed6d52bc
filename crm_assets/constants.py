"""Names and policy shared by every module of the code location."""

from __future__ import annotations

KEY_PREFIX = "crm"
"""First part of every asset key: ``crm/<resource>``."""

GROUP_NAME = "crm"
ASSETS_OP_NAME = "crm_dlt_assets"
"""Name of the one multi-asset op; run config for backfills is addressed to it."""

PIPELINE_NAME = "crm"
"""dlt pipeline name; dlt keeps its state in the destination under this name."""

SYNC_JOB_NAME = "crm_sync_job"

WAREHOUSE_POOL = "crm_warehouse"
"""Dagster pool of every run that writes the warehouse."""

DEFAULT_DESTINATION = "duckdb"
DEFAULT_DATASET = "crm"
DEFAULT_DUCKDB_PATH = "data/crm_warehouse.duckdb"
"""Relative to the working directory; its stem must differ from the dataset name."""
DEFAULT_DUCKDB_MEMORY_LIMIT = "1GB"
"""The most DuckDB may use while loading; DuckDB's own default is 80% of the machine's RAM.

Loads start within ``DUCKDB_START_MEMORY_LIMIT`` and a load job that runs out is retried
within twice as much, up to this (``duckdb_destination``). A table's staging copy needs
about 1 MB per column: 1GB stages tables of several hundred columns."""

DUCKDB_START_MEMORY_LIMIT = "64MB"
"""DuckDB's memory limit when a sync starts loading.

DuckDB fills what it is allowed with cached blocks, and a sync holds one connection, so its
peak followed the limit: at 1M records 849 MB with none, 619 MB with 256MB, 501 MB with
128MB, about 450 MB with 64MB, no slower. 64MB merges the sandbox's 111,112-record tables
(32MB does not) and stages tables of up to about 50 text columns."""

DUCKDB_CHECKPOINT_THRESHOLD = "16MB"
"""DuckDB writes its log to the file once it grows past this (DuckDB's own default).

dlt sets 1GB on every connection it opens, as it closes the file, and so checkpoints it,
after each load job. A sync holds one connection: with 1GB nothing was written to the file
until the sync ended, and every row loaded stayed in DuckDB's memory, up to its limit (at
1M records 105-113 MB of the 122 MiB usable), leaving the merges of the last tables to
spill: nine tables of 55,556 rows of 40 text columns merged in turn on one connection took
134 s with 1GB, 91 s with 16MB, on two threads (``bench/duckdb_merge.py --rows 55556
--tables 9 --threads 0``). Writing as it goes costs the sandbox's narrow 180k-record full
load about 0.35 s."""

DUCKDB_LOAD_THREADS = 1
"""DuckDB's threads on the connection a sync loads through (DuckDB's default: one per core).

Each thread of a merge holds its own buffers within the memory limit: within 128MB, with
two threads, a table of 40 text columns did not merge at 166,668 rows and one of 80
columns not at 111,112; with one thread both merged, and 333,336 x 40 too
(``bench/duckdb_merge.py --columns 80``, ``--threads 0`` for two)."""

PARQUET_DESTINATIONS = frozenset({"duckdb", "motherduck"})
"""Destinations loaded from parquet files: far faster and leaner than dlt's default."""

SYNC_SCHEDULE_NAME = "crm_sync_schedule"
SWEEP_SCHEDULE_NAME = "crm_sweep_schedule"
AUTOMATION_SENSOR_NAME = "crm_automation_sensor"

DEFAULT_SYNC_CRON = "0 * * * *"
"""Hourly; override with CRM_SYNC_CRON."""

FRESHNESS_WARN_INTERVALS = 2
FRESHNESS_FAIL_INTERVALS = 3
"""Freshness windows in schedule intervals: hourly syncs warn after 2 h and fail after 3 h,
so one missed tick warns and two fail, whatever the cron."""

TRIGGER_TAG = "crm/trigger"
"""Run tag saying what launched a sync: schedule, sweep, automation, history, reconcile."""

BACKFILL_SENSOR_NAME = "crm_backfill_sensor"
BACKFILL_SENSOR_INTERVAL_SECONDS = 60

DEFAULT_HISTORY_START = "2024-01-01T00:00:00Z"
"""Where history backfills begin; override with CRM_HISTORY_START."""

DEFAULT_BACKFILL_WINDOW_DAYS = 30
"""Size of one history window (one run); override with CRM_BACKFILL_WINDOW_DAYS."""

DEFAULT_RECONCILE_DAYS = 3
"""Trailing window re-synced daily to heal page drift; override with CRM_RECONCILE_DAYS."""

WINDOW_START_TAG = "crm/window_start"
WINDOW_END_TAG = "crm/window_end"
BACKFILL_KEY_TAG = "crm/backfill_key"
