"""Dagster resources: the CRM API (URL and token) and the warehouse (dlt destination)."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, cast

import dlt
import duckdb
from dagster import ConfigurableResource, EnvVar
from dlt.sources import DltSource
from duckdb import DuckDBPyConnection
from pydantic import Field

from crm_assets.constants import (
    DEFAULT_DATASET,
    DEFAULT_DESTINATION,
    DEFAULT_DUCKDB_MEMORY_LIMIT,
    DEFAULT_DUCKDB_PATH,
    DEFAULT_NAMES,
    DUCKDB_CHECKPOINT_THRESHOLD,
    DUCKDB_LOAD_THREADS,
    DUCKDB_START_MEMORY_LIMIT,
    PARQUET_DESTINATIONS,
)
from crm_assets.deletions import DEFAULT_DELETES, DEFAULT_SWEEP_MAX_SHARE, DELETE_MODES
from crm_assets.dlt_resource import CrmDltResource
from crm_assets.duckdb_destination import LoadMemory, SteppedMemoryDuckDb
from crm_assets.naming import CrmNames
from crm_assets.partitions import Reading
from crm_assets.settings import InvalidSettingError, memory_limit_bytes, share
from crm_assets.sources.crm import CrmResource, crm_source, with_paths
from crm_assets.sources.crm.clock import CrmClock
from crm_assets.sources.crm.dlt_defaults import use_sync_defaults
from crm_assets.sources.crm.dlt_internals import Destination, DuckDbCredentials
from crm_assets.sources.crm.pacing import RequestPacer
from crm_assets.sources.crm.prefetch import DEFAULT_CONCURRENCY
from crm_assets.sources.crm.settings import (
    DEFAULT_LOOKBACK_SECONDS,
    INITIAL_CURSOR,
    PAGE_SIZE,
    REQUEST_TIMEOUT_SECONDS,
)
from crm_assets.sources.crm.source import SyncOptions, page_reader
from crm_assets.sources.crm.stats import SyncStats
from crm_assets.sources.crm.sweep import Listing, PageReader
from crm_assets.sources.crm.window import Window, format_moment, parse_moment
from crm_assets.warehouse_lock import (
    DEFAULT_LOCK_WAIT_SECONDS,
    LOCK_WAIT_VARIABLE,
    connect_duckdb,
    postgres_lock,
)
from crm_assets.warehouse_sql import DeleteMode

OLD_LOCK_WAIT_VARIABLE = "CRM_DUCKDB_LOCK_WAIT_SECONDS"
"""The name ``CRM_WAREHOUSE_LOCK_WAIT_SECONDS`` had while only DuckDB was waited for."""
INTEGER_VARIABLES = frozenset({LOCK_WAIT_VARIABLE, OLD_LOCK_WAIT_VARIABLE})

DLT_TOKEN_KEY = "access_token"
"""The seed's secret: ``access_token`` in ``.dlt/secrets.toml``."""


logger = logging.getLogger(__name__)


class MissingTokenError(ValueError):
    """No access token was configured anywhere."""


class WarehouseMemoryError(RuntimeError):
    """DuckDB ran out of the memory limit it was given while loading."""


def _out_of_memory(error: BaseException | None) -> bool:
    while error is not None:
        if isinstance(error, duckdb.OutOfMemoryException):
            return True
        error = error.__cause__ or error.__context__
    return False


