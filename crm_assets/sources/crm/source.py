"""The CRM as a dlt source: the seed's REST API config, built from the resource table."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import dlt
from dlt.extract.resource import DltResource
from dlt.sources.rest_api import rest_api_resources
from dlt.sources.rest_api.typing import EndpointResource, RESTAPIConfig

from crm_assets.sources.crm.pages import page_checker
from crm_assets.sources.crm.paginator import PageLimitPaginator
from crm_assets.sources.crm.recent import SkipUnchanged
from crm_assets.sources.crm.session import check_base_url, crm_session
from crm_assets.sources.crm.settings import (
    DATA_SELECTOR,
    DEFAULT_LOOKBACK_SECONDS,
    INITIAL_CURSOR,
    PAGE_SIZE,
    PRIMARY_KEY,
    REQUEST_TIMEOUT_SECONDS,
    RESOURCES,
    SINCE_PARAM,
    WRITE_DISPOSITION,
    CrmResource,
)
from crm_assets.sources.crm.stats import SyncStats
from crm_assets.sources.crm.window import Window


def _incremental(
    resource: CrmResource, window: Window | None, lookback: float, initial_cursor: str
) -> dict[str, Any]:
    common = {"cursor_path": resource.cursor, "start_param": SINCE_PARAM}
    if window is not None:
        return {
            **common,
            "initial_value": window.start,
            "end_value": window.end,
            "row_order": "asc",
        }
    return {**common, "initial_value": initial_cursor, "lag": lookback}


def _endpoint(
    resource: CrmResource,
    page_size: int,
    access_token: str,
    window: Window | None,
    lookback: float,
    initial_cursor: str,
    stats: SyncStats | None,
) -> EndpointResource:
    return {
        "name": resource.name,
        "columns": {resource.cursor: {"dedup_sort": "desc"}},
        "endpoint": {
            "path": resource.path,
            "data_selector": DATA_SELECTOR,
            "paginator": PageLimitPaginator(limit=page_size),
            "response_actions": [page_checker(resource.name, access_token, stats)],
            "incremental": _incremental(resource, window, lookback, initial_cursor),  # type: ignore[typeddict-item]
        },
    }


def rest_api_config(
    base_url: str,
    access_token: str,
    resources: Sequence[CrmResource] = RESOURCES,
    page_size: int = PAGE_SIZE,
    timeout: float = REQUEST_TIMEOUT_SECONDS,
    window: Window | None = None,
    lookback_seconds: float = DEFAULT_LOOKBACK_SECONDS,
    initial_cursor: str = INITIAL_CURSOR,
    stats: SyncStats | None = None,
) -> RESTAPIConfig:
    """The seed's ``rest_api_source`` configuration, made valid for dlt.

    Differences from the seed: a :class:`PageLimitPaginator` instance per resource instead
    of the rejected paginator dict; a session carrying the seed's retry policy; a response
    check per resource that fails clearly on a malformed page; an incremental cursor sent
    as ``modified_since``; and ``dedup_sort`` so the newest version of an ``id`` wins.
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
        "resources": [
            _endpoint(
                resource, page_size, access_token, window, lookback_seconds, initial_cursor, stats
            )
            for resource in resources
        ],
    }


@dlt.source(name="crm", section="crm")
def crm_source(
    base_url: str = dlt.config.value,
    access_token: str = dlt.secrets.value,
    resources: Sequence[CrmResource] = RESOURCES,
    page_size: int = PAGE_SIZE,
    timeout: float = REQUEST_TIMEOUT_SECONDS,
    window: Window | None = None,
    lookback_seconds: float = DEFAULT_LOOKBACK_SECONDS,
    initial_cursor: str = INITIAL_CURSOR,
    stats: SyncStats | None = None,
) -> list[DltResource]:
    """The nine CRM resources, each merged into a table of its name by ``id``.

    Args:
        base_url: Root URL of the CRM API.
        access_token: Bearer token; dlt resolves ``access_token`` from its secrets if omitted.
        resources: The resource table (see ``settings.RESOURCES``).
        page_size: Records per page.
        timeout: Connect and read timeout of one request, in seconds.
        window: Sync only this window and keep the incremental cursor (a backfill).
        lookback_seconds: How far before the last cursor an incremental sync starts.
        initial_cursor: Where the first incremental sync starts (default: everything).
        stats: Collects requests, pages and retries per resource, and logs progress.
    """
    if not access_token:
        raise ValueError("the CRM access token is empty: set CRM_ACCESS_TOKEN")
    if lookback_seconds < 0:
        raise ValueError(f"lookback_seconds must not be negative, got {lookback_seconds}")
    config = rest_api_config(
        base_url,
        access_token,
        resources,
        page_size,
        timeout,
        window,
        lookback_seconds,
        initial_cursor,
        stats,
    )
    dlt_resources = rest_api_resources(config)
    if window is None:
        for resource, spec in zip(dlt_resources, resources, strict=True):
            resource.add_filter(SkipUnchanged(spec.name, spec.cursor, lookback_seconds))
    return dlt_resources
