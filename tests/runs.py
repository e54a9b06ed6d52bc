"""Runs recorded in a test instance through Dagster's public API, in any status."""

from __future__ import annotations

from collections.abc import Collection, Mapping

from dagster import AssetKey, AssetMaterialization, DagsterInstance, DagsterRun, DagsterRunStatus

from crm_assets.sources.crm import RESOURCE_NAMES

NINE = frozenset(AssetKey(["crm", name]) for name in RESOURCE_NAMES)
"""The keys of the nine CRM assets."""


def add_run(
    instance: DagsterInstance,
    job_name: str,
    status: DagsterRunStatus,
    tags: Mapping[str, str] | None = None,
    asset_selection: Collection[AssetKey] | None = None,
) -> DagsterRun:
    """Record a run of ``job_name`` in ``status``, as the run storage would hold it."""
    run = DagsterRun(
        job_name=job_name,
        status=status,
        tags=dict(tags or {}),
        asset_selection=frozenset(asset_selection) if asset_selection else None,
    )
    return instance.add_run(run)


def materialize_all(
    instance: DagsterInstance,
    keys: Collection[AssetKey] = NINE,
    partitions: Collection[str] = (),
) -> None:
    """Record a materialization of each of ``keys`` (of each of ``partitions``, if given), as
    finished syncs leave them."""
    for key in keys:
        for partition in partitions or [None]:
            instance.report_runless_asset_event(AssetMaterialization(key, partition=partition))
