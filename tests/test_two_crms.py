"""Two CRMs in one code location, one warehouse: synced at once, nothing crossed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from crm_assets.partitions import range_tags
from crm_assets.sources.crm import RESOURCES
from crm_sandbox.server import CrmSandbox
from tests.conftest import Warehouse, everything, history_start
from tests.projects import load_project, write_project

TWO_CRMS = """
type: crm_assets.components.CrmSync
attributes:
  key_prefix: crm_us
  base_url_env: CRM_US_BASE_URL
  access_token_env: CRM_US_ACCESS_TOKEN
---
type: crm_assets.components.CrmSync
attributes:
  key_prefix: crm_eu
  base_url_env: CRM_EU_BASE_URL
  access_token_env: CRM_EU_ACCESS_TOKEN
"""


def environment(us: CrmSandbox, eu: CrmSandbox, warehouse: Warehouse) -> dict[str, str]:
    """What the platform team sets: each CRM's URL and token, one warehouse for both."""
    return {
        "CRM_US_BASE_URL": us.url,
        "CRM_US_ACCESS_TOKEN": us.token,
        "CRM_EU_BASE_URL": eu.url,
        "CRM_EU_ACCESS_TOKEN": eu.token,
        "CRM_HISTORY_START": history_start(),
        **warehouse.env(),
    }


def live(warehouse: Warehouse, dataset: str, table: str) -> set[str]:
    rows = warehouse.query(f"select id from {dataset}.{table} where _crm_deleted_at is null")
    return {key for (key,) in rows}


def marked(warehouse: Warehouse, dataset: str, table: str) -> set[str]:
    rows = warehouse.query(f"select id from {dataset}.{table} where _crm_deleted_at is not null")
    return {key for (key,) in rows}


def assert_equal(crm: CrmSandbox, warehouse: Warehouse, dataset: str) -> None:
    for resource in RESOURCES:
        assert live(warehouse, dataset, resource.name) == set(crm.truth(resource.path)), (
            dataset,
            resource.name,
        )


@pytest.mark.parametrize("warehouse", ["postgres"], indirect=True)
def test_two_crms_sync_at_once_into_their_own_datasets_and_sweep_apart(
    warehouse: Warehouse, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root, package = write_project(tmp_path / "project", TWO_CRMS)
    with (
        CrmSandbox(records=150, seed=31, token="us-token") as us,
        CrmSandbox(records=130, seed=32, token="eu-token") as eu,
    ):
        env = environment(us, eu, warehouse)
        both_fetching = threading.Barrier(2, timeout=120)
        for crm in (us, eu):
            crm.on_request("/accounts", 1, both_fetching.wait)  # neither answers alone

        for prefix in ("crm_us", "crm_eu"):
            (tmp_path / prefix).mkdir()
        processes = {
            prefix: subprocess.Popen(
                [
                    str(Path(sys.executable).parent / "dagster"),
                    *("job", "execute", "-f", str(root / package / "definitions.py")),
                    *("-j", f"{prefix}_sync_job", "--tags", json.dumps(range_tags(everything()))),
                ],
                cwd=root,
                env={
                    **os.environ,
                    **env,
                    "PYTHONPATH": str(root),
                    "DAGSTER_HOME": str((tmp_path / prefix).resolve()),
                },
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            for prefix in ("crm_us", "crm_eu")
        }
        exits = {prefix: process.wait(timeout=300) for prefix, process in processes.items()}

        assert exits == {"crm_us": 0, "crm_eu": 0}
        assert not both_fetching.broken, "the two syncs did not fetch at the same time"
        assert_equal(us, warehouse, "crm_us")
        assert_equal(eu, warehouse, "crm_eu")

        gone = set(eu.delete("/cases", 5))
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        sweep = (
            load_project(root)
            .resolve_job_def("crm_eu_sync_job")
            .execute_in_process(
                run_config={"ops": {"crm_eu_dlt_assets": {"config": {"sweep_deletes": True}}}},
                tags=range_tags(everything()),
            )
        )

        assert sweep.success
        assert marked(warehouse, "crm_eu", "cases") == gone
        assert_equal(eu, warehouse, "crm_eu")
        assert {
            resource.name: marked(warehouse, "crm_us", resource.name) for resource in RESOURCES
        } == {resource.name: set() for resource in RESOURCES}
        assert_equal(us, warehouse, "crm_us")
