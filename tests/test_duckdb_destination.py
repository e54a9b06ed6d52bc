"""DuckDB load jobs start within 64MB and a job that runs out is retried within more."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

import dlt
import pyarrow as pa
import pytest
from dlt.common.schema import Schema

from crm_assets.duckdb_destination import LoadMemory, SteppedMemoryDuckDb
from crm_assets.resources import CrmWarehouseResource
from crm_assets.sources.crm import crm_source
from crm_assets.sources.crm.source import SyncOptions
from crm_sandbox.server import DEFAULT_TOKEN, CrmSandbox
from tests.conftest import Warehouse, snapshot

MB = 1_000_000
OPTIONS = SyncOptions(columnar=True, concurrency=4)


def text_table(rows: int, columns: int) -> pa.Table:
    """An id and ``columns`` columns of random 64-character text."""
    data = {"id": [str(row) for row in range(rows)]}
    for column in range(columns):
        data[f"c{column}"] = [secrets.token_hex(32) for _ in range(rows)]
    return pa.table(data)


def load(tmp_path: Path, table: pa.Table) -> tuple[list[int], str, int]:
    """Merge ``table`` through the sync's held connection with the default memory limits.

    Returns:
        The retries of every completed job, DuckDB's memory limit afterwards, rows loaded.
    """
    warehouse = CrmWarehouseResource(
        duckdb_path=str(tmp_path / "w.duckdb"), pipelines_dir=str(tmp_path / "pipelines")
    )
    with warehouse.run_pipeline() as pipeline:
        info = pipeline.run(
            table,
            table_name="wide",
            write_disposition="merge",
            primary_key="id",
            loader_file_format="parquet",
        )
        with pipeline.sql_client() as client:
            [(limit, rows)] = client.execute_sql(
                "select current_setting('memory_limit'), count(*) from wide"
            )
    jobs = info.load_packages[0].jobs["completed_jobs"]
    return [job.job_file_info.retry_count for job in jobs], str(limit), int(rows)


def test_a_narrow_table_loads_within_the_starting_64mb(tmp_path: Path) -> None:
    retries, limit, rows = load(tmp_path, text_table(rows=5000, columns=4))

    assert set(retries) == {0}
    assert limit == "61.0 MiB"  # 64MB
    assert rows == 5000


def test_a_wide_table_is_retried_within_twice_the_memory_until_it_loads(tmp_path: Path) -> None:
    retries, limit, rows = load(tmp_path, text_table(rows=5000, columns=120))

    assert max(retries) == 2  # its staging copy ran out of 64MB, then of 128MB
    assert limit == "244.1 MiB"  # 256MB, kept for the rest of the sync
    assert rows == 5000


def test_long_text_is_retried_within_more_memory_until_it_loads(tmp_path: Path) -> None:
    texts = [secrets.token_hex(1000) for _ in range(3000)]  # 2,000 characters each
    columns = {f"note{n}": texts[n:] + texts[:n] for n in range(12)}
    table = pa.table({"id": [str(row) for row in range(3000)], **columns})

    retries, limit, rows = load(tmp_path, table)

    assert max(retries) >= 1
    assert limit == "244.1 MiB"  # 256MB; the fixed 128MB of before did not load it
    assert rows == 3000


def test_load_memory_doubles_on_retries_up_to_the_limit_and_stays() -> None:
    memory = LoadMemory(limit_bytes=1000 * MB, start_bytes=64 * MB)

    assert memory.setting == "64000000B"
    assert memory.for_attempt(0) is False
    assert memory.for_attempt(1) is True
    assert memory.current_bytes == 128 * MB
    assert memory.for_attempt(0) is False
    assert memory.for_attempt(1) is True
    assert memory.current_bytes == 256 * MB
    assert memory.for_attempt(4) is True
    assert memory.current_bytes == 1000 * MB
    assert memory.exhausted
    assert memory.for_attempt(1) is False


def test_a_job_retried_in_an_earlier_sync_continues_with_more() -> None:
    memory = LoadMemory(limit_bytes=8000 * MB, start_bytes=64 * MB)

    memory.for_attempt(5)  # dlt gave up after five attempts in the last sync

    assert memory.current_bytes == 64 * MB * 32
    assert LoadMemory(limit_bytes=32 * MB, start_bytes=64 * MB).setting == "32000000B"
    with pytest.raises(ValueError, match="positive"):
        LoadMemory(limit_bytes=0, start_bytes=1)


def test_capabilities_are_resolved_once_per_naming_and_each_caller_gets_a_copy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    destination = SteppedMemoryDuckDb(
        LoadMemory(128 * MB, 64 * MB), credentials=str(tmp_path / "w.duckdb")
    )
    explicit = destination.configuration(destination.spec(), accept_partial=True)
    resolved: list[bool] = []
    configuration = destination.configuration

    def counting(initial: Any, accept_partial: bool = False) -> Any:
        resolved.append(accept_partial)
        return configuration(initial, accept_partial=accept_partial)

    monkeypatch.setattr(destination, "configuration", counting)
    naming = Schema("crm").naming

    first = destination.capabilities(naming=naming)
    first.preferred_loader_file_format = "parquet"
    second = destination.capabilities(naming=naming)
    destination.capabilities()
    destination.capabilities(config=explicit)

    assert second is not first
    assert second.preferred_loader_file_format == "insert_values"
    assert second.supported_loader_file_formats == first.supported_loader_file_formats
    assert resolved == [True, True]  # this naming, then no naming; none for an explicit config


def test_our_duckdb_loads_the_tables_dlts_own_loads(tmp_path: Path) -> None:
    ours, plain = Warehouse(tmp_path / "ours"), Warehouse(tmp_path / "plain")
    plain.path.parent.mkdir(parents=True)
    plain_pipeline = dlt.pipeline(
        "plain",
        destination=dlt.destinations.duckdb(str(plain.path)),
        dataset_name="crm",
        pipelines_dir=str(plain.pipelines_dir),
    )
    with CrmSandbox(records=150, seed=13) as crm:

        def load_both() -> None:
            source = crm_source(base_url=crm.url, access_token=DEFAULT_TOKEN, options=OPTIONS)
            with ours.resource().run_pipeline() as pipeline:
                pipeline.run(source, loader_file_format="parquet")
            source = crm_source(base_url=crm.url, access_token=DEFAULT_TOKEN, options=OPTIONS)
            plain_pipeline.run(source, loader_file_format="parquet")

        crm.modify("/accounts", 2, {"isActive": "not sure"})
        load_both()
        first = snapshot(ours)
        assert first == snapshot(plain)
        crm.modify("/accounts", 5, {"Tags": ["moved"]})
        crm.add("/cases", 4)
        load_both()
        second = snapshot(ours)

    assert second == snapshot(plain)
    assert len(second["cases"]) == 154 and first != second
