"""The CRM as a dlt source: the seed's REST API config, built from the resource table."""

from __future__ import annotations

from collections.abc import Sequence

import dlt
from dlt.extract.resource import DltResource
from dlt.sources.rest_api import rest_api_resources
from dlt.sources.rest_api.typing import EndpointResource, RESTAPIConfig

from crm_assets.sources.crm.pages import page_checker
from crm_assets.sources.crm.paginator import PageLimitPaginator
from crm_assets.sources.crm.session import check_base_url, crm_session
from crm_assets.sources.crm.settings import (
    DATA_SELECTOR,
    PAGE_SIZE,
    PRIMARY_KEY,
    REQUEST_TIMEOUT_SECONDS,
    RESOURCES,
    WRITE_DISPOSITION,
    CrmResource,
)


def _endpoint(resource: CrmResource, page_size: int, access_token: str) -> EndpointResource:
    return {
        "name": resource.name,
        "endpoint": {
            "path": resource.path,
            "data_selector": DATA_SELECTOR,
            "paginator": PageLimitPaginator(limit=page_size),
            "response_actions": [page_checker(resource.name, access_token)],
        },
    }


def rest_api_config(
    base_url: str,
    access_token: str,
    resources: Sequence[CrmResource] = RESOURCES,
    page_size: int = PAGE_SIZE,
    timeout: float = REQUEST_TIMEOUT_SECONDS,
) -> RESTAPIConfig:
    """The seed's ``rest_api_source`` configuration, made valid for dlt.

    Differences from the seed: a :class:`PageLimitPaginator` instance per resource instead
    of the rejected paginator dict; a session carrying the seed's retry policy; a response
    check per resource that fails clearly on a malformed page.
    """
    return {
        "client": {
            "base_url": check_base_url(base_url),
            "auth": {"type": "bearer", "token": access_token},
            "session": crm_session(timeout),
        },
        "resource_defaults": {
            "primary_key": PRIMARY_KEY,
            "write_disposition": WRITE_DISPOSITION,
        },
        "resources": [_endpoint(resource, page_size, access_token) for resource in resources],
    }


@dlt.source(name="crm", section="crm")
def crm_source(
    base_url: str = dlt.config.value,
    access_token: str = dlt.secrets.value,
    resources: Sequence[CrmResource] = RESOURCES,
    page_size: int = PAGE_SIZE,
    timeout: float = REQUEST_TIMEOUT_SECONDS,
) -> list[DltResource]:
    """The nine CRM resources, each merged into a table of its name by ``id``.

    Args:
        base_url: Root URL of the CRM API.
        access_token: Bearer token; dlt resolves ``access_token`` from its secrets if omitted.
        resources: The resource table (see ``settings.RESOURCES``).
        page_size: Records per page.
        timeout: Connect and read timeout of one request, in seconds.
    """
    if not access_token:
        raise ValueError("the CRM access token is empty: set CRM_ACCESS_TOKEN")
    config = rest_api_config(base_url, access_token, resources, page_size, timeout)
    return rest_api_resources(config)
