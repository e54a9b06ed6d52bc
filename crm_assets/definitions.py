"""The code location's one ``Definitions``: assets, job, resources and policy."""

from __future__ import annotations

import os
from collections.abc import Mapping

from dagster import AssetSelection, Definitions, define_asset_job, definitions, in_process_executor

from crm_assets.assets import build_crm_assets
from crm_assets.constants import DEFAULT_DESTINATION, GROUP_NAME, SYNC_JOB_NAME
from crm_assets.dlt_resource import CrmDltResource
from crm_assets.resources import resources_from_env


def build_definitions(environ: Mapping[str, str] | None = None) -> Definitions:
    """Build the definitions for an environment (``os.environ`` by default).

    Only the destination name is read here, to name the assets' kinds; every value is
    resolved from ``EnvVar`` bindings when a run starts, so loading needs no secret.
    """
    env = os.environ if environ is None else environ
    crm_assets = build_crm_assets(env.get("CRM_DESTINATION") or DEFAULT_DESTINATION)
    sync_job = define_asset_job(
        SYNC_JOB_NAME,
        selection=AssetSelection.groups(GROUP_NAME),
        description="Sync all nine CRM resources into the warehouse.",
    )
    return Definitions(
        assets=[crm_assets],
        jobs=[sync_job],
        resources={"dlt": CrmDltResource(), **resources_from_env(env)},
        executor=in_process_executor,
    )


@definitions
def defs() -> Definitions:
    """Loaded by Dagster when the code location starts, not when this module is imported."""
    return build_definitions()
