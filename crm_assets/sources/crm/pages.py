"""Checks every response of one resource against the contract before dlt reads it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

import orjson
from requests import Response

from crm_assets.sources.crm.clock import CrmClock
from crm_assets.sources.crm.errors import (
    CrmMalformedPageError,
    CrmRecordError,
    CrmStatusError,
    hint_for,
)
from crm_assets.sources.crm.settings import LIST_KEY, PRIMARY_KEY, RECORD_KEY
from crm_assets.sources.crm.stats import SyncStats

MAX_MESSAGE_CHARS = 300
_REDACTED = "***"


def _server_message(response: Response) -> str:
    try:
        body = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("error"), str):
        return str(body["error"])[:MAX_MESSAGE_CHARS]
    return response.text[:MAX_MESSAGE_CHARS] or "(empty body)"


def _check_envelope(body: Any) -> str | None:
    if not isinstance(body, dict) or not isinstance(body.get(LIST_KEY), list):
        return f"the body has no '{LIST_KEY}' array"
    for position, item in enumerate(body[LIST_KEY]):
        if not isinstance(item, dict) or not isinstance(item.get(RECORD_KEY), dict):
            return f"item {position} of '{LIST_KEY}' has no '{RECORD_KEY}' object"
    return None


def _missing_key(body: dict[str, Any]) -> int | None:
    for position, item in enumerate(body[LIST_KEY]):
        if item[RECORD_KEY].get(PRIMARY_KEY) in (None, ""):
            return position
    return None


def page_of(url: str | None) -> str:
    """The page number a request or response URL asks for, ``?`` if none."""
    query = parse_qs(urlsplit(url or "").query)
    return query.get("page", ["?"])[-1]


class PageCheck:
    """The response hook of one resource: every response checked before dlt reads it.

    It raises a :class:`CrmError` naming the resource and page for an error status, a body
    that is not the envelope, or a record without ``id``. It parses the body once (with
    orjson), takes the records at ``DATA_SELECTOR`` (the seed's ``list.*.record``), and hands
    dlt that list, so dlt's selector is ``$`` and no JSONPath runs per page. ``secret`` is
    redacted from any server text quoted in an error. Every response and page is counted in
    ``stats``, every status is passed to ``observe`` (the prefetch limit slows down on 429),
    and every response's ``Date`` to ``clock``.

    Attributes:
        resource: The resource whose responses it checks; the HTTP side names it in errors.
    """

    def __init__(
        self,
        resource: str,
        secret: str,
        stats: SyncStats | None = None,
        observe: Callable[[int], None] | None = None,
        clock: CrmClock | None = None,
    ) -> None:
        self.resource = resource
        self._secret = secret
        self._stats = stats or SyncStats()
        self._observe = observe
        self._clock = clock or CrmClock()

    def __deepcopy__(self, memo: dict[int, Any]) -> PageCheck:
        """The check itself, not a copy.

        dlt copies the source's configuration; the check holds the sync's counters and
        clock, which must stay shared.
        """
        return self

    def _redact(self, text: str) -> str:
        return text.replace(self._secret, _REDACTED) if self._secret else text

    def __call__(self, response: Response, **_: Any) -> Response:
        """Check ``response``; hand dlt its records, or raise naming the resource and page."""
        resource = self.resource
        self._stats.response(resource, response.status_code, len(response.content))
        if self._observe is not None:
            self._observe(response.status_code)
        self._clock.observe(response.headers)
        page = page_of(response.url)
        if response.status_code >= 400:
            problem = f"HTTP {response.status_code}: {self._redact(_server_message(response))}"
            raise CrmStatusError(resource, page, problem, hint_for(response.status_code), response)
        records = self._records(response, page)
        response.json = lambda **_: records  # type: ignore[method-assign]
        self._stats.page(resource, len(records))
        return response

    def _records(self, response: Response, page: str) -> list[dict[str, Any]]:
        resource = self.resource
        try:
            body = orjson.loads(response.content)
        except orjson.JSONDecodeError as exc:
            snippet = self._redact(response.text[:80])
            problem = f"the body is not valid JSON ({exc}); it starts with {snippet!r}"
            raise CrmMalformedPageError(resource, page, problem, hint_for(502), response) from exc
        envelope_problem = _check_envelope(body)
        if envelope_problem:
            raise CrmMalformedPageError(resource, page, envelope_problem, hint_for(502), response)
        position = _missing_key(body)
        if position is not None:
            problem = f"record {position} has no '{PRIMARY_KEY}'"
            hint = "every record needs a non-null id, the primary key; report it to the CRM owner"
            raise CrmRecordError(resource, page, problem, hint, response)
        return [item[RECORD_KEY] for item in body[LIST_KEY]]
