"""The quick start: a sandbox CRM, a sync, deletions in the CRM, a deletion sweep, the tables.

Run by ``make run`` (``VERBOSE=1 make run`` shows Dagster's whole event log). Both runs go
through ``dg launch`` as a user would start them, over every partition
(``--partition-range first...today``), as the first backfill of history loads a new
warehouse. The quick start's partitions begin a week back (``CRM_HISTORY_START``); the
first holds every record before it, which is all the sandbox's. The sandbox is generated
afresh each time, so the quick start starts from an empty warehouse and instance of its own
(``data/quickstart.duckdb``, ``.dagster_home/quickstart``). Exits non-zero if a run fails or
any table's live rows differ from the CRM.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import orjson
import requests

from crm_assets.constants import DEFAULT_DATASET, DEFAULT_NAMES
from crm_assets.partitions import crm_partitions, whole_range
from crm_assets.sources.crm import RESOURCES
from crm_assets.sources.crm.settings import DELETED_COLUMN
from crm_sandbox.data import PATHS
from crm_sandbox.server import DEFAULT_TOKEN

ROOT = Path(__file__).resolve().parent.parent
WAREHOUSE = ROOT / "data" / "quickstart.duckdb"
HOME = ROOT / ".dagster_home" / "quickstart"
RECORDS = int(os.environ.get("SANDBOX_RECORDS", "1000"))
VERBOSE = os.environ.get("VERBOSE", "") not in ("", "0")
DELETED_PER_PATH = 7
DATASET = DEFAULT_DATASET
HISTORY_START = (datetime.now(UTC) - timedelta(days=7)).strftime("%Y-%m-%dT00:00:00Z")
_MESSAGE = re.compile(r" - INFO - .*? - [0-9a-f-]{36} - (?:\S+ - )?(?P<message>.*)$")


def start_sandbox() -> tuple[subprocess.Popen[str], str]:
    """Start ``crm-sandbox`` on a free loopback port and return it with its URL."""
    process = subprocess.Popen(
        [sys.executable, "-m", "crm_sandbox", "--port", "0", "--records", str(RECORDS)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    match = re.search(r"serving (http://\S+)", line)
    if not match:
        process.kill()
        raise SystemExit(f"the sandbox did not start: {line!r}")
    print(line.strip())
    return process, match.group(1)


def launch(base_url: str, op_config: Mapping[str, object], title: str) -> bool:
    """``dg launch --job crm_sync_job`` of every partition with ``op_config``; print progress."""
    print(f"\n{title}")
    env = {
        **os.environ,
        "CRM_BASE_URL": base_url,
        "CRM_ACCESS_TOKEN": os.environ.get("CRM_ACCESS_TOKEN", DEFAULT_TOKEN),
        "CRM_DESTINATION": "duckdb",
        "CRM_DUCKDB_PATH": str(WAREHOUSE),
        "CRM_DATASET": DATASET,
        "CRM_HISTORY_START": HISTORY_START,
        "DAGSTER_HOME": str(HOME),
    }
    level = "DEBUG" if VERBOSE else "INFO"
    config = {
        "ops": {DEFAULT_NAMES.assets_op: {"config": dict(op_config)}},
        "loggers": {"console": {"config": {"log_level": level}}},
    }
    with tempfile.NamedTemporaryFile("wb", suffix=".json") as file:
        file.write(orjson.dumps(config))
        file.flush()
        dg = str(Path(sys.executable).parent / "dg")
        keys = whole_range(crm_partitions(HISTORY_START), datetime.now(UTC))
        command = [dg, "launch", "--job", DEFAULT_NAMES.job, "--config", file.name]
        command += ["--partition-range", f"{keys.start}...{keys.end}"]
        process = subprocess.run(
            command, env=env, cwd=ROOT, capture_output=True, text=True, check=False
        )
    output = process.stdout + process.stderr
    if VERBOSE or process.returncode != 0:
        print(output)
    else:
        for line in output.splitlines():
            match = _MESSAGE.search(line)
            if match:
                print(f"  {match['message']}")
    return process.returncode == 0


def delete_in_crm(base_url: str) -> None:
    """Delete records on every path of the sandbox, as users of the CRM would."""
    for path in PATHS:
        body: dict[str, str | int] = {"path": path, "count": DELETED_PER_PATH}
        requests.post(f"{base_url}/_sandbox/delete", json=body, timeout=30).raise_for_status()
    print(f"\nDeleted {DELETED_PER_PATH} records of every path in the CRM.")


def report(base_url: str) -> bool:
    """Print each table's live and deleted rows against the CRM's records; True if equal."""
    truth = orjson.loads(requests.get(f"{base_url}/_sandbox/truth", timeout=30).content)
    print(f"\n{'table':24} {'live rows':>9} {'deleted':>8} {'in CRM':>8}  equal")
    matched = True
    with duckdb.connect(str(WAREHOUSE), read_only=True) as warehouse:
        for resource in RESOURCES:
            rows = warehouse.sql(
                f"select id, {DELETED_COLUMN} is not null from {DATASET}.{resource.name}"
            ).fetchall()
            live = {key for key, deleted in rows if not deleted}
            same = live == set(truth[resource.path])
            matched &= same
            print(
                f"{resource.name:24} {len(live):>9} {len(rows) - len(live):>8} "
                f"{len(truth[resource.path]):>8}  {'yes' if same else 'NO'}"
            )
    print(f"\nwarehouse: {WAREHOUSE.relative_to(ROOT)} (dataset {DATASET})")
    return matched


def reset() -> None:
    """An empty warehouse and instance for the quick start; the instance's pool limit."""
    WAREHOUSE.unlink(missing_ok=True)
    shutil.rmtree(HOME, ignore_errors=True)
    HOME.mkdir(parents=True)
    shutil.copy(ROOT / "deploy" / "dagster.yaml", HOME / "dagster.yaml")


def main() -> int:
    """Start the sandbox, sync, delete in the CRM, sweep, report, stop the sandbox."""
    reset()
    sandbox, base_url = start_sandbox()
    try:
        if not launch(base_url, {}, "Sync (crm_sync_job):"):
            print("crm_sync_job failed; see the output above", file=sys.stderr)
            return 1
        synced = report(base_url)
        delete_in_crm(base_url)
        if not launch(base_url, {"sweep_deletes": True}, "Deletion sweep (sweep_deletes):"):
            print("the deletion sweep failed; see the output above", file=sys.stderr)
            return 1
        return 0 if report(base_url) and synced else 1
    finally:
        sandbox.terminate()
        sandbox.wait(timeout=10)


if __name__ == "__main__":
    sys.exit(main())
