"""The token never shows up in logs, events, run records, errors, or files dlt leaves."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from dagster import DagsterInstance, serialize_value

from crm_assets.definitions import build_definitions
from crm_assets.partitions import range_tags
from crm_sandbox.server import CrmSandbox
from tests.conftest import Warehouse, everything, history_start

TOKEN = "tok-Secret-7f3a9c21"
WRONG = "tok-Wrong-55e0b7d4"


@pytest.fixture
def crm() -> Iterator[CrmSandbox]:
    with CrmSandbox(records=150, seed=4, token=TOKEN) as sandbox:
        yield sandbox


def run_job(crm: CrmSandbox, warehouse: Warehouse, token: str, instance: DagsterInstance) -> bool:
    """crm_sync_job as deployed: settings from the environment, token bound with EnvVar."""
    environ = {
        "CRM_BASE_URL": crm.url,
        "CRM_ACCESS_TOKEN": token,
        "CRM_HISTORY_START": history_start(),
        **warehouse.env(),
    }
    with pytest.MonkeyPatch.context() as patch:
        for name, value in environ.items():
            patch.setenv(name, value)
        job = build_definitions().resolve_job_def("crm_sync_job")
        run = job.execute_in_process(
            instance=instance, raise_on_error=False, tags=range_tags(everything())
        )
        return run.success


def leaks(text: str | bytes) -> set[str]:
    data = text.encode() if isinstance(text, str) else text
    return {secret for secret in (TOKEN, WRONG) if secret.encode() in data}


def test_no_secret_in_logs_events_runs_errors_or_files(
    crm: CrmSandbox,
    warehouse: Warehouse,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(time, "sleep", lambda _: None)
    caplog.set_level(logging.DEBUG)
    with DagsterInstance.ephemeral() as instance:
        assert run_job(crm, warehouse, TOKEN, instance)
        crm.faults.script("/cases", ["500"] * 4)
        assert not run_job(crm, warehouse, TOKEN, instance)
        assert not run_job(crm, warehouse, WRONG, instance)

        runs = instance.get_runs()
        events = [
            record.event_log_entry
            for run in runs
            for record in instance.get_records_for_run(run.run_id).records
        ]
        errors = [
            event.dagster_event.step_failure_data.error.to_string()
            for event in events
            if event.dagster_event and event.dagster_event.is_step_failure
        ]

    assert len(runs) == 3 and len(errors) == 2
    assert any("HTTP 401" in error for error in errors)
    assert any("HTTP 500" in error for error in errors)
    assert leaks(caplog.text) == set()
    assert leaks(serialize_value(events)) == set()
    assert leaks(serialize_value(runs)) == set()
    assert leaks("\n".join(errors)) == set()
    files = [path for path in Path(warehouse.pipelines_dir).rglob("*") if path.is_file()]
    assert any(path.name.startswith("trace") for path in files)
    assert {str(path): leaks(path.read_bytes()) for path in files if leaks(path.read_bytes())} == {}
    assert leaks(warehouse.path.read_bytes()) == set()
