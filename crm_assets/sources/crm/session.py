"""The HTTP session every CRM request goes through, with the seed's retry policy."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import dlt
from dlt.sources.helpers.requests import Client
from dlt.sources.helpers.requests import Session as DltSession
from requests import PreparedRequest, Response, Session
from requests.adapters import BaseAdapter
from requests.exceptions import ChunkedEncodingError, ConnectionError, Timeout

from crm_assets.sources.crm.dlt_internals import ResourceNameNotAvailable
from crm_assets.sources.crm.errors import CrmMalformedPageError, unreachable
from crm_assets.sources.crm.pacing import PacedAdapter, RequestPacer
from crm_assets.sources.crm.pages import page_of
from crm_assets.sources.crm.settings import (
    BACKOFF_FACTOR,
    MAX_RETRIES,
    MAX_RETRY_DELAY_SECONDS,
    REQUEST_TIMEOUT_SECONDS,
    RETRY_STATUSES,
)

MAX_CONNECTIONS = 64
"""Connections kept open to the CRM at most: one per fetching thread."""

RETRIED_EXCEPTIONS = (ConnectionError, Timeout, ChunkedEncodingError, CrmMalformedPageError)
"""Transport faults, and 200s whose body is not the envelope, are retried like 5xx."""

_LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})


def check_base_url(base_url: str) -> str:
    """Return ``base_url`` without a trailing slash, or raise if it is unusable.

    A token is only ever sent over HTTPS, or over plain HTTP to a loopback host.

    Raises:
        ValueError: The URL is malformed, or plain HTTP to a host outside loopback.
    """
    parts = urlsplit(base_url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(
            f"CRM_BASE_URL must be an http(s) URL such as https://crm.example.com, got {base_url!r}"
        )
    if parts.scheme == "http" and parts.hostname not in _LOOPBACK_HOSTS:
        raise ValueError(
            f"CRM_BASE_URL {base_url!r} uses plain HTTP to a host outside loopback; "
            "use https:// so the access token is never sent in clear text"
        )
    return base_url.rstrip("/")


class CrmHttp:
    """The HTTP side of one sync: the seed's retry policy, one session per thread.

    requests does not promise that a ``Session`` is thread-safe, and pages are fetched by
    many threads, so each thread gets its own session (dlt's ``Client`` keeps them per
    thread), all sharing one connection pool. Sessions retry 429/500/502/503/504 and
    transport faults at most 3 times, waiting 2, 4 and 8 seconds (backoff factor 2) unless
    the server sends ``Retry-After``, which is honoured. Any other error status fails at once.

    Every request, retries included, waits for its turn with ``pacer`` (``pacing``), in the
    transport adapter all sessions share.

    Args:
        timeout: Connect and read timeout of one request, in seconds.
        connections: Connections kept open to the CRM at most.
        pacer: Paces the requests of one sync to the rate the CRM allows.
        adapter: A transport adapter to mount instead of the paced one (benchmarks).
    """

    def __init__(
        self,
        timeout: float = REQUEST_TIMEOUT_SECONDS,
        connections: int = MAX_CONNECTIONS,
        pacer: RequestPacer | None = None,
        adapter: BaseAdapter | None = None,
    ) -> None:
        self.timeout = timeout
        self._adapter = adapter or PacedAdapter(
            pacer or RequestPacer(), pool_connections=1, pool_maxsize=connections
        )
        self._client = Client(
            request_timeout=timeout,
            max_connections=connections,
            raise_for_status=False,
            status_codes=RETRY_STATUSES,
            exceptions=RETRIED_EXCEPTIONS,
            request_max_attempts=MAX_RETRIES + 1,
            request_backoff_factor=BACKOFF_FACTOR,
            request_max_retry_delay=MAX_RETRY_DELAY_SECONDS,
            respect_retry_after_header=True,
        )

    def session(self) -> Session:
        """The calling thread's session, with the retry policy."""
        session = self._client.session
        if session.get_adapter("https://") is not self._adapter:
            session.mount("http://", self._adapter)
            session.mount("https://", self._adapter)
        return session

    def send(self, request: PreparedRequest, **kwargs: Any) -> Response:
        """Send ``request`` through this thread's session."""
        return self.session().send(request, **kwargs)

    def front_session(
        self, send: Callable[..., Response] | None = None, resource: str | None = None
    ) -> Session:
        """The session dlt's REST client is given, sending through ``send``.

        It only prepares requests (proxy settings looked up once per host) and hands them
        to ``send`` (by default this thread's session), which may pass them to other threads.
        A request that cannot reach the CRM after all retries fails naming its resource:
        ``resource``, else the one dlt is extracting (``dlt.current.resource_name``).
        """
        inner = send or self.send

        def send_reporting_unreachable(request: PreparedRequest, **kwargs: Any) -> Response:
            try:
                return inner(request, **kwargs)
            except (ConnectionError, Timeout) as error:
                url = request.url or ""
                name = resource or _extracting()
                raise unreachable(name, url, page_of(url), error) from error

        front = DltSession(timeout=self.timeout, raise_for_status=False)
        front.send = send_reporting_unreachable  # type: ignore[method-assign]
        front.merge_environment_settings = EnvironmentSettingsPerHost(  # type: ignore[method-assign]
            front.merge_environment_settings
        )
        return front


def _extracting() -> str:
    """The resource dlt is extracting in this thread, or ``?`` outside extraction."""
    try:
        return dlt.current.resource_name()
    except ResourceNameNotAvailable:
        return "?"


class EnvironmentSettingsPerHost:
    """``Session.merge_environment_settings`` looked up once per host and settings.

    requests reads the proxy variables (``HTTPS_PROXY``, ``NO_PROXY``, ...) from the
    environment on every request, and one sync sends thousands to one host.
    Proxies still come from the environment, once per sync, and still depend on the host.
    """

    def __init__(self, merge: Callable[..., dict[str, Any]]) -> None:
        self._merge = merge
        self._seen: dict[tuple[Any, ...], dict[str, Any]] = {}

    def __call__(
        self, url: str, proxies: Any, stream: Any, verify: Any, cert: Any
    ) -> dict[str, Any]:
        """The settings requests would merge for ``url``; a copy, as callers update it."""
        if proxies:
            return self._merge(url, proxies, stream, verify, cert)
        parts = urlsplit(url)
        key = (parts.scheme, parts.netloc, stream, verify, cert)
        if key not in self._seen:
            self._seen[key] = self._merge(url, proxies, stream, verify, cert)
        return dict(self._seen[key])
