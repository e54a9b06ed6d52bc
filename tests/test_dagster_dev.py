"""`dagster dev` as users meet it: the location, automation, colliding runs, production instance.

Each test starts its own `dagster dev` (webserver and daemon) and waits on the server's
state; the warehouse is read only after `dagster dev` has stopped launching runs.
"""

from __future__ import annotations

import shutil
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from dagster import DagsterInstance, materialize

from crm_assets.dlt_resource import CrmDltResource
from crm_assets.resources import CrmApiResource
from crm_assets.sources.crm import RESOURCES
from crm_sandbox.server import DEFAULT_TOKEN, CrmSandbox
from tests.conftest import (
    Warehouse,
    crm_assets,
    everything,
    history_start,
    partitions_for_tests,
    run_of,
    today,
)
from tests.dagster_dev import EVERY, ROOT, DagsterDev, overlapping, running
from tests.postgres import fresh_database
from tests.waiting import wait_until

NINE = [["crm", resource.name] for resource in RESOURCES]
pytestmark = pytest.mark.waits_on_daemons


def assert_equal_to_the_crm(crm: CrmSandbox, warehouse: Warehouse) -> None:
    for resource in RESOURCES:
        assert warehouse.live_ids(resource.name) == set(crm.truth(resource.path)), resource.name


def location_env(crm: CrmSandbox, warehouse: Warehouse, **settings: str) -> dict[str, str]:
    return {
        "CRM_BASE_URL": crm.url,
        "CRM_ACCESS_TOKEN": DEFAULT_TOKEN,
        "CRM_HISTORY_START": history_start(),
        **warehouse.env(),
        **settings,
    }


@pytest.fixture
def home(tmp_path: Path) -> Path:
    folder = tmp_path / "dagster_home"
    folder.mkdir()
    return folder


def test_a_ui_materialization_while_a_catch_up_syncs_waits_for_it_without_a_pool_limit(
    own_sandbox: CrmSandbox, tmp_path: Path, home: Path
) -> None:
    """An instance without deploy/dagster.yaml: the second run waits for the DuckDB file."""
    crm, warehouse = own_sandbox, Warehouse(tmp_path)
    holding, released = threading.Event(), threading.Event()

    def hold() -> None:
        holding.set()
        released.wait(timeout=180)

    crm.on_request("/accounts", 1, hold)
    try:
        with running(location_env(crm, warehouse), home) as dev:
            definitions = dev.definitions()
            repository = definitions["repositoriesOrError"]["nodes"][0]
            assert {job["name"] for job in repository["jobs"]} >= {"crm_sync_job"}
            assert {s["name"] for s in repository["schedules"]} == {
                "crm_sync_schedule",
                "crm_sweep_schedule",
            }
            assert {s["name"] for s in repository["sensors"]} == {"crm_automation_sensor"}
            nodes = definitions["assetNodes"]
            assert sorted(node["assetKey"]["path"] for node in nodes) == sorted(NINE)
            assert {node["automationCondition"]["label"] for node in nodes} == {"keep current"}

            assert holding.wait(timeout=120), "the automation sensor launched no backfill"
            ui_run = dev.launch_assets(NINE, today())
            wait_until(
                lambda: any("Waiting up to" in line for line in dev.messages(ui_run)),
                120,
                "the UI's run did not wait for the DuckDB file",
                every=EVERY,
            )
            released.set()
            runs = dev.quiesce()
    finally:
        released.set()

    assert {run["tags"].get("crm/trigger") for run in runs} >= {"automation"}
    assert ui_run in {run["runId"] for run in runs}
    assert {run["status"] for run in runs} == {"SUCCESS"}, runs
    assert_equal_to_the_crm(crm, warehouse)


