"""Data the CRM may send: new fields, changing types, long unicode; and a bounded soak."""

from __future__ import annotations

import time

import pytest
from dagster import AssetKey, AssetSelection

from crm_assets.sources.crm import RESOURCES
from crm_sandbox.faults import TRANSIENT_KINDS
from crm_sandbox.server import CrmSandbox
from tests.conftest import Warehouse, load_all, sync

ACCOUNTS = AssetSelection.assets(AssetKey(["crm", "accounts"]))


def columns(warehouse: Warehouse, table: str) -> set[str]:
    rows = warehouse.query(
        f"select column_name from information_schema.columns where table_name = '{table}'"
    )
    return {name for (name,) in rows}


def test_a_new_field_becomes_a_new_column(own_sandbox: CrmSandbox, warehouse: Warehouse) -> None:
    load_all(own_sandbox, warehouse, selection=ACCOUNTS)
    [changed] = own_sandbox.modify("/accounts", 1, {"LoyaltyTier": "gold"})

    sync(own_sandbox, warehouse, selection=ACCOUNTS)

    assert "loyalty_tier" in columns(warehouse, "accounts")
    rows = warehouse.query(
        "select id, loyalty_tier from crm.accounts where loyalty_tier is not null"
    )
    assert rows == [(changed, "gold")]


def test_a_field_changing_type_keeps_every_value(
    own_sandbox: CrmSandbox, warehouse: Warehouse
) -> None:
    own_sandbox.modify("/accounts", 1, {"isActive": "not sure"})

    load_all(own_sandbox, warehouse, selection=ACCOUNTS)

    assert {"is_active", "is_active__v_text"} <= columns(warehouse, "accounts")
    assert warehouse.query(
        "select count(*) from crm.accounts where is_active__v_text = 'not sure'"
    ) == [(1,)]
    assert warehouse.ids("accounts") == set(own_sandbox.truth("/accounts"))


def test_long_unicode_text_arrives_intact(own_sandbox: CrmSandbox, warehouse: Warehouse) -> None:
    text = "Zürich ☃ 東京 🚀 " * 20_000
    [changed] = own_sandbox.modify("/accounts", 1, {"Name": text})

    sync(own_sandbox, warehouse, selection=ACCOUNTS)

    assert warehouse.query(f"select name from crm.accounts where id = '{changed}'") == [(text,)]


def test_a_soak_of_twenty_syncs_with_faults_ends_equal_to_the_truth(
    warehouse: Warehouse, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(time, "sleep", lambda _: None)
    failed = 0
    with CrmSandbox(records=250, seed=21) as crm:
        assert load_all(crm, warehouse).success
        crm.faults.kinds = TRANSIENT_KINDS
        for round_number in range(20):
            crm.faults.rate = 0.1
            if not sync(crm, warehouse, raise_on_error=False).success:
                failed += 1
            crm.modify(RESOURCES[round_number % len(RESOURCES)].path, 7)
            crm.add("/cases", 3)
        crm.faults.rate = 0.0
        assert sync(crm, warehouse).success
        retried = sum(n for code, n in crm.stats()["statuses"].items() if code != "200")
        for resource in RESOURCES:
            assert warehouse.cursors(resource.name) == crm.truth(resource.path), resource.name
    print(f"soak: 20 syncs, {failed} failed, {retried} faulty responses or resets")
