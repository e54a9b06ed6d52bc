"""CrmSync as a dg Component: the shipped default, further CRMs in YAML, bad YAML refused."""

from __future__ import annotations

from pathlib import Path

import pytest
from dagster import AssetKey, Definitions, EnvVar

from crm_assets.components.instances import InstancesCollideError
from crm_assets.definitions import defs as shipped
from crm_assets.settings import InvalidSettingError
from crm_assets.sources.crm import RESOURCE_NAMES
from tests.projects import load_project, write_project

SECOND_CRM = """
type: crm_assets.components.CrmSync
attributes: {}
---
type: crm_assets.components.CrmSync
attributes:
  key_prefix: crm_eu
  base_url_env: CRM_EU_BASE_URL
  access_token_env: CRM_EU_ACCESS_TOKEN
  resources: [accounts, cases]
  sync_cron: "30 * * * *"
  deletes: hard
"""


def chain(error: BaseException) -> str:
    """An error and its causes, as a traceback shows them to whoever loads the location."""
    messages = []
    cause: BaseException | None = error
    while cause is not None:
        messages.append(str(cause))
        cause = cause.__cause__
    return "\n".join(messages)


def names(defs: Definitions) -> dict[str, set[str]]:
    """Every named definition of a location, by kind."""
    graph = defs.resolve_asset_graph()
    return {
        "assets": {"/".join(key.path) for key in graph.get_all_asset_keys()},
        "ops": {node.assets_def.op.name for node in graph.asset_nodes},
        "pools": {str(node.assets_def.op.pool) for node in graph.asset_nodes},
        "jobs": {job.name for job in defs.jobs or []},
        "schedules": {schedule.name for schedule in defs.schedules or []},
        "sensors": {sensor.name for sensor in defs.sensors or []},
        "resources": set(defs.resources or {}),
    }


def test_the_shipped_location_keeps_every_name_of_the_default_crm(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CRM_DATASET", "crm_main")

    loaded = shipped()

    assert names(loaded) == {
        "assets": {f"crm/{name}" for name in RESOURCE_NAMES},
        "ops": {"crm_dlt_assets"},
        "pools": {"crm_warehouse"},
        "jobs": {"crm_sync_job"},
        "schedules": {"crm_sync_schedule", "crm_sweep_schedule"},
        "sensors": {"crm_automation_sensor"},
        "resources": {"dlt", "crm_api", "warehouse"},
    }
    graph = loaded.resolve_asset_graph()
    assert {graph.get(key).group_name for key in graph.get_all_asset_keys()} == {"crm"}
    warehouse = loaded.resources["warehouse"]  # type: ignore[index]
    assert warehouse.pipeline_name == "crm"
    assert isinstance(warehouse.dataset, EnvVar)  # still bound to the variable
    assert warehouse.dataset == "CRM_DATASET"


def test_a_second_crm_is_a_few_lines_of_yaml_and_collides_with_nothing(tmp_path: Path) -> None:
    root, _ = write_project(tmp_path, SECOND_CRM)

    loaded = load_project(root)

    found = names(loaded)
    assert found["assets"] == {f"crm/{name}" for name in RESOURCE_NAMES} | {
        "crm_eu/accounts",
        "crm_eu/cases",
    }
    assert found["jobs"] == {"crm_sync_job", "crm_eu_sync_job"}
    assert found["schedules"] == {
        "crm_sync_schedule",
        "crm_sweep_schedule",
        "crm_eu_sync_schedule",
        "crm_eu_sweep_schedule",
    }
    assert found["sensors"] == {"crm_automation_sensor", "crm_eu_automation_sensor"}
    assert found["pools"] == {"crm_warehouse", "crm_eu_warehouse"}
    assert found["resources"] == {
        "dlt",
        "crm_api",
        "warehouse",
        "crm_eu_dlt",
        "crm_eu_api",
        "crm_eu_warehouse",
    }
    assert loaded.resolve_schedule_def("crm_eu_sync_schedule").cron_schedule == "30 * * * *"
    eu = loaded.resources["crm_eu_warehouse"]  # type: ignore[index]
    assert (eu.dataset, eu.pipeline_name, eu.deletes) == ("crm_eu", "crm_eu", "hard")
    assert eu.duckdb_path == "data/crm_eu_warehouse.duckdb"
    api = loaded.resources["crm_eu_api"]  # type: ignore[index]
    assert isinstance(api.base_url, EnvVar) and isinstance(api.access_token, EnvVar)
    assert (api.base_url, api.access_token) == ("CRM_EU_BASE_URL", "CRM_EU_ACCESS_TOKEN")
    job = loaded.resolve_job_def("crm_eu_sync_job")
    assert set(job.asset_layer.executable_asset_keys) == {
        AssetKey(["crm_eu", "accounts"]),
        AssetKey(["crm_eu", "cases"]),
    }


@pytest.mark.parametrize(
    ("attribute", "value", "problem"),
    [
        ("resources", "[accounts, leads]", "attributes.resources"),
        ("base_url_env", '"crm eu url"', "attributes.base_url_env"),
        ("access_token_env", '""', "attributes.access_token_env"),
        ("sync_cron", '"every hour"', "attributes.sync_cron: 'every hour' is not a cron"),
        ("history_start", '"last spring"', "attributes.history_start"),
    ],
)
def test_a_bad_defs_yaml_fails_the_load_naming_the_file_and_the_field(
    tmp_path: Path, attribute: str, value: str, problem: str
) -> None:
    yaml = (
        "type: crm_assets.components.CrmSync\nattributes:\n  key_prefix: crm_eu\n"
        f"  {attribute}: {value}\n"
    )
    root, package = write_project(tmp_path, yaml, folder="eu")

    with pytest.raises(Exception) as raised:
        load_project(root)

    message = chain(raised.value)
    assert problem in message, message
    assert f"{package}/defs/eu/defs.yaml" in message, message


@pytest.mark.parametrize(
    ("second", "shared"),
    [
        ("  dataset: crm\n  duckdb_path: data/crm_warehouse.duckdb\n", "write the dataset 'crm'"),
        ("  access_token_env: CRM_ACCESS_TOKEN\n", "read the token in CRM_ACCESS_TOKEN"),
    ],
)
def test_two_crms_sharing_a_dataset_or_a_token_are_refused(
    tmp_path: Path, second: str, shared: str
) -> None:
    yaml = (
        "type: crm_assets.components.CrmSync\nattributes: {}\n---\n"
        "type: crm_assets.components.CrmSync\nattributes:\n  key_prefix: crm_eu\n"
        "  base_url_env: CRM_EU_BASE_URL\n  access_token_env: CRM_EU_ACCESS_TOKEN\n" + second
    )
    root, _ = write_project(tmp_path, yaml)

    with pytest.raises(InstancesCollideError) as raised:
        load_project(root)

    message = str(raised.value)
    assert "(key_prefix crm)" in message and "(key_prefix crm_eu)" in message
    assert shared in message
    assert "defs.yaml" in message


def test_a_bad_attribute_names_the_attribute_not_the_variable() -> None:
    from crm_assets.components import CrmSync

    with pytest.raises(InvalidSettingError) as raised:
        CrmSync(key_prefix="crm_eu", reconcile_cron="daily").definitions({}, Path("x/defs.yaml"))

    assert str(raised.value).startswith(
        "x/defs.yaml (key_prefix crm_eu): attributes.reconcile_cron:"
    )


def test_the_resources_a_defs_yaml_may_name_are_the_sources_own() -> None:
    from typing import get_args

    from crm_assets.components.crm_sync import ResourceName

    assert get_args(ResourceName) == tuple(RESOURCE_NAMES)