def test_freshness_drives_a_catch_up_through_declarative_automation(
    own_sandbox: CrmSandbox, tmp_path: Path, home: Path
) -> None:
    """Synced a minute ago with a one-minute warn window: Dagster's freshness daemon turns the
    assets WARN and the automation sensor launches one catch-up, shown in their evaluations."""
    crm, warehouse = own_sandbox, Warehouse(tmp_path)
    shutil.copy(ROOT / "deploy" / "dagster.yaml", home / "dagster.yaml")
    with DagsterInstance.from_config(str(home)) as instance:
        api = CrmApiResource(base_url=crm.url, access_token=DEFAULT_TOKEN)
        resources = {"dlt": CrmDltResource(), "crm_api": api, "warehouse": warehouse.resource()}
        assert materialize(
            [crm_assets()], resources=resources, instance=instance, **run_of(everything(), None)
        )
    settings = {
        "CRM_FRESHNESS_WARN_MINUTES": "1",
        "CRM_FRESHNESS_FAIL_MINUTES": "60",
        "FRESHNESS_DAEMON_INTERVAL_SECONDS": "5",
    }
    crm.modify("/cases", 3)

    def requested(dev: DagsterDev) -> dict[tuple[str, ...], list[list[str]]]:
        """Per asset, the runs of each evaluation that requested a sync of it."""
        return {
            tuple(path): [
                record["runIds"] for record in dev.evaluations(path) if record["numRequested"]
            ]
            for path in NINE
        }

    with running(location_env(crm, warehouse, **settings), home) as dev:
        dev.stop_instigators(keep={"crm_automation_sensor"})
        wait_until(
            lambda: all(requested(dev).values()),
            240,
            "not every asset turned WARN and was caught up",
            every=EVERY,
        )
        runs = dev.quiesce()
        caught_up = requested(dev)

    automation = {
        run["runId"]: run for run in runs if run["tags"].get("crm/trigger") == "automation"
    }
    assert {run["status"] for run in automation.values()} == {"SUCCESS"}
    for path, requests in caught_up.items():
        [[run_id]] = requests  # one catch-up per asset, for the one stale state
        assert run_id in automation, path
    assert_equal_to_the_crm(crm, warehouse)


@pytest.fixture
def production_home(home: Path, postgres_admin_url: str) -> Iterator[tuple[Path, str]]:
    """A DAGSTER_HOME with deploy/production/dagster.yaml and its own Postgres database."""
    shutil.copy(ROOT / "deploy" / "production" / "dagster.yaml", home / "dagster.yaml")
    with fresh_database(postgres_admin_url) as url:
        yield home, url.replace("postgresql://", "postgresql+psycopg2://", 1)


@pytest.mark.parametrize("warehouse", ["postgres"], indirect=True)
def test_the_production_instance_runs_the_schedule_and_a_sensor_backfill_one_at_a_time(
    own_sandbox: CrmSandbox, warehouse: Warehouse, production_home: tuple[Path, str]
) -> None:
    """Postgres storage, queued runs, the pool limit: the automation sensor emits a backfill
    of the missing partitions (history, with CRM_SYNC_START later than CRM_HISTORY_START),
    the schedule syncs today; none overlap, and the tables equal the CRM."""
    crm = own_sandbox
    home, storage_url = production_home
    # The schedule's one tick: the first minute that starts at least 30 s from now, after
    # dagster dev is up (a tick that passed before the daemon started is not run).
    tick = (datetime.now(UTC) + timedelta(seconds=90)).replace(second=0, microsecond=0)
    sync_start = (datetime.now(UTC) - timedelta(days=2)).strftime("%Y-%m-%dT00:00:00Z")
    settings = {
        "DAGSTER_POSTGRES_URL": storage_url,
        "CRM_SYNC_CRON": f"{tick.minute} {tick.hour} * * *",
        "CRM_SYNC_START": sync_start,
    }

    def done() -> bool:
        backfills = dev.backfills()
        scheduled = [run for run in dev.runs() if run["tags"].get("crm/trigger") == "schedule"]
        return any(backfill["status"].startswith("COMPLETED") for backfill in backfills) and any(
            run["status"] == "SUCCESS" for run in scheduled
        )

    with running(location_env(crm, warehouse, **settings), home) as dev:
        wait_until(done, 300, "no completed backfill and scheduled sync", every=EVERY)
        runs = dev.quiesce()
        backfills = dev.backfills()

    [backfill] = backfills
    assert backfill["status"] in {"COMPLETED", "COMPLETED_SUCCESS"}, backfill
    assert backfill["numPartitions"] == len(partitions_for_tests().get_partition_keys())
    assert backfill["tags"].get("crm/trigger") == "automation"
    assert {run["status"] for run in runs} == {"SUCCESS"}, runs
    assert overlapping(runs) == []
    assert_equal_to_the_crm(crm, warehouse)
