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
    freshness_policy: FreshnessPolicy | None = None,
    automation_condition: AutomationCondition[AssetKey] | None = None,
) -> AssetsDefinition:
    """The multi-asset of the nine resources, with kinds naming ``destination``."""

    @dlt_assets(
        dlt_source=crm_source(base_url=SPEC_BASE_URL, access_token=SPEC_TOKEN),
        dlt_pipeline=_spec_pipeline(destination),
        name=ASSETS_OP_NAME,
        dagster_dlt_translator=CrmDltTranslator(freshness_policy, automation_condition),
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

        Incremental by default; a window backfill when `window_start` and `window_end`
        are set in the op config; a deletion sweep when `sweep_deletes` is true.
        """
        yield from run_sync(context, dlt, crm_api, warehouse, config)

    return crm_dlt_assets