class CrmApiResource(ConfigurableResource):  # type: ignore[type-arg]
    """The CRM API: where it is and the token it takes.

    The token comes from ``CRM_ACCESS_TOKEN``, else from ``access_token`` in
    ``.dlt/secrets.toml`` (the seed's ``dlt.secrets["access_token"]``). It is read at run
    time only, when an asset builds its source.
    """

    base_url: str = Field(description="Root URL of the CRM API (CRM_BASE_URL).")
    access_token: str | None = Field(
        default=None,
        description="Bearer token (CRM_ACCESS_TOKEN); falls back to .dlt/secrets.toml.",
    )
    path_overrides: dict[str, str] = Field(
        default_factory=dict,
        description='API paths replacing the seed\'s, e.g. {"documents": "/documents"}.',
    )
    page_size: int = Field(default=PAGE_SIZE, ge=1, le=100, description="Records per page.")
    timeout_seconds: float = Field(
        default=REQUEST_TIMEOUT_SECONDS, gt=0, description="Connect and read timeout."
    )
    sync_start: str | None = Field(
        default=None,
        description=(
            "Where the first incremental sync may start, if before today (CRM_SYNC_START); "
            "unset: at the start of today's partition."
        ),
    )
    concurrency: int = Field(
        default=DEFAULT_CONCURRENCY,
        ge=1,
        le=64,
        description="Requests in flight at most, reached gradually (1: one page at a time).",
    )
    lookback_seconds: float = Field(
        default=DEFAULT_LOOKBACK_SECONDS,
        ge=0,
        description="Incremental syncs start this long before the last cursor (clock skew).",
    )
    columnar: bool = Field(
        default=True,
        description=(
            "Hand dlt Arrow tables for records it would only flatten, where the warehouse "
            "loads parquet (DuckDB); false: every record through dlt's normalizer."
        ),
    )

    def token(self) -> str:
        """The configured token, or the seed's dlt secret.

        Raises:
            MissingTokenError: Neither is set.
        """
        token = self.access_token or dlt.secrets.get(DLT_TOKEN_KEY)
        if not token:
            raise MissingTokenError(
                "no CRM access token: set CRM_ACCESS_TOKEN, or access_token in .dlt/secrets.toml"
            )
        return str(token)

    def options(
        self, window: Window | None = None, columnar: bool = False, first_cursor: str | None = None
    ) -> SyncOptions:
        """How a sync fetches, from this resource's settings.

        Args:
            window: The records to read; None for the incremental sync.
            columnar: Whether the warehouse loads parquet (the Arrow route).
            first_cursor: Where the incremental sync starts if no cursor was saved yet.
        """
        return SyncOptions(
            page_size=self.page_size,
            timeout=self.timeout_seconds,
            concurrency=self.concurrency,
            lookback_seconds=self.lookback_seconds,
            initial_cursor=first_cursor or INITIAL_CURSOR,
            window=window,
            columnar=self.columnar and columnar,
        )

    def resources(self) -> tuple[CrmResource, ...]:
        """The resource table with this resource's path overrides."""
        return with_paths(self.path_overrides)

    def build_source(
        self,
        plan: Reading | None = None,
        stats: SyncStats | None = None,
        loader_file_format: str | None = None,
        listings: Mapping[str, Listing] | None = None,
        pacer: RequestPacer | None = None,
        clock: CrmClock | None = None,
    ) -> DltSource:
        """A fresh dlt source carrying the token, for one run reading ``plan``.

        Without a plan, everything is read, as an incremental sync with no cursor saved.

        The Arrow route is taken only when dlt loads parquet, which it writes directly.
        With ``listings``, the source lists every record for a deletion sweep.
        """
        return crm_source(
            base_url=self.base_url,
            access_token=self.token(),
            resources=self.resources(),
            options=self.options(
                plan.window if plan else None,
                columnar=loader_file_format == "parquet",
                first_cursor=plan.first_cursor if plan else None,
            ),
            stats=stats,
            listings=listings,
            pacer=pacer,
            clock=clock,
        )

    def page_readers(
        self,
        names: Iterable[str],
        stats: SyncStats,
        pacer: RequestPacer | None = None,
        clock: CrmClock | None = None,
    ) -> dict[str, PageReader]:
        """Readers of single pages by ``modified_since``, per resource, for a sweep."""
        by_name = {resource.name: resource for resource in self.resources()}
        token, options = self.token(), self.options()
        return {
            name: page_reader(self.base_url, token, by_name[name], options, stats, pacer, clock)
            for name in names
        }

    def first_cursor(self) -> str | None:
        """``CRM_SYNC_START`` in the contract's format, if set."""
        if not self.sync_start:
            return None
        return format_moment(parse_moment(self.sync_start, "CRM_SYNC_START"))


