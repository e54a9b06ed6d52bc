"""The CRM REST API as a self-contained dlt source; it knows nothing of Dagster."""

from crm_assets.sources.crm.errors import (
    CrmError,
    CrmMalformedPageError,
    CrmRecordError,
    CrmStatusError,
    CrmUnreachableError,
)
from crm_assets.sources.crm.paginator import PageLimitPaginator
from crm_assets.sources.crm.settings import RESOURCE_NAMES, RESOURCES, CrmResource, with_paths
from crm_assets.sources.crm.source import crm_source, rest_api_config

__all__ = [
    "RESOURCES",
    "RESOURCE_NAMES",
    "CrmError",
    "CrmMalformedPageError",
    "CrmRecordError",
    "CrmResource",
    "CrmStatusError",
    "CrmUnreachableError",
    "PageLimitPaginator",
    "crm_source",
    "rest_api_config",
    "with_paths",
]
