"""Opening the DuckDB file, waiting while another process holds its lock.

DuckDB lets one process write a file at a time. The pool limit of ``deploy/dagster.yaml``
keeps syncs from overlapping, but an instance without it (a user's own ``DAGSTER_HOME``,
``dg dev``, a new Dagster+ deployment) can start a second sync, or a checks run, while one
is writing. Instead of failing on the lock, the newcomer waits for it, saying so in its log,
for at most ``CRM_DUCKDB_LOCK_WAIT_SECONDS``.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from pathlib import Path

import duckdb

DEFAULT_LOCK_WAIT_SECONDS = 900
"""How long a sync waits for another process to release the DuckDB file."""

_LOCKED = "Could not set lock on file"
_HOLDER = re.compile(r"Conflicting lock is held in (?P<holder>.+?)(?:\. See also|$)")
_FIRST_DELAY, _MAX_DELAY = 0.5, 5.0


class WarehouseLockedError(RuntimeError):
    """The DuckDB file stayed locked by another process for longer than allowed."""


def _holder(message: str) -> str:
    match = _HOLDER.search(message)
    return match["holder"] if match else "another process"


def connect(
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
            if _LOCKED not in str(error):
                raise
            holder = _holder(str(error))
            left = deadline - clock()
            if left <= 0:
                raise WarehouseLockedError(
                    f"CRM_DUCKDB_LOCK_WAIT_SECONDS: the DuckDB file {path} is still locked by "
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
