"""`dagster dev` as a user meets it: webserver and daemon, GraphQL, a launched sync."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from crm_assets.constants import SYNC_JOB_NAME
from crm_sandbox.server import DEFAULT_TOKEN, CrmSandbox
from tests.conftest import Warehouse

ROOT = Path(__file__).resolve().parent.parent
STARTUP_SECONDS = 120
RUN_SECONDS = 240

DEFINITIONS_QUERY = """
{ repositoriesOrError { ... on RepositoryConnection { nodes {
    name location { name } jobs { name } schedules { name } sensors { name } } } }
  assetNodes { assetKey { path } } }
"""
LAUNCH = """
mutation($selector: JobOrPipelineSelector!) {
  launchRun(executionParams: {selector: $selector, runConfigData: {}}) {
    __typename
    ... on LaunchRunSuccess { run { runId } }
    ... on PythonError { message }
  }
}
"""
STATUS = "query($id: ID!) { runOrError(runId: $id) { ... on Run { status } } }"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class DagsterDev:
    """A running `dagster dev`, reached through its GraphQL API."""

    def __init__(self, url: str) -> None:
        self.url = url

    def graphql(self, query: str, **variables: Any) -> dict[str, Any]:
        response = requests.post(
            f"{self.url}/graphql", json={"query": query, "variables": variables}, timeout=30
        )
        response.raise_for_status()
        body: dict[str, Any] = response.json()
        assert "errors" not in body, body
        return body["data"]


@pytest.fixture
def dagster_dev(own_sandbox: CrmSandbox, tmp_path: Path) -> Iterator[tuple[DagsterDev, Warehouse]]:
    warehouse = Warehouse(tmp_path)
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(ROOT / "deploy" / "dagster.yaml", home / "dagster.yaml")
    port = free_port()
    env = {
        **os.environ,
        "CRM_BASE_URL": own_sandbox.url,
        "CRM_ACCESS_TOKEN": DEFAULT_TOKEN,
        **warehouse.env(),
        "DAGSTER_HOME": str(home),
    }
    dagster = str(Path(sys.executable).parent / "dagster")
    command = [dagster, "dev", "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(port)]
    process = subprocess.Popen(
        command,
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    dev = DagsterDev(f"http://127.0.0.1:{port}")
    try:
        wait_until(lambda: loaded(dev), STARTUP_SECONDS, "dagster dev did not load the location")
        yield dev, warehouse
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=30)


def loaded(dev: DagsterDev) -> bool:
    try:
        nodes = dev.graphql(DEFINITIONS_QUERY)["repositoriesOrError"].get("nodes", [])
    except (requests.RequestException, AssertionError):
        return False
    return bool(nodes)


def wait_until(condition: Any, seconds: float, message: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, message
        time.sleep(1)


def test_dagster_dev_serves_the_location_and_runs_a_sync(
    dagster_dev: tuple[DagsterDev, Warehouse], own_sandbox: CrmSandbox
) -> None:
    dev, warehouse = dagster_dev

    data = dev.graphql(DEFINITIONS_QUERY)
    [repository] = data["repositoriesOrError"]["nodes"]
    assert {job["name"] for job in repository["jobs"]} >= {SYNC_JOB_NAME}
    assert {schedule["name"] for schedule in repository["schedules"]} == {
        "crm_sync_schedule",
        "crm_sweep_schedule",
    }
    assert {sensor["name"] for sensor in repository["sensors"]} == {
        "crm_automation_sensor",
        "crm_backfill_sensor",
    }
    keys = {tuple(node["assetKey"]["path"]) for node in data["assetNodes"]}
    assert len(keys) == 9 and all(key[0] == "crm" for key in keys)

    selector = {
        "repositoryLocationName": repository["location"]["name"],
        "repositoryName": repository["name"],
        "jobName": SYNC_JOB_NAME,
    }
    launched = dev.graphql(LAUNCH, selector=selector)["launchRun"]
    assert launched["__typename"] == "LaunchRunSuccess", launched
    run_id = launched["run"]["runId"]

    def finished() -> bool:
        status = dev.graphql(STATUS, id=run_id)["runOrError"]["status"]
        assert status not in ("FAILURE", "CANCELED"), status
        return bool(status == "SUCCESS")

    wait_until(finished, RUN_SECONDS, "the launched sync did not finish")
    assert warehouse.ids("accounts") == set(own_sandbox.truth("/accounts"))
    assert warehouse.ids("documents") == warehouse.ids("opportunity_lines")
