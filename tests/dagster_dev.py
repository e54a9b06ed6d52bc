"""`dagster dev` as a user starts it (webserver and daemon), reached through its GraphQL API.

Waits are on the server's own state (run statuses, event logs), checked up to a bound
(``tests/waiting.py``), never a fixed sleep.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import requests

from tests.postgres import free_port
from tests.waiting import wait_until

EVERY = 1.0
"""Seconds between two looks at dagster dev's state."""

ROOT = Path(__file__).resolve().parent.parent
STARTUP_SECONDS = 120
ACTIVE = {"QUEUED", "NOT_STARTED", "STARTING", "STARTED", "CANCELING"}

DEFINITIONS = """
{ repositoriesOrError { ... on RepositoryConnection { nodes {
    name location { name } jobs { name }
    schedules { name scheduleState { id } } sensors { name sensorState { id } } } } }
  assetNodes { assetKey { path } automationCondition { label } } }
"""
RUNS = """
{ runsOrError { ... on Runs { results {
    runId status jobName tags { key value } startTime endTime
    stepStats { stepKey startTime endTime status } } } } }
"""
LAUNCH = """
mutation($params: ExecutionParams!) {
  launchRun(executionParams: $params) {
    __typename
    ... on LaunchRunSuccess { run { runId } }
    ... on PythonError { message }
  }
}
"""
MESSAGES = """
query($id: ID!) { logsForRun(runId: $id) { ... on EventConnection { events {
    ... on MessageEvent { message } } } } }
"""
EVALUATIONS = """
query($path: [String!]!) {
  assetConditionEvaluationRecordsOrError(assetKey: {path: $path}, limit: 500) {
    ... on AssetConditionEvaluationRecords { records { numRequested runIds } } } }
"""
BACKFILLS = """
{ partitionBackfillsOrError { ... on PartitionBackfills { results {
    id status numPartitions tags { key value } } } } }
"""
STOP_SENSOR = "mutation($id: String!) { stopSensor(id: $id) { __typename } }"
STOP_SCHEDULE = "mutation($id: String!) { stopRunningSchedule(id: $id) { __typename } }"


class DagsterDev:
    """A running `dagster dev`."""

    def __init__(self, url: str) -> None:
        self.url = url

    def graphql(self, query: str, **variables: Any) -> dict[str, Any]:
        response = requests.post(
            f"{self.url}/graphql", json={"query": query, "variables": variables}, timeout=60
        )
        response.raise_for_status()
        body: dict[str, Any] = response.json()
        assert "errors" not in body, body
        return body["data"]

    def definitions(self) -> dict[str, Any]:
        return self.graphql(DEFINITIONS)

    def repository(self) -> dict[str, Any]:
        [repository] = self.definitions()["repositoriesOrError"]["nodes"]
        return repository

    def runs(self) -> list[dict[str, Any]]:
        results: list[dict[str, Any]] = self.graphql(RUNS)["runsOrError"]["results"]
        for run in results:
            run["tags"] = {tag["key"]: tag["value"] for tag in run["tags"]}
        return results

    def _launch(
        self,
        selector: dict[str, Any],
        config: dict[str, Any] | None,
        tags: dict[str, str] | None = None,
    ) -> str:
        repository = self.repository()
        selector = {
            "repositoryLocationName": repository["location"]["name"],
            "repositoryName": repository["name"],
            **selector,
        }
        params: dict[str, Any] = {"selector": selector, "runConfigData": config or {}}
        if tags:
            metadata = [{"key": key, "value": value} for key, value in tags.items()]
            params["executionMetadata"] = {"tags": metadata}
        launched = self.graphql(LAUNCH, params=params)["launchRun"]
        assert launched["__typename"] == "LaunchRunSuccess", launched
        return str(launched["run"]["runId"])

    def launch_job(self, job_name: str, config: dict[str, Any] | None = None) -> str:
        """Launch a job from its launchpad."""
        return self._launch({"jobName": job_name}, config)

    def launch_assets(self, paths: Iterable[list[str]], partition: str) -> str:
        """Materialize a partition of assets as the UI's Materialize button does."""
        selection = [{"path": path} for path in paths]
        selector = {"jobName": "__ASSET_JOB", "assetSelection": selection}
        return self._launch(selector, None, {"dagster/partition": partition})

    def backfills(self) -> list[dict[str, Any]]:
        """Every backfill, as the Backfills page lists them."""
        found = self.graphql(BACKFILLS)["partitionBackfillsOrError"]
        results: list[dict[str, Any]] = found.get("results", [])
        for backfill in results:
            backfill["tags"] = {tag["key"]: tag["value"] for tag in backfill["tags"]}
        return results

    def messages(self, run_id: str) -> list[str]:
        events = self.graphql(MESSAGES, id=run_id)["logsForRun"].get("events", [])
        return [event["message"] for event in events if event.get("message")]

    def evaluations(self, path: list[str]) -> list[dict[str, Any]]:
        found = self.graphql(EVALUATIONS, path=path)["assetConditionEvaluationRecordsOrError"]
        records: list[dict[str, Any]] = found.get("records", [])
        return records

    def stop_instigators(self, keep: Iterable[str] = ()) -> None:
        """Stop every schedule and sensor but those named in ``keep``."""
        repository = self.repository()
        for sensor in repository["sensors"]:
            if sensor["name"] not in keep:
                self.graphql(STOP_SENSOR, id=sensor["sensorState"]["id"])
        for schedule in repository["schedules"]:
            if schedule["name"] not in keep:
                self.graphql(STOP_SCHEDULE, id=schedule["scheduleState"]["id"])

    def quiesce(self, seconds: float = 240) -> list[dict[str, Any]]:
        """Stop launching runs, wait for the ones in flight to end; every run, finished."""
        self.stop_instigators()
        wait_until(
            lambda: not any(run["status"] in ACTIVE for run in self.runs()),
            seconds,
            "runs were still in progress",
            every=EVERY,
        )
        return self.runs()


def loaded(dev: DagsterDev) -> bool:
    try:
        return bool(dev.definitions()["repositoriesOrError"].get("nodes"))
    except (requests.RequestException, AssertionError):
        return False


@contextmanager
def running(env: dict[str, str], home: Path) -> Iterator[DagsterDev]:
    """`dagster dev -w workspace.yaml` on a free loopback port with ``DAGSTER_HOME=home``."""
    port = free_port()
    dagster = str(Path(sys.executable).parent / "dagster")
    command = [dagster, "dev", "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(port)]
    process = subprocess.Popen(
        command,
        cwd=ROOT,
        env={**os.environ, **env, "DAGSTER_HOME": str(home)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    dev = DagsterDev(f"http://127.0.0.1:{port}")
    try:
        wait_until(lambda: loaded(dev), STARTUP_SECONDS, "dagster dev did not load", every=EVERY)
        yield dev
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=30)


def overlapping(runs: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """Pairs of warehouse steps of different runs that ran at the same time."""
    steps = [
        (run["runId"], step["stepKey"], step["startTime"], step["endTime"])
        for run in runs
        for step in run["stepStats"]
        if step["startTime"] is not None
    ]
    found = []
    for index, (run, key, start, end) in enumerate(steps):
        for other, other_key, other_start, other_end in steps[index + 1 :]:
            if run != other and start < (other_end or 1e12) and other_start < (end or 1e12):
                found.append((f"{run}:{key}", f"{other}:{other_key}"))
    return found
