"""The nine CRM assets: one dlt multi-asset built from the resource table."""

import atexit
import functools
import shutil
import tempfile
from collections.abc import Iterator
from typing import Any

import dlt
from dagster import (
    AssetExecutionContext,
    AssetKey,
    AssetsDefinition,
    AutomationCondition,
    BackfillPolicy,
    DailyPartitionsDefinition,
    FreshnessPolicy,
)
from dagster_dlt import dlt_assets

from crm_assets.config import CrmSyncConfig
from crm_assets.constants import ASSETS_OP_NAME, PIPELINE_NAME, WAREHOUSE_POOL
from crm_assets.dlt_resource import CrmDltResource
from crm_assets.resources import CrmApiResource, CrmWarehouseResource
from crm_assets.sources.crm import crm_source
from crm_assets.sync import run_sync
from crm_assets.translator import CrmDltTranslator

SPEC_BASE_URL = "https://crm.invalid"
SPEC_TOKEN = "not-a-token"
"""Placeholders of the source that only describes the assets: it is never run."""


@functools.cache
def _specs_dir() -> str:
    """A folder of this process alone for the describing pipeline, removed at exit.

    dlt creates a pipeline's working folder when it is named; a fixed path would be shared
    by every user of the machine, and a second user could not write to it.
    """
    folder = tempfile.mkdtemp(prefix="crm-assets-specs-")
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return folder


def _spec_pipeline(destination: str) -> dlt.Pipeline:
    """A pipeline naming the destination for asset kinds; runs build their own."""
    return dlt.pipeline(
        pipeline_name=PIPELINE_NAME, destination=destination, pipelines_dir=_specs_dir()
    )


def build_crm_assets(
    destination: str,
    partitions: DailyPartitionsDefinition,
    backfill_policy: BackfillPolicy | None = None,
    freshness_policy: FreshnessPolicy | None = None,
    automation_condition: AutomationCondition[AssetKey] | None = None,
) -> AssetsDefinition:
    """The multi-asset of the nine resources, with kinds naming ``destination``.

    Args:
        destination: The dlt destination, named in the assets' kinds.
        partitions: Their daily partitions (``partitions.crm_partitions``).
        backfill_policy: How many partitions one run of a backfill covers; one run for the
            whole backfill if not given.
        freshness_policy: The policy every asset carries.
        automation_condition: When Dagster's automation requests partitions of an asset.
    """

    @dlt_assets(
        dlt_source=crm_source(base_url=SPEC_BASE_URL, access_token=SPEC_TOKEN),
        dlt_pipeline=_spec_pipeline(destination),
        name=ASSETS_OP_NAME,
        dagster_dlt_translator=CrmDltTranslator(freshness_policy, automation_condition),
        partitions_def=partitions,
        backfill_policy=backfill_policy or BackfillPolicy.single_run(),
        pool=WAREHOUSE_POOL,
    )
    def crm_dlt_assets(
        context: AssetExecutionContext,
        config: CrmSyncConfig,
        dlt: CrmDltResource,
        crm_api: CrmApiResource,
        warehouse: CrmWarehouseResource,
    ) -> Iterator[Any]:
        """Sync the selected CRM resources into the warehouse, merging by `id`.

        A partition is a UTC day of the records' `modifiedtime` (the first also holds all
        before it). A run reads the records of its partitions; the schedule's and the
        automation's run of today's partition is the incremental sync from the saved cursor.
        A deletion sweep when `sweep_deletes` is true in the op config.
        """
        yield from run_sync(context, dlt, crm_api, warehouse, config)

    return crm_dlt_assets
