"""The sync with every page served from memory: what dlt and the sync cost without a network.

``bench/case.py memory`` reads every page of the sandbox once, untimed, then times the nine
assets materialized as ``ours`` does, with each request answered from those bytes by a
requests transport adapter mounted on the sync's sessions. Everything above the socket
still runs: requests, the retry wrapper, the prefetching threads, JSON parsing, the page
check, dlt's extraction, normalization and load. Compared with fetch-and-parse alone, it
shows the floor of the "within 2.5x of fetch-and-parse" target on this machine.
"""

from __future__ import annotations

import functools
import io
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any
from urllib.parse import parse_qs, urlsplit

from requests.adapters import HTTPAdapter
from requests.models import PreparedRequest, Response

from crm_assets.sources.crm import source

Pages = Mapping[tuple[str, int], bytes]


class MemoryAdapter(HTTPAdapter):
    """Answers a GET of a read page from memory; anything else goes to the network.

    Args:
        pages: Bodies by path and page number (``case.read_pages``).
    """

    def __init__(self, pages: Pages) -> None:
        super().__init__()
        self.pages = pages
        self.served = 0

    def send(self, request: PreparedRequest, *args: Any, **kwargs: Any) -> Response:
        """The page's stored bytes as a 200 response, or the network's answer."""
        body = self._stored(request)
        if body is None:
            return super().send(request, *args, **kwargs)
        self.served += 1
        response = Response()
        response.status_code = 200
        response.raw = io.BytesIO(body)
        response.headers["Content-Type"] = "application/json"
        response.encoding = "utf-8"
        response.url = str(request.url)
        response.request = request
        return response

    def _stored(self, request: PreparedRequest) -> bytes | None:
        parts = urlsplit(str(request.url))
        page = parse_qs(parts.query).get("page", ["1"])[-1]
        if request.method != "GET" or not page.isdigit():
            return None
        return self.pages.get((parts.path, int(page)))


@contextmanager
def served_from_memory(pages: Pages) -> Iterator[MemoryAdapter]:
    """Serve the sync's requests through a :class:`MemoryAdapter` meanwhile.

    Every session the sync's HTTP side makes mounts it (``CrmHttp``'s ``adapter``).
    """
    adapter = MemoryAdapter(pages)
    original = getattr(source, "CrmHttp")  # noqa: B009
    setattr(source, "CrmHttp", functools.partial(original, adapter=adapter))  # noqa: B010
    try:
        yield adapter
    finally:
        setattr(source, "CrmHttp", original)  # noqa: B010
