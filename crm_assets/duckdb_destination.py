"""dlt's DuckDB destination, giving load jobs the memory they need, up to the limit.

DuckDB fills whatever memory it is allowed with cached blocks, so a sync's peak follows
the limit rather than what its merges need; yet a wide table's staging copy needs more
than a narrow one's, whatever its rows. So a sync starts within
``DUCKDB_START_MEMORY_LIMIT``; a load job that fails is retried by dlt (DuckDB's
out-of-memory error is transient to dlt), and each retry doubles the limit, up to
``CRM_DUCKDB_MEMORY_LIMIT``, for the rest of the sync. Raising it for the rest keeps the
limit one value while dlt runs jobs in parallel (``LOAD__WORKERS``). The hook is dlt's
``prepare_load_job_execution``, called before every job after its connection is borrowed.
"""

from __future__ import annotations

import copy
import logging
import threading
from typing import Any

from dlt import Schema
from dlt.destinations import duckdb

from crm_assets.sources.crm.dlt_internals import (
    DestinationCapabilitiesContext,
    DuckDbClient,
    DuckDbClientConfiguration,
    NamingConvention,
    RunnableLoadJob,
)

logger = logging.getLogger(__name__)


class LoadMemory:
    """DuckDB's memory limit for the load jobs of one sync, doubled by every retry.

    A job's n-th retry runs within at least ``start * 2**n``: a job that dlt gave up on in
    one sync (after five attempts) continues with more in the next.

    Args:
        limit_bytes: The most DuckDB may use (``CRM_DUCKDB_MEMORY_LIMIT``).
        start_bytes: Where the sync starts; the limit if that is lower.
    """

    def __init__(self, limit_bytes: int, start_bytes: int) -> None:
        if limit_bytes < 1 or start_bytes < 1:
            raise ValueError(f"memory limits must be positive, got {limit_bytes}, {start_bytes}")
        self.limit_bytes = limit_bytes
        self.start_bytes = min(start_bytes, limit_bytes)
        self.current_bytes = self.start_bytes
        self._lock = threading.Lock()

    @property
    def setting(self) -> str:
        """The current limit as DuckDB's ``memory_limit`` takes it."""
        return f"{self.current_bytes}B"

    def for_attempt(self, retries: int) -> bool:
        """Account for a job about to run after ``retries`` failed attempts.

        Returns:
            Whether this attempt raised the limit.
        """
        with self._lock:
            if retries == 0 or self.exhausted:
                return False
            wanted = max(2 * self.current_bytes, self.start_bytes * 2**retries)
            self.current_bytes = min(self.limit_bytes, wanted)
            return True

    @property
    def exhausted(self) -> bool:
        """Whether loads already run within the whole limit."""
        return self.current_bytes == self.limit_bytes


class SteppedMemoryDuckDbClient(DuckDbClient):
    """DuckDB's job client, setting the sync's current memory limit before every load job."""

    memory: LoadMemory | None = None

    def prepare_load_job_execution(self, job: RunnableLoadJob) -> None:
        """Set DuckDB's memory limit for ``job``, raised if it is a retry."""
        super().prepare_load_job_execution(job)
        if self.memory is None:
            return
        retries = job.job_file_info().retry_count
        if self.memory.for_attempt(retries):
            logger.warning(
                "DuckDB load job %s failed %d time(s); the sync's loads now run within %d "
                "bytes (CRM_DUCKDB_MEMORY_LIMIT: %d)",
                job.job_id(),
                retries,
                self.memory.current_bytes,
                self.memory.limit_bytes,
            )
        self.sql_client.execute_sql(f"SET GLOBAL memory_limit = '{self.memory.setting}'")


class SteppedMemoryDuckDb(duckdb):
    """dlt's ``duckdb`` destination whose load jobs share one :class:`LoadMemory`.

    Its name stays ``duckdb``, so dlt's ``DESTINATION__DUCKDB__*`` settings still apply.
    """

    def __init__(self, memory: LoadMemory, **kwargs: Any) -> None:
        super().__init__(destination_name="duckdb", **kwargs)
        self.memory = memory
        self._capabilities: dict[
            int, tuple[NamingConvention | None, DestinationCapabilitiesContext]
        ] = {}
        self._capabilities_lock = threading.Lock()

    def capabilities(
        self,
        config: DuckDbClientConfiguration | None = None,
        naming: NamingConvention | None = None,
    ) -> DestinationCapabilitiesContext:
        """The destination's capabilities, resolved once per naming convention.

        Without a ``config``, dlt resolves the destination's configuration anew for every
        call, and a sync asks many times. The factory is built for one sync, so
        its settings do not change in between. Each caller gets its own copy, which dlt
        adjusts (the loader file formats).
        """
        if config is not None:
            return super().capabilities(config, naming)
        with self._capabilities_lock:
            _, cached = self._capabilities.get(id(naming), (None, None))
            if cached is None:
                cached = super().capabilities(None, naming)
                self._capabilities[id(naming)] = (naming, cached)
        return copy.copy(cached)

    @property
    def client_class(self) -> type[DuckDbClient]:
        """The client class dlt instantiates."""
        return SteppedMemoryDuckDbClient

    def client(self, schema: Schema, initial_config: Any = None) -> DuckDbClient:
        """The job client dlt asks for, given this sync's memory limit."""
        client = super().client(schema, initial_config)
        if isinstance(client, SteppedMemoryDuckDbClient):
            client.memory = self.memory
        return client
