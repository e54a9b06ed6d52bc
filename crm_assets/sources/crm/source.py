"""The CRM as a dlt source: the seed's REST API config, built from the resource table."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import dlt
from dlt.sources import DltResource
from dlt.sources.helpers.rest_client.auth import BearerTokenAuth
from dlt.sources.rest_api import rest_api_resources
from dlt.sources.rest_api.typing import Endpoint, EndpointResource, RESTAPIConfig
from requests import Request, Session

from crm_assets.sources.crm.clock import CrmClock
from crm_assets.sources.crm.columnar import DLT_COLUMN_HINTS, ColumnarPages
from crm_assets.sources.crm.future import HoldBackFutureCursors, RestoreSentCursors
from crm_assets.sources.crm.pacing import RequestPacer
from crm_assets.sources.crm.pages import PageCheck
from crm_assets.sources.crm.paginator import PageLimitPaginator
from crm_assets.sources.crm.prefetch import DEFAULT_CONCURRENCY, AdaptiveLimit, Prefetcher
from crm_assets.sources.crm.recent import SkipUnchanged
from crm_assets.sources.crm.session import CrmHttp, check_base_url
from crm_assets.sources.crm.settings import (
    DEFAULT_LOOKBACK_SECONDS,
    DELETED_HINT,
    INITIAL_CURSOR,
    PAGE_SIZE,
    PRIMARY_KEY,
    RECORDS_SELECTOR,
    REQUEST_TIMEOUT_SECONDS,
    RESOURCES,
    SINCE_PARAM,
    TIMESTAMP_FIELDS,
    WRITE_DISPOSITION,
    CrmResource,
)
from crm_assets.sources.crm.stats import SyncStats
from crm_assets.sources.crm.sweep import Listing, ListingStep, PageReader
from crm_assets.sources.crm.timestamps import AfterIncremental, ParseTimestamps
from crm_assets.sources.crm.window import Window


@dataclass(frozen=True)
class SyncOptions:
    """How one sync fetches.

    Attributes:
        page_size: Records per page (``limit``).
        timeout: Connect and read timeout of one request, in seconds.
        concurrency: Requests in flight at most (1: one page at a time).
        lookback_seconds: How far before the last cursor an incremental sync starts.
        initial_cursor: Where the first incremental sync starts (default: everything).
        window: Sync only this window and keep the incremental cursor (a backfill).
        columnar: Hand dlt Arrow tables for the records it would only flatten (see
            ``columnar``); for destinations loading parquet.
    """

    page_size: int = PAGE_SIZE
    timeout: float = REQUEST_TIMEOUT_SECONDS
    concurrency: int = DEFAULT_CONCURRENCY
    lookback_seconds: float = DEFAULT_LOOKBACK_SECONDS
    initial_cursor: str = INITIAL_CURSOR
    window: Window | None = None
    columnar: bool = False

    def __post_init__(self) -> None:
        if self.lookback_seconds < 0:
            raise ValueError(f"lookback_seconds must not be negative, got {self.lookback_seconds}")


def _incremental(resource: CrmResource, options: SyncOptions) -> dict[str, Any]:
    common = {"cursor_path": resource.cursor, "start_param": SINCE_PARAM}
    window = options.window
    if window is not None:
        return {
            **common,
            "initial_value": window.start,
            "end_value": window.end,
            "row_order": "asc",
        }
    return {**common, "initial_value": options.initial_cursor, "lag": options.lookback_seconds}


def _session(options: SyncOptions, pacer: RequestPacer | None) -> tuple[Session, AdaptiveLimit]:
    pacer = pacer or RequestPacer()
    http = CrmHttp(options.timeout, pacer=pacer)
    limit = AdaptiveLimit(options.concurrency, pacer)
    if options.concurrency == 1:
        return http.front_session(), limit
    return http.front_session(send=Prefetcher(http.send, limit, options.page_size)), limit


def rest_api_config(
    base_url: str,
    access_token: str,
    resources: Sequence[CrmResource] = RESOURCES,
    options: SyncOptions | None = None,
    stats: SyncStats | None = None,
    listing: bool = False,
    pacer: RequestPacer | None = None,
    clock: CrmClock | None = None,
) -> RESTAPIConfig:
    """The seed's ``rest_api_source`` configuration, made valid for dlt.

    Differences from the seed: a :class:`PageLimitPaginator` instance per resource instead
    of the rejected paginator dict; a session carrying the seed's retry policy and
    prefetching the next pages; a response check per resource that fails clearly on a
    malformed page; an incremental cursor sent as ``modified_since``; ``dedup_sort`` so
    the newest version of an ``id`` wins; and the deletion mark column.

    With ``listing`` (a deletion sweep), every resource lists all its records and leaves its
    cursor alone. ``pacer`` paces the requests to the rate the CRM allows (a new one if not
    given); ``clock`` takes the CRM's ``Date`` from every response.
    """
    options = options or SyncOptions()
    session, limit = _session(options, pacer)

    def endpoint(resource: CrmResource) -> EndpointResource:
        check = PageCheck(resource.name, access_token, stats, limit.observe, clock)
        dlt_columns = DLT_COLUMN_HINTS if options.columnar else {}
        endpoint: Endpoint = {
            "path": resource.path,
            "data_selector": RECORDS_SELECTOR,
            "paginator": PageLimitPaginator(limit=options.page_size),
            "response_actions": [check],
        }
        if not listing:
            endpoint["incremental"] = _incremental(resource, options)  # type: ignore[typeddict-item]
        return {
            "name": resource.name,
            "columns": {resource.cursor: {"dedup_sort": "desc"}, **DELETED_HINT, **dlt_columns},
            "endpoint": endpoint,
        }

    return {
        "client": {
            "base_url": check_base_url(base_url),
            "auth": {"type": "bearer", "token": access_token},
            "session": session,
        },
        "resource_defaults": {"primary_key": PRIMARY_KEY, "write_disposition": WRITE_DISPOSITION},
        "resources": [endpoint(resource) for resource in resources],
    }


@dlt.source(name="crm", section="crm")
def crm_source(
    base_url: str = dlt.config.value,
    access_token: str = dlt.secrets.value,
    resources: Sequence[CrmResource] = RESOURCES,
    options: SyncOptions | None = None,
    stats: SyncStats | None = None,
    listings: Mapping[str, Listing] | None = None,
    pacer: RequestPacer | None = None,
    clock: CrmClock | None = None,
) -> list[DltResource]:
    """The CRM resources, each merged into a table of its name by ``id``.

    Args:
        base_url: Root URL of the CRM API.
        access_token: Bearer token; dlt resolves ``access_token`` from its secrets if omitted.
        resources: The resource table (see ``settings.RESOURCES``).
        options: How to fetch: page size, timeout, concurrency, lookback, window.
        stats: Collects requests, pages and retries per resource, and logs progress.
        listings: For a deletion sweep: every resource lists all its records, which its
            listing takes in the order dlt consumes them (see ``sweep``).
        pacer: Paces the requests to the rate the CRM allows (``pacing``); shared with a
            sweep's page readers.
        clock: The CRM's present, from the ``Date`` of its responses; the incremental cursor
            never goes beyond it (``future``).
    """
    if not access_token:
        raise ValueError("the CRM access token is empty: set CRM_ACCESS_TOKEN")
    options, stats, clock = options or SyncOptions(), stats or SyncStats(), clock or CrmClock()
    config = rest_api_config(
        base_url, access_token, resources, options, stats, listings is not None, pacer, clock
    )
    dlt_resources = rest_api_resources(config)
    for resource, spec in zip(dlt_resources, resources, strict=True):
        if listings is not None:
            if spec.name in listings:  # the resources a sweep selected
                resource.add_step(ListingStep(listings[spec.name]))
        elif options.window is None:
            lookback = options.lookback_seconds
            resource.add_step(SkipUnchanged(spec.name, spec.cursor, lookback, clock))
            resource.add_step(HoldBackFutureCursors(spec.name, spec.cursor, clock, stats))
            resource.add_step(RestoreSentCursors(spec.cursor))
        resource.add_step(AfterIncremental(ParseTimestamps((spec.cursor, *TIMESTAMP_FIELDS))))
        if options.columnar:
            resource.add_step(ColumnarPages(spec.name, PRIMARY_KEY))
    return dlt_resources


def page_reader(
    base_url: str,
    access_token: str,
    resource: CrmResource,
    options: SyncOptions | None = None,
    stats: SyncStats | None = None,
    pacer: RequestPacer | None = None,
    clock: CrmClock | None = None,
) -> PageReader:
    """Reads page 1 of ``resource`` from a ``modified_since``, as a sweep confirms candidates.

    Requests carry the token, go through the same retry policy and page check as the sync's,
    and are counted in ``stats``; any thread may call it.
    """
    options = options or SyncOptions()
    front = CrmHttp(options.timeout, pacer=pacer).front_session(resource=resource.name)
    check = PageCheck(resource.name, access_token, stats, clock=clock)
    url = f"{check_base_url(base_url)}{resource.path}"
    auth = BearerTokenAuth(access_token)
    environment = front.merge_environment_settings(url, {}, None, None, None)

    def read(since: str, limit: int) -> list[dict[str, Any]]:
        params: dict[str, str | int] = {"page": 1, "limit": limit, SINCE_PARAM: since}
        request = Request("GET", url, params=params, auth=auth, hooks={"response": [check]})
        response = front.send(front.prepare_request(request), **environment)
        records: list[dict[str, Any]] = response.json()
        return records

    return read
