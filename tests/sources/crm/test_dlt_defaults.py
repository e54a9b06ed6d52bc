"""The sync's dlt defaults hold from any working folder, and dlt's settings still win."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

PROBE = """
import json, dlt
from crm_assets.resources import CrmWarehouseResource
CrmWarehouseResource(duckdb_path="w.duckdb", pipelines_dir="pipelines").build_pipeline()
print(json.dumps([dlt.config["load.workers"], dlt.config["data_writer.disable_compression"]]))
"""


def _settings_seen(folder: Path, **environ: str) -> list[object]:
    """What dlt resolves after a pipeline is built in a fresh process run from ``folder``."""
    env = {key: value for key, value in os.environ.items() if "__" not in key}
    done = subprocess.run(
        [sys.executable, "-c", PROBE],
        cwd=folder,
        env={**env, **environ},
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return list(json.loads(done.stdout.strip().splitlines()[-1]))


def test_a_folder_without_dot_dlt_gets_one_load_worker_and_no_compression(
    tmp_path: Path,
) -> None:
    assert not (tmp_path / ".dlt").exists()
    assert _settings_seen(tmp_path) == [1, True]


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({"LOAD__WORKERS": "20"}, [20, True]),
        ({"DATA_WRITER__DISABLE_COMPRESSION": "false"}, [1, False]),
    ],
)
def test_dlt_environment_variables_override_the_defaults(
    tmp_path: Path, environ: dict[str, str], expected: list[object]
) -> None:
    assert _settings_seen(tmp_path, **environ) == expected


def test_a_config_toml_overrides_the_defaults(tmp_path: Path) -> None:
    (tmp_path / ".dlt").mkdir()
    (tmp_path / ".dlt" / "config.toml").write_text("[load]\nworkers = 3\n")
    assert _settings_seen(tmp_path) == [3, True]


OTHER_PIPELINE = """
import json, dlt
from crm_assets.resources import CrmWarehouseResource
ours = CrmWarehouseResource(duckdb_path="w.duckdb", pipelines_dir="pipelines").build_pipeline()
dlt.pipeline("other", destination="duckdb", pipelines_dir="pipelines")
seen = [dlt.config.get("load.workers"), dlt.config.get("data_writer.disable_compression")]
ours.activate()
seen += [dlt.config["load.workers"], dlt.config["data_writer.disable_compression"]]
print(json.dumps(seen))
"""


def test_another_dlt_pipeline_in_the_process_keeps_dlts_own_defaults(tmp_path: Path) -> None:
    env = {key: value for key, value in os.environ.items() if "__" not in key}
    done = subprocess.run(
        [sys.executable, "-c", OTHER_PIPELINE],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )

    assert json.loads(done.stdout.strip().splitlines()[-1]) == [None, None, 1, True]
