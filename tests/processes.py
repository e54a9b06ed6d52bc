"""A sync in its own process, killed at a chosen moment."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from crm_sandbox.server import DEFAULT_TOKEN, CrmSandbox
from tests.conftest import Warehouse


def start_sync_process(
    crm: CrmSandbox,
    warehouse: Warehouse,
    home: Path,
    config: Path | None = None,
    settings: dict[str, str] | None = None,
) -> subprocess.Popen[bytes]:
    """``dagster job execute`` of the sync job (with a run config file) in its own group.

    ``settings`` are environment variables on top of the warehouse's, e.g. a dlt working
    folder of its own, as a run on another machine has.
    """
    home.mkdir()
    env = {
        **os.environ,
        "CRM_BASE_URL": crm.url,
        "CRM_ACCESS_TOKEN": DEFAULT_TOKEN,
        **warehouse.env(),
        **(settings or {}),
        "DAGSTER_HOME": str(home),
    }
    dagster = str(Path(sys.executable).parent / "dagster")
    command = [dagster, "job", "execute", "-m", "crm_assets.definitions", "-j", "crm_sync_job"]
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
) -> None:
    """Start a sync process; SIGKILL it as soon as ``moment()`` returns (it blocks until then)."""
    killed = start_sync_process(crm, warehouse, home, config)
    try:
        moment()
    finally:
        os.killpg(killed.pid, signal.SIGKILL)
        killed.wait(timeout=30)
    assert killed.returncode == -signal.SIGKILL
