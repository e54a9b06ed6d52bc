"""A sync in its own process, killed at a chosen moment."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from dagster import PartitionKeyRange

from crm_sandbox.server import DEFAULT_TOKEN, CrmSandbox
from tests.conftest import Warehouse, history_start, run_of


def start_sync_process(
    crm: CrmSandbox,
    warehouse: Warehouse,
    home: Path,
    config: Path | None = None,
    settings: dict[str, str] | None = None,
    partitions: PartitionKeyRange | None = None,
    trigger: str | None = "schedule",
) -> subprocess.Popen[bytes]:
    """``dagster job execute`` of the sync job (with a run config file) in its own group.

    Today's incremental sync as the schedule launches it, unless ``partitions`` asks for one
    run of a range. ``settings`` are environment variables on top of the warehouse's, e.g. a
    dlt working folder of its own, as a run on another machine has.
    """
    home.mkdir()
    env = {
        **os.environ,
        "CRM_BASE_URL": crm.url,
        "CRM_ACCESS_TOKEN": DEFAULT_TOKEN,
        "CRM_HISTORY_START": history_start(),
        **warehouse.env(),
        **(settings or {}),
        "DAGSTER_HOME": str(home),
    }
    dagster = str(Path(sys.executable).parent / "dagster")
    command = [dagster, "job", "execute", "-m", "crm_assets.definitions", "-j", "crm_sync_job"]
    run = run_of(partitions, trigger)
    tags = {
        **run["tags"],
        **({"dagster/partition": run["partition_key"]} if partitions is None else {}),
    }
    command += ["--tags", json.dumps(tags)]
    if config is not None:
        command += ["-c", str(config)]
    return subprocess.Popen(
        command,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def kill_sync_process_when(
    moment: Callable[[], object],
    crm: CrmSandbox,
    warehouse: Warehouse,
    home: Path,
    config: Path | None = None,
    partitions: PartitionKeyRange | None = None,
) -> None:
    """Start a sync process; SIGKILL it as soon as ``moment()`` returns (it blocks until then)."""
    trigger = "sweep" if config is not None else ("schedule" if partitions is None else None)
    killed = start_sync_process(
        crm, warehouse, home, config, partitions=partitions, trigger=trigger
    )
    try:
        moment()
    finally:
        os.killpg(killed.pid, signal.SIGKILL)
        killed.wait(timeout=30)
    assert killed.returncode == -signal.SIGKILL
