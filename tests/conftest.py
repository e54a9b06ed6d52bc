"""Shared fixtures: a sandbox CRM on loopback and a clean CRM_* environment."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator, Mapping
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import psycopg2
import pytest
from dagster import (
    AssetsDefinition,
    AssetSelection,
    DagsterInstance,
    DailyPartitionsDefinition,
    ExecuteInProcessResult,
    PartitionKeyRange,
    materialize,
)

from crm_assets.assets import build_crm_assets
from crm_assets.checks import build_crm_checks
from crm_assets.constants import TRIGGER_TAG
from crm_assets.dlt_resource import CrmDltResource
from crm_assets.partitions import crm_partitions, latest_key, range_tags
from crm_assets.resources import CrmApiResource, CrmWarehouseResource
from crm_sandbox.server import DEFAULT_TOKEN, CrmSandbox
from tests.postgres import fresh_database, postgres_server

TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"
SANDBOX_RECORDS = 250
"""Three pages per path: two full, one short."""
HISTORY_DAYS = 7
"""The tests' partitions begin this many days before today; the first one also holds every
record before it (the sandbox's data spans 2024 and 2025), so ranges stay a few days long."""


def history_start() -> str:
    """``CRM_HISTORY_START`` of the tests: midnight UTC a week ago."""
    start = datetime.now(UTC) - timedelta(days=HISTORY_DAYS)
    return start.strftime("%Y-%m-%dT00:00:00Z")


def partitions_for_tests() -> DailyPartitionsDefinition:
    """The partitions the tests' assets carry: from a week ago through today."""
    return crm_partitions(history_start())


def crm_assets(destination: str = "duckdb") -> AssetsDefinition:
    """The nine assets as the code location builds them, on the tests' partitions."""
    return build_crm_assets(destination, partitions_for_tests())


def today() -> str:
    """Today's partition key."""
    return latest_key(partitions_for_tests(), datetime.now(UTC))


def everything() -> PartitionKeyRange:
    """The first partition through today's: every record."""
    partitions = partitions_for_tests()
    return PartitionKeyRange(partitions.get_first_partition_key() or today(), today())


def run_of(keys: PartitionKeyRange | None, trigger: str | None) -> dict[str, Any]:
    """``materialize`` arguments of a run of today's partition (``keys`` None) or of one range
    of partitions, tagged with what launched it (None: the UI)."""
    tags = {TRIGGER_TAG: trigger} if trigger else {}
    if keys is None:
        return {"partition_key": today(), "tags": tags}
    return {"tags": {**range_tags(keys), **tags}}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Start the tests that mostly wait on Dagster's daemons first, on different workers.

    ``make test`` runs ``pytest -n 4 --dist load --maxschedchunk 1``: pytest-xdist first gives
    each worker two consecutive tests, so a waiting test every second place lands on its own
    worker, and the other tests run beside the waits.
    """
    waiting = [item for item in items if item.get_closest_marker("waits_on_daemons")]
    others = [item for item in items if not item.get_closest_marker("waits_on_daemons")]
    ordered: list[pytest.Item] = []
    for waiter in waiting:
        ordered += [waiter, *others[:1]]
        others = others[1:]
    items[:] = ordered + others


@pytest.fixture(scope="session")
def sandbox() -> Iterator[CrmSandbox]:
    """A read-only sandbox shared by the session; tests that change data make their own."""
    with CrmSandbox(records=SANDBOX_RECORDS) as crm:
        yield crm


@pytest.fixture
def own_sandbox() -> Iterator[CrmSandbox]:
    """A small sandbox of this test alone, free to modify and to fault."""
    with CrmSandbox(records=120, seed=11) as crm:
        yield crm


def strip_crm_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """Remove every CRM_* setting and dlt token from the environment for one test.

    ``CRM_TEST_*`` variables are the tests' own settings (``tests/postgres.py``) and stay.
    """
    for name in list(os.environ):
        if name.startswith("CRM_TEST_"):
            continue
        if name.startswith("CRM_") or name in ("ACCESS_TOKEN", "CRM__ACCESS_TOKEN"):
            monkeypatch.delenv(name)


@pytest.fixture
def waits(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Record every wait instead of sleeping, moving ``time.monotonic`` on by it.

    Time passes for whatever reads the clock as if the waits had been slept: a retry's
    backoff and the request pacer's pause overlap as they do in a real sync, so a test sees
    the waits a real sync would make.
    """
    recorded: list[float] = []
    real_monotonic = time.monotonic
    monkeypatch.setattr(time, "monotonic", lambda: real_monotonic() + sum(recorded))
    monkeypatch.setattr(time, "sleep", recorded.append)
    return recorded


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No CRM_* setting or dlt token leaks in from the developer's shell."""
    strip_crm_settings(monkeypatch)


class Warehouse:
    """A warehouse under test (DuckDB under ``tmp_path``, or a Postgres database) and dlt's
    working folder under ``tmp_path``."""

    def __init__(self, root: Path, postgres_url: str | None = None) -> None:
        self.path = root / "warehouse" / "crm_warehouse.duckdb"
        self.pipelines_dir = root / "pipelines"
        self.postgres_url = postgres_url
        self.destination = "postgres" if postgres_url else "duckdb"

    def resource(self, **settings: Any) -> CrmWarehouseResource:
        return CrmWarehouseResource(
            destination=self.destination,
            duckdb_path=str(self.path),
            pipelines_dir=str(self.pipelines_dir),
            **settings,
        )

    def env(self) -> dict[str, str]:
        """The documented variables that point a ``dagster`` process at this warehouse."""
        env = {"CRM_DESTINATION": self.destination, "CRM_PIPELINES_DIR": str(self.pipelines_dir)}
        if self.postgres_url:
            return {**env, "DESTINATION__POSTGRES__CREDENTIALS": self.postgres_url}
        return {**env, "CRM_DUCKDB_PATH": str(self.path)}

    def query(self, sql: str) -> list[tuple[Any, ...]]:
        if self.postgres_url:
            with (
                closing(psycopg2.connect(self.postgres_url)) as connection,
                connection.cursor() as cursor,
            ):
                cursor.execute(sql)
                return cursor.fetchall()
        with duckdb.connect(str(self.path), read_only=True) as connection:
            return connection.sql(sql).fetchall()

    def execute(self, sql: str) -> None:
        """Run one statement that returns nothing (DDL, a change made behind the sync's back)."""
        if self.postgres_url:
            with (
                closing(psycopg2.connect(self.postgres_url)) as connection,
                connection,
                connection.cursor() as cursor,
            ):
                cursor.execute(sql)
            return
        with duckdb.connect(str(self.path)) as connection:
            connection.execute(sql)

    def ids(self, table: str) -> set[str]:
        return {row[0] for row in self.query(f"select id from crm.{table}")}

    def live_ids(self, table: str) -> set[str]:
        """Ids of the rows not marked deleted."""
        rows = self.query(f"select id from crm.{table} where _crm_deleted_at is null")
        return {row[0] for row in rows}

    def deleted_ids(self, table: str) -> set[str]:
        """Ids of the rows a sweep marked deleted."""
        rows = self.query(f"select id from crm.{table} where _crm_deleted_at is not null")
        return {row[0] for row in rows}

    def cursors(self, table: str) -> dict[str, str]:
        """Every id with its ``modifiedtime`` formatted as the CRM sends it."""
        rows = self.query(f"select id, modifiedtime from crm.{table}")
        assert len(rows) == len({row[0] for row in rows}), f"duplicate ids in {table}"
        return {key: value.astimezone(UTC).strftime(TIME_FORMAT) for key, value in rows}

    def cursor(self, resource: str) -> str | None:
        """The incremental cursor of ``resource`` as dlt stored it in the destination."""
        pipeline = self.resource().build_pipeline()
        pipeline.sync_destination()
        resources = pipeline.state.get("sources", {}).get("crm", {}).get("resources", {})
        value = resources.get(resource, {}).get("incremental", {}).get("modifiedtime", {})
        return value.get("last_value")

    def tables(self) -> set[str]:
        rows = self.query(
            "select table_name from information_schema.tables where table_schema = 'crm'"
        )
        return {row[0] for row in rows}


def snapshot(warehouse: Warehouse) -> dict[str, Any]:
    """Every DuckDB table's column types and rows, without dlt's random ids and load ids.

    Columns are compared by name, not position; child rows are keyed by their parent's id.
    """
    found: dict[str, Any] = {}
    with duckdb.connect(str(warehouse.path), read_only=True) as connection:
        for (table,) in connection.sql(
            "select table_name from information_schema.tables where table_schema = 'crm' "
            "and table_name not like '\\_dlt%' escape '\\' order by 1"
        ).fetchall():
            types = connection.sql(
                "select column_name, data_type from information_schema.columns "
                f"where table_schema = 'crm' and table_name = '{table}' order by 1"
            ).fetchall()
            found[f"{table} columns"] = types
            if "__" in table:
                parent = table.split("__")[0]
                sql = (
                    f"select p.id, c._dlt_list_idx, c.value from crm.{table} c "
                    f"join crm.{parent} p on c._dlt_parent_id = p._dlt_id order by all"
                )
            else:
                names = [name for name, _ in types if name not in ("_dlt_id", "_dlt_load_id")]
                sql = f"select {', '.join(names)} from crm.{table} order by id"
            found[table] = connection.sql(sql).fetchall()
    return found


@pytest.fixture(scope="session")
def postgres_admin_url() -> Iterator[str]:
    """A real PostgreSQL server for the session (see ``tests/postgres.py``)."""
    with postgres_server() as url:
        yield url


on_every_destination = pytest.mark.parametrize("warehouse", ["duckdb", "postgres"], indirect=True)
"""Run a test against DuckDB and against a real Postgres database, with the same assertions."""


@pytest.fixture
def warehouse(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Warehouse]:
    """A DuckDB warehouse, or a fresh Postgres database configured the dlt way."""
    if getattr(request, "param", "duckdb") == "duckdb":
        yield Warehouse(tmp_path)
        return
    with fresh_database(request.getfixturevalue("postgres_admin_url")) as url:
        monkeypatch.setenv("DESTINATION__POSTGRES__CREDENTIALS", url)
        yield Warehouse(tmp_path, postgres_url=url)


def sync(
    crm: CrmSandbox,
    warehouse: Warehouse,
    token: str = DEFAULT_TOKEN,
    selection: AssetSelection | None = None,
    raise_on_error: bool = True,
    partitions: PartitionKeyRange | None = None,
    sweep: bool = False,
    instance: DagsterInstance | None = None,
    storage: Mapping[str, str] | None = None,
    trigger: str | None = None,
    **api: Any,
) -> ExecuteInProcessResult:
    """Materialize the CRM assets against ``crm`` into ``warehouse``.

    Today's incremental sync, as the schedule runs it, unless ``partitions`` asks for one run
    of a range of partitions (as the UI launches it, unless ``trigger`` is given); a deletion
    sweep of every partition with ``sweep``; ``storage`` sets fields of the warehouse resource.
    """
    config: dict[str, Any] = {"sweep_deletes": True} if sweep else {}
    if sweep and partitions is None:
        partitions, trigger = everything(), trigger or "sweep"
    if partitions is None:
        trigger = trigger or "schedule"
    assets = crm_assets(warehouse.destination)
    return materialize(
        [assets, build_crm_checks(assets.keys)],
        selection=selection,
        instance=instance,
        resources={
            "dlt": CrmDltResource(),
            "crm_api": CrmApiResource(base_url=crm.url, access_token=token, **api),
            "warehouse": warehouse.resource(**(storage or {})),
        },
        raise_on_error=raise_on_error,
        run_config={"ops": {"crm_dlt_assets": {"config": config}}} if config else None,
        **run_of(partitions, trigger),
    )


def load_all(crm: CrmSandbox, warehouse: Warehouse, **settings: Any) -> ExecuteInProcessResult:
    """One run of every partition, as the first backfill loads a new warehouse."""
    return sync(crm, warehouse, partitions=everything(), **settings)


def materialized(result: ExecuteInProcessResult) -> dict[str, dict[str, Any]]:
    """The metadata values of each asset's materialization in a run, by resource name."""
    events = (event.materialization for event in result.get_asset_materialization_events())
    return {
        event.asset_key.path[-1]: {key: value.value for key, value in event.metadata.items()}
        for event in events
    }
