"""The nine CRM assets: one dlt multi-asset built from the resource table."""

import atexit
import functools
import shutil
import tempfile
from collections.abc import Iterator, Mapping, Sequence
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
    multi_asset,
)
from dagster_dlt import build_dlt_asset_specs

from crm_assets.config import CrmSyncConfig
from crm_assets.constants import DEFAULT_NAMES
from crm_assets.naming import CrmNames
from crm_assets.sources.crm import RESOURCES, CrmResource, crm_source
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


def _spec_pipeline(destination: str, name: str) -> dlt.Pipeline:
    """A pipeline naming the destination for asset kinds; runs build their own."""
    return dlt.pipeline(pipeline_name=name, destination=destination, pipelines_dir=_specs_dir())


def build_crm_assets(
    destination: str,
    partitions: DailyPartitionsDefinition,
    backfill_policy: BackfillPolicy | None = None,
    freshness_policy: FreshnessPolicy | None = None,
    automation_condition: AutomationCondition[AssetKey] | None = None,
    names: CrmNames = DEFAULT_NAMES,
    resources: Sequence[CrmResource] = RESOURCES,
    metadata: Mapping[str, Any] | None = None,
) -> AssetsDefinition:
    """The multi-asset of one CRM's resources, with kinds naming ``destination``.

    dagster-dlt's ``build_dlt_asset_specs`` describes the assets and its resource runs the
    sync, as ``@dlt_assets`` does; the op is declared here so that its resource keys can be
    this CRM's own (``names``), which lets several CRMs share a code location.

    Args:
        destination: The dlt destination, named in the assets' kinds.
        partitions: Their daily partitions (``partitions.crm_partitions``).
        backfill_policy: How many partitions one run of a backfill covers; one run for the
            whole backfill if not given.
        freshness_policy: The policy every asset carries.
        automation_condition: When Dagster's automation requests partitions of an asset.
        names: The CRM's names: asset key prefix, op, pool, resource keys.
        resources: Which of the CRM's resources are assets.
        metadata: Definition metadata every asset carries.
    """
    translator = CrmDltTranslator(names, freshness_policy, automation_condition, metadata)
    specs = build_dlt_asset_specs(
        dlt_source=crm_source(base_url=SPEC_BASE_URL, access_token=SPEC_TOKEN, resources=resources),
        dlt_pipeline=_spec_pipeline(destination, names.pipeline),
        dagster_dlt_translator=translator,
    )

    @multi_asset(
        name=names.assets_op,
        specs=specs,
        can_subset=True,
        partitions_def=partitions,
        backfill_policy=backfill_policy or BackfillPolicy.single_run(),
        pool=names.pool,
        required_resource_keys={names.dlt_resource, names.api_resource, names.warehouse_resource},
    )
    def crm_dlt_assets(context: AssetExecutionContext, config: CrmSyncConfig) -> Iterator[Any]:
        """Sync the selected CRM resources into the warehouse, merging by `id`.

        A partition is a UTC day of the records' `modifiedtime` (the first also holds all
        before it). A run reads the records of its partitions; the schedule's and the
        automation's run of today's partition is the incremental sync from the saved cursor.
        A deletion sweep when `sweep_deletes` is true in the op config.
        """
        found = context.resources
        yield from run_sync(
            context,
            getattr(found, names.dlt_resource),
            getattr(found, names.api_resource),
            getattr(found, names.warehouse_resource),
            config,
        )

    return crm_dlt_assets
