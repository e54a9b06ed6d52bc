"""The table of CRM resources and the API settings every resource shares.

The nine resources and their paths are the seed's (``seed/crm-rest-api-source.md``),
including its quirk: ``documents`` reads ``/opportunity_lines``. A path can be
overridden per resource with :func:`with_paths`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Final

from crm_assets.sources.crm.dlt_internals import TTableSchemaColumns, compile_path


@dataclass(frozen=True)
class CrmResource:
    """One CRM resource: a warehouse table filled from one API path.

    Attributes:
        name: Resource and table name.
        path: API path the records are read from.
        description: What the table holds; shown in the Dagster UI.
        cursor: Field that orders records and drives incremental syncs.
    """

    name: str
    path: str
    description: str
    cursor: str = "modifiedtime"


RESOURCES: tuple[CrmResource, ...] = (
    CrmResource("accounts", "/accounts", "Companies the business sells to."),
    CrmResource("contacts", "/contacts", "People at accounts."),
    CrmResource("opportunities", "/opportunities", "Open and closed deals."),
    CrmResource(
        "documents",
        "/opportunity_lines",
        "Documents, read from /opportunity_lines as the seed configures.",
    ),
    CrmResource("campaigns", "/campaigns", "Marketing campaigns."),
    CrmResource("cases", "/cases", "Support cases."),
    CrmResource("activities", "/activities", "Calls, e-mails and meetings."),
    CrmResource(
        "opportunity_histories", "/opportunityhistories", "Stage and amount changes of deals."
    ),
    CrmResource("opportunity_lines", "/opportunity_lines", "Products on deals."),
)
"""The nine resources of the seed, in the seed's order."""

RESOURCE_NAMES: tuple[str, ...] = tuple(resource.name for resource in RESOURCES)

PAGE_SIZE = 100
"""Records per page (``limit``); the contract allows 1..100."""

LIST_KEY: Final = "list"
RECORD_KEY: Final = "record"
DATA_SELECTOR: Final = f"{LIST_KEY}.*.{RECORD_KEY}"
"""Where records sit in a page; applied by the page check, which hands dlt the records."""

RECORDS_SELECTOR: Final = compile_path("$")
"""dlt's data selector over what the page check hands it: the records themselves (``$``).

Compiled, because dlt compiles a selector given as a string again for every page, and
jsonpath-ng builds a new parser each time: about a millisecond per page."""
TIMESTAMP_FIELDS: Final = ("createdtime",)
"""Timestamps besides each resource's cursor that the contract names (nullable)."""
PRIMARY_KEY: Final = "id"

DELETED_COLUMN: Final = "_crm_deleted_at"
"""When a deletion sweep found the record gone from the CRM (UTC); null while it is listed.

Every table declares it, so it exists before the first sweep; a record fetched again
(restored in the CRM) replaces its row, and the column is null again."""

DELETED_HINT: Final[TTableSchemaColumns] = {
    DELETED_COLUMN: {"name": DELETED_COLUMN, "data_type": "timestamp", "nullable": True}
}
WRITE_DISPOSITION: Final = "merge"

RETRY_STATUSES: tuple[int, ...] = (429, 500, 502, 503, 504)
"""Statuses retried, as the seed lists them; any other 4xx or 5xx fails at once."""

MAX_RETRIES = 3
"""Retries after the first attempt of a request (the seed's policy)."""

BACKOFF_FACTOR = 2.0
"""Exponential backoff: waits of 2, 4 and 8 seconds (or what ``Retry-After`` asks)."""

MAX_RETRY_DELAY_SECONDS = 300.0
"""Upper bound of one wait, also for a ``Retry-After`` that asks for more."""

REQUEST_TIMEOUT_SECONDS = 60.0
"""Connect and read timeout of one request; a timeout is retried."""

SINCE_PARAM: Final = "modified_since"
"""Query parameter of the incremental filter (inclusive)."""

INITIAL_CURSOR: Final = "1970-01-01T00:00:00.000000Z"
"""Cursor of a first sync: everything."""

DEFAULT_LOOKBACK_SECONDS = 300.0
"""Incremental syncs ask for records modified since the last cursor minus this, for clock
skew; records re-fetched unchanged are dropped before loading."""


def with_paths(
    overrides: Mapping[str, str], resources: Sequence[CrmResource] = RESOURCES
) -> tuple[CrmResource, ...]:
    """Return the table with the paths of some resources replaced.

    Args:
        overrides: Resource name to its new API path, e.g. ``{"documents": "/documents"}``.
        resources: The table to change.

    Raises:
        ValueError: A name is not in the table, or a path does not start with ``/``.
    """
    names = {resource.name for resource in resources}
    unknown = sorted(set(overrides) - names)
    if unknown:
        raise ValueError(f"path overrides name unknown resources {unknown}; known: {sorted(names)}")
    for name, path in overrides.items():
        if not path.startswith("/"):
            raise ValueError(f"path override for {name!r} must start with '/', got {path!r}")
    return tuple(
        replace(resource, path=overrides.get(resource.name, resource.path))
        for resource in resources
    )
