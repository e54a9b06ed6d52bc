"""One run at a time on a warehouse: DuckDB's file lock, a Postgres advisory lock.

A sync, and above all a deletion sweep, must not share the warehouse with another run
between its listing and its marks, nor two runs restore and save the same dlt state at
once. The pool of ``deploy/dagster.yaml`` keeps them apart when the instance has it; this
holds on any instance (a user's ``DAGSTER_HOME``, ``dg dev``, a new Dagster+ deployment)
and across deployments sharing one warehouse:

- DuckDB lets one process write a file at a time. A run that finds it locked waits.
- Postgres has no such lock of its own, so every run takes a session-level advisory lock
  named after its dataset, on a connection held for the whole run, before dlt restores
  its state. A run that finds it taken waits (Postgres shows it waiting on an ``advisory``
  lock in ``pg_stat_activity``). A process that dies releases it with its connection.

Either waits at most ``CRM_WAREHOUSE_LOCK_WAIT_SECONDS``, saying who holds the lock.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import duckdb

from crm_assets.sources.crm.dlt_internals import SqlClientBase

DEFAULT_LOCK_WAIT_SECONDS = 900
"""How long a run waits for another run holding the warehouse."""
LOCK_WAIT_VARIABLE = "CRM_WAREHOUSE_LOCK_WAIT_SECONDS"
APPLICATION_NAME = "crm-assets sync"
"""How a run's lock connection shows in ``pg_stat_activity``."""

_DUCKDB_LOCKED = "Could not set lock on file"
_DUCKDB_HOLDER = re.compile(r"Conflicting lock is held in (?P<holder>.+?)(?:\. See also|$)")
_FIRST_DELAY, _MAX_DELAY = 0.5, 5.0
_LOCK_NOT_AVAILABLE = "55P03"
"""Postgres's SQLSTATE for a lock wait that ran out of ``lock_timeout``."""


class WarehouseLockedError(RuntimeError):
    """Another run held the warehouse for longer than a run may wait."""


def _duckdb_holder(message: str) -> str:
    match = _DUCKDB_HOLDER.search(message)
    return match["holder"] if match else "another process"


def connect_duckdb(
    path: Path,
    wait_seconds: float,
    log: Callable[[str], object],
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], object] = time.sleep,
) -> duckdb.DuckDBPyConnection:
    """A connection to the DuckDB file at ``path``, once no other process holds its lock.

    Raises:
        WarehouseLockedError: Still locked after ``wait_seconds``, naming who holds it.
    """
    deadline = clock() + wait_seconds
    delay = _FIRST_DELAY
    waiting = False
    while True:
        try:
            return duckdb.connect(str(path))
        except duckdb.IOException as error:
            if _DUCKDB_LOCKED not in str(error):
                raise
            holder = _duckdb_holder(str(error))
            left = deadline - clock()
            if left <= 0:
                raise WarehouseLockedError(
                    f"{LOCK_WAIT_VARIABLE}: the DuckDB file {path} is still locked by "
                    f"{holder} after {wait_seconds:.0f}s; let that sync finish (or stop the "
                    "program reading the file), then run this one again"
                ) from error
            if not waiting:
                log(
                    f"Waiting up to {wait_seconds:.0f}s for the DuckDB file {path}: it is "
                    f"locked by {holder}, another sync or a program reading the warehouse"
                )
                waiting = True
            sleep(min(delay, left))
            delay = min(delay * 2, _MAX_DELAY)


def advisory_key(dataset: str) -> int:
    """The advisory lock of ``dataset``: a signed 64-bit number derived from its name."""
    digest = hashlib.blake2b(f"crm-assets:{dataset}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def _postgres_holder(client: SqlClientBase[Any], key: int) -> str:
    rows = client.execute_sql(
        "select a.pid, a.application_name, a.backend_start from pg_locks l "
        "join pg_stat_activity a on a.pid = l.pid where l.locktype = 'advisory' "
        "and l.granted and l.classid::bigint = %s and l.objid::bigint = %s",
        (key >> 32) & 0xFFFFFFFF,
        key & 0xFFFFFFFF,
    )
    if not rows:
        return "another session"
    pid, application, since = rows[0]
    return f"PID {pid} ({application or 'no application name'}, connected {since})"


def _ran_out_of_time(error: BaseException) -> bool:
    cause: BaseException | None = error
    while cause is not None:
        if getattr(cause, "pgcode", None) == _LOCK_NOT_AVAILABLE:
            return True
        cause = cause.__cause__ or cause.__context__
    return False


@contextmanager
def postgres_lock(
    client: SqlClientBase[Any], dataset: str, wait_seconds: float, log: Callable[[str], object]
) -> Iterator[None]:
    """Hold the advisory lock of ``dataset`` on ``client``'s connection while in the block.

    Raises:
        WarehouseLockedError: Another session held it for longer than ``wait_seconds``.
    """
    key = advisory_key(dataset)
    client.execute_sql(f"set application_name = '{APPLICATION_NAME}'")
    [(taken,)] = client.execute_sql("select pg_try_advisory_lock(%s)", key) or [(False,)]
    if not taken:
        holder = _postgres_holder(client, key)
        message = f"the dataset {dataset} is held by {holder}, another sync on this warehouse"
        if wait_seconds <= 0:
            raise WarehouseLockedError(f"{LOCK_WAIT_VARIABLE}: {message}; run this one later")
        log(f"Waiting up to {wait_seconds:.0f}s for the warehouse: {message}")
        client.execute_sql(f"set lock_timeout = {int(wait_seconds * 1000)}")
        try:
            client.execute_sql("select pg_advisory_lock(%s)", key)
        except Exception as error:
            if not _ran_out_of_time(error):
                raise
            raise WarehouseLockedError(
                f"{LOCK_WAIT_VARIABLE}: {message}, still after {wait_seconds:.0f}s; let that "
                "sync finish, then run this one again"
            ) from error
        client.execute_sql("set lock_timeout = 0")
    try:
        yield
    finally:
        client.execute_sql("select pg_advisory_unlock(%s)", key)
