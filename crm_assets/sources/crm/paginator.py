"""Page-number pagination as the CRM does it: ``page`` from 1, ``limit``, stop on a short page."""

from __future__ import annotations

from typing import Any

from dlt.sources.helpers.rest_client.paginators import PageNumberPaginator
from requests import Request, Response

from crm_assets.sources.crm.settings import PAGE_SIZE

PAGES_ATTRIBUTE = "crm_pages"
"""Set on a response holding several consecutive pages (see ``prefetch``): how many."""


def pages_in(response: Response) -> int:
    """How many pages ``response`` holds: 1, unless the prefetcher joined several."""
    return int(getattr(response, PAGES_ATTRIBUTE, 1))


class PageLimitPaginator(PageNumberPaginator):
    """Send ``page`` (1-based) and ``limit``; the first page shorter than ``limit`` is the last.

    The seed's paginator dict (``page_number`` with ``limit_param``/``limit``) is rejected by
    dlt, whose ``page_number`` paginator has no page size and stops only on an empty page or
    a total. The API has no total, so this class sends the page size and stops on a short
    page, saving the extra request for an empty page.

    Args:
        limit: Records per page, sent as ``limit_param``.
        page_param: Query parameter of the page number.
        limit_param: Query parameter of the page size.
    """

    def __init__(
        self, limit: int = PAGE_SIZE, page_param: str = "page", limit_param: str = "limit"
    ) -> None:
        if limit < 1:
            raise ValueError(f"limit must be at least 1, got {limit}")
        super().__init__(base_page=1, page_param=page_param, total_path=None)
        self.limit = limit
        self.limit_param = limit_param

    def init_request(self, request: Request) -> None:
        """Start at page 1 and send the page size."""
        super().init_request(request)
        params = request.params if isinstance(request.params, dict) else {}
        params[self.limit_param] = self.limit
        request.params = params

    def update_state(self, response: Response, data: list[Any] | None = None) -> None:
        """Advance past the pages of ``response``, or stop after a page shorter than ``limit``.

        ``_has_next_page`` is the member dlt documents for a custom paginator to say so.
        """
        pages = pages_in(response)
        super().update_state(response, data)
        if self.current_value is not None:
            self.current_value += pages - 1
        if data is None or len(data) < self.limit * pages:
            self._has_next_page = False

    def __str__(self) -> str:
        return f"{type(self).__name__}(page={self.current_value}, limit={self.limit})"
