"""dlt's normalize step on more processes only where it pays, loading the same tables."""

from __future__ import annotations

from pathlib import Path

import dlt
import pytest
from dagster import materialize

from crm_assets.dlt_resource import CrmDltResource
from crm_assets.resources import CrmApiResource
from crm_assets.sources.crm import dlt_defaults, normalize_workers
from crm_assets.sources.crm.dlt_internals import Container, PipelineContext
from crm_assets.sources.crm.normalize_workers import (
    MAX_WORKERS,
    PARALLEL_FROM_BYTES,
    workers_for,
)
from crm_sandbox.server import DEFAULT_TOKEN, CrmSandbox
from tests.conftest import Warehouse, crm_assets, everything, run_of, snapshot


@pytest.mark.parametrize(
    ("row_by_row_bytes", "files", "cores", "workers"),
    [
        (PARALLEL_FROM_BYTES - 1, 10, 2, 1),
        (PARALLEL_FROM_BYTES, 10, 2, 2),
        (PARALLEL_FROM_BYTES, 10, 1, 1),
        (PARALLEL_FROM_BYTES, 1, 8, 1),
        (PARALLEL_FROM_BYTES * 10, 10, 16, MAX_WORKERS),
    ],
)
def test_more_processes_only_for_enough_row_by_row_work_on_enough_cores(
    row_by_row_bytes: int, files: int, cores: int, workers: int
) -> None:
    assert workers_for(row_by_row_bytes, files, cores) == workers


def test_with_no_pipeline_active_dlt_gets_no_answer_and_keeps_its_default() -> None:
    Container()[PipelineContext].deactivate()  # the last run's pipeline stays active

    assert normalize_workers.normalize_workers() is None
    assert dlt.config.get("normalize.workers", int) is None


def list_heavy_sync(
    crm: CrmSandbox, warehouse: Warehouse, parallel_from: int, monkeypatch: pytest.MonkeyPatch
) -> list[int | None]:
    """Sync ``crm``, with a second process from ``parallel_from`` bytes; the answers dlt got."""
    answers: list[int | None] = []
    answer = normalize_workers.normalize_workers

    def recorded() -> int | None:
        answers.append(answer())
        return answers[-1]

    monkeypatch.setattr(normalize_workers, "PARALLEL_FROM_BYTES", parallel_from)
    monkeypatch.setattr(normalize_workers, "cores", lambda: 2)
    monkeypatch.setattr(dlt_defaults, "normalize_workers", recorded)
    api = CrmApiResource(base_url=crm.url, access_token=DEFAULT_TOKEN)
    resources = {"dlt": CrmDltResource(), "crm_api": api, "warehouse": warehouse.resource()}
    assert materialize([crm_assets()], resources=resources, **run_of(everything(), None)).success
    return answers


def test_dlts_own_setting_comes_first(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NORMALIZE__WORKERS", "1")

    with CrmSandbox(records=60, seed=5, shape="lists") as crm:
        answers = list_heavy_sync(crm, Warehouse(tmp_path), 1, monkeypatch)

    assert answers == [], "dlt took NORMALIZE__WORKERS without asking the sync defaults"


def test_two_normalize_processes_load_what_one_loads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    two, one = Warehouse(tmp_path / "two"), Warehouse(tmp_path / "one")
    with CrmSandbox(records=300, seed=5, shape="lists") as crm:
        assert set(list_heavy_sync(crm, two, 1, monkeypatch)) == {2}
        assert set(list_heavy_sync(crm, one, 10**12, monkeypatch)) == {1}

    tables = snapshot(two)
    assert tables == snapshot(one)
    assert any("__" in name and rows for name, rows in tables.items()), "child tables loaded"
