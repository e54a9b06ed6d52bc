"""A sync that finds the DuckDB file locked by another process waits for it, bounded."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest

from crm_assets.warehouse_lock import WarehouseLockedError, connect_duckdb

HOLD = (
    "import duckdb, sys; c = duckdb.connect(sys.argv[1]); print('held', flush=True); "
    "sys.stdin.read()"
)


@pytest.fixture
def held(tmp_path: Path) -> Iterator[tuple[Path, subprocess.Popen[str]]]:
    """A DuckDB file whose lock another process holds until its stdin is closed."""
    path = tmp_path / "w.duckdb"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
    yield path, holder
    if holder.poll() is None:
        holder.kill()
    holder.wait(timeout=30)


def test_a_locked_file_is_waited_for_and_then_opened(
    held: tuple[Path, subprocess.Popen[str]],
) -> None:
    path, holder = held
    lines: list[str] = []
    waiting = threading.Event()
    opened: list[duckdb.DuckDBPyConnection] = []

    def log(line: str) -> None:
        lines.append(line)
        waiting.set()

    worker = threading.Thread(target=lambda: opened.append(connect_duckdb(path, 120, log)))
    worker.start()
    assert waiting.wait(timeout=60), "the sync did not notice the lock"
    assert holder.stdin is not None
    holder.stdin.close()
    worker.join(timeout=120)

    assert not worker.is_alive()
    [connection] = opened
    assert connection.sql("select 42").fetchall() == [(42,)]
    connection.close()
    [line] = lines
    assert line.startswith(f"Waiting up to 120s for the DuckDB file {path}: it is locked by ")
    assert f"(PID {holder.pid})" in line


def test_a_lock_held_past_the_wait_fails_naming_the_setting_and_the_holder(
    held: tuple[Path, subprocess.Popen[str]],
) -> None:
    path, holder = held
    lines: list[str] = []

    with pytest.raises(WarehouseLockedError) as raised:
        connect_duckdb(path, 0, lines.append)

    message = str(raised.value)
    assert message.startswith("CRM_WAREHOUSE_LOCK_WAIT_SECONDS: the DuckDB file")
    assert f"(PID {holder.pid})" in message
    assert lines == []


def test_other_errors_opening_the_file_are_not_waited_for(tmp_path: Path) -> None:
    with pytest.raises(duckdb.IOException, match="Cannot open file"):
        connect_duckdb(tmp_path / "no" / "such" / "folder.duckdb", 120, print)
