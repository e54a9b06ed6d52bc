"""Helpers for driving the dlt source against ``responses`` mocks."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import orjson
import pytest
from dlt.common.configuration.container import Container
from dlt.common.pipeline import PipelineContext

from crm_assets.sources.crm import RESOURCES, CrmError, CrmResource, crm_source
from crm_assets.sources.crm.source import SyncOptions

BASE_URL = "https://crm.test"
TOKEN = "tok-3f9a-secret"
ACCOUNTS_URL = f"{BASE_URL}/accounts"


def page_body(start: int, count: int) -> bytes:
    """An envelope with ``count`` records numbered from ``start``."""
    items = [
        {"record": {"id": f"a{n}", "modifiedtime": f"2024-01-01T00:00:{n % 60:02d}.{n:06d}Z"}}
        for n in range(start, start + count)
    ]
    return orjson.dumps({"list": items, "page": 1, "limit": 100})


def fetch(
    name: str = "accounts", resources: Sequence[CrmResource] = RESOURCES, **options: Any
) -> list[dict[str, Any]]:
    """Run one resource of the source, one page at a time unless told, and return its records."""
    settings = SyncOptions(**{"concurrency": 1, **options})
    source = crm_source(
        base_url=BASE_URL, access_token=TOKEN, resources=resources, options=settings
    )
    return list(source.resources[name])


def failure(name: str = "accounts") -> CrmError:
    """Run one resource that must fail; return the ``CrmError`` behind the failure."""
    with pytest.raises(Exception) as raised:
        fetch(name)
    return crm_error_behind(raised.value)


def crm_error_behind(raised: BaseException) -> CrmError:
    """The ``CrmError`` that dlt's extraction errors wrap."""
    error: BaseException | None = raised
    while error is not None and not isinstance(error, CrmError):
        error = error.__cause__ or error.__context__
    assert isinstance(error, CrmError), f"no CrmError behind {raised!r}"
    return error


@pytest.fixture(autouse=True)
def no_active_pipeline() -> Iterator[None]:
    """No dlt pipeline left active by an earlier test.

    A resource iterated on its own keeps its incremental state in dlt's active pipeline;
    one left by an end-to-end test would make these tests start from its cursors.
    """
    context = Container()[PipelineContext]
    context.deactivate()
    yield
    context.deactivate()


ACCOUNTS = next(resource for resource in RESOURCES if resource.name == "accounts")