class CrmWarehouseResource(ConfigurableResource):  # type: ignore[type-arg]
    """The warehouse: a dlt destination and dataset.

    DuckDB is the embedded default. Any other dlt destination is configured the dlt way,
    for example ``DESTINATION__POSTGRES__CREDENTIALS``.
    """

    destination: str = Field(
        default=DEFAULT_DESTINATION, description="dlt destination (CRM_DESTINATION)."
    )
    duckdb_path: str = Field(
        default=DEFAULT_DUCKDB_PATH, description="DuckDB file for destination duckdb."
    )
    duckdb_memory_limit: str = Field(
        default=DEFAULT_DUCKDB_MEMORY_LIMIT,
        description="The most memory DuckDB may use while loading (destination duckdb).",
    )
    dataset: str = Field(default=DEFAULT_DATASET, description="Dataset (schema) name.")
    pipeline_name: str = Field(
        default=DEFAULT_NAMES.pipeline,
        description="dlt pipeline: its working folder, and its state in the dataset.",
    )
    pipelines_dir: str | None = Field(
        default=None, description="Where dlt keeps its working files; dlt's default if unset."
    )
    lock_wait_seconds: int = Field(
        default=DEFAULT_LOCK_WAIT_SECONDS,
        ge=0,
        description=(
            "How long a run waits for another run holding the warehouse "
            "(CRM_WAREHOUSE_LOCK_WAIT_SECONDS)."
        ),
    )
    deletes: str = Field(
        default=DEFAULT_DELETES,
        description="How a sweep shows deletions: soft, hard or off (CRM_DELETES).",
    )
    sweep_max_share: str = Field(
        default=str(DEFAULT_SWEEP_MAX_SHARE),
        description="Most of a table's live rows one sweep may mark (CRM_SWEEP_MAX_SHARE).",
    )

    def delete_mode(self) -> DeleteMode | None:
        """``soft`` or ``hard``; None when sweeps are off.

        Raises:
            InvalidSettingError: ``deletes`` is not soft, hard or off.
        """
        mode = self.deletes.strip().lower()
        if mode not in DELETE_MODES:
            raise InvalidSettingError(
                "CRM_DELETES", f"{self.deletes!r} is not one of {', '.join(DELETE_MODES)}"
            )
        return None if mode == "off" else cast(DeleteMode, mode)

    def max_share(self) -> float:
        """The largest share of a table's live rows one sweep may mark."""
        return share(self.sweep_max_share, "CRM_SWEEP_MAX_SHARE")

    def _duckdb_file(self) -> Path:
        # Absolute, because dlt resolves a relative path against the folder the pipeline was
        # first created in (kept in its local state), not against the current directory.
        path = Path(self.duckdb_path).expanduser().resolve()
        if path.stem == self.dataset:
            raise ValueError(
                f"CRM_DUCKDB_PATH file name {path.name!r} has the same stem as CRM_DATASET "
                f"{self.dataset!r}; DuckDB cannot tell the catalog from the schema. "
                "Rename the file, e.g. crm_warehouse.duckdb"
            )
        path.parent.mkdir(parents=True, exist_ok=True)
        return path

    def _destination(self, connection: DuckDBPyConnection | None = None) -> Destination[Any, Any]:
        if self.destination != "duckdb":
            destination = Destination.from_reference(self.destination)
            if destination is None:
                raise ValueError(f"CRM_DESTINATION {self.destination!r} is not a dlt destination")
            return destination
        memory = LoadMemory(
            memory_limit_bytes(self.duckdb_memory_limit),
            memory_limit_bytes(DUCKDB_START_MEMORY_LIMIT),
        )
        # dlt applies its own global settings first, then these statements, which so win.
        statements = [
            f"SET GLOBAL checkpoint_threshold = '{DUCKDB_CHECKPOINT_THRESHOLD}'",
            f"SET GLOBAL threads = {DUCKDB_LOAD_THREADS}",
        ]
        if connection is None:
            config = {"memory_limit": memory.setting}
            path = str(self._duckdb_file())
            credentials = DuckDbCredentials(path, global_config=config, statements=statements)
        else:
            # Set once here, then by each load job: dlt re-applies its global settings at
            # every borrow, which would undo a step up between jobs.
            connection.execute(f"SET GLOBAL memory_limit = '{memory.setting}'")
            credentials = DuckDbCredentials(connection, statements=statements)
        return SteppedMemoryDuckDb(memory, credentials=credentials)

    def build_pipeline(self, connection: DuckDBPyConnection | None = None) -> dlt.Pipeline:
        """A fresh dlt pipeline writing the dataset; its state lives in the destination.

        Args:
            connection: An open DuckDB connection for dlt to use instead of opening the file.
        """
        use_sync_defaults(self.pipeline_name)
        return dlt.pipeline(
            pipeline_name=self.pipeline_name,
            destination=self._destination(connection),
            dataset_name=self.dataset,
            pipelines_dir=cast(str, self.pipelines_dir),  # dlt takes None as its default
        )

    @contextmanager
    def run_pipeline(self, log: Callable[[str], object] = logger.info) -> Iterator[dlt.Pipeline]:
        """A pipeline for one run, which holds the warehouse until it ends (``warehouse_lock``).

        DuckDB is reached through one connection held for the whole run (dlt otherwise opens
        and closes the file for every load job, each close checkpointing it); Postgres runs
        hold an advisory lock of the dataset. A run that finds the warehouse held waits,
        logging to ``log``. Other destinations rely on the Dagster pool alone.
        """
        if self.destination == "duckdb":
            with self._duckdb_pipeline(log) as pipeline:
                yield pipeline
            return
        pipeline = self.build_pipeline()
        if not pipeline.destination.destination_type.endswith(".postgres"):
            yield pipeline
            return
        with (
            pipeline.sql_client() as client,
            postgres_lock(client, self.dataset, self.lock_wait_seconds, log),
        ):
            yield pipeline

    @contextmanager
    def _duckdb_pipeline(self, log: Callable[[str], object]) -> Iterator[dlt.Pipeline]:
        path = self._duckdb_file()
        with connect_duckdb(path, self.lock_wait_seconds, log) as connection:
            pipeline = self.build_pipeline(connection)
            try:
                yield pipeline
            except Exception as error:
                if not _out_of_memory(error):
                    raise
                memory = cast(SteppedMemoryDuckDb, pipeline.destination).memory
                raise WarehouseMemoryError(self._memory_advice(memory)) from error

    def _memory_advice(self, memory: LoadMemory) -> str:
        if memory.exhausted:
            return (
                f"CRM_DUCKDB_MEMORY_LIMIT: DuckDB ran out of its {self.duckdb_memory_limit} "
                "while loading; raise CRM_DUCKDB_MEMORY_LIMIT (e.g. 4GB) and run the sync "
                "again, which completes the pending load"
            )
        return (
            f"CRM_DUCKDB_MEMORY_LIMIT: DuckDB ran out of {memory.current_bytes / 1e6:.0f}MB "
            f"while loading, below its {self.duckdb_memory_limit}; run the sync again, which "
            "completes the pending load with more memory, up to CRM_DUCKDB_MEMORY_LIMIT"
        )

    def loader_file_format(self) -> str | None:
        """Parquet where the destination loads it natively, else dlt's preferred format."""
        return "parquet" if self.destination in PARQUET_DESTINATIONS else None


