"""The quick start: start the sandbox CRM, run crm_sync_job with the Dagster CLI, show rows.

Run by ``make run``. Exits non-zero if the job fails or any table differs from the CRM.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import duckdb
import orjson
import requests

from crm_assets.constants import DEFAULT_DUCKDB_PATH, SYNC_JOB_NAME
from crm_assets.sources.crm import RESOURCES
from crm_sandbox.server import DEFAULT_TOKEN

ROOT = Path(__file__).resolve().parent.parent
RECORDS = int(os.environ.get("SANDBOX_RECORDS", "1000"))


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
    return process, match.group(1)


def run_job(base_url: str) -> int:
    """Materialize the nine assets through ``dagster job execute``."""
    env = {
        **os.environ,
        "CRM_BASE_URL": base_url,
        "CRM_ACCESS_TOKEN": os.environ.get("CRM_ACCESS_TOKEN", DEFAULT_TOKEN),
        "DAGSTER_HOME": os.environ.get("DAGSTER_HOME", str(ROOT / ".dagster_home")),
    }
    Path(env["DAGSTER_HOME"]).mkdir(parents=True, exist_ok=True)
    dagster = str(Path(sys.executable).parent / "dagster")
    command = [dagster, "job", "execute", "-m", "crm_assets.definitions", "-j", SYNC_JOB_NAME]
    return subprocess.run(command, env=env, cwd=ROOT, check=False).returncode


def report(base_url: str) -> bool:
    """Print warehouse rows against CRM records per table; True if all match."""
    truth = orjson.loads(requests.get(f"{base_url}/_sandbox/truth", timeout=30).content)
    path = ROOT / os.environ.get("CRM_DUCKDB_PATH", DEFAULT_DUCKDB_PATH)
    dataset = os.environ.get("CRM_DATASET", "crm")
    print(f"\n{'table':24} {'rows':>8} {'in CRM':>8}  match")
    matched = True
    with duckdb.connect(str(path), read_only=True) as warehouse:
        for resource in RESOURCES:
            ids = {
                row[0]
                for row in warehouse.sql(f"select id from {dataset}.{resource.name}").fetchall()
            }
            same = ids == set(truth[resource.path])
            matched &= same
            crm_count = len(truth[resource.path])
            print(f"{resource.name:24} {len(ids):>8} {crm_count:>8}  {'yes' if same else 'NO'}")
    print(f"\nwarehouse: {path} (dataset {dataset})")
    return matched


def main() -> int:
    """Start the sandbox, run the job, report, and stop the sandbox."""
    sandbox, base_url = start_sandbox()
    try:
        if run_job(base_url) != 0:
            print("crm_sync_job failed; see the Dagster output above", file=sys.stderr)
            return 1
        return 0 if report(base_url) else 1
    finally:
        sandbox.terminate()
        sandbox.wait(timeout=10)


if __name__ == "__main__":
    sys.exit(main())
