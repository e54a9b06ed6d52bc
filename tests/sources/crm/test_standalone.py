"""The source on its own, without Dagster, as the README's standalone command runs it."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from crm_assets.sources.crm.__main__ import main
from crm_sandbox.server import DEFAULT_TOKEN, CrmSandbox


def test_the_standalone_command_loads_every_resource(
    sandbox: CrmSandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SOURCES__CRM__BASE_URL", sandbox.url)
    monkeypatch.setenv("ACCESS_TOKEN", DEFAULT_TOKEN)
    monkeypatch.setenv("DLT_DATA_DIR", str(tmp_path / "dlt"))
    path = tmp_path / "standalone.duckdb"

    assert main(["--duckdb", str(path), "--dataset", "crm_data"]) == 0

    with duckdb.connect(str(path), read_only=True) as connection:
        ids = {row[0] for row in connection.sql("select id from crm_data.accounts").fetchall()}
    assert ids == set(sandbox.truth("/accounts"))