def _bound(environ: Mapping[str, str], **fields: str) -> dict[str, Any]:
    """``EnvVar`` bindings for the fields whose variable is set; unset ones keep defaults.

    A variable named in ``INTEGER_VARIABLES`` is bound as a whole number.
    """
    return {
        field: EnvVar.int(var) if var in INTEGER_VARIABLES else EnvVar(var)
        for field, var in fields.items()
        if environ.get(var)
    }


def crm_resources(
    names: CrmNames = DEFAULT_NAMES,
    environ: Mapping[str, str] | None = None,
    given: Mapping[str, Any] | None = None,
    base_url_env: str = "CRM_BASE_URL",
    access_token_env: str = "CRM_ACCESS_TOKEN",
) -> dict[str, Any]:
    """One CRM's resources under its resource keys, bound to the variables that are set.

    Values are resolved by Dagster at run time; only which variables are set is read here.
    The URL is always bound: a run without it fails naming its variable. The default CRM
    reads ``CRM_DATASET`` and ``CRM_DUCKDB_PATH``, and its token falls back to the seed's
    ``access_token`` in ``.dlt/secrets.toml``; any other CRM's token is always bound to its
    own variable. ``given`` holds values set in ``defs.yaml`` (and derived from the key
    prefix), which no variable overrides.
    """
    env = os.environ if environ is None else environ
    given = dict(given or {})
    lock_wait = LOCK_WAIT_VARIABLE if env.get(LOCK_WAIT_VARIABLE) else OLD_LOCK_WAIT_VARIABLE
    variables = {
        "destination": "CRM_DESTINATION",
        "duckdb_memory_limit": "CRM_DUCKDB_MEMORY_LIMIT",
        "pipelines_dir": "CRM_PIPELINES_DIR",
        "lock_wait_seconds": lock_wait,
        "deletes": "CRM_DELETES",
        "sweep_max_share": "CRM_SWEEP_MAX_SHARE",
    }
    if names.is_default:
        variables |= {"duckdb_path": "CRM_DUCKDB_PATH", "dataset": "CRM_DATASET"}
    fields = set(CrmWarehouseResource.model_fields)
    warehouse = {key: value for key, value in given.items() if key in fields}
    bound = {field: var for field, var in variables.items() if field not in warehouse}
    api: dict[str, Any] = {"base_url": EnvVar(base_url_env)}
    if not names.is_default or env.get(access_token_env):
        api["access_token"] = EnvVar(access_token_env)
    api |= _bound(env, sync_start="CRM_SYNC_START") if "sync_start" not in given else {}
    api |= {key: value for key, value in given.items() if key in CrmApiResource.model_fields}
    return {
        names.dlt_resource: CrmDltResource(),
        names.api_resource: CrmApiResource(**api),
        names.warehouse_resource: CrmWarehouseResource(
            pipeline_name=names.pipeline, **_bound(env, **bound), **warehouse
        ),
    }
