"""The CRM API and warehouse resources: token fallback, validation and destinations."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import duckdb
import pytest
from dlt.common.configuration.container import Container
from dlt.common.configuration.specs.pluggable_run_context import PluggableRunContext

from crm_assets.resources import CrmApiResource, CrmWarehouseResource, MissingTokenError
from crm_assets.settings import InvalidSettingError


@pytest.fixture
def dlt_project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[str], None]]:
    """Make ``tmp_path`` dlt's project folder with a given secrets.toml, as dagster would."""
    run_context = Container()[PluggableRunContext]

    def use(secrets_toml: str) -> None:
        (tmp_path / ".dlt").mkdir()
        (tmp_path / ".dlt" / "secrets.toml").write_text(secrets_toml)
        monkeypatch.chdir(tmp_path)
        run_context.reload(str(tmp_path))

    yield use
    monkeypatch.undo()
    run_context.reload(str(Path.cwd()))


def test_the_token_falls_back_to_dlt_secrets_toml(dlt_project: Callable[[str], None]) -> None:
    dlt_project('access_token = "from-secrets-toml"\n')

    assert CrmApiResource(base_url="https://crm.test").token() == "from-secrets-toml"
    configured = CrmApiResource(base_url="https://crm.test", access_token="from-env")
    assert configured.token() == "from-env"


def test_no_token_anywhere_is_a_clear_error(dlt_project: Callable[[str], None]) -> None:
    dlt_project("")

    with pytest.raises(MissingTokenError, match="CRM_ACCESS_TOKEN"):
        CrmApiResource(base_url="https://crm.test").token()


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("crm.example.com", "must be an http"),
        ("ftp://crm.example.com", "must be an http"),
        ("http://crm.example.com", "plain HTTP to a host outside loopback"),
    ],
)
def test_a_bad_base_url_is_refused_before_any_request(url: str, problem: str) -> None:
    api = CrmApiResource(base_url=url, access_token="t")

    with pytest.raises(ValueError, match=problem):
        api.build_source()


def test_path_overrides_change_the_path_and_reject_unknown_names() -> None:
    api = CrmApiResource(
        base_url="https://crm.test", access_token="t", path_overrides={"documents": "/documents"}
    )
    assert api.build_source().resources["documents"] is not None

    bad = CrmApiResource(
        base_url="https://crm.test", access_token="t", path_overrides={"doc": "/d"}
    )
    with pytest.raises(ValueError, match=r"unknown resources \['doc'\]"):
        bad.build_source()


def test_a_duckdb_file_named_like_the_dataset_is_refused(tmp_path: Path) -> None:
    warehouse = CrmWarehouseResource(duckdb_path=str(tmp_path / "crm.duckdb"), dataset="crm")

    with pytest.raises(ValueError, match="same stem as CRM_DATASET"):
        warehouse.build_pipeline()


def test_duckdb_loads_parquet_and_other_destinations_their_own_format(tmp_path: Path) -> None:
    duck = CrmWarehouseResource(
        duckdb_path=str(tmp_path / "w.duckdb"), pipelines_dir=str(tmp_path / "p")
    )
    pipeline = duck.build_pipeline()

    assert pipeline.destination.destination_name == "duckdb"
    assert pipeline.dataset_name == "crm"
    assert duck.loader_file_format() == "parquet"
    assert CrmWarehouseResource(destination="postgres").loader_file_format() is None


def test_a_relative_duckdb_path_is_relative_to_the_current_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pipelines = str(tmp_path / "pipelines")
    for checkout in ("first", "second"):
        (tmp_path / checkout).mkdir()
        monkeypatch.chdir(tmp_path / checkout)
        warehouse = CrmWarehouseResource(duckdb_path="data/w.duckdb", pipelines_dir=pipelines)
        pipeline = warehouse.build_pipeline()
        pipeline.run([{"id": "1"}], table_name="probe")

        assert (tmp_path / checkout / "data" / "w.duckdb").is_file()
        with duckdb.connect("data/w.duckdb", read_only=True) as connection:
            assert connection.sql("select id from crm.probe").fetchall() == [("1",)]


def test_duckdb_starts_loading_within_64mb_or_its_limit_if_lower(tmp_path: Path) -> None:
    def memory_limit(warehouse: CrmWarehouseResource) -> str:
        with warehouse.build_pipeline().sql_client() as client:
            [(value,)] = client.execute_sql("select current_setting('memory_limit')")
        return str(value)

    pipelines = str(tmp_path / "pipelines")
    default = CrmWarehouseResource(duckdb_path=str(tmp_path / "a.duckdb"), pipelines_dir=pipelines)
    lower = CrmWarehouseResource(
        duckdb_path=str(tmp_path / "b.duckdb"), duckdb_memory_limit="32MB", pipelines_dir=pipelines
    )

    assert memory_limit(default) == "61.0 MiB"  # 64MB; retried load jobs get more, up to 1GB
    assert memory_limit(lower) == "30.5 MiB"
    with pytest.raises(InvalidSettingError, match="CRM_DUCKDB_MEMORY_LIMIT"):
        CrmWarehouseResource(duckdb_memory_limit="lots").build_pipeline()


def test_the_held_duckdb_connection_checkpoints_as_it_loads_on_one_thread(tmp_path: Path) -> None:
    warehouse = CrmWarehouseResource(
        duckdb_path=str(tmp_path / "w.duckdb"), pipelines_dir=str(tmp_path / "pipelines")
    )
    with warehouse.run_pipeline() as pipeline:
        pipeline.run([{"id": "1"}], table_name="probe")
        with pipeline.sql_client() as client:
            [(threshold, threads)] = client.execute_sql(
                "select current_setting('checkpoint_threshold'), current_setting('threads')"
            )

    assert threshold == "15.2 MiB"  # 16MB; dlt's own setting on its connections is 1GB
    assert threads == 1  # DuckDB's default: one per core
