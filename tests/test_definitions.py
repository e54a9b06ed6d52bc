"""The code location as Dagster loads it: keys, kinds, job, resources, no secrets needed."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from dagster import AssetKey, DagsterInstance

from crm_assets.definitions import build_definitions, defs
from crm_assets.partitions import range_tags
from crm_assets.sources.crm import RESOURCE_NAMES
from crm_sandbox.server import DEFAULT_TOKEN, CrmSandbox
from tests.conftest import (
    SANDBOX_RECORDS,
    Warehouse,
    everything,
    history_start,
    on_every_destination,
    today,
)

NINE = {
    "accounts",
    "contacts",
    "opportunities",
    "documents",
    "campaigns",
    "cases",
    "activities",
    "opportunity_histories",
    "opportunity_lines",
}


def test_the_asset_keys_are_exactly_the_nine() -> None:
    graph = build_definitions({}).resolve_asset_graph()

    assert set(RESOURCE_NAMES) == NINE
    assert graph.get_all_asset_keys() == {AssetKey(["crm", name]) for name in NINE}


def test_every_asset_has_group_kinds_description_and_pool() -> None:
    graph = build_definitions({}).resolve_asset_graph()

    for key in graph.get_all_asset_keys():
        node = graph.get(key)
        assert node.group_name == "crm"
        assert node.kinds == {"dlt", "duckdb"}
        assert node.description
        assert not node.parent_keys
    assert {node.assets_def.op.name for node in graph.asset_nodes} == {"crm_dlt_assets"}
    assert {node.assets_def.op.pool for node in graph.asset_nodes} == {"crm_warehouse"}


def test_kinds_follow_the_destination() -> None:
    graph = build_definitions({"CRM_DESTINATION": "postgres"}).resolve_asset_graph()

    assert {frozenset(graph.get(key).kinds) for key in graph.get_all_asset_keys()} == {
        frozenset({"dlt", "postgres"})
    }


def test_definitions_load_without_secrets_or_network() -> None:
    loaded = defs()

    job = loaded.resolve_job_def("crm_sync_job")
    assert len(job.asset_layer.executable_asset_keys) == len(NINE)
    assert loaded.resources is not None
    assert set(loaded.resources) == {"dlt", "crm_api", "warehouse"}


@on_every_destination
def test_the_sync_job_runs_with_settings_from_the_environment(
    sandbox: CrmSandbox, warehouse: Warehouse, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in warehouse.env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("CRM_BASE_URL", sandbox.url)
    monkeypatch.setenv("CRM_ACCESS_TOKEN", DEFAULT_TOKEN)
    monkeypatch.setenv("CRM_DATASET", "crm")
    monkeypatch.setenv("CRM_HISTORY_START", history_start())

    job = build_definitions().resolve_job_def("crm_sync_job")
    result = job.execute_in_process(tags=range_tags(everything()))

    assert result.success
    assert warehouse.query("select count(*) from crm.cases") == [(SANDBOX_RECORDS,)]


def test_a_run_without_base_url_fails_naming_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    job = build_definitions({}).resolve_job_def("crm_sync_job")

    with pytest.raises(Exception, match="CRM_BASE_URL"):
        job.execute_in_process(partition_key=today())


def test_the_shipped_instance_config_serialises_warehouse_runs(tmp_path: Path) -> None:
    root = Path(__file__).resolve().parent.parent
    (tmp_path / "dagster.yaml").write_text((root / "deploy" / "dagster.yaml").read_text())

    with DagsterInstance.from_config(str(tmp_path)) as instance:
        pools = instance.get_concurrency_config().pool_config

    assert pools.default_pool_limit == 1
    assert pools.pool_granularity is not None and pools.pool_granularity.value == "op"


def test_dagster_cloud_and_workspace_load_the_same_module_from_the_project_root() -> None:
    root = Path(__file__).resolve().parent.parent
    [cloud] = yaml.safe_load((root / "dagster_cloud.yaml").read_text())["locations"]
    [local] = yaml.safe_load((root / "workspace.yaml").read_text())["load_from"]

    assert cloud["location_name"] == local["python_module"]["location_name"] == "crm_assets"
    assert cloud["code_source"]["module_name"] == local["python_module"]["module_name"]
    assert (root / cloud["working_directory"] / ".dlt" / "config.toml").is_file()
